"""Model cost: parameters and forward GFLOPs of every backbone next to the paper's Table IX, and
the size / CPU speed of the whole CSVR model.

    .venv/bin/python benchmarks/model_cost.py            # everything (~1 min on 2 CPU cores)
    .venv/bin/python benchmarks/model_cost.py --no-timing

FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` (convolutions and matrix
products; pooling, normalisation and activations are not counted), which counts a multiply-add
as 2 FLOPs. Video papers - Table IX included, and torchvision's ``_ops`` - report multiply-adds
(MACs) as "FLOPs", so every "GFLOPs" column below is ``FlopCounterMode total / 2 / 1e9``.
Shapes are built on the ``meta`` device (no memory, no arithmetic) for the counts.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from csvr.config import from_dict
from csvr.models import CSVRModel, CSVRModelConfig, create_backbone

CLIP = (1, 3, 16, 112, 112)
FRAME = (1, 3, 112, 112)

# Table IX of the paper: backbone -> (GFLOPs, parameters in M) as reported for CSVR.
TABLE_IX = {"c3d": ("40.4 (MoCo: 38.7)", "33.4"), "s3d": ("37.7 (CoCLR 36.0, SpeedNet 36.5)", "9.1"),
            "r2plus1d_18": ("40.4", "15.4")}


def count_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def gmacs(fn, *inputs) -> float:
    counter = FlopCounterMode(display=False)
    with counter:
        fn(*inputs)
    return counter.get_total_flops() / 2 / 1e9


def backbone_row(label: str, name: str, shape, **kwargs) -> tuple[str, float, float]:
    with torch.device("meta"):
        net = create_backbone(name, **kwargs)
        x = torch.empty(shape)
    return label, count_params(net) / 1e6, gmacs(net, x)


class _STConv(torch.nn.Sequential):
    """(2+1)D conv of VCOP-style SSL code: spatial 1xkxk -> BN -> ReLU -> temporal kx1x1, mid from (in, out)."""

    def __init__(self, i: int, o: int, kt: int = 3, ks: int = 3, stride: int = 1) -> None:
        m = (kt * ks * ks * i * o) // (ks * ks * i + kt * o)
        super().__init__(
            torch.nn.Conv3d(i, m, (1, ks, ks), stride=(1, stride, stride),
                            padding=(0, ks // 2, ks // 2), bias=False),
            torch.nn.BatchNorm3d(m), torch.nn.ReLU(),
            torch.nn.Conv3d(m, o, (kt, 1, 1), stride=(stride, 1, 1), padding=(kt // 2, 0, 0), bias=False))


class _VcopBlock(torch.nn.Module):
    def __init__(self, i: int, o: int, down: bool) -> None:
        super().__init__()
        s = 2 if down else 1
        self.conv1, self.bn1 = _STConv(i, o, stride=s), torch.nn.BatchNorm3d(o)
        self.conv2, self.bn2 = _STConv(o, o), torch.nn.BatchNorm3d(o)
        self.short = torch.nn.Sequential(_STConv(i, o, 1, 1, stride=2), torch.nn.BatchNorm3d(o)) if down else None

    def forward(self, x):
        h = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(h + (x if self.short is None else self.short(x)))


def vcop_r2plus1d_10() -> torch.nn.Module:
    """The R(2+1)D-10 of VCOP-style self-supervised code (benchmark-only, for Table IX's 15.4M).

    Differences from torchvision's R(2+1)D: the stem is one (2+1)D 3x7x7 conv 3->64 (mid 83)
    without a second BN stage, each conv's mid channels come from its own (in, out) (torchvision
    uses the block's (in, out) for both convs) and the shortcut is a (2+1)D 1x1x1 pair.
    """
    layers = [_STConv(3, 64, 3, 7, stride=1), torch.nn.BatchNorm3d(64), torch.nn.ReLU()]
    layers[0][0].stride = (1, 2, 2)
    cin = 64
    for s, planes in enumerate((64, 128, 256, 512)):
        layers.append(_VcopBlock(cin, planes, down=s > 0))
        cin = planes
    return torch.nn.Sequential(*layers)


def encoder_cost(backbone: str, **bb_kwargs) -> tuple[float, float]:
    """Parameters (M) and GMACs of the downstream f_i encoder (V-network + g^V + G_p encoder + f_d head + AdaIN)."""
    cfg = from_dict(CSVRModelConfig, {"backbone": {"name": backbone, "options": bb_kwargs},
                                      "use_video": False, "use_context": False, "use_pose": False})
    with torch.device("meta"):
        model = CSVRModel(cfg)
        enc = model.encoder("fi", copy_modules=False)
        clip = torch.empty(CLIP)
        poses = torch.empty(1, 16, 18, 2)
    enc.eval()
    return count_params(enc) / 1e6, gmacs(enc, clip, poses)


def table_backbones() -> str:
    rows = [
        backbone_row("c3d (conv1-conv5b, BN)", "c3d", CLIP),
        backbone_row("r3d_18", "r3d_18", CLIP),
        backbone_row("r2plus1d_18", "r2plus1d_18", CLIP),
        backbone_row("r2plus1d_18, layers (1,1,1,1) = R(2+1)D-10", "r2plus1d_18", CLIP, layers=(1, 1, 1, 1)),
        backbone_row("s3d (S3D-G, gating)", "s3d", CLIP),
        backbone_row("s3d, gating=False (torchvision trunk)", "s3d", CLIP, gating=False),
        backbone_row("r2d_10 (I-network, one 112x112 frame)", "r2d_10", FRAME),
    ]
    paper = {"c3d (conv1-conv5b, BN)": TABLE_IX["c3d"], "r2plus1d_18": TABLE_IX["r2plus1d_18"],
             "s3d (S3D-G, gating)": TABLE_IX["s3d"]}
    out = ["| backbone (1x3x16x112x112) | params (M) | GFLOPs (MACs) | Table IX GFLOPs | Table IX params (M) |",
           "|---|---:|---:|---|---|"]
    for label, p, g in rows:
        tg, tp = paper.get(label, ("", ""))
        out.append(f"| {label} | {p:.2f} | {g:.2f} | {tg} | {tp} |")
    fc6 = 8192 * 4096 + 4096
    fc7 = 4096 * 4096 + 4096
    out.append(f"| c3d + fc6 + fc7 of Tran et al. (analytic) | {(rows[0][1] * 1e6 + fc6 + fc7) / 1e6:.2f} | "
               f"{rows[0][2] + (8192 * 4096 + 4096 * 4096) / 1e9:.2f} | | |")
    with torch.device("meta"):
        vcop = vcop_r2plus1d_10()
        x = torch.empty(CLIP)
    out.append(f"| VCOP-style R(2+1)D-10 (benchmark-only module) | {count_params(vcop) / 1e6:.2f} | "
               f"{gmacs(vcop, x):.2f} | | |")
    s3d_big = backbone_row("s3d (S3D-G) at 1x3x32x224x224", "s3d", (1, 3, 32, 224, 224))
    out.append(f"| {s3d_big[0]} | {s3d_big[1]:.2f} | {s3d_big[2]:.2f} | | |")
    return "\n".join(out)


def table_encoders() -> str:
    out = ["| f_i encoder = V-network + g^V + G_p encoder + f_d head + integration | params (M) | GFLOPs (MACs) |",
           "|---|---:|---:|"]
    for name in ("c3d", "r3d_18", "r2plus1d_18", "s3d"):
        p, g = encoder_cost(name)
        out.append(f"| {name} | {p:.2f} | {g:.2f} |")
    return "\n".join(out)


def model_groups(cfg: CSVRModelConfig, device: str = "meta") -> dict[str, float]:
    with torch.device(device):
        model = CSVRModel(cfg)
    return {k: sum(p.numel() for p in v) / 1e6 for k, v in model.parameter_groups().items()}


SMALL = {
    "feature_dim": 64,
    "backbone": {"name": "r3d_18", "width": 16, "layers": [1, 1, 1, 1]},
    "i_network": {"name": "r2d_10", "width": 16},
    "pose": {"width": 16, "critic_width": 16},
    "video": {"frames": 8, "size": 32, "base_size": 4, "noise_dim": 32, "latent_channels": 64, "gen_width": 16,
              "critic_width": 16},
}


def small_batch(b: int, t: int = 8, h: int = 64, k: int = 2) -> dict:
    g = torch.Generator().manual_seed(0)
    return dict(clip=torch.randn(b, 3, t, h, h, generator=g), future=torch.randn(b, 3, t, h, h, generator=g),
                iframes=torch.randn(b, k, 3, h, h, generator=g), iframe_mask=torch.ones(b, k, dtype=torch.bool),
                poses=torch.randn(b, t, 18, 2, generator=g), future_poses=torch.randn(b, t, 18, 2, generator=g),
                pose_conf=torch.rand(b, t, 18, generator=g), future_pose_conf=torch.rand(b, t, 18, generator=g),
                pose_valid=torch.ones(b, dtype=torch.bool))


def time_small_preset(batch: int = 4, repeats: int = 5) -> str:
    torch.manual_seed(0)
    cfg = from_dict(CSVRModelConfig, SMALL)
    model = CSVRModel(cfg)
    b = small_batch(batch)
    lines = [f"small CPU preset: r3d_18 width 16 layers (1,1,1,1), C=64, pose width 16, video GANs 8x32x32 "
             f"(gen width 16); batch {batch} x 3x8x64x64 clips, 2 I-frames per clip; torch threads "
             f"{torch.get_num_threads()}", ""]
    groups = {k: sum(p.numel() for p in v) / 1e6 for k, v in model.parameter_groups().items()}
    lines.append("params (M) by group: " + ", ".join(f"{k} {v:.3f}" for k, v in groups.items())
                 + f"; total {sum(groups.values()):.3f}")
    lines.append("")
    lines.append(f"| step, batch {batch} | all branches | pose | context | video |")
    lines.append("|---|---:|---:|---:|---:|")
    for mode in ("forward (compute_losses, no_grad)", "forward + backward"):
        wall, cpu = [], []
        for branches in (None, {"pose"}, {"context"}, {"video"}):
            ws, cs = [], []
            for i in range(repeats + 2):
                model.zero_grad(set_to_none=True)
                t0, c0 = time.perf_counter(), time.process_time()
                if mode.startswith("forward +"):
                    model.compute_losses(b, branches=branches).total.backward()
                else:
                    with torch.no_grad():
                        model.compute_losses(b, branches=branches)
                if i >= 2:  # two warm-ups
                    ws.append(time.perf_counter() - t0)
                    cs.append(time.process_time() - c0)
            wall.append(f"{min(ws) * 1000:.0f} / {statistics.median(ws) * 1000:.0f} ms")
            cpu.append(f"{min(cs):.2f} s")
        lines.append(f"| {mode}: wall, best / median of {repeats} | " + " | ".join(wall) + " |")
        lines.append(f"| {mode}: CPU time (all threads), best | " + " | ".join(cpu) + " |")
    lines.append("")
    lines.append(f"(load average while timing: {', '.join(f'{x:.1f}' for x in os.getloadavg())})")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-timing", action="store_true", help="skip the CPU timing of the small preset")
    args = ap.parse_args()
    print("## Backbones at 1x3x16x112x112 (forward, batch 1)\n")
    print(table_backbones())
    print("\n## Downstream f_i encoder (paper-size defaults: C=128, 6-layer G_p encoder of width 64)\n")
    print(table_encoders())
    print("\n## Whole CSVRModel, paper-size defaults (r3d_18, video GANs 16x64x64), params (M) by group\n")
    groups = model_groups(CSVRModelConfig())
    print(", ".join(f"{k} {v:.2f}" for k, v in groups.items()) + f"; total {sum(groups.values()):.2f}")
    if not args.no_timing:
        print("\n## Whole CSVRModel, small CPU preset\n")
        print(time_small_preset())


if __name__ == "__main__":
    main()
