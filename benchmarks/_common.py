"""Helpers shared by the benchmark scripts (not part of the library). Light on purpose: the
memory benchmarks import it in the worker processes whose resident set they measure (the
training-step helpers are :mod:`_steps`)."""

from __future__ import annotations

from pathlib import Path

from csvr.cli import main as csvr_main


def peak_rss_mib() -> float:
    """This process's peak resident set (VmHWM). Not ``ru_maxrss``: Linux keeps that across
    ``exec``, so a spawned worker would report its parent's peak."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def ensure_builtin_data(root: Path) -> None:
    """The default built-in dataset in ``root``, indexed, with its poses in ``root/poses_cache``
    (each step skipped when already done)."""
    if not (root / "manifest.jsonl").exists():
        assert csvr_main(["data", "synth", "--out", str(root)]) == 0
        assert csvr_main(["prepare", "index", str(root), "--out", str(root / "manifest.jsonl")]) == 0
    if not (root / "poses_cache").exists():
        assert csvr_main(["prepare", "poses", "--manifest", str(root / "manifest.jsonl"), "--out", str(root / "poses_cache"),
                     "--source", "openpose-json", "--json-dir", str(root / "poses" / "openpose")]) == 0
