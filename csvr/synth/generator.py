"""One video: plan it from its seeds, render it frame by frame, encode it, write its poses.

Randomness comes from two generators so that a *group* plays UCF101's actor/scene role:

* the group generator (seed, group) fixes the actor (proportions, skin, hair, clothes), their
  height, the group's generic scene kind and the look of every scene kind, whatever the class;
* the video generator (seed, class, group, clip) draws everything else: the motion's tempo,
  amplitude and phase, facing side, size and position in the frame, camera path and jitter,
  scene-cut events, keyframe interval, distractors, lighting, noise and the held object's look
  (with ``--gop`` the keyframe interval is still drawn, then replaced, so nothing else changes).

Both are NumPy ``Generator``\\ s seeded with explicit integer lists (class names enter through
CRC-32), so a seed gives the same dataset on every machine and with any number of workers.
"""

from __future__ import annotations

import math
import os
import traceback
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from csvr.synth import scenes as scn
from csvr.synth.catalogue import BY_NAME, ClassSpec
from csvr.synth.encode import H264Writer, expected_iframes
from csvr.synth.motions import make_motion, smooth_noise
from csvr.synth.openpose import write_openpose_sequence
from csvr.synth.render import Canvas, draw_figure, random_held
from csvr.synth.skeleton import Body, forward_kinematics, keypoint_confidence, random_body, to_screen

FPS = 25
POSE_DIR = "poses/openpose"


def video_stem(cls: str, group: int, clip: int) -> str:
    """UCF101 naming: ``v_<Class>_g<group:02d>_c<clip:02d>``."""
    return f"v_{cls}_g{group:02d}_c{clip:02d}"


@dataclass
class GroupLook:
    body: Body
    height: float
    generic: str
    styles: dict


def group_look(seed: int, group: int) -> GroupLook:
    """The actor and scene styles of a group (independent of the class and the clip)."""
    rng = np.random.default_rng([seed, 1, group])
    body = random_body(rng)
    height = float(rng.uniform(0.95, 1.05))
    generic = scn.GENERIC_SCENES[(group - 1 + seed) % len(scn.GENERIC_SCENES)]
    styles = {k: scn.scene_style(k, rng) for k in scn.GENERIC_SCENES + scn.CONTEXT_SCENES}
    return GroupLook(body, height, generic, styles)


def video_rng(seed: int, cls: str, group: int, clip: int) -> np.random.Generator:
    return np.random.default_rng([seed, 2, zlib.crc32(cls.encode()), group, clip])


@dataclass
class Plan:
    T: int
    width: int
    height: int
    spec: ClassSpec
    look: GroupLook
    scene: str
    scale: float
    ground_y: float
    P: np.ndarray          # (T, N, 3) body points in bh
    root_px: np.ndarray    # (T,) body x in world pixels
    cam_x: np.ndarray      # (T,) world x of the frame's left edge
    cam_y: np.ndarray
    gain: np.ndarray       # (T,) lighting
    keyint: int
    events: list
    distractors: list
    held: dict | None
    noise: float
    info: dict
    rng: np.random.Generator


def plan_video(spec: ClassSpec, group: int, clip: int, seconds: float, width: int, height: int,
               seed: int, gop: int | None = None) -> Plan:
    """Everything about one video, drawn from its seeds.

    ``gop`` (``--gop``): a fixed keyframe interval; the per-video ``keyint`` is still drawn (so
    the random stream, and with it everything else about the video, is the same as without it)
    and then replaced by ``gop``.
    """
    rng = video_rng(seed, spec.name, group, clip)
    look = group_look(seed, group)
    T = max(2, int(round(seconds * FPS)))
    W, H = width, height
    body = look.body
    motion = make_motion(spec.motion, T, FPS, rng, body)
    scale = H * float(rng.uniform(0.56, 0.70)) * look.height          # pixels per body height
    ground_y = H * float(rng.uniform(0.86, 0.93))
    P = forward_kinematics(body, motion.angles, motion.yaw, motion.lift)
    rx = motion.root_x * scale                                        # px, starts at 0
    travel = float(rx[-1] - rx[0])
    if motion.travels and abs(travel) > 1e-6:
        drift_target = float(rng.uniform(0.12, 0.32)) * W
        follow = float(np.clip(1.0 - drift_target / abs(travel), 0.0, 1.0))
    else:
        follow = 0.0
    drift = (1.0 - follow) * rx                                        # screen motion of the body
    lo, hi = 0.27 * W - min(0.0, drift.min()), 0.73 * W - max(0.0, drift.max())
    sx0 = float(rng.uniform(lo, hi)) if hi > lo else 0.5 * W - 0.5 * (drift.min() + drift.max())
    cam0 = float(rng.uniform(-2.0, 2.0)) * H                         # which part of the group's scene
    # handheld jitter + a slow drift of the camera
    t = np.arange(T) / FPS
    jit = float(rng.uniform(0.3, 1.6))
    pan = float(rng.uniform(-0.04, 0.04)) * W * t / max(t[-1], 1e-6)
    cam_x = cam0 + follow * rx + smooth_noise(rng, T, FPS, jit, 1.2) + pan
    cam_y = smooth_noise(rng, T, FPS, jit * 0.6, 1.2)
    root_px = cam0 + sx0 + rx
    # scene-cut-like events: a camera cut (the framing jumps) or a lighting change; each forces
    # an I-frame
    gain = np.full(T, float(rng.uniform(0.86, 1.08)))
    events = []
    n_ev = int(rng.choice([0, 1, 2], p=[0.4, 0.42, 0.18]))
    if T >= 30:
        cands = sorted(int(f) for f in rng.choice(np.arange(8, T - 8), size=min(n_ev, T - 16), replace=False))
        for f in cands:
            if events and f - events[-1]["frame"] < 12:
                continue
            if rng.random() < 0.5:
                screen = root_px[f:] - cam_x[f:]
                room_left = float(screen.min() - 0.2 * W)
                room_right = float(0.8 * W - screen.max())
                jump = float(rng.uniform(0.05, 0.14)) * W
                # move the frame so that the figure stays inside it
                jump = jump if room_left > room_right else -jump
                jump = float(np.clip(jump, -max(room_right, 0.0), max(room_left, 0.0)))
                cam_x[f:] += jump
                events.append({"frame": f, "kind": "cut", "shift_px": round(jump, 2)})
            else:
                k = float(rng.uniform(0.8, 0.9)) if rng.random() < 0.5 else float(rng.uniform(1.1, 1.2))
                gain[f:] *= k
                events.append({"frame": f, "kind": "light", "gain": round(k, 3)})
    keyint = int(rng.integers(16, 61))   # drawn even with a fixed GOP: keeps the random stream
    if gop is not None:
        keyint = int(gop)
    scene = spec.scene or look.generic
    hz = look.styles[scene]["horizon"]
    distractors = scn.random_distractors(rng, T / FPS, float(cam_x.min()) / H, W / H + abs(float(rx[-1])) / H, hz)
    held = random_held(spec.held, rng) if spec.held else None
    noise = float(rng.uniform(1.0, 2.5))
    info = dict(motion.info)
    info.update(scene=scene, scale_px=round(scale, 2), camera_follow=round(follow, 3))
    return Plan(T, W, H, spec, look, scene, scale, ground_y, P, root_px, cam_x, cam_y, gain, keyint,
                events, distractors, held, noise, info, rng)


def render_video(plan: Plan, sink) -> np.ndarray:
    """Render every frame into ``sink(frame_uint8)``; returns the OpenPose keypoints (T, 18, 3)."""
    W, H, T = plan.width, plan.height, plan.T
    Sc = to_screen(plan.P, plan.root_px, plan.scale, plan.ground_y, plan.cam_x, plan.cam_y)
    kp = keypoint_confidence(plan.P, Sc, plan.look.body, plan.scale, W, H, plan.rng)
    # the background strip covering the whole camera path (+1 px for bilinear shifts)
    bx0 = math.floor(float(plan.cam_x.min())) - 1
    by0 = math.floor(float(plan.cam_y.min())) - 1
    bw = int(math.ceil(float(plan.cam_x.max()))) - bx0 + W + 2
    bh = int(math.ceil(float(plan.cam_y.max()))) - by0 + H + 2
    bg = scn.paint_scene(plan.look.styles[plan.scene], H, bx0, by0, bw, bh)
    noise_rng = np.random.default_rng(plan.rng.integers(2**63))
    # sensor noise: random crops of a small bank of Gaussian fields (cheaper than a fresh field
    # per frame, and indistinguishable from one at these noise levels)
    pad = 16
    bank = noise_rng.standard_normal((4, H + pad, W + pad, 3), dtype=np.float32) * np.float32(plan.noise)
    frame = np.empty((H, W, 3), np.float32)
    tmp = np.empty((H, W, 3), np.float32)
    cv = Canvas(frame)
    out = np.empty((H, W, 3), np.uint8)
    for t in range(T):
        ox, oy = float(plan.cam_x[t]) - bx0, float(plan.cam_y[t]) - by0
        ix, iy = int(ox), int(oy)
        fx, fy = ox - ix, oy - iy
        g = float(plan.gain[t])
        np.multiply(bg[iy:iy + H, ix:ix + W], np.float32(g * (1 - fx) * (1 - fy)), out=frame)
        np.multiply(bg[iy:iy + H, ix + 1:ix + 1 + W], np.float32(g * fx * (1 - fy)), out=tmp)
        frame += tmp
        if fy > 1e-3:
            np.multiply(bg[iy + 1:iy + 1 + H, ix:ix + W], np.float32(g * (1 - fx) * fy), out=tmp)
            frame += tmp
            np.multiply(bg[iy + 1:iy + 1 + H, ix + 1:ix + 1 + W], np.float32(g * fx * fy), out=tmp)
            frame += tmp
        scn.draw_distractors(cv, plan.distractors, t / FPS, H, float(plan.cam_x[t]), float(plan.cam_y[t]), g)
        draw_figure(cv, Sc[t], plan.look.body, plan.scale, plan.held, g)
        k, dy, dx = (int(v) for v in noise_rng.integers(0, (4, pad, pad)))
        frame += bank[k, dy:dy + H, dx:dx + W]
        frame += np.float32(0.5)              # round half up when casting
        np.maximum(frame, 0.0, out=frame)
        np.minimum(frame, 255.0, out=frame)
        out[...] = frame
        sink(out)
    return kp


def make_video(job: dict) -> dict:
    """Worker entry point: write one video and its pose files; errors come back as data."""
    try:
        return _make_video(job)
    except Exception:  # noqa: BLE001 - reported by the parent with the video's name
        return {"rel": job["rel"], "error": traceback.format_exc()}


def _make_video(job: dict) -> dict:
    out = Path(job["out"])
    spec = BY_NAME[job["class"]]
    group, clip = job["group"], job["clip"]
    W, H = job["size"]
    gop = job.get("gop")
    plan = plan_video(spec, group, clip, job["seconds"], W, H, job["seed"], gop=gop)
    stem = video_stem(spec.name, group, clip)
    path = out / spec.name / f"{stem}.mp4"
    path.parent.mkdir(parents=True, exist_ok=True)
    # a fixed GOP: I-frames at 0, gop, 2 gop, ... only (events still happen in the picture)
    forced = [] if gop is not None else [e["frame"] for e in plan.events]
    with H264Writer(path, W, H, FPS, keyint=plan.keyint, forced=forced,
                    min_keyint=plan.keyint if gop is not None else None) as writer:
        kp = render_video(plan, writer.write)
    pose_bytes = write_openpose_sequence(out / POSE_DIR / spec.name, stem, kp)
    iframes = expected_iframes(plan.T, plan.keyint, forced)
    if writer.keyframes != iframes:
        raise RuntimeError(f"{stem}: x264 coded keyframes {writer.keyframes}, the GOP policy expects {iframes}")
    info = {k: v for k, v in plan.info.items()}
    return {
        "rel": job["rel"], "class": spec.name, "group": group, "clip": clip, "frames": plan.T,
        "bytes": os.path.getsize(path), "pose_bytes": pose_bytes, "keyint": plan.keyint,
        "iframes": iframes, "events": plan.events, **info,
    }
