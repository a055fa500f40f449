"""Draw poses over video frames: a PNG contact sheet or an animated GIF (Pillow).

Drawing conventions: limbs in OpenPose's colours; observed joints as filled dots, interpolated
joints as hollow circles, filled joints (copied from the nearest frame, or never seen and placed
on their parent) and the limbs touching them in grey. A frame where the actor was not found
gets no skeleton at all (its cached pose is only the nearest frame's, copied so that clips have
no holes): the frame is left as it is, with a red "no person" tag in the caption strip of
contact sheets and GIFs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from csvr.data.video import VideoReader
from csvr.pose_format.base import PoseError, PoseRecord
from csvr.pose_format.skeleton import LIMBS, NUM_JOINTS
from csvr.utils.io import atomic_write

# OpenPose's limb colours (RGB), one per limb of LIMBS.
LIMB_COLORS: tuple[tuple[int, int, int], ...] = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0),
    (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255),
    (0, 0, 255), (85, 0, 255), (170, 0, 255), (255, 0, 255), (255, 0, 170),
)
GREY = (150, 150, 150)


def draw_pose(image: Image.Image, pose: np.ndarray, *, interpolated: np.ndarray | None = None,
              filled: np.ndarray | None = None, person_found: bool = True, width: int | None = None) -> Image.Image:
    """Draw one ``(18, 3)`` pose (x, y in [0, 1]) on ``image`` in place; returns it.

    ``person_found=False`` draws nothing (the image is returned unchanged).
    """
    if not person_found:
        return image
    pose = np.asarray(pose, dtype=np.float64)
    W, H = image.size
    lw = width or max(1, round(min(W, H) / 90))
    r = lw + 1
    pts = [(float(x * (W - 1)), float(y * (H - 1))) for x, y in pose[:, :2]]
    interp = np.zeros(NUM_JOINTS, bool) if interpolated is None else np.asarray(interpolated, bool)
    fill = np.zeros(NUM_JOINTS, bool) if filled is None else np.asarray(filled, bool)
    d = ImageDraw.Draw(image)
    for (a, b), color in zip(LIMBS, LIMB_COLORS):
        grey = fill[a] or fill[b]
        d.line([pts[a], pts[b]], fill=GREY if grey else color, width=max(1, lw // 2) if grey else lw)
    for j, (x, y) in enumerate(pts):
        box = [x - r, y - r, x + r, y + r]
        if fill[j]:
            d.ellipse(box, outline=GREY)
        elif interp[j]:
            d.ellipse(box, outline=(255, 255, 255), width=1)
        else:
            d.ellipse(box, fill=(255, 255, 255), outline=(0, 0, 0))
    return image


def _record_of(poses: np.ndarray | PoseRecord) -> PoseRecord:
    if isinstance(poses, PoseRecord):
        return poses
    p = np.asarray(poses, dtype=np.float32)
    T = p.shape[0]
    # a bare array: a frame with no confident joint is a frame without a person
    return PoseRecord(poses=p, valid=p[..., 2] > 0, interpolated=np.zeros((T, NUM_JOINTS), bool),
                      filled=np.zeros((T, NUM_JOINTS), bool), person_found=(p[..., 2] > 0).any(-1),
                      frame_size=(0, 0))


def _frame(img: np.ndarray, rec: PoseRecord, t: int, max_side: int) -> Image.Image:
    im = Image.fromarray(img)
    scale = max_side / max(im.size)
    if scale < 1:
        im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.BILINEAR)
    found = bool(rec.person_found[t]) if len(rec.person_found) > t else False
    draw_pose(im, rec.poses[t], interpolated=rec.interpolated[t], filled=rec.filled[t], person_found=found)
    d = ImageDraw.Draw(im)
    d.text((2, im.height - 12), f"{t}", fill=(255, 255, 0))
    if not found:  # in the caption strip, not over the picture
        d.rectangle([22, im.height - 12, min(im.width - 1, 80), im.height - 1], fill=(200, 0, 0))
        d.text((24, im.height - 12), "no person", fill=(255, 255, 255))
    return im


def contact_sheet(frames: Sequence[np.ndarray], poses: np.ndarray | PoseRecord, indices: Sequence[int],
                  cols: int = 4, max_side: int = 256) -> Image.Image:
    """A grid of ``frames`` (uint8 RGB) with ``poses[indices[k]]`` drawn on ``frames[k]``."""
    rec = _record_of(poses)
    tiles = [_frame(f, rec, t, max_side) for f, t in zip(frames, indices)]
    if not tiles:
        raise PoseError("nothing to draw")
    cols = max(1, min(cols, len(tiles)))
    rows = (len(tiles) + cols - 1) // cols
    tw, th = tiles[0].size
    sheet = Image.new("RGB", (cols * tw, rows * th), (0, 0, 0))
    for k, tile in enumerate(tiles):
        sheet.paste(tile, ((k % cols) * tw, (k // cols) * th))
    return sheet


def render(video_path: str | os.PathLike, poses: np.ndarray | PoseRecord, out: str | os.PathLike, *,
           num_frames: int = 16, cols: int = 4, max_gif_frames: int = 150, max_side: int = 256,
           fps: float | None = None) -> Path:
    """Draw ``poses`` over the frames of ``video_path`` into ``out`` (``.png`` sheet or ``.gif``).

    A PNG shows ``num_frames`` frames spread evenly over the video; a GIF shows every frame (or
    every k-th, to keep at most ``max_gif_frames``) at the video's frame rate.
    """
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in (".png", ".gif"):
        raise PoseError(f"--out must end in .png (contact sheet) or .gif, got {out.name!r}")
    rec = _record_of(poses)
    with VideoReader(video_path) as reader:
        T = min(reader.num_frames, rec.num_frames)
        if T == 0:
            raise PoseError(f"{video_path}: no frames to draw")
        if suffix == ".png":
            idx = sorted(set(np.linspace(0, T - 1, num=min(num_frames, T)).round().astype(int).tolist()))
            frames = reader.read(idx)
            img = contact_sheet(list(frames), rec, idx, cols=cols, max_side=max_side)
            with atomic_write(out, "wb") as f:
                img.save(f, format="PNG")
        else:
            step = max(1, -(-T // max_gif_frames))
            idx = list(range(0, T, step))
            frames = reader.read(idx)
            ims = [_frame(f, rec, t, max_side) for f, t in zip(frames, idx)]
            duration = int(round(1000 * step / (fps or reader.fps or 25.0)))
            with atomic_write(out, "wb") as f:
                ims[0].save(f, format="GIF", save_all=True, append_images=ims[1:], duration=duration, loop=0)
    return out
