"""Every example a user can copy must work (issue 14, item 4).

The examples are collected, not listed here: every ``examples:`` / ``example:`` section of the
epilog of every ``csvr`` command and group (``csvr X --help``), and every ``csvr`` command line in
the code blocks of README.md and docs/*.md (``torchrun ... -m csvr`` and ``srun ... csvr`` included). Each one

* parses through the real argument parser (no unknown flag, every option value valid), and
* where the command resolves a config (``--print-config``), resolves it for real: the preset exists,
  every override key is valid, the method's ``model:`` keys are that method's;

and the CPU-sized ones (small-cpu presets) run for real on the tiny built-in dataset of
``conftest.tiny_synth``, with a few steps: pretraining, then retrieval and export of the checkpoint
it wrote. Placeholders stay placeholders: ``...`` (the rest as above) is dropped; ``CKPT``, ``M``,
``data/UCF101/...`` are only parsed.
"""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest

from csvr.cli import build_parser, main
from csvr.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def _parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, path + (name,))


def _command_lines(lines: list[str]) -> list[str]:
    """Lines that run csvr (continuations joined, trailing comments dropped)."""
    joined, buf = [], ""
    for line in lines:
        buf += line.rstrip()
        if buf.endswith("\\"):
            buf = buf[:-1] + " "
            continue
        joined.append(buf.strip())
        buf = ""
    out = []
    for line in joined:
        line = re.sub(r"\s+#.*$", "", line)
        words = line.split()
        if words and (words[0] == "csvr" or (words[0] in ("torchrun", "srun", "python") and "csvr" in words)):
            out.append(line)
    return out


def help_examples() -> list[tuple[str, str]]:
    """(where, command) for every example in the epilog of every command and group."""
    found = []
    for path, parser in _parsers(build_parser()):
        epilog = parser.epilog or ""
        m = re.search(r"^examples?:\n(.*)", epilog, re.S | re.M)
        if m:
            found += [(f"csvr {' '.join(path)} --help", c) for c in _command_lines(m.group(1).splitlines())]
    return found


def readme_examples() -> list[tuple[str, str]]:
    """(where, command) for every csvr command line in the code blocks of README.md and docs/*.md."""
    found = []
    for doc in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        text = doc.read_text()
        for m in re.finditer(r"^```(?:bash|sh|shell)?\n(.*?)^```", text, re.S | re.M):
            line_no = text[: m.start()].count("\n") + 2
            found += [(f"{doc.relative_to(REPO)}:{line_no}", c) for c in _command_lines(m.group(1).splitlines())]
    return found


def to_argv(command: str) -> list[str]:
    """The arguments after ``csvr`` (``torchrun ... -m csvr`` / ``srun ... csvr`` included),
    without the ``...`` placeholders."""
    words = shlex.split(command)
    return [w for w in words[words.index("csvr") + 1:] if w != "..."]


EXAMPLES = help_examples() + readme_examples()


def test_the_examples_are_collected():
    """The collector sees the examples the issue named, in help and README alike."""
    helps = [c for _, c in help_examples()]
    readme = [c for w, c in readme_examples() if w.startswith("README.md")]
    assert any(c.startswith("torchrun") and "--config ucf101-r3d" in c for c in helps)
    assert any("--config small-cpu-cvrl" in c for c in helps)
    assert {w for w, _ in help_examples()} >= {"csvr pretrain --help", "csvr finetune --help", "csvr retrieve --help",
                                               "csvr report --help", "csvr export --help"}
    assert any(c.startswith("srun") for c in readme) and any(c.startswith("csvr prepare index") for c in readme)
    assert len(helps) >= 10 and len(readme) >= 25
    assert to_argv("torchrun --nproc_per_node 8 -m csvr pretrain --config x ... a=1") == \
        ["pretrain", "--config", "x", "a=1"]


def test_every_command_shows_an_example_in_its_help():
    """Every command (not the groups, which only list theirs) ends its --help with examples."""
    leaves = {f"csvr {' '.join(path)} --help" for path, p in _parsers(build_parser())
              if path and not any(isinstance(a, argparse._SubParsersAction) for a in p._actions)}
    assert len(leaves) >= 13
    assert sorted(leaves - {w for w, _ in help_examples()}) == []


def parse(argv: list[str]) -> argparse.Namespace:
    """What csvr.cli.main does before running a command: the real parser, overrides anywhere."""
    args, extra = build_parser().parse_known_args(argv)
    assert not extra or (hasattr(args, "overrides") and all("=" in a and not a.startswith("-") for a in extra)), \
        f"unrecognized arguments {extra}"
    return args


@pytest.mark.parametrize("where,command", EXAMPLES, ids=[f"{w}: {c[:60]}" for w, c in EXAMPLES])
def test_every_example_parses_and_resolves_its_config(where, command, capsys):
    argv = to_argv(command)
    args = parse(argv)
    assert getattr(args, "func", None) is not None, f"{where}: {command!r} names no command"
    if hasattr(args, "print_config"):
        # the real config resolution: preset found, every key valid, the method's own model keys
        rc = main(argv + ["--print-config"])
        err = capsys.readouterr().err
        assert rc == 0, f"{where}: {command!r} fails: {err}"
        assert "unknown config key" not in err


def test_method_picks_the_presets_method_version_or_names_it(capsys):
    """The example the issue reported (`--config small-cpu --method cvrl`): the CVRL version of the
    preset, said on stderr; a preset without one is one message naming the presets to use."""
    assert main(["pretrain", "--config", "small-cpu", "--method", "cvrl", "out=runs/cvrl", "--print-config"]) == 0
    out, err = capsys.readouterr()
    assert "method: cvrl\nout: runs/cvrl\n" in out and "proj_layers: 3" in out
    assert "using preset 'small-cpu-cvrl', the cvrl version of 'small-cpu'" in err
    assert main(["pretrain", "--config", "small-cpu", "method=iic", "--print-config"]) == 0  # the override too
    assert "using preset 'small-cpu-iic'" in capsys.readouterr().err
    assert main(["pretrain", "--config", "ucf101-r3d", "--method", "iic", "--print-config"]) == 0
    out, err = capsys.readouterr()
    assert "using preset 'paper/ucf101-r3d-iic'" in err and "intra_negatives: repeat" in out
    assert main(["pretrain", "--config", "tiny-test", "--method", "cvrl", "--print-config"]) == 2
    err = capsys.readouterr().err
    assert "unknown config key" not in err
    assert "--method cvrl with --config tiny-test: that is a csvr config" in err
    assert "use a cvrl preset (paper/ucf101-r3d-cvrl, small-cpu-cvrl)" in err


def test_preset_names_resolve_without_their_folder_or_list_the_close_ones(tmp_path, monkeypatch):
    from csvr.engine import commands

    paper = commands.CONFIG_DIR / "pretrain" / "paper"
    assert commands.resolve_config_path("ucf101-r3d") == paper / "ucf101-r3d.yaml"
    assert commands.resolve_config_path("paper/ucf101-r3d") == paper / "ucf101-r3d.yaml"
    assert commands.resolve_config_path("small-cpu", "finetune") == commands.CONFIG_DIR / "finetune/small-cpu.yaml"
    with pytest.raises(ConfigError, match=r"config not found: 'ucf101-r4d' .*did you mean 'paper/ucf101-r3d'"):
        commands.resolve_config_path("ucf101-r4d")
    with pytest.raises(ConfigError, match=r"did you mean 'paper/kinetics400-r3d' or 'paper/ucf101-r3d'"):
        commands.resolve_config_path("r3d")
    # the same name in two folders is ambiguous: both are named, neither is guessed
    for sub in ("a", "b"):
        (tmp_path / "pretrain" / sub).mkdir(parents=True)
        (tmp_path / "pretrain" / sub / "row.yaml").write_text("method: csvr\n")
    monkeypatch.setattr(commands, "CONFIG_DIR", tmp_path)
    with pytest.raises(ConfigError, match=r"config 'row' is ambiguous: a/row, b/row"):
        commands.resolve_config_path("row")
    assert commands.resolve_config_path("b/row") == tmp_path / "pretrain" / "b" / "row.yaml"


# The CPU-sized examples, run for real on the tiny dataset: where each example's data paths point
# (the commands are otherwise as printed), and a few steps of each stage.
def _tiny_pretrain(argv: list[str]) -> list[str]:
    from csvr.engine.commands import build_config
    from csvr.methods import get_method

    cfg = build_config(parse(argv))
    stages = ", ".join(f"{{name: {s}, max_steps: 1}}" for s in get_method(cfg.method).stages)
    return argv + ["data.workers=0", "train.batch_size=2", "train.threads=1", "train.ckpt_every_steps=1",
                   f"train.stages=[{stages}]"]


def test_cpu_examples_run_on_tiny_data(tiny_synth, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # every relative out= / --out of the examples lands here
    paths = {"data/synth/manifest.jsonl": str(tiny_synth["manifest"]), "data/synth/poses": str(tiny_synth["poses"])}

    def fix(argv):  # the example's data / checkpoint paths -> the tiny ones, as options or key=value
        out = []
        for a in argv:
            key, eq, value = a.rpartition("=")
            out.append(f"{key}={paths.get(value, value)}" if eq and not a.startswith("-") else paths.get(a, a))
        return out

    ran = []
    runnable = [to_argv(c) for _, c in help_examples()
                if c.startswith("csvr pretrain") and re.search(r"--config small-cpu(-\w+)? ", c)]
    assert len(runnable) >= 2  # small-cpu (CSVR) and small-cpu-cvrl
    for argv in runnable:
        argv = fix(argv)
        assert main(_tiny_pretrain(argv)) == 0, capsys.readouterr().err
        ran.append(argv[argv.index("--config") + 1])
    ckpts = sorted((tmp_path / "runs" / "csvr" / "checkpoints").glob("step-*.pt"))
    assert ckpts, "the CSVR example wrote no checkpoint"
    paths["runs/csvr/checkpoints/step-000001000.pt"] = str(ckpts[-1])
    for where, c in help_examples():
        if c.startswith(("csvr retrieve", "csvr export")) and "runs/csvr/checkpoints/" in c:
            argv = fix(to_argv(c))
            if argv[0] == "retrieve":
                argv += ["--clips", "1", "--workers", "0"]
            assert main(argv) == 0, f"{where}: {c}: {capsys.readouterr().err}"
            ran.append(argv[0])
    assert ran == ["small-cpu", "small-cpu-cvrl", "retrieve", "export"]
    assert (tmp_path / "runs" / "csvr" / "retrieval-fi" / "retrieval.json").is_file()
    assert any((tmp_path / "exported").glob("*.onnx"))
