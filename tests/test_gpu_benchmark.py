"""benchmarks/gpu.py --smoke runs on the CPU and prints its table (issue 15): CI keeps the GPU
benchmark working although CI has no GPU."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _load():
    spec = importlib.util.spec_from_file_location("gpu_bench", ROOT / "benchmarks" / "gpu.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_gpu_benchmark_smoke(tmp_path, capsys):
    bench = _load()
    result = bench.main(["--smoke", "--out", str(tmp_path / "out"), "--workers", "0", "--steps", "1"])
    printed = capsys.readouterr().out
    assert "| csvr | joint | 32 |" in printed and "| cvrl | main | 32 |" in printed and "| iic | main | 32 |" in printed
    saved = json.loads((tmp_path / "out" / "gpu.json").read_text())
    assert saved == json.loads(json.dumps(result))
    assert [r["method"] for r in saved["steps"]] == ["csvr", "cvrl", "iic"]
    for r in saved["steps"] + saved["loader"]:
        assert r["samples_per_s"] > 0
    # the CSVR step is the joint stage (all branches) on 4-sample batches
    assert saved["batch"] == 4 and saved["steps"][0]["stage"] == "joint"
