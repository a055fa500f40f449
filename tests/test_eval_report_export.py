"""Export (ONNX round trip with onnxruntime, torchvision state dicts with torchvision's names),
pictures (Fig. 4 grouping, CSVR samples) and `csvr report` on tiny real runs, with the bad-input
errors."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from csvr.cli import main
from csvr.eval.export import ExportError, example_inputs, export_model, export_onnx, torchvision_state_dict_for
from csvr.eval.loading import from_classifier, load_model
from test_eval_retrieval import make_eval_runs, untrained_checkpoint
from test_models_backbones import _torchvision_video_resnet


@pytest.fixture(scope="module")
def runs(tiny_synth, tmp_path_factory):
    return make_eval_runs(tmp_path_factory.getbasetemp() / "eval-runs", tiny_synth)


def _err(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


# ----------------------------------------------------------------------------- ONNX
def _ort(data: bytes, feeds: dict[str, np.ndarray], output: str) -> np.ndarray:
    import onnxruntime as ort

    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    names = {i.name for i in sess.get_inputs()}
    return sess.run([output], {k: v for k, v in feeds.items() if k in names})[0]


@pytest.mark.parametrize("feature", ["fi", "fs", "fd"])
def test_onnx_round_trip_of_a_pretrained_csvr_encoder(runs, feature):
    model = load_model(runs["pretrain_ckpt"], feature)
    inputs = example_inputs(feature, frames=4, size=32)
    data, info = export_onnx(model.encoder, inputs, "features", opset=17)
    assert info["max_abs_diff"] <= 1e-4 and info["opset"] == 17
    want = {"fi": ["clip", "poses"], "fs": ["clip"], "fd": ["poses"]}[feature]  # pose_conf unused: dropped
    assert [n for n, _ in info["inputs"]] == want
    assert all(shape[0] == "batch" for _, shape in info["inputs"])
    # an independent check on another batch size and other values
    fresh = example_inputs(feature, frames=4, size=32, batch=5, seed=7)
    with torch.no_grad():
        ref = model.encoder.eval()(**fresh).numpy()
    got = _ort(data, {k: v.numpy() for k, v in fresh.items()}, "features")
    assert got.shape == (5, 16) and np.abs(got - ref).max() <= 1e-4


def test_export_cli_finetuned_classifier_onnx_on_real_clips(tiny_synth, runs, tmp_path, capsys):
    import onnx

    from csvr.data.datasets import ClipDataset
    from csvr.data.index import load_manifest
    from csvr.eval.options import clip_settings
    from csvr.eval.features import encoder_inputs

    out = tmp_path / "exp"
    rc = main(["export", "--checkpoint", str(runs["finetune_ckpt"]), "--format", "onnx", "--manifest",
               str(tiny_synth["manifest"]), "--out", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0 and "max abs diff" in printed
    info = json.loads((out / "export.json").read_text())
    assert set(info["files"]) == {"encoder-fi.onnx", "classifier.onnx"}
    assert info["kind"] == "finetune" and info["method"] == "csvr" and len(info["classes"]) == 4
    for f in info["files"].values():
        assert f["max_abs_diff"] <= 1e-4 and f["exporter"].endswith("(dynamo=False)")
    proto = onnx.load(out / "classifier.onnx")
    meta = {p.key: p.value for p in proto.metadata_props}
    m = load_manifest(tiny_synth["manifest"])
    assert json.loads(meta["csvr.classes"]) == m.classes and meta["csvr.feature"] == "fi"
    # the ONNX classifier on real eval clips (with poses) gives the PyTorch classifier's logits
    model = load_model(runs["finetune_ckpt"])
    # export.json and the ONNX metadata say how to make the clips below (issue 24 item 6)
    clip = clip_settings(model)
    inp = info["input"]
    assert (inp["clip_frames"], inp["frame_stride"], inp["crop_size"]) == (clip.frames, clip.stride, clip.size)
    assert inp["resize_short_side"] == clip.decode_short_side and "poses" in inp
    assert inp["mean"] == list(model.encoder.mean) and inp["std"] == list(model.encoder.std)
    assert json.loads(meta["csvr.input_mean"]) == inp["mean"] and meta["csvr.clip_stride"] == str(clip.stride)
    ds = ClipDataset(m, m.select("1", "test")[:2], clip, mode="eval", num_clips=3,
                     pose_cache=str(tiny_synth["poses"]))
    batch = {k: torch.stack([ds[i][k] for i in range(2)]) for k in ("clip", "poses")}
    x, poses, conf = encoder_inputs(batch, "cpu")
    with torch.no_grad():
        ref = model.classifier.eval()(x, poses, conf).numpy()
    got = _ort((out / "classifier.onnx").read_bytes(), {"clip": x.numpy(), "poses": poses.numpy(),
                                                        "pose_conf": conf.numpy()}, "logits")
    assert got.shape == (6, 4) and np.abs(got - ref).max() <= 1e-4


# ----------------------------------------------------------------------------- torchvision
def test_torchvision_export_of_r3d_18_has_torchvision_names_and_a_finetuned_fc():
    from csvr.methods.base import BackboneEncoder
    from csvr.eval.classifier import Classifier
    from csvr.models.backbones import create_backbone

    torch.manual_seed(0)
    backbone = create_backbone("r3d_18")
    classifier = Classifier(BackboneEncoder(backbone), num_classes=5, classes=list("abcde"))
    model = from_classifier(classifier, {"kind": "finetune", "config": {}}, "in-memory")
    assert model.backbone is backbone
    sd, info = torchvision_state_dict_for(model.backbone, classifier.head)
    want = _torchvision_video_resnet("r3d") + [("fc.weight", (5, 512)), ("fc.bias", (5,))]
    assert [(k, tuple(v.shape)) for k, v in sd.items()] == want
    assert torch.equal(sd["fc.weight"], classifier.head.weight)
    assert torch.equal(sd["layer4.1.conv2.0.weight"], model.backbone.state_dict()["layer4.1.conv2.0.weight"])
    assert info["torchvision_model"] == "torchvision.models.video.r3d_18()" and info["has_fc"]
    assert info["num_parameters"] == 33_371_472 - 512 * 400 - 400 + 512 * 5 + 5


def test_export_cli_torchvision_r2plus1d_and_bad_backbones(tiny_synth, tmp_path, capsys):
    ckpt = untrained_checkpoint(tmp_path / "iic-r21d", "iic", {"backbone": {"name": "r2plus1d_18", "width": 64,
                                                                            "layers": [1, 1, 1, 1]}}, tiny_synth)
    out = tmp_path / "tv"
    assert main(["export", "--checkpoint", str(ckpt), "--format", "torchvision", "--out", str(out)]) == 0
    assert "load_state_dict(sd, strict=False)" in capsys.readouterr().out
    sd = torch.load(out / "r2plus1d_torchvision.pt", weights_only=True)
    assert isinstance(sd, dict) and all(isinstance(v, torch.Tensor) for v in sd.values())
    assert [(k, tuple(v.shape)) for k, v in sd.items()] == _torchvision_video_resnet("r2plus1d", layers=(1, 1, 1, 1))
    info = json.loads((out / "export.json").read_text())["files"]["r2plus1d_torchvision.pt"]
    assert info["torchvision_model"].startswith("torchvision.models.video.resnet.VideoResNet(BasicBlock, "
                                                "[Conv2Plus1D] * 4, [1, 1, 1, 1], R2Plus1dStem)")
    # it loads back strictly into the same architecture, weights intact
    from csvr.models.backbones import create_backbone

    net = create_backbone("r2plus1d_18", layers=(1, 1, 1, 1))
    net.load_state_dict(sd, strict=True)
    src = load_model(ckpt).backbone.state_dict()
    assert all(torch.equal(src[k], v) for k, v in net.state_dict().items())

    # backbones torchvision has no model of: a clear error, and nothing written (not even the ONNX)
    c3d = untrained_checkpoint(tmp_path / "iic-c3d", "iic", {"backbone": {"name": "c3d", "width": 2}}, tiny_synth)
    bad_out = tmp_path / "bad"
    assert main(["export", "--checkpoint", str(c3d), "--format", "torchvision,onnx", "--out", str(bad_out)]) == 2
    assert "backbone is 'c3d', which torchvision has no model of" in _err(capsys)
    assert not bad_out.exists()
    tiny = untrained_checkpoint(tmp_path / "iic-w4", "iic", {"backbone": {"name": "r3d_18", "width": 4}}, tiny_synth)
    assert main(["export", "--checkpoint", str(tiny), "--format", "torchvision", "--out", str(bad_out)]) == 2
    assert "needs 64 base channels" in _err(capsys) and not bad_out.exists()
    assert main(["export", "--checkpoint", str(tiny), "--format", "onnx", "--opset", "13", "--out",
                 str(bad_out)]) == 2
    assert "--opset must be 17 or newer" in _err(capsys) and not bad_out.exists()
    # the default format: ONNX only where torchvision has no model of the backbone, and it says so
    assert main(["export", "--checkpoint", str(tiny), "--out", str(bad_out)]) == 0
    assert "torchvision format skipped" in capsys.readouterr().out
    assert sorted(json.loads((bad_out / "export.json").read_text())["files"]) == ["encoder-backbone.onnx"]


def test_export_checks_the_dataset_classes_of_a_finetuned_head(tiny_synth, runs, tmp_path):
    from csvr.data.index import load_manifest
    from csvr.errors import CsvrError

    model = load_model(runs["finetune_ckpt"])
    m = load_manifest(tiny_synth["manifest"])
    model.classes = list(reversed(model.classes))
    with pytest.raises(CsvrError, match="same classes in another order"):
        export_model(model, tmp_path / "x", ["onnx"], manifest=m)
    # a classifier on the pose-only feature f_d has no V-network to give torchvision
    from csvr.eval.classifier import Classifier

    fd = from_classifier(Classifier(load_model(runs["pretrain_ckpt"], "fd").encoder, 4, m.classes),
                         {"kind": "finetune"}, "fd-classifier")
    with pytest.raises(ExportError, match="feature 'fd' has no video backbone"):
        export_model(fd, tmp_path / "x", ["onnx", "torchvision"])
    assert not (tmp_path / "x").exists()


# ----------------------------------------------------------------------------- pictures
def test_fig4_grouping_and_class_groups_of_the_builtin_dataset(tiny_synth):
    from csvr.synth.catalogue import BY_NAME
    from csvr.eval.plots import _grouped_order, class_groups_for_manifest, per_class_chart

    groups = class_groups_for_manifest(tiny_synth["manifest"])
    assert groups == {c: BY_NAME[c].group for c in groups} and len(groups) == 4
    order = _grouped_order(["Walk", "StandInKitchen", "X", "WalkOnBeach", "Run"], groups)
    assert order == [("Walk", "motion"), ("Run", "motion"), ("StandInKitchen", "context"),
                     ("WalkOnBeach", "both"), ("X", None)]
    png = per_class_chart({"f_d": {"Walk": 1.0, "Run": 0.5}, "f_s": {"Walk": None, "Run": 0.25}}, groups)
    assert Image.open(io.BytesIO(png)).format == "PNG"


def test_csvr_samples_draws_predicted_poses_and_frames(tiny_synth, runs, tmp_path):
    from csvr.eval.report import csvr_samples

    paths = csvr_samples(runs["pretrain_ckpt"], tiny_synth["manifest"], tiny_synth["poses"], tmp_path / "s")
    assert set(paths) == {"csvr_poses.png", "csvr_poses.gif", "csvr_frames.png"}
    gif = Image.open(paths["csvr_poses.gif"])
    assert gif.n_frames == 4  # one per future frame (clip.future_frames = 4)
    poses = np.asarray(Image.open(paths["csvr_poses.png"]).convert("RGB"))
    # 2 videos x (input, real future, predicted) rows of 96 px tiles + title
    assert poses.shape[0] == 18 + 6 * (96 + 3) and poses.std() > 10
    frames = np.asarray(Image.open(paths["csvr_frames.png"]).convert("RGB"))
    assert frames.shape[0] == 18 + 8 * (64 + 3)  # 2 videos x (real, reconstructed, real future, predicted)


def test_csvr_samples_are_arrays_and_the_pictures_draw_only_them(tiny_synth, runs):
    """Generation (csvr.eval.samples) returns arrays; the pictures (csvr.eval.plots) are drawn from
    those arrays alone: the same arrays give the same bytes, other poses other pixels."""
    import dataclasses

    from csvr.eval.plots import csvr_sample_pictures
    from csvr.eval.samples import generate_csvr_samples

    s = generate_csvr_samples(runs["pretrain_ckpt"], tiny_synth["manifest"], tiny_synth["poses"])
    assert len(s.videos) == 2 and len({v.label for v in s.videos}) == 2  # the first video of two classes
    v = s.videos[0]
    assert v.clip.dtype == np.uint8 and v.clip.shape == (4, 32, 32, 3) and v.future.shape == (4, 32, 32, 3)
    assert v.poses.shape == (4, 18, 3) and v.future_poses.shape == v.predicted_poses.shape == (4, 18, 3)
    assert np.isfinite(v.predicted_poses).all()
    assert np.array_equal(v.predicted_poses[..., 2], v.future_poses[..., 2])  # the real future confidences
    assert list(s.generated) == ["real clip", "reconstructed", "real future", "predicted"]
    assert all(a.dtype == np.uint8 and a.shape == (2, 4, s.video_size, s.video_size, 3) for a in s.generated.values())
    pics = csvr_sample_pictures(s)
    assert pics == csvr_sample_pictures(s)
    moved = dataclasses.replace(s, videos=[dataclasses.replace(v, predicted_poses=v.future_poses)] + s.videos[1:])
    assert csvr_sample_pictures(moved)["csvr_poses.png"] != pics["csvr_poses.png"]
    assert csvr_sample_pictures(dataclasses.replace(s, generated={})).keys() == {"csvr_poses.png", "csvr_poses.gif"}


# ----------------------------------------------------------------------------- report
def test_report_of_tiny_runs_is_self_contained_with_the_numbers(tiny_synth, runs, tmp_path, capsys):
    ret = tmp_path / "retrieval-fi"
    assert main(["retrieve", "--checkpoint", str(runs["pretrain_ckpt"]), "--manifest", str(tiny_synth["manifest"]),
                 "--pose-cache", str(tiny_synth["poses"]), "--workers", "0", "--clips", "2", "--out", str(ret)]) == 0
    out = tmp_path / "report"
    rc = main(["report", str(runs["pretrain"]), str(runs["finetune"]), str(ret), "--out", str(out), "--samples"])
    assert rc == 0, capsys.readouterr().err
    page = (out / "report.html").read_text()
    md = (out / "report.md").read_text()
    results = json.loads((runs["finetune"] / "results.json").read_text())
    recall = json.loads((ret / "retrieval.json").read_text())["recall"]
    for text in (page, md):
        assert f"{100 * results['video_top1']:.1f}" in text and f"{100 * results['clip_top1']:.1f}" in text
        assert f"{100 * recall['1']:.1f}" in text and f"{100 * recall['5']:.1f}" in text
        for c in results["classes"]:
            assert c in text
    # summary rows: finetune with its top-1s, retrieval with its R@k
    row = re.search(r"\| finetune-fi \| finetune \| csvr \| fi \| ([\d.]+) \| ([\d.]+) \|", md)
    assert row and row.groups() == (f"{100 * results['clip_top1']:.1f}", f"{100 * results['video_top1']:.1f}")
    assert re.search(rf"\| retrieval-fi \| retrieval \| csvr \| fi \|  \|  \| {100 * recall['1']:.1f} \|", md)
    # every picture is embedded and decodes; no external asset
    images = re.findall(r'src="data:image/(png|gif);base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) >= 7  # per-class, confusion, 2 curves, retrieval, 3 CSVR samples
    for kind, b64 in images:
        assert Image.open(io.BytesIO(base64.b64decode(b64))).format == kind.upper()
    assert not re.search(r'(src|href)="(?!data:)', page)
    assert "motion" in page and "context" in page  # Fig. 4 groups of the built-in dataset
    linked = re.findall(r"\(images/([^)]+)\)", md)
    assert linked and all((out / "images" / n).is_file() for n in linked)


def test_report_errors_write_nothing(runs, tmp_path, capsys):
    empty = tmp_path / "empty-run"
    empty.mkdir()
    out = tmp_path / "report"
    assert main(["report", str(runs["pretrain"]), str(empty), "--out", str(out)]) == 2
    msg = _err(capsys)
    assert str(empty) in msg and "has no results" in msg
    assert main(["report", str(tmp_path / "missing"), "--out", str(out)]) == 2
    assert "run folder not found" in _err(capsys)
    bad = tmp_path / "bad-run"
    bad.mkdir()
    (bad / "results.json").write_text("{not json")
    assert main(["report", str(bad), "--out", str(out)]) == 2
    assert "results.json: not a readable JSON file" in _err(capsys)
    assert not out.exists()
