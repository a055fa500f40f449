"""The Python API of issue 14, item 10: dataset samples -> the model's batch -> losses, and the two
snippets of docs/python-api.md, executed verbatim on a tiny dataset and a tiny checkpoint."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

from csvr.config import load_config
from csvr.data.datasets import PretrainDataset
from csvr.data.index import load_manifest
from csvr.data.transforms import MEAN, STD
from csvr.engine.commands import resolve_config_path
from csvr.engine.config import PretrainConfig
from csvr.engine.model import build_method
from csvr.models.csvr_model import CSVRBatch

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def samples(tiny_synth):
    cfg = load_config(PretrainConfig, resolve_config_path("tiny-test"))
    manifest = load_manifest(tiny_synth["manifest"])
    ds = PretrainDataset(manifest, manifest.select("1", "train"), cfg.data.clip, seed=0,
                         pose_cache=str(tiny_synth["poses"]))
    return cfg, [ds[i] for i in range(3)]


def test_from_samples_is_the_engines_conversion_computed_independently(samples):
    """uint8 (T, H, W, 3) -> (x / 255 - mean) / std, channels first; poses split; bookkeeping ignored."""
    _, items = samples
    batch = default_collate(items)
    assert {"frame_indices", "label", "iframe_count", "poses_raw"} <= set(batch)
    b = CSVRBatch.from_samples(batch)
    clip = np.stack([s["clip"].numpy() for s in items]).astype(np.float64)  # (B, T, H, W, 3)
    want = ((clip / 255.0 - np.array(MEAN)) / np.array(STD)).transpose(0, 4, 1, 2, 3)
    assert b.clip.dtype == torch.float32 and tuple(b.clip.shape) == want.shape
    np.testing.assert_allclose(b.clip.numpy(), want, atol=1e-5)
    ifr = np.stack([s["iframes"].numpy() for s in items]).astype(np.float64)  # (B, K, S, S, 3)
    want_i = ((ifr / 255.0 - np.array(MEAN)) / np.array(STD)).transpose(0, 1, 4, 2, 3)
    np.testing.assert_allclose(b.iframes.numpy(), want_i, atol=1e-5)
    poses = np.stack([s["poses"].numpy() for s in items])
    np.testing.assert_array_equal(b.poses.numpy(), poses[..., :2])
    np.testing.assert_array_equal(b.pose_conf.numpy(), poses[..., 2])
    assert b.pose_valid.tolist() == [bool(s["pose_valid"]) for s in items]
    # a plain list of samples is collated first: the same batch
    assert torch.equal(CSVRBatch.from_samples(items).clip, b.clip)


def test_compute_losses_takes_a_default_collated_dataset_batch(samples):
    """It used to fail with ``unknown batch key(s) ['frame_indices', ...]``."""
    cfg, items = samples
    torch.manual_seed(0)
    model = build_method(cfg).model
    batch = default_collate(items)
    got = {}
    # a training-mode call advances the video branch's state (its step count: adversarial ramp,
    # lazy R1; the training mean clip), so every call starts from the same state
    start = {k: v.clone() for k, v in model.state_dict().items()}
    for name, given in (("collated", batch), ("list", items), ("converted", CSVRBatch.from_samples(batch))):
        model.load_state_dict(start)
        torch.manual_seed(1)
        out = model.compute_losses(given)
        got[name] = {k: float(v) for k, v in out.terms.items()}
    assert got["collated"] == got["list"] == got["converted"]
    assert {"pose", "context", "video", "total"} <= set(got["collated"])
    assert all(np.isfinite(v) for v in got["collated"].values())
    # a model batch keeps its strict key check (a typo is not silently ignored)
    with pytest.raises(KeyError, match="clips"):
        model.compute_losses({"clip": CSVRBatch.from_samples(batch).clip, "clips": 1})


def _snippets() -> list[str]:
    text = (REPO / "docs" / "python-api.md").read_text()
    return re.findall(r"^```python\n(.*?)^```", text, re.S | re.M)


def test_the_python_api_doc_is_linked_and_its_snippets_run_verbatim(tiny_synth, tmp_path, monkeypatch, capsys):
    """Lay out what `make demo` leaves in runs/demo (manifest, pose cache, a CSVR checkpoint) from
    the tiny dataset, put a video beside it as my_video.mp4, and exec each snippet as written."""
    from csvr.cli import main

    assert "docs/python-api.md" in (REPO / "README.md").read_text()
    snippets = _snippets()
    assert len(snippets) == 2
    monkeypatch.chdir(tmp_path)
    demo = tmp_path / "runs" / "demo"
    demo.mkdir(parents=True)
    lines = Path(tiny_synth["manifest"]).read_text().splitlines()
    header = json.loads(lines[0])
    header["root"] = str(Path(tiny_synth["root"]).resolve())  # the copy reads the same videos
    (demo / "manifest.jsonl").write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    (demo / "poses").symlink_to(Path(tiny_synth["poses"]).resolve(), target_is_directory=True)
    first = json.loads(lines[1])
    shutil.copy(Path(header["root"]) / first["path"], tmp_path / "my_video.mp4")
    # a CSVR checkpoint in runs/demo/pretrain-csvr/checkpoints (the tiny preset: snippet (b) reads
    # the clip settings from the checkpoint, whatever its preset)
    assert main(["pretrain", "--config", "tiny-test", "--out", str(demo / "pretrain-csvr"), "data.workers=0",
                 f"data.manifest={demo / 'manifest.jsonl'}", f"data.pose_cache={demo / 'poses'}",
                 "train.batch_size=2", "train.threads=1", "train.ckpt_every_steps=1",
                 "train.stages=[{name: context, max_steps: 1}]"]) == 0
    capsys.readouterr()

    ns_a: dict = {}
    exec(compile(snippets[0], "docs/python-api.md (a)", "exec"), ns_a)
    out = capsys.readouterr().out
    assert "(4, 3, 8, 64, 64)" in out  # the demo preset's 8 x 64 x 64 clips, channels first
    assert torch.isfinite(ns_a["out"].total) and torch.isfinite(ns_a["step"].total)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in ns_a["model"].v_network.parameters())

    ns_b: dict = {}
    exec(compile(snippets[1], "docs/python-api.md (b)", "exec"), ns_b)
    out = capsys.readouterr().out
    enc = ns_b["encoder"]
    assert out.strip().endswith(f"fs {enc.out_dim} (5, {enc.out_dim})")
    assert float(ns_b["feature"].norm()) == pytest.approx(1.0, abs=1e-5)
    # the same feature from the encoder by hand: clip 0 of the dataset, normalised as documented
    x = ns_b["dataset"][0]["clip"][0].float().div(255).permute(3, 0, 1, 2)[None]
    x = (x - torch.tensor(MEAN).view(1, 3, 1, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(enc(x)[0], ns_b["per_clip"][0], atol=1e-5, rtol=1e-5)
