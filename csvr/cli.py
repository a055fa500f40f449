"""The ``csvr`` command (also ``python -m csvr``).

Sub-commands are contributed by the packages that implement them: each module in
:data:`COMMAND_MODULES` has ``register(commands, groups)`` that adds its parsers, either at the
top level (``commands``) or under a group (``groups["prepare"]``, ``groups["data"]``,
``groups["viz"]``). A parser's ``func`` default receives the parsed ``argparse.Namespace``.

User mistakes raise :class:`csvr.errors.CsvrError`; they are printed as one line
(``csvr: error: ...``) with exit status 2. ``--debug`` (anywhere on the line) shows tracebacks.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import traceback
from typing import Sequence

from csvr import __version__
from csvr.errors import CsvrError, OutsideRootError

COMMAND_MODULES: list[str] = [
    "csvr.data.commands",
    "csvr.synth.commands",
    "csvr.pose.commands",
    "csvr.engine.commands",
    "csvr.eval.commands",
    "csvr.demo",
]

GROUPS = {
    "prepare": "prepare a dataset: index videos, extract or import poses, re-encode",
    "data": "built-in data: generate the synthetic action dataset",
    "viz": "draw things: poses over frames",
}


class UsageError(CsvrError):
    """A bad command line (unknown option, missing argument)."""


class Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line and a pointer to --help, not a usage dump."""

    def error(self, message: str):  # type: ignore[override]
        raise UsageError(f"{message} (see '{self.prog} --help')")


def build_parser() -> Parser:
    parser = Parser(
        prog="csvr",
        description="Self-supervised video representation learning for action recognition "
        "(CSVR, IIC, CVRL). Every sub-command has --help.",
    )
    parser.add_argument("--version", action="version", version=f"csvr {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    groups = {}
    for name, help_text in GROUPS.items():
        gp = commands.add_parser(name, help=help_text, description=help_text)
        groups[name] = gp.add_subparsers(dest=f"{name}_command", metavar="COMMAND", parser_class=Parser)
        gp.set_defaults(func=_group_help(gp))
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(commands, groups)
    return parser


def _group_help(gp: argparse.ArgumentParser):
    def show(_args):
        gp.print_help()
        return 2

    return show


def outside_root_advice(args: argparse.Namespace) -> str:
    """How the running command lets paths leave the dataset root: its ``--allow-outside-root``
    flag, or the config key of a config-driven command (one spelling of each everywhere)."""
    if hasattr(args, "allow_outside_root"):
        return "pass --allow-outside-root"
    if hasattr(args, "overrides"):
        return "set data.allow_outside_root=true"
    return "pass allow_outside_root=True"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("CSVR_DEBUG") == "1"
    argv = [a for a in argv if a != "--debug"]
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO, format="%(message)s")
    args = None
    try:
        parser = build_parser()
        # key=value config overrides may appear anywhere after the sub-command (argparse alone
        # would only take them before the first option)
        args, extra = parser.parse_known_args(argv)
        if extra:
            if hasattr(args, "overrides") and all("=" in a and not a.startswith("-") for a in extra):
                args.overrides = list(args.overrides) + extra
            else:
                raise UsageError(f"unrecognized arguments: {' '.join(extra)} (see '{parser.prog} "
                                 f"{args.command or ''} --help')".replace("  --help", " --help"))
        args.debug = debug
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        rc = args.func(args)
        return int(rc or 0)
    except CsvrError as e:
        if debug:
            traceback.print_exc()
        if isinstance(e, OutsideRootError) and args is not None:
            e = e.with_advice(outside_root_advice(args))
        print(f"csvr: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("csvr: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
