"""CLI: ``csvr pretrain`` (``csvr finetune`` / ``linear-probe`` are :mod:`csvr.eval.commands`')."""

from __future__ import annotations

import argparse
from pathlib import Path

from csvr.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"


def resolve_config_path(name: str | None, kind: str = "pretrain") -> Path | None:
    """A config path, or a name of a file in the repository's ``configs/`` (``small-cpu`` ->
    ``configs/<kind>/small-cpu.yaml``, else ``configs/small-cpu.yaml``, else any sub-folder)."""
    if name is None:
        return None
    p = Path(name)
    if p.is_file():
        return p
    for cand in (CONFIG_DIR / kind / f"{name}.yaml", CONFIG_DIR / f"{name}.yaml", *CONFIG_DIR.glob(f"*/{name}.yaml")):
        if cand.is_file():
            return cand
    known = sorted(str(x.relative_to(CONFIG_DIR).with_suffix("")) for x in CONFIG_DIR.rglob("*.yaml")) \
        if CONFIG_DIR.is_dir() else []
    raise ConfigError(f"config not found: {name!r} (not a file; known names: {', '.join(known) or 'none'})")


def register(commands, groups) -> None:
    p = commands.add_parser(
        "pretrain", help="self-supervised pretraining (csvr, iic or cvrl) on an indexed dataset",
        description="Pretrain a method on a manifest. Settings come from --config (a YAML file or the name of one "
                    "in configs/) and key=value overrides, e.g. 'train.batch_size=8 data.workers=2'. An unknown "
                    "key is an error that lists the valid keys. Runs are resumable with --resume.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  csvr pretrain --config small-cpu data.manifest=data/synth/manifest.jsonl "
               "data.pose_cache=data/synth/poses out=runs/csvr\n"
               "  torchrun --nproc_per_node 8 -m csvr pretrain --config ucf101-r3d train.devices=8\n"
               "  csvr pretrain --config small-cpu-cvrl data.manifest=data/synth/manifest.jsonl out=runs/cvrl\n")
    p.add_argument("--config", "-c", default=None, help="YAML config file or a name in configs/")
    p.add_argument("--method", default=None, help="override the config's method (csvr, iic, cvrl)")
    p.add_argument("--out", default=None, help="run folder (same as out=...)")
    p.add_argument("--resume", action="store_true", help="continue from the run folder's latest checkpoint")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    p.set_defaults(func=_run)


def build_config(args):
    from csvr.config import load_config
    from csvr.engine.config import PretrainConfig

    from csvr.config import command_line_overrides

    overrides = command_line_overrides(args.overrides)
    if args.method:
        overrides.append(f"method={args.method}")
    if args.out:
        overrides.append(f"out={args.out}")
    return load_config(PretrainConfig, resolve_config_path(args.config), overrides)


def _run(args) -> int:
    from csvr.config import dump_yaml
    from csvr.engine.model import method_config
    from csvr.engine.pretrain import pretrain, print_summary

    cfg = build_config(args)
    method_cls, _ = method_config(cfg)  # fail fast on a bad method name or model key
    if not method_cls.pretext:
        raise ConfigError(f"method {cfg.method!r} is not a pretraining method (use csvr finetune)")
    if args.print_config:
        print(dump_yaml(cfg), end="")
        return 0
    summary = pretrain(cfg, resume=args.resume)
    print_summary(summary)
    return 0
