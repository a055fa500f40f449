"""Does the video generating branch do its job? (issue 23) Held-out numbers with intervals.

For each CSVR pretraining checkpoint given (or every checkpoint of a run folder), the video
generators run dense on one deterministic clip of each test video of the checkpoint's split
(``csvr.methods.csvr.VideoDiagnostics``: the clips, the noise and the baselines the run logs in
``epochs.csv``, here on every test video instead of ``train.diagnostics_videos``), and every
comparison is a ratio of mean per-clip errors on the same clips with a paired 95 % bootstrap
interval (``csvr.eval.stats.ratio_ci``):

* ``r / mean``, ``p / mean``: the generator against the training set's mean clip (acceptance:
  <= 0.6 and <= 0.8);
* ``p / copy``: the predictor against repeating the last observed frame (acceptance: < 1);
* ``shuffled / r``, ``shuffled / p``: the same generator fed another clip's f_i against its own
  (acceptance: >= 1.3: the generator uses its condition);
* the finest critic's real-minus-generated logit gap (mean and interval over clips).

Run:  .venv/bin/python benchmarks/video_branch.py runs/demo/pretrain-csvr [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from csvr.engine.checkpoint import list_checkpoints
from csvr.errors import CsvrError
from csvr.eval.stats import bootstrap_ci, ratio_ci
from csvr.eval.video_quality import load_video_branch, video_branch_diagnostics

RATIOS = (("r / mean", "video_r_mse", "video_r_mse_mean"), ("p / mean", "video_p_mse", "video_p_mse_mean"),
          ("p / copy", "video_p_mse", "video_p_mse_copy"), ("shuffled / r", "video_r_mse_shuffled", "video_r_mse"),
          ("shuffled / p", "video_p_mse_shuffled", "video_p_mse"))


def checkpoints(paths: list[str]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = list_checkpoints(p)
            if not found:
                raise CsvrError(f"{p}: no checkpoints/step-*.pt in this folder")
            out += found
        elif p.is_file():
            out.append(p)
        else:
            raise CsvrError(f"{p}: no such checkpoint or run folder")
    return out


def measure(path: Path, videos: int, device: torch.device) -> dict:
    method, ckpt = load_video_branch(path)
    _, _, diag = video_branch_diagnostics(method, ckpt, videos)
    if diag is None:
        raise CsvrError(f"{path}: no usable clips (poses and a future clip) for the diagnostics")
    method.to(device)
    per_clip, overall = diag.measure(method, device)
    row = {"checkpoint": str(path), "step": ckpt.step, "clips": len(diag.samples), "heldout": diag.heldout,
           "branch_steps": method.model.video_branch_steps(), **overall,
           "means": {k: float(v.mean()) for k, v in per_clip.items()}}
    for name, a, b in RATIOS:
        if a in per_clip and b in per_clip:
            row[name] = ratio_ci(per_clip[a], per_clip[b])
    for tag in ("r", "p"):
        gap = per_clip.get(f"video_{tag}_d_gap")
        if gap is not None:
            row[f"{tag} critic gap"] = {"mean": float(gap.mean()), "ci": bootstrap_ci(gap)}
    return row


def table(rows: list[dict]) -> str:
    def ci(d: dict | None, key: str = "ratio") -> str:
        if d is None:
            return "-"
        return f"{d[key]:.2f} [{d['ci'][0]:.2f}, {d['ci'][1]:.2f}]"

    head = ["step", "clips"] + [n for n, _, _ in RATIOS] + ["r gap", "p gap", "adv/L2"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [str(r["step"]), str(r["clips"])] + [ci(r.get(n)) for n, _, _ in RATIOS]
        cells += [ci(r.get("r critic gap"), "mean"), ci(r.get("p critic gap"), "mean"),
                  f"{r.get('video_adv_l2_ratio', float('nan')):.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("paths", nargs="+", help="CSVR pretraining checkpoints or run folders")
    ap.add_argument("--videos", type=int, default=10_000, help="at most this many test videos (default: all)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--json", default=None, help="also write the rows here")
    args = ap.parse_args(argv)
    try:
        rows = [measure(p, args.videos, torch.device(args.device)) for p in checkpoints(args.paths)]
    except CsvrError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
