"""The whole dataset: groups and split, the job list, parallel generation, resume, split files.

Output layout (UCF101's, with the split files next to the class folders)::

    OUT/classInd.txt                       "1 HoldBat" ... (1-based, alphabetical)
    OUT/trainlist01.txt                    "HoldBat/v_HoldBat_g03_c01.mp4 1"
    OUT/testlist01.txt                     "HoldBat/v_HoldBat_g01_c01.mp4"
    OUT/<Class>/v_<Class>_gXX_cYY.mp4
    OUT/poses/openpose/<Class>/v_<Class>_gXX_cYY_<frame:012d>_keypoints.json
    OUT/README.md                          what every class and group is, the GOP policy, ...
    OUT/synth.json                         parameters + one record per video (written last)

``params`` (in ``synth.json`` and the progress file's header) holds every generation parameter,
``gop`` included when ``--gop`` is given: a folder made with other parameters (another seed,
size, GOP, ...) is never reused or completed; it is an error asking for ``--overwrite`` or
another ``--out``.

Safety: every video is written to a temporary file and renamed; a video counts as finished
once its record is appended to ``OUT/.synth-progress.jsonl``. A killed run is
resumed by running the same command again: finished videos are kept (after checking their
files), the rest are made again (their pose files are simply rewritten). ``synth.json`` and the
split files are written only when every video exists, so a folder with ``synth.json`` is
complete.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from csvr.errors import CsvrError
from csvr.synth.catalogue import (BY_NAME, DEFAULT_SECONDS, DEFAULT_SIZE, DEFAULT_VIDEOS_PER_CLASS, GROUPS, ClassSpec,
                                  select_classes)
from csvr.synth.generator import FPS, POSE_DIR, make_video, video_stem
from csvr.synth.openpose import pose_file_name
from csvr.synth.readme import dataset_readme
from csvr.utils.io import atomic_write_json, atomic_write_text, human_bytes
from csvr.utils.parallel import default_workers, imap_progress

FORMAT = "csvr-synth"
VERSION = 1
PROGRESS = ".synth-progress.jsonl"
MANIFEST = "synth.json"

MAX_GROUPS = 25                 # as UCF101
TEST_GROUP_FRACTION = 7 / 25    # UCF101 split 1: groups 1-7 of 25 are the test set


@dataclass
class Summary:
    """What :func:`generate` did."""

    out: str
    classes: list[str]
    videos: int
    generated: int
    reused: int
    frames: int
    bytes_video: int
    bytes_pose: int
    seconds: float
    skipped: bool = False
    train: int = 0
    test: int = 0
    groups: dict = field(default_factory=dict)

    @property
    def bytes_total(self) -> int:
        return self.bytes_video + self.bytes_pose

    def describe(self) -> str:
        head = "already complete, nothing to do" if self.skipped else (
            f"made {self.generated} videos" + (f" (kept {self.reused} from an earlier run)" if self.reused else ""))
        return (f"{self.out}: {head}; {len(self.classes)} classes, {self.videos} videos "
                f"({self.train} train / {self.test} test), {self.frames} frames, "
                f"{human_bytes(self.bytes_video)} video + {human_bytes(self.bytes_pose)} poses"
                + ("" if self.skipped else f", {self.seconds:.1f} s"))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["bytes_total"] = self.bytes_total
        return d


def group_layout(videos_per_class: int) -> tuple[list[tuple[int, int]], list[int]]:
    """(group, clip) pairs of one class and the test groups.

    ``min(25, max(2, ceil(V / 2)))`` groups (UCF101 has 25 groups of 4-7 clips), clips spread
    evenly over them; the first ``round(0.28 * G)`` groups (at least one) are the test set, as in
    UCF101's split 1.
    """
    V = videos_per_class
    G = min(MAX_GROUPS, max(2, math.ceil(V / 2)), V)
    base, extra = divmod(V, G)
    pairs = [(g, c) for g in range(1, G + 1) for c in range(1, base + (1 if g <= extra else 0) + 1)]
    n_test = max(1, round(TEST_GROUP_FRACTION * G)) if G >= 2 else 0
    return pairs, list(range(1, n_test + 1))


def parse_size(text: str | tuple | list) -> tuple[int, int]:
    """``"160x120"`` -> (160, 120); both even (H.264 yuv420p), 32..1920 x 32..1080."""
    if isinstance(text, (tuple, list)):
        w, h = (int(v) for v in text)
    else:
        parts = str(text).lower().replace("*", "x").split("x")
        if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
            raise CsvrError(f"--size must look like WIDTHxHEIGHT, e.g. 160x120, got {text!r}")
        w, h = int(parts[0]), int(parts[1])
    if w % 2 or h % 2:
        raise CsvrError(f"--size {w}x{h}: H.264 (yuv420p) needs an even width and height, e.g. {w + w % 2}x{h + h % 2}")
    if not (32 <= w <= 1920 and 32 <= h <= 1080):
        raise CsvrError(f"--size {w}x{h}: width must be 32..1920 and height 32..1080")
    return w, h


def _params(classes: list[ClassSpec], videos_per_class: int, seconds: float, size: tuple[int, int],
            seed: int, gop: int | None = None) -> dict:
    p = {"format": FORMAT, "version": VERSION, "classes": [c.name for c in classes],
         "videos_per_class": videos_per_class, "seconds": float(seconds), "size": list(size),
         "seed": int(seed), "fps": FPS}
    if gop is not None:
        # only when set: without --gop the parameters (and synth.json) are those of earlier versions
        p["gop"] = int(gop)
    return p


def parse_gop(gop) -> int | None:
    """``--gop``: None (off: the per-video keyint + scene-cut policy) or a keyframe interval >= 1."""
    if gop is None:
        return None
    try:
        g = int(gop)
    except (TypeError, ValueError):
        raise CsvrError(f"--gop must be a whole number of frames, e.g. 12, got {gop!r}") from None
    if isinstance(gop, float) and g != gop or not 1 <= g <= 1000:
        raise CsvrError(f"--gop {gop}: choose a keyframe interval between 1 and 1000 frames (the paper uses 12)")
    return g


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _read_progress(path: Path) -> tuple[dict | None, dict[str, dict]]:
    header, done = None, {}
    try:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f):
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue  # a line cut short by a kill
                if n == 0:
                    header = rec.get("params")
                elif "rel" in rec:
                    done[rec["rel"]] = rec
    except OSError:
        pass
    return header, done


def _video_complete(out: Path, rec: dict) -> bool:
    p = out / rec["rel"]
    try:
        if p.stat().st_size != rec["bytes"]:
            return False
    except OSError:
        return False
    stem = Path(rec["rel"]).stem
    pdir = out / POSE_DIR / rec["class"]
    return all((pdir / pose_file_name(stem, t)).is_file() for t in range(rec["frames"]))


def _remove_dataset(out: Path, manifest: dict | None, header: dict | None) -> None:
    """Remove what an earlier synth run made here (only paths this generator writes)."""
    names = set()
    for m in (manifest or {}).get("params", {}), header or {}:
        names.update(m.get("classes", []))
    names.update(BY_NAME)
    for n in names:
        if (out / n).is_dir():
            shutil.rmtree(out / n)
    if (out / POSE_DIR).is_dir():
        shutil.rmtree(out / POSE_DIR)
    for f in ("classInd.txt", "trainlist01.txt", "testlist01.txt", "README.md", MANIFEST, PROGRESS):
        if (out / f).exists():
            (out / f).unlink()
    poses = out / "poses"
    if poses.is_dir() and not any(poses.iterdir()):
        poses.rmdir()


def generate(out_dir: str | os.PathLike, classes=None, videos_per_class: int = DEFAULT_VIDEOS_PER_CLASS,
             seconds: float = DEFAULT_SECONDS, size=DEFAULT_SIZE, seed: int = 0, workers: int | None = None,
             overwrite: bool = False, gop: int | None = None) -> Summary:
    """Generate (or complete, or confirm) the synthetic dataset in ``out_dir``; see the package doc.

    ``gop``: None (default) keeps the per-video GOP policy (a keyint drawn from 16..60 plus forced
    I-frames at scene-cut-like events); an integer N encodes every video with a fixed keyframe
    interval N and no forced I-frames, so I-frames are exactly frames 0, N, 2N, ... (the picture
    is the same as without it). The GOP is one of the parameters a finished folder must match.
    """
    t_start = time.perf_counter()
    specs = select_classes(classes)
    W, H = parse_size(size)
    if int(videos_per_class) < 2:
        raise CsvrError("--videos-per-class must be at least 2 (one group for training, one for testing)")
    videos_per_class = int(videos_per_class)
    if not 0.2 <= float(seconds) <= 600:
        raise CsvrError(f"--seconds {seconds}: choose between 0.2 and 600")
    gop = parse_gop(gop)
    workers = default_workers() if workers is None else max(1, int(workers))
    params = _params(specs, videos_per_class, seconds, (W, H), seed, gop)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise CsvrError(f"--out {out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)

    manifest = _read_json(out / MANIFEST)
    header, done = _read_progress(out / PROGRESS)
    ours = manifest is not None and manifest.get("params", {}).get("format") == FORMAT
    if not ours and header is not None and header.get("format") == FORMAT:
        ours = True
    if not ours and any(out.iterdir()):
        raise CsvrError(f"--out {out} is not empty and holds no csvr synthetic dataset; "
                        "choose a new or empty folder")
    if ours and manifest is not None and manifest.get("params") == params and not overwrite:
        missing = [v["rel"] for v in manifest.get("videos", []) if not _video_complete(out, v)]
        if not missing:
            return _summary_from_manifest(out, manifest, skipped=True, seconds=time.perf_counter() - t_start)
        done = {v["rel"]: v for v in manifest["videos"] if v["rel"] not in missing}
        header = params
        (out / MANIFEST).unlink()
        _write_progress_header(out, params, list(done.values()))
    elif ours and (overwrite or (manifest is not None and manifest.get("params") != params)
                   or (header is not None and header != params)):
        if not overwrite:
            old = (manifest or {}).get("params") or header
            raise CsvrError(f"--out {out} holds a synthetic dataset made with other parameters "
                            f"({_diff(old, params)}); pass --overwrite to replace it, or choose another --out")
        _remove_dataset(out, manifest, header)
        done, header = {}, None
    if header is None:
        _write_progress_header(out, params, [])

    pairs, test_groups = group_layout(videos_per_class)
    jobs = []
    reused = 0
    for spec in specs:
        for g, c in pairs:
            rel = f"{spec.name}/{video_stem(spec.name, g, c)}.mp4"
            rec = done.get(rel)
            if rec is not None and _video_complete(out, rec):
                reused += 1
                continue
            jobs.append({"out": str(out), "rel": rel, "class": spec.name, "group": g, "clip": c,
                         "seconds": float(seconds), "size": (W, H), "seed": int(seed), "gop": gop})
    for spec in specs:  # temporaries left by a killed run
        d = out / spec.name
        if d.is_dir():
            for tmp in d.glob(".*.tmp"):
                tmp.unlink()
    errors = []
    with open(out / PROGRESS, "a", encoding="utf-8") as log:
        for job, res in imap_progress(make_video, jobs, workers=workers, desc="synth videos", unit="video"):
            if "error" in res:
                errors.append(res)
                continue
            # flushed, not fsync'ed: a killed process loses nothing once the line is written,
            # and fsync here would flush every worker's pose files with it (seconds per call)
            log.write(json.dumps(res, sort_keys=True) + "\n")
            log.flush()
            done[res["rel"]] = res
    if errors:
        first = errors[0]["error"].strip().splitlines()[-1]
        raise CsvrError(f"{len(errors)} of {len(jobs)} videos failed (first: {errors[0]['rel']}: {first}); "
                        "run the same command again to retry them")
    manifest = _finish(out, params, specs, pairs, test_groups, done)
    return _summary_from_manifest(out, manifest, skipped=False, seconds=time.perf_counter() - t_start,
                                  generated=len(jobs), reused=reused)


def _diff(old: dict | None, new: dict) -> str:
    if not old:
        return "unknown"
    keys = [k for k in new if old.get(k) != new.get(k)] + [k for k in old if k not in new]

    def show(k, v):  # "gop" is absent when --gop is off
        return "off" if k == "gop" and v is None else repr(v)

    return ", ".join(f"{k}: {show(k, old.get(k))} -> {show(k, new.get(k))}" for k in keys) or "same"


def _write_progress_header(out: Path, params: dict, records: list[dict]) -> None:
    lines = [json.dumps({"params": params}, sort_keys=True)] + [json.dumps(r, sort_keys=True) for r in records]
    atomic_write_text(out / PROGRESS, "\n".join(lines) + "\n")


def _finish(out: Path, params: dict, specs: list[ClassSpec], pairs, test_groups, done: dict) -> dict:
    label = {s.name: i + 1 for i, s in enumerate(specs)}
    videos = []
    for spec in specs:
        for g, c in pairs:
            rel = f"{spec.name}/{video_stem(spec.name, g, c)}.mp4"
            rec = dict(done[rel])
            rec["label"] = label[spec.name]
            rec["split"] = "test" if g in test_groups else "train"
            rec["pose_dir"] = f"{POSE_DIR}/{spec.name}"
            videos.append(rec)
    train = [v for v in videos if v["split"] == "train"]
    test = [v for v in videos if v["split"] == "test"]
    atomic_write_text(out / "classInd.txt", "".join(f"{label[s.name]} {s.name}\n" for s in specs))
    atomic_write_text(out / "trainlist01.txt", "".join(f"{v['rel']} {v['label']}\n" for v in train))
    atomic_write_text(out / "testlist01.txt", "".join(f"{v['rel']}\n" for v in test))
    groups = sorted({g for g, _ in pairs})
    manifest = {
        "params": params,
        "classes": [{"label": label[s.name], **s.to_dict()} for s in specs],
        "class_groups": GROUPS,
        "groups": {"all": groups, "test": list(test_groups), "train": [g for g in groups if g not in test_groups]},
        "pose_root": POSE_DIR,
        "pose_format": "openpose-coco18-json",
        "bytes_video": sum(v["bytes"] for v in videos),
        "bytes_pose": sum(v["pose_bytes"] for v in videos),
        "videos": videos,
    }
    atomic_write_text(out / "README.md", dataset_readme(manifest))
    atomic_write_json(out / MANIFEST, manifest, indent=1)
    (out / PROGRESS).unlink(missing_ok=True)
    return manifest


def _summary_from_manifest(out: Path, m: dict, skipped: bool, seconds: float, generated: int = 0,
                           reused: int = 0) -> Summary:
    vids = m["videos"]
    return Summary(
        out=str(out), classes=[c["name"] for c in m["classes"]], videos=len(vids), generated=generated,
        reused=reused if not skipped else len(vids), frames=sum(v["frames"] for v in vids),
        bytes_video=m["bytes_video"], bytes_pose=m["bytes_pose"], seconds=seconds, skipped=skipped,
        train=sum(v["split"] == "train" for v in vids), test=sum(v["split"] == "test" for v in vids),
        groups=m["groups"],
    )


def read_synth_json(root: str | os.PathLike) -> dict:
    """The ``synth.json`` of a finished dataset (raises :class:`CsvrError` when absent)."""
    m = _read_json(Path(root) / MANIFEST)
    if m is None:
        raise CsvrError(f"{root}: no {MANIFEST}; not a finished csvr synthetic dataset")
    return m
