"""Export a pretrained or finetuned encoder: torchvision state dicts and ONNX models.

* :func:`export_model` - what ``csvr export`` writes: the formats below for a
  :class:`~csvr.eval.loading.LoadedModel`, and ``export.json`` describing them
  (:func:`input_description`: how a consumer prepares a clip as evaluation does).
* :func:`torchvision_state_dict_for` - the V-network of an R3D-18 / R(2+1)D-18 (csvr's
  backbones keep torchvision's module names) as a plain ``{name: tensor}`` dict that
  ``torchvision.models.video.r3d_18()`` / ``r2plus1d_18()`` loads with ``strict=True`` when it
  holds ``fc.*`` (from a finetuned head on the pooled backbone), or ``strict=False`` without.
  Other backbones (C3D, S3D) and widths other than 64 have no torchvision counterpart: a
  :class:`ExportError` says so.
* :func:`export_onnx` - an encoder (or a classifier) to ONNX with the TorchScript-based exporter
  (``torch.onnx.export(..., dynamo=False)``; the dynamo exporter needs ``onnxscript``, which csvr
  does not depend on), opset >= 17, a dynamic batch axis, then checked: ``onnx.checker`` and
  onnxruntime against PyTorch on a *fresh* random input of another batch size (so the batch axis
  really is dynamic); the maximum absolute difference must be <= ``atol`` (1e-4) or nothing is
  written. Inputs: ``clip`` ``(B, 3, T, S, S)`` float32 normalised with
  :data:`csvr.data.transforms.MEAN` / ``STD``; for ``fi`` / ``fd`` also ``poses``
  ``(B, T, 18, 2)`` (normalised as :func:`csvr.pose.normalize` does) and ``pose_conf``
  ``(B, T, 18)`` - the exporter drops an input the network does not read (``pose_conf`` unless
  ``model.pose.confidence_input``; ``clip`` for ``fd``), and the list of graph inputs is
  reported. Output: ``features`` ``(B, D)`` or ``logits`` ``(B, C)``.

Nothing is written half-way: :func:`export_onnx` and :func:`torchvision_state_dict_for` return
bytes / dicts; :func:`write_bytes` / :func:`save_state_dict` write atomically.
"""

from __future__ import annotations

import io
import json
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import Tensor, nn

from csvr.data.transforms import MEAN, STD
from csvr.errors import CsvrError
from csvr.eval.loading import LoadedModel, check_classes
from csvr.eval.options import clip_settings
from csvr.models.backbones.r2plus1d import Conv2Plus1D
from csvr.models.backbones.r3d import Conv3DSimple, VideoResNet, torchvision_state_dict
from csvr.models.features import needs_poses
from csvr.utils.io import atomic_write, atomic_write_json

MIN_OPSET = 17
EXPORTER = "torch.onnx.export, TorchScript-based (dynamo=False)"


class ExportError(CsvrError):
    """A model that cannot be exported in the asked format, or an export that fails its check."""


# ----------------------------------------------------------------------------- backbones
def backbone_name(backbone: nn.Module | None, with_width: bool = True) -> str:
    """A readable name of a csvr backbone module (``r3d_18``, ``r2plus1d_18``, ``c3d``, ...)."""
    if backbone is None:
        return "none"
    if isinstance(backbone, VideoResNet):
        base = {Conv3DSimple: "r3d", Conv2Plus1D: "r2plus1d"}.get(backbone.conv_builder, "video_resnet")
        name = f"{base}_18" if backbone.layers_cfg == (2, 2, 2, 2) else f"{base} (layers {list(backbone.layers_cfg)})"
        return name if backbone.width == 64 or not with_width else f"{name}, width {backbone.width}"
    return type(backbone).__name__.lower()


def torchvision_builder(backbone: nn.Module) -> str:
    """The torchvision call whose model loads the exported dict."""
    r2p1 = backbone.conv_builder is Conv2Plus1D
    if backbone.layers_cfg == (2, 2, 2, 2):
        return "torchvision.models.video.r2plus1d_18()" if r2p1 else "torchvision.models.video.r3d_18()"
    conv, stem = ("Conv2Plus1D", "R2Plus1dStem") if r2p1 else ("Conv3DSimple", "BasicStem")
    return (f"torchvision.models.video.resnet.VideoResNet(BasicBlock, [{conv}] * 4, {list(backbone.layers_cfg)}, "
            f"{stem})")


def torchvision_compatible(backbone: nn.Module | None) -> bool:
    """True when torchvision has a model of ``backbone`` (R3D / R(2+1)D at 64 base channels)."""
    return isinstance(backbone, VideoResNet) and backbone.width == 64


def torchvision_state_dict_for(backbone: nn.Module | None, fc: nn.Linear | None = None
                               ) -> tuple["OrderedDict[str, Tensor]", dict]:
    """(state dict for torchvision, info) of an R3D / R(2+1)D V-network (+ optional ``fc``).

    Raises :class:`ExportError` naming the backbone for anything torchvision has no model of.
    """
    if not isinstance(backbone, VideoResNet):
        raise ExportError(f"the torchvision format is for R3D-18 / R(2+1)D-18 backbones; this model's backbone is "
                          f"{backbone_name(backbone)!r}, which torchvision has no model of (use --format onnx)")
    if backbone.width != 64:
        raise ExportError(f"the torchvision format needs 64 base channels (torchvision hard-codes them); this "
                          f"{backbone_name(backbone, with_width=False)} backbone has width {backbone.width} (use "
                          "--format onnx)")
    if fc is not None and fc.in_features != backbone.out_channels:
        raise ExportError(f"the classifier head takes {fc.in_features} features, torchvision's fc takes the "
                          f"{backbone.out_channels} pooled backbone channels")
    sd = torchvision_state_dict(backbone, fc=fc)
    sd = OrderedDict((k, v.detach().cpu().contiguous()) for k, v in sd.items())
    info = {"backbone": backbone_name(backbone), "torchvision_model": torchvision_builder(backbone),
            "has_fc": fc is not None, "num_classes": fc.out_features if fc is not None else None,
            "load_with": "load_state_dict(sd, strict=True)" if fc is not None else
            "load_state_dict(sd, strict=False)  # no fc.* entries",
            "num_tensors": len(sd),
            "num_parameters": int(sum(v.numel() for k, v in sd.items()  # as torchvision counts: no BN buffers
                                      if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))))}
    return sd, info


def state_dict_bytes(sd: Mapping[str, Tensor]) -> bytes:
    """``torch.save`` of a plain dict of tensors (loads with ``weights_only=True``)."""
    buf = io.BytesIO()
    torch.save(OrderedDict(sd), buf)
    return buf.getvalue()


# ----------------------------------------------------------------------------- ONNX
class _ByName(nn.Module):
    """Positional ONNX inputs -> the keyword arguments of ``forward(clip, poses, pose_conf)``."""

    def __init__(self, module: nn.Module, names: list[str]):
        super().__init__()
        self.module = module
        self.names = names

    def forward(self, *args: Tensor) -> Tensor:
        return self.module(**dict(zip(self.names, args)))


def input_names_for(feature: str) -> list[str]:
    """ONNX input names for an encoder feature (before unused ones are dropped by the exporter)."""
    if feature == "fd":
        return ["poses", "pose_conf"]
    if feature == "fi":
        return ["clip", "poses", "pose_conf"]
    return ["clip"]


def example_inputs(feature: str, frames: int, size: int, batch: int = 2, seed: int = 0) -> dict[str, Tensor]:
    """Random inputs of the right shapes: a normalised clip ~ N(0, 1), poses ~ N(0, 1) (the
    normalised pose frame: body-centred, torso-scaled), confidences ~ U(0, 1)."""
    g = torch.Generator().manual_seed(seed)
    shapes = {"clip": (batch, 3, frames, size, size), "poses": (batch, frames, 18, 2), "pose_conf": (batch, frames, 18)}
    out = {}
    for name in input_names_for(feature):
        out[name] = torch.rand(shapes[name], generator=g) if name == "pose_conf" else torch.randn(shapes[name],
                                                                                                   generator=g)
    return out


def export_onnx(module: nn.Module, inputs: Mapping[str, Tensor], output_name: str = "features",
                opset: int = MIN_OPSET, atol: float = 1e-4, check_batch: int = 3,
                metadata: Mapping[str, str] | None = None) -> tuple[bytes, dict]:
    """Export ``module`` (called as ``module(**inputs)``, in eval mode, on CPU) to ONNX bytes and
    check them with onnxruntime on new random inputs of batch ``check_batch``.

    Returns ``(onnx bytes, info)`` with ``max_abs_diff``, the graph's ``inputs`` (names and
    shapes), ``opset`` and ``exporter``. Raises :class:`ExportError` when ``opset`` < 17, the
    checker fails, or the difference exceeds ``atol``.
    """
    import onnx
    import onnxruntime as ort

    if opset < MIN_OPSET:
        raise ExportError(f"--opset must be {MIN_OPSET} or newer, got {opset}")
    names = list(inputs)
    module = module.cpu().eval()
    wrapped = _ByName(module, names).eval()
    args = tuple(inputs[n].cpu().float() for n in names)
    axes = {n: {0: "batch"} for n in names + [output_name]}
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        # the legacy exporter warns that it is legacy, and about Python-level shape checks it
        # traces as constants (the batch axis stays dynamic: checked below on another batch)
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(wrapped, args, buf, dynamo=False, opset_version=opset, input_names=names,
                              output_names=[output_name], dynamic_axes=axes, do_constant_folding=True)
        except Exception as e:  # noqa: BLE001 - any exporter failure is one user-facing message
            raise ExportError(f"ONNX export failed ({e.__class__.__name__}: {str(e)[:300]})") from None
    proto = onnx.load_from_string(buf.getvalue())
    for k, v in (metadata or {}).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = str(k), str(v)
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as e:
        raise ExportError(f"the exported ONNX model does not pass onnx.checker: {str(e)[:300]}") from None
    data = proto.SerializeToString()

    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    graph_inputs = [(i.name, [d if isinstance(d, str) else int(d) for d in i.shape]) for i in sess.get_inputs()]
    g = torch.Generator().manual_seed(1234)
    fresh = {}
    for n in names:
        shape = (check_batch,) + tuple(inputs[n].shape[1:])
        fresh[n] = torch.rand(shape, generator=g) if n == "pose_conf" else torch.randn(shape, generator=g)
    with torch.no_grad():
        ref = wrapped(*(fresh[n] for n in names)).float().numpy()
    used = {n for n, _ in graph_inputs}
    got = sess.run([output_name], {n: fresh[n].numpy() for n in names if n in used})[0]
    if got.shape != ref.shape:
        raise ExportError(f"onnxruntime gives shape {got.shape}, PyTorch {ref.shape} (batch {check_batch})")
    diff = float(np.abs(got.astype(np.float64) - ref.astype(np.float64)).max())
    if not np.isfinite(diff) or diff > atol:
        raise ExportError(f"onnxruntime and PyTorch differ by {diff:.3g} (> {atol:g}) on a random input; the export "
                          "was not written")
    info = {"opset": opset, "exporter": EXPORTER, "inputs": graph_inputs,
            "dropped_inputs": [n for n in names if n not in used],
            "output": [output_name, ["batch", int(ref.shape[1])]], "max_abs_diff": diff, "atol": atol,
            "check": f"onnxruntime {ort.__version__} (CPUExecutionProvider) vs PyTorch {torch.__version__} on random "
                     f"inputs of batch {check_batch} (exported with batch {args[0].shape[0]})",
            "bytes": len(data)}
    return data, info


def write_bytes(path: str | Path, data: bytes) -> Path:
    path = Path(path)
    with atomic_write(path, "wb") as f:
        f.write(data)
    return path


def metadata_for(feature: str, frames: int, size: int, classes: list[str] | None = None, *,
                 mean=None, std=None, stride: int | None = None) -> dict[str, str]:
    """ONNX ``metadata_props``: what a consumer needs to prepare inputs (``mean`` / ``std``:
    the encoder's, default :data:`csvr.data.transforms.MEAN` / ``STD``; ``stride``: frames
    between a clip's frames)."""
    meta = {"csvr.feature": feature, "csvr.clip_frames": str(frames), "csvr.clip_size": str(size),
            "csvr.input_mean": json.dumps(list(MEAN if mean is None else mean)),
            "csvr.input_std": json.dumps(list(STD if std is None else std)),
            "csvr.clip_layout": "B,3,T,H,W float32 RGB in [0,1] then (x - mean) / std"}
    if stride is not None:
        meta["csvr.clip_stride"] = str(stride)
    if classes is not None:
        meta["csvr.classes"] = json.dumps(list(classes))
    return meta


# ----------------------------------------------------------------------------- csvr export
def input_description(model: LoadedModel, clip) -> dict[str, Any]:
    """How a user of the exported files prepares a clip as evaluation does (``export.json``'s
    ``input``): the normalisation the encoder declares, the clip length, the stride between its
    frames, the short side frames are scaled to and the centre crop's size."""
    mean = [float(v) for v in getattr(model.encoder, "mean", MEAN)]
    std = [float(v) for v in getattr(model.encoder, "std", STD)]
    out: dict[str, Any] = {
        "clip": "clip (B, 3, T, S, S) float32: RGB frames scaled to [0, 1], then (x - mean) / std per channel",
        "mean": mean, "std": std, "clip_frames": clip.frames, "frame_stride": clip.stride, "crop_size": clip.size,
        "resize_short_side": clip.decode_short_side,
        "frames": f"T = {clip.frames} frames taken every {clip.stride} frames of the video (a span of "
                  f"{(clip.frames - 1) * clip.stride + 1}); each frame scaled so that its short side is "
                  f"{clip.decode_short_side or 'unchanged'} px, then a centre {clip.size}x{clip.size} crop"}
    if needs_poses(model.feature):
        out["poses"] = ("poses (B, T, 18, 2) float32: COCO-18 joints of the same frames, body-centred and "
                        "torso-scaled as csvr.pose.normalize does; pose_conf (B, T, 18): their confidences in [0, 1]")
    return out


def export_model(model: LoadedModel, out_dir: str | Path, formats: list[str], opset: int = 17,
                 manifest=None, frames: int | None = None, size: int | None = None) -> dict:
    """Export ``model`` into ``out_dir``: ``torchvision`` (``<backbone>_torchvision.pt``) and/or
    ``onnx`` (``encoder-<feature>.onnx``, plus ``classifier.onnx`` for a finetuned model), and
    ``export.json`` describing them. Everything is produced and checked in memory first; files are
    written (atomically) only when every format succeeded."""
    bad = [f for f in formats if f not in ("torchvision", "onnx")]
    if bad or not formats:
        raise CsvrError(f"unknown --format {', '.join(bad) or '(none)'}; valid: torchvision, onnx")
    if manifest is not None:
        check_classes(model, manifest)
    clip = clip_settings(model, frames=frames, size=size)
    files: dict[str, bytes] = {}
    info: dict[str, Any] = {"checkpoint": model.path, "kind": model.kind, "method": model.method,
                            "feature": model.feature, "backbone": backbone_name(model.backbone),
                            "classes": model.classes, "clip_frames": clip.frames, "clip_size": clip.size,
                            "input": input_description(model, clip), "files": {}}
    if "torchvision" in formats:
        fc = None
        note = None
        if model.classifier is not None:
            head = getattr(model.classifier, "head", None)
            if model.feature == "backbone" and isinstance(head, nn.Linear):
                fc = head
            else:
                note = (f"fc not included: the classifier's head sits on feature {model.feature!r}, not on the pooled "
                        "backbone that torchvision's fc reads")
        if model.backbone is None:
            raise ExportError(f"{model.path}: feature {model.feature!r} has no video backbone (pose-only model); the "
                              "torchvision format needs one")
        sd, tv = torchvision_state_dict_for(model.backbone, fc)
        if note:
            tv["note"] = note
        name = backbone_name(model.backbone).split(" ")[0].rstrip(",") + "_torchvision.pt"
        files[name] = state_dict_bytes(sd)
        info["files"][name] = {"format": "torchvision state dict", **tv}
    if "onnx" in formats:
        inputs = example_inputs(model.feature, clip.frames, clip.size)
        mean, std = info["input"]["mean"], info["input"]["std"]
        data, oi = export_onnx(model.encoder, inputs, "features", opset,
                               metadata=metadata_for(model.feature, clip.frames, clip.size, mean=mean, std=std,
                                                     stride=clip.stride))
        name = f"encoder-{model.feature}.onnx"
        files[name] = data
        info["files"][name] = {"format": "onnx", "model": "encoder", **oi}
        if model.classifier is not None:
            data, oi = export_onnx(model.classifier, inputs, "logits", opset,
                                   metadata=metadata_for(model.feature, clip.frames, clip.size, model.classes,
                                                         mean=mean, std=std, stride=clip.stride))
            files["classifier.onnx"] = data
            info["files"]["classifier.onnx"] = {"format": "onnx", "model": "classifier", **oi}
    out = Path(out_dir)
    for name, data in files.items():
        write_bytes(out / name, data)
    atomic_write_json(out / "export.json", info)
    return info


__all__ = ["EXPORTER", "ExportError", "MIN_OPSET", "backbone_name", "example_inputs", "export_model", "export_onnx",
           "input_description", "input_names_for", "metadata_for", "state_dict_bytes", "torchvision_builder",
           "torchvision_state_dict_for", "write_bytes"]
