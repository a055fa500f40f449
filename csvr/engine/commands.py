"""CLI: ``csvr pretrain``."""

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
    register_eval_training(commands)


def build_config(args):
    from csvr.config import load_config
    from csvr.engine.config import PretrainConfig

    overrides = list(args.overrides)
    for o in overrides:
        if "=" not in o:
            raise ConfigError(f"unexpected argument {o!r}: overrides look like key.sub=value")
    if args.method:
        overrides.append(f"method={args.method}")
    if args.out:
        overrides.append(f"out={args.out}")
    return load_config(PretrainConfig, resolve_config_path(args.config), overrides)


def _run(args) -> int:
    from csvr.config import dump_yaml, from_dict
    from csvr.engine.pretrain import pretrain, print_summary
    from csvr.methods import get_method

    cfg = build_config(args)
    method_cls = get_method(cfg.method)
    if not getattr(method_cls, "pretext", True):
        raise ConfigError(f"method {cfg.method!r} is not a pretraining method (use csvr finetune)")
    from_dict(method_cls.config_class, cfg.model, where="model")  # fail fast on a bad model key
    if args.print_config:
        print(dump_yaml(cfg), end="")
        return 0
    summary = pretrain(cfg, resume=args.resume)
    print_summary(summary)
    return 0


def register_eval_training(commands) -> None:
    """``csvr finetune`` and ``csvr linear-probe`` (same options; the latter freezes the encoder)."""
    for name, linear in (("finetune", False), ("linear-probe", True)):
        what = "a linear classifier on frozen features" if linear else "the whole network"
        p = commands.add_parser(
            name, help=f"train {what} on a labelled dataset from a pretraining checkpoint, then evaluate",
            description=f"Train {what} (engine: checkpoints, --resume, DDP) from a pretraining checkpoint, then "
                        "report clip- and video-level top-1, per-class accuracy and the confusion matrix on the "
                        "test split (results.json). Config: --config (YAML or a name in configs/finetune/) plus "
                        "key=value overrides.",
            formatter_class=argparse.RawDescriptionHelpFormatter,
            epilog=f"examples:\n  csvr {name} --config ucf101 --pretrained runs/csvr/checkpoints/step-000010000.pt "
                   "--feature fi data.manifest=data/UCF101/manifest.jsonl data.pose_cache=data/UCF101/poses\n"
                   f"  csvr {name} --config small-cpu --pretrained CKPT --feature scratch  # same net, random init\n"
                   f"  csvr {name} --config small-cpu --pretrained CKPT data.label_fraction=0.1  # 10% of the labels")
        p.add_argument("--config", "-c", default=None, help="YAML config or a name in configs/finetune")
        p.add_argument("--pretrained", default=None, help="pretraining checkpoint (model.pretrained)")
        p.add_argument("--feature", default=None, choices=["fi", "fs", "fd", "backbone", "scratch"],
                       help="feature to build on; scratch = the fs network with random weights (Table I row 1)")
        p.add_argument("--label-fraction", type=float, default=None,
                       help="train on a stratified fraction of the training labels (data.label_fraction)")
        p.add_argument("--out", default=None, help="run folder (out=...)")
        p.add_argument("--resume", action="store_true")
        p.add_argument("--print-config", action="store_true")
        p.add_argument("overrides", nargs="*", metavar="key=value")
        p.set_defaults(func=_run_finetune, linear=linear)


def _run_finetune(args) -> int:
    from csvr.config import dump_yaml, load_config
    from csvr.eval.finetune import FinetuneConfig, print_results, run_finetune

    overrides = list(args.overrides)
    for o in overrides:
        if "=" not in o:
            raise ConfigError(f"unexpected argument {o!r}: overrides look like key.sub=value")
    if args.pretrained:
        overrides.append(f"model.pretrained={args.pretrained}")
    if args.feature == "scratch":
        overrides += ["model.feature=fs", "model.init=scratch"]
    elif args.feature:
        overrides.append(f"model.feature={args.feature}")
    if args.label_fraction is not None:
        overrides.append(f"data.label_fraction={args.label_fraction}")
    if args.out:
        overrides.append(f"out={args.out}")
    cfg = load_config(FinetuneConfig, resolve_config_path(args.config, "finetune"), overrides)
    from csvr.methods.supervised import SupervisedConfig
    from csvr.config import from_dict

    from_dict(SupervisedConfig, cfg.model, where="model")  # fail fast on a bad model key
    if args.print_config:
        print(dump_yaml(cfg), end="")
        return 0
    results = run_finetune(cfg, resume=args.resume, linear=args.linear)
    if "video_top1" in results:
        print_results(results)
    return 0
