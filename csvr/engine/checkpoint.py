"""Checkpoints that survive anything.

A checkpoint is one ``torch.save`` file holding plain containers of tensors, numbers and strings
only, so it loads with ``torch.load(..., weights_only=True)`` (no pickled code runs):

    {"format": "csvr-checkpoint", "version": 1, "kind": "pretrain", "method": "csvr",
     "config": {...}, "stage": "joint", "stage_index": 3, "epoch": 12, "step_in_epoch": 40,
     "global_step": 5040, "stage_step": 1320, "model": state_dict, "optimizers": ...,
     "scaler": ..., "rng": {...}, "world_size": 1, "input": {"mean": [...], "std": [...]}}

``kind`` is ``"pretrain"`` (a self-supervised method; ``config`` is its ``PretrainConfig``) or
``"finetune"`` / ``"linear_probe"`` (a classifier job of :mod:`csvr.eval.finetune`; ``config.model``
names the encoder's architecture, ``arch_method`` + ``arch``, and its ``feature``; the encoder's
weights are under ``classifier.encoder.``, the linear layer's under ``classifier.head.``).
``input`` (a file written before it existed means the data layer's :data:`csvr.data.transforms.MEAN` /
``STD``) is the clip normalisation the model was trained with. :class:`Checkpoint` is the typed
view every command reads; :mod:`csvr.engine.model` turns one into a method or an encoder.

Files are ``<run>/checkpoints/step-000005040.pt``, written through a temporary file and renamed
(atomic), then older ones beyond the last ``keep_last`` are deleted. :func:`latest_checkpoint`
returns the newest file that actually loads, so even a file damaged outside csvr's control
(disk full, a copy cut short) falls back to the previous one.
"""

from __future__ import annotations

import contextlib
import logging
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Collection, Mapping

import numpy as np
import torch

from csvr.data.transforms import MEAN, STD
from csvr.errors import CsvrError
from csvr.utils.io import atomic_save_torch

log = logging.getLogger(__name__)

FORMAT = "csvr-checkpoint"
VERSION = 1
PRETRAIN_KIND = "pretrain"
CLASSIFIER_KINDS = ("finetune", "linear_probe")
#: where a classifier checkpoint keeps its encoder's and its linear layer's weights
ENCODER_PREFIX = "classifier.encoder."
HEAD_PREFIX = "classifier.head."
_NAME = re.compile(r"^step-(\d+)\.pt$")


def rng_state() -> dict[str, Any]:
    """Every RNG's state as tensors and lists (weights_only-loadable)."""
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"name": np_state[0], "keys": torch.from_numpy(np_state[1].astype(np.int64)),
                  "pos": int(np_state[2]), "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
        "python": _py_state_to_lists(random.getstate()),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _py_state_to_lists(s):
    return [s[0], list(s[1]), s[2]]


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"].cpu())
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p[0], tuple(p[1]), p[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([t.cpu() for t in state["cuda"]])


def checkpoint_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / "checkpoints"


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    d = checkpoint_dir(run_dir)
    if not d.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in d.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def save_checkpoint(state: dict[str, Any], run_dir: str | Path, step: int, keep_last: int,
                    keep_steps: Collection[int] = ()) -> Path:
    """Write ``state`` as the checkpoint of ``step``, then delete all but the last ``keep_last``
    checkpoints, except those of ``keep_steps``."""
    path = checkpoint_dir(run_dir) / f"step-{step:09d}.pt"
    state = {"format": FORMAT, "version": VERSION, **state}
    atomic_save_torch(state, path)
    keep = {int(k) for k in keep_steps}
    rotating = [p for p in list_checkpoints(run_dir) if int(_NAME.match(p.name).group(1)) not in keep]
    for old in rotating[:-keep_last]:
        if old != path:
            old.unlink(missing_ok=True)
    return path


def resolve_checkpoint(path: str | Path) -> Path:
    """``path`` itself, or for a run folder (or its ``checkpoints/`` folder) its latest checkpoint,
    logged so the user sees which file was taken."""
    path = Path(path)
    if path.is_dir():
        run = path.parent if path.name == "checkpoints" and not (path / "checkpoints").is_dir() else path
        found = list_checkpoints(run)
        if not found:
            raise CsvrError(f"{path} is a folder without checkpoints (expected a run folder with "
                            "checkpoints/step-*.pt, or a checkpoint file)")
        log.info("csvr: %s is a run folder: using its latest checkpoint, %s", path, found[-1])
        return found[-1]
    return path


#: what PyTorch says about a file that ends early (a write or a copy that did not finish, a full disk)
_CUT_SHORT = ("failed reading zip archive", "unexpected EOF", "unpack requires a buffer", "Ran out of input")


def _first_sentence(text: str, limit: int = 300) -> str:
    """The first sentence of an exception's text, whole: PyTorch appends paragraphs of advice
    (some of it unsafe) and a C++ location to its messages; neither helps a csvr user. A sentence
    longer than ``limit`` (never one of PyTorch's) ends at a word with `` ...``."""
    text = re.sub(r"^\[enforce fail at [^\]]*\]\s*\.?\s*", "", text.strip())
    first = re.split(r"\.\s", text.splitlines()[0].strip() if text else "", maxsplit=1)[0].strip().rstrip(".")
    if len(first) > limit:
        first = first[:limit].rsplit(" ", 1)[0] + " ..."
    return first


def _unreadable_reason(e: Exception) -> str:
    """Why ``torch.load(weights_only=True)`` refused a file that is not a damaged checkpoint (see
    :func:`_unreadable_message`), in whole sentences and without PyTorch's advice to re-run with
    ``weights_only=False`` (which would run whatever code the file holds)."""
    text = str(e)
    if "WeightsUnpickler error:" in text:
        detail = _first_sentence(text.split("WeightsUnpickler error:", 1)[1])
        if "Unsupported global" in detail or "GLOBAL" in detail:
            detail = detail.split(" was not")[0]  # drop PyTorch's advice on allowing it
            return (f"it holds Python objects other than tensors and plain values ({detail}), which csvr "
                    "never loads")
        return f"not a PyTorch file ({detail})"
    lines = [ln for ln in text.splitlines() if ln.strip() and "weights_only" not in ln]
    detail = _first_sentence(lines[0]) if lines else ""
    return f"not a PyTorch checkpoint ({e.__class__.__name__}{': ' + detail if detail else ''})"


def _unreadable_message(path: Path, e: Exception) -> str:
    """The one line for a checkpoint file ``torch.load`` refused: empty, cut short (a write or a
    copy that did not finish: what to do about it), or not a PyTorch checkpoint at all."""
    text = str(e)
    advice = ("a write or a copy of it did not finish, or the disk was full; use an earlier checkpoint of the run "
              "(its checkpoints/ folder), or copy the file again")
    with contextlib.suppress(OSError):
        if path.stat().st_size == 0:
            return f"{path} is empty (0 bytes): {advice}"
    if isinstance(e, EOFError) or any(s in text for s in _CUT_SHORT):
        return f"{path} is cut short or damaged (PyTorch: {_first_sentence(text) or e.__class__.__name__}): {advice}"
    return f"{path} is not a csvr checkpoint: {_unreadable_reason(e)}"


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a csvr checkpoint safely (``weights_only=True``) and check its format; a run folder
    stands for its latest checkpoint (:func:`resolve_checkpoint`)."""
    path = resolve_checkpoint(path)
    if not path.is_file():
        raise CsvrError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the same user-facing problem
        raise CsvrError(_unreadable_message(path, e)) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CsvrError(f"{path} is not a csvr checkpoint (it loads as {type(state).__name__}, without the csvr "
                        "format tag; csvr reads the checkpoints/step-*.pt files of its own runs)")
    if int(state.get("version", 0)) > VERSION:
        raise CsvrError(f"{path} was written by a newer csvr (checkpoint version {state['version']})")
    return state


def latest_checkpoint(run_dir: str | Path) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint of a run that loads (damaged newer files are skipped with a warning)."""
    for path in reversed(list_checkpoints(run_dir)):
        try:
            return path, load_checkpoint(path)
        except CsvrError as e:
            log.warning("csvr: skipping unloadable checkpoint %s (%s)", path, e)
    return None


@dataclass
class Checkpoint:
    """The typed view of a checkpoint file (see the module docstring for the layout).

    ``state`` is the trained module's state dict; ``raw`` the whole file (the engine's resume
    reads optimisers, RNG and position from it); ``mean``/``std`` the clip normalisation.
    """

    path: Path
    kind: str
    method: str
    config: dict[str, Any]
    state: dict[str, Any]
    step: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    @classmethod
    def load(cls, path: str | Path, map_location: str | torch.device = "cpu") -> "Checkpoint":
        """Read and check a checkpoint file (:func:`load_checkpoint`; a run folder stands for its
        latest checkpoint)."""
        path = resolve_checkpoint(path)
        return cls.from_state(load_checkpoint(path, map_location), path)

    @classmethod
    def from_state(cls, state: dict[str, Any], path: str | Path) -> "Checkpoint":
        missing = [k for k in ("kind", "config", "model") if k not in state]
        if missing:
            raise CsvrError(f"{path} lacks {', '.join(missing)}: it was not written by a csvr training job (csvr "
                            "pretrain / finetune / linear-probe); train it again with this csvr")
        expected = (("kind", str), ("config", dict), ("model", dict))
        odd = [f"{k!r} is of type {type(state[k]).__name__}" for k, tp in expected if not isinstance(state[k], tp)]
        if not odd and not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state["model"].items()):
            odd.append("'model' is not a state dict of tensors")
        if odd:
            raise CsvrError(f"{path} is not a csvr checkpoint: unexpected structure ({'; '.join(odd)})")
        config = dict(state.get("config") or {})
        norm = state.get("input") or {}
        return cls(path=Path(path), kind=str(state["kind"]), method=str(state.get("method") or config.get("method")),
                   config=config, state=state["model"], step=int(state.get("global_step", 0)),
                   mean=tuple(float(v) for v in norm.get("mean", MEAN)),
                   std=tuple(float(v) for v in norm.get("std", STD)), raw=state)

    @property
    def is_classifier(self) -> bool:
        return self.kind in CLASSIFIER_KINDS

    def require(self, *kinds: str, what: str) -> "Checkpoint":
        """This checkpoint when its kind is one of ``kinds``; else ``{path} is a 'x' checkpoint, not {what}``."""
        if self.kind not in kinds:
            raise CsvrError(f"{self.path} is a {self.kind!r} checkpoint, not {what}")
        return self

    @property
    def architecture(self) -> tuple[str, dict[str, Any]]:
        """(method name, its ``model:`` config) that rebuilds the network: the method itself for a
        pretraining checkpoint, the pretraining method the classifier's encoder came from for a
        classifier one."""
        model = dict(self.config.get("model") or {})
        if self.is_classifier:
            return str(model.get("arch_method", "csvr")), dict(model.get("arch") or {})
        return self.method, model

    @property
    def feature(self) -> str | None:
        """The encoder feature a classifier checkpoint was trained on (None for pretraining)."""
        if not self.is_classifier:
            return None
        return str((self.config.get("model") or {}).get("feature", "fi"))

    def sub_state(self, prefix: str) -> dict[str, Any]:
        """The entries of ``state`` under ``prefix``, with the prefix removed."""
        return {k[len(prefix):]: v for k, v in self.state.items() if k.startswith(prefix)}


def weight_differences(own: Mapping[str, Any], given: Mapping[str, Any]) -> list[str]:
    """What differs between a module's state dict ``own`` and checkpoint weights ``given``: one line
    per differing entry, ``name (checkpoint shape) vs (model shape)``, ``name: only in the
    checkpoint`` or ``name: not in the checkpoint``."""
    out = []
    for k, v in own.items():
        if k not in given:
            out.append(f"{k}: not in the checkpoint")
        elif tuple(given[k].shape) != tuple(v.shape):
            out.append(f"{k} {tuple(given[k].shape)} in the checkpoint vs {tuple(v.shape)} in the model")
    out += [f"{k}: only in the checkpoint" for k in given if k not in own]
    return out


def load_weights(module: torch.nn.Module, state: Mapping[str, Any], source: str | Path, what: str = "the model",
                 hint: str = "", show: int = 4) -> None:
    """``module.load_state_dict(state)`` (strict), or one :class:`CsvrError` instead of PyTorch's
    ``size mismatch`` traceback (one line per tensor): the count of differing entries, the first
    ``show`` of them with their shapes, and ``hint`` (e.g. the config keys that differ)."""
    diff = weight_differences(module.state_dict(), state)
    if diff:
        more = f"; and {len(diff) - show} more" if len(diff) > show else ""
        raise CsvrError(f"{source} does not fit {what}: {len(diff)} parameter(s) differ ({'; '.join(diff[:show])}{more})"
                        + (f"; {hint}" if hint else ""))
    module.load_state_dict(state)

