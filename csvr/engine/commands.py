"""CLI: ``csvr pretrain`` (``csvr finetune`` / ``linear-probe`` are :mod:`csvr.eval.commands`')."""

from __future__ import annotations

import argparse
import difflib
import importlib.resources
import sys
from pathlib import Path

from csvr.config import (command_line_overrides, config_differences, dump_yaml, load_config, parse_override,
                         read_yaml_tree, show_value, to_dict)
from csvr.engine.config import PretrainConfig
from csvr.engine.model import method_config
from csvr.engine.pretrain import pretrain, print_summary
from csvr.errors import ConfigError
from csvr.methods import list_methods
from csvr.utils.io import check_output_dir


def config_dir() -> Path:
    """The presets shipped inside the package (``csvr/configs``, package data), found through
    :mod:`importlib.resources` so that an installed wheel has them as well as a source checkout
    (whose top-level ``configs/`` is a link to the same folder)."""
    # csvr is a regular package, installed unzipped: files() is a real directory, and presets are
    # read as files because they ``inherit:`` each other by relative path
    return Path(str(importlib.resources.files("csvr").joinpath("configs")))


CONFIG_DIR = config_dir()


def preset_names(kind: str = "pretrain") -> list[str]:
    """The presets of one kind, as ``--config`` takes them (``small-cpu``, ``paper/ucf101-r3d``)."""
    folder = CONFIG_DIR / kind
    return sorted(str(x.relative_to(folder).with_suffix("")) for x in folder.rglob("*.yaml")
                  if x.name != "base.yaml") if folder.is_dir() else []


def resolve_config_path(name: str | None, kind: str = "pretrain") -> Path | None:
    """A config path, or the name of a preset of ``kind`` shipped in the package:
    ``small-cpu`` -> ``configs/<kind>/small-cpu.yaml``; ``paper/ucf101-r3d``, or just
    ``ucf101-r3d`` when only one preset of that kind has that name. An unknown or ambiguous name
    is a ConfigError listing the closest presets."""
    if name is None:
        return None
    p = Path(name)
    if p.is_file():
        return p
    stem = name[:-5] if name.endswith(".yaml") else name
    folder = CONFIG_DIR / kind
    for cand in (folder / f"{stem}.yaml", CONFIG_DIR / f"{stem}.yaml"):
        if cand.is_file():
            return cand
    known = preset_names(kind)
    matches = [k for k in known if k.rsplit("/", 1)[-1] == stem]
    if len(matches) == 1:
        return folder / f"{matches[0]}.yaml"
    if matches:
        raise ConfigError(f"config {name!r} is ambiguous: {', '.join(matches)} (give one of them)")
    close = difflib.get_close_matches(stem, known, n=3, cutoff=0.5) or \
        [k for k in known if stem in k][:3]
    hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
    raise ConfigError(f"config not found: {name!r} (not a file, nor a {kind} preset{hint}); "
                      f"{kind} presets: {', '.join(known) or 'none'}")


def _preset_label(path: Path, kind: str) -> str:
    try:
        return str(path.resolve().relative_to((CONFIG_DIR / kind).resolve()).with_suffix(""))
    except ValueError:
        return str(path)


def _file_method(path: Path) -> tuple[str, bool]:
    """A config file's method (PretrainConfig's default when unset) and whether it has a model: section."""
    data = read_yaml_tree(path)
    return str(data.get("method", "csvr")), bool(data.get("model"))


def preset_for_method(path: Path, method: str, kind: str = "pretrain") -> Path:
    """``--method M`` with ``--config P``: P itself when it is M's (or has no ``model:`` section,
    whose keys are per method); else P's sibling for M (``small-cpu`` -> ``small-cpu-cvrl``,
    ``small-cpu-iic`` -> ``small-cpu`` for csvr), announced on stderr; else a ConfigError naming
    M's presets. Never the model keys of one method checked against another's config."""

    if method not in list_methods():
        return path  # the method check names the valid ones
    current, has_model = _file_method(path)
    if current == method or not has_model:
        return path
    base = path.stem
    for m in list_methods():
        if base.endswith(f"-{m}"):
            base = base[: -len(m) - 1]
            break
    for cand in (path.parent / f"{base}-{method}.yaml", path.parent / f"{base}.yaml"):
        if cand.is_file() and cand.resolve() != path.resolve() and _file_method(cand)[0] == method:
            print(f"csvr: --method {method}: using preset {_preset_label(cand, kind)!r}, the {method} version of "
                  f"{_preset_label(path, kind)!r}", file=sys.stderr)
            return cand
    own = [n for n in preset_names(kind) if _file_method(CONFIG_DIR / kind / f"{n}.yaml")[0] == method]
    raise ConfigError(f"--method {method} with --config {_preset_label(path, kind)}: that is a {current} config "
                      f"(its model: section has {current}'s keys) and has no {method} version; use a {method} "
                      f"preset ({', '.join(own) or 'none'}) or a config file with 'method: {method}'")


def register(commands, groups) -> None:
    p = commands.add_parser(
        "pretrain", help="self-supervised pretraining (csvr, iic or cvrl) on an indexed dataset",
        description="Pretrain a method on a manifest. Settings come from --config (a YAML file or the name of one "
                    "shipped in the package, csvr/configs/pretrain: small-cpu, paper/ucf101-r3d or just "
                    "ucf101-r3d) and key=value overrides, e.g. 'train.batch_size=8 data.workers=2'. An unknown "
                    "key is an error that lists the valid keys. Runs are resumable with --resume.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  csvr pretrain --config small-cpu data.manifest=data/synth/manifest.jsonl "
               "data.pose_cache=data/synth/poses out=runs/csvr\n"
               "  torchrun --nproc_per_node 8 -m csvr pretrain --config ucf101-r3d train.devices=8\n"
               "  csvr pretrain --config small-cpu-cvrl data.manifest=data/synth/manifest.jsonl out=runs/cvrl\n")
    p.add_argument("--config", "-c", default=None, help="YAML config file or a preset name (csvr/configs/pretrain), e.g. small-cpu")
    p.add_argument("--method", default=None, help="the method (csvr, iic, cvrl); a preset of another method is "
                   "replaced by its version for this one (small-cpu -> small-cpu-cvrl), or the error names one")
    p.add_argument("--out", default=None, help="run folder (same as out=...)")
    p.add_argument("--resume", action="store_true", help="continue from the run folder's latest checkpoint")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    p.set_defaults(func=_run)


def build_config(args):
    overrides = command_line_overrides(args.overrides)
    if args.method:
        overrides.append(f"method={args.method}")
    if args.out:
        overrides.append(f"out={args.out}")
    path = resolve_config_path(args.config)
    # --method M (or method=M): a preset of another method gives way to its M version, or a message
    method = next((o.split("=", 1)[1].strip() for o in reversed(overrides) if o.split("=", 1)[0].strip() == "method"),
                  None)
    if method and path is not None:
        path = preset_for_method(path, method)
    if args.resume:
        return resume_config(PretrainConfig, path, overrides, args.out)
    return load_config(PretrainConfig, path, overrides)


def resume_config(cls, path: Path | None, overrides: list[str], out: str | None):
    """The config of ``--resume``: the run folder's own ``config.yaml`` (so ``--out RUN --resume``
    needs nothing else), with the command line's overrides; or, with ``--config``, that config.
    Every setting that differs from the run's is printed (``overriding key: old -> new``). A run
    folder without ``config.yaml`` (not started yet) needs ``--config``."""
    if out is None:  # out=RUN among the overrides, else the --config's own out
        given = [o for o in overrides if parse_override(o)[0] == ["out"]]
        if given:
            out = str(parse_override(given[-1])[1])
        elif path is not None:
            out = load_config(cls, path, overrides).out
        else:
            raise ConfigError("--resume needs the run folder to continue: --out RUN")
    saved = Path(out) / "config.yaml"
    if not saved.is_file():
        if path is None:
            raise ConfigError(f"--resume: {saved} not found ({out} is not a started csvr run folder); give --config "
                              "to start the run")
        return load_config(cls, path, overrides)
    run = load_config(cls, saved)
    cfg = load_config(cls, path if path is not None else saved, overrides)
    diff = [(k, a, b) for k, a, b in config_differences(to_dict(run), to_dict(cfg))
            if not (k == "out" and Path(str(a)).resolve() == Path(str(b)).resolve())]
    if path is not None and diff:
        print(f"csvr: --resume: --config {path} (with the overrides) differs from {saved} in {len(diff)} setting(s); "
              "the run continues with --config's:", file=sys.stderr)
    for k, a, b in diff:
        print(f"csvr: --resume: overriding {k}: {show_value(a)} -> {show_value(b)}", file=sys.stderr)
    return cfg


def _run(args) -> int:
    cfg = build_config(args)
    method_cls, _ = method_config(cfg)  # fail fast on a bad method name or model key
    if not method_cls.pretext:
        raise ConfigError(f"method {cfg.method!r} is not a pretraining method (use csvr finetune)")
    if args.print_config:
        print(dump_yaml(cfg), end="")
        return 0
    check_output_dir(cfg.out, "--out" if args.out else "out (the run folder)")  # before any data is read
    summary = pretrain(cfg, resume=args.resume)
    print_summary(summary)
    return 0
