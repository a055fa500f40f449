"""Procedural motions: joint-angle trajectories with natural per-video variation.

Two families, chosen so that the dataset's class groups test what they claim to test:

*Gait* (:func:`gait`): one walking cycle shared by every gait class. The classes differ only
in *dynamics*: the tempo (walk 0.8-1.15 Hz, run 1.8-2.5 Hz), the direction the leg cycle runs
(forward, or time-reversed as in walking backwards) and the travel relative to the facing
direction (forwards, backwards, none). Amplitudes, arm swing, lean and noise are drawn from the
same ranges for all of them, so the set of body poses seen in single frames is the same for every
gait class: one frame cannot tell a walker from a runner or a moonwalker, a pose sequence can.

*Idle* (:func:`idle`): standing with weight shifts and head turns, plus a random sequence of
everyday gestures and short exercises (wave, clap, stretch, hands on hips, scratch head, check
watch, point, squat, jumping jacks, arm circles, bow, look around). Every context class uses this
same distribution, so the pose sequence carries no information about a context class.

Every function returns a :class:`Motion` for ``T`` frames at ``fps``; angles are radians (see
:mod:`csvr.synth.skeleton` for their meaning), positions are in body heights (bh).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from csvr.synth.skeleton import ANGLE_CHANNELS, Body

WALK_TEMPO = (0.8, 1.15)   # gait cycles per second
RUN_TEMPO = (1.8, 2.5)


@dataclass
class Motion:
    angles: dict[str, np.ndarray]
    yaw: np.ndarray               # (T,) facing angle, +pi/2 = facing screen right
    root_x: np.ndarray            # (T,) horizontal body position in bh (world)
    lift: np.ndarray              # (T,) height of the body above the ground in bh
    travels: bool = False         # the body moves through the scene (the camera may follow)
    info: dict = field(default_factory=dict)


def smooth_noise(rng: np.random.Generator, T: int, fps: float, amp: float, fmax: float = 0.7,
                 n: int = 3) -> np.ndarray:
    """A smooth random signal: a sum of ``n`` sinusoids (0.1..fmax Hz), RMS about ``amp``."""
    t = np.arange(T) / fps
    out = np.zeros(T)
    for _ in range(n):
        f = rng.uniform(0.1, fmax)
        out += np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
    return out * (amp * np.sqrt(2.0 / n))


def _base(T: int) -> dict[str, np.ndarray]:
    return {k: np.zeros(T) for k in ANGLE_CHANNELS}


def _facing(rng: np.random.Generator, T: int, fps: float, profile: bool) -> tuple[np.ndarray, float]:
    """Yaw per frame and the facing side (+1 screen right, -1 left). Profile = walking across."""
    side = 1.0 if rng.random() < 0.5 else -1.0
    if profile:
        base = np.pi / 2 - rng.uniform(0.0, 0.45)
        yaw = side * (base + smooth_noise(rng, T, fps, 0.03, 0.3))
    else:
        base = rng.uniform(0.0, 1.0)
        yaw = side * (base + smooth_noise(rng, T, fps, 0.12, 0.25))
    return yaw, side


def gait(T: int, fps: float, rng: np.random.Generator, body: Body, *, tempo: tuple[float, float],
         cycle: int, travel: int) -> Motion:
    """The shared gait cycle; ``cycle`` +1 runs it forwards, -1 backwards (time-reversed);
    ``travel`` +1 moves the body in the facing direction, -1 against it, 0 not at all."""
    t = np.arange(T) / fps
    f0 = rng.uniform(*tempo)
    f = f0 * (1.0 + smooth_noise(rng, T, fps, 0.04, 0.4))
    phase = rng.uniform(0, 1) + cycle * np.cumsum(f) / fps
    a = _base(T)
    amp_h = rng.uniform(0.30, 0.44) * (1 + smooth_noise(rng, T, fps, 0.04))
    amp_k = rng.uniform(0.75, 1.05)
    k0 = rng.uniform(0.04, 0.18)
    amp_a = rng.uniform(0.22, 0.5)
    elbow = rng.uniform(0.2, 0.75)
    for p, off in (("r", 0.0), ("l", 0.5)):
        ph = 2 * np.pi * (phase + off)
        hip = amp_h * np.sin(ph) + smooth_noise(rng, T, fps, 0.02, 1.0)
        swing = np.maximum(0.0, np.cos(ph - 0.15)) ** 2
        knee = k0 + amp_k * swing + 0.08 * np.maximum(0.0, np.sin(ph + 0.6)) ** 2
        a[f"{p}_hip_flex"] = hip
        a[f"{p}_shin_flex"] = hip - knee
        a[f"{p}_hip_abd"] = np.full(T, rng.uniform(0.0, 0.05))
        a[f"{p}_foot"] = 0.05 + 0.35 * swing - 0.1 * np.sin(ph)
        arm = -amp_a * np.sin(ph) + smooth_noise(rng, T, fps, 0.03, 1.0)
        a[f"{p}_sh_flex"] = arm
        a[f"{p}_sh_abd"] = np.full(T, rng.uniform(0.05, 0.14))
        a[f"{p}_fa_flex"] = arm + elbow + 0.15 * amp_a * np.sin(ph + 0.5)
        a[f"{p}_fa_abd"] = a[f"{p}_sh_abd"] - 0.02
    bob = np.sin(4 * np.pi * phase)
    a["lean"] = rng.uniform(0.03, 0.12) + 0.015 * bob + smooth_noise(rng, T, fps, 0.01)
    a["roll"] = 0.02 * np.sin(2 * np.pi * phase) + smooth_noise(rng, T, fps, 0.01)
    a["head_yaw"] = smooth_noise(rng, T, fps, 0.1, 0.3)
    a["head_pitch"] = smooth_noise(rng, T, fps, 0.05, 0.3)
    yaw, side = _facing(rng, T, fps, profile=True)
    # no-slip speed of the gait cycle: a stance foot sweeps 2 * leg * sin(amp) per half cycle
    speed = 4.0 * body.leg * np.sin(amp_h) * f * 0.95
    root_x = side * travel * np.cumsum(speed) / fps
    root_x -= root_x[0]
    return Motion(a, yaw, root_x, np.zeros(T), travels=travel != 0,
                  info={"tempo_hz": round(float(f0), 3), "cycle": cycle, "travel": travel,
                        "facing": "right" if side > 0 else "left"})


# --------------------------------------------------------------------------- idle + gestures

def _envelope(t: np.ndarray, t0: float, t1: float, ramp: float) -> np.ndarray:
    """0 outside [t0, t1], 1 inside, smoothstep ramps of ``ramp`` seconds at both ends."""
    up = np.clip((t - t0) / ramp, 0, 1)
    down = np.clip((t1 - t) / ramp, 0, 1)
    e = np.minimum(up, down)
    return e * e * (3 - 2 * e)


def _blend(a: dict, key: str, target: np.ndarray | float, env: np.ndarray) -> None:
    a[key] = a[key] * (1 - env) + np.asarray(target) * env


def _arm(a, p, env, sh_flex, sh_abd, fa_flex, fa_abd):
    _blend(a, f"{p}_sh_flex", sh_flex, env)
    _blend(a, f"{p}_sh_abd", sh_abd, env)
    _blend(a, f"{p}_fa_flex", fa_flex, env)
    _blend(a, f"{p}_fa_abd", fa_abd, env)


def _g_wave(a, t, env, rng, lift):
    p = "r" if rng.random() < 0.6 else "l"
    f = rng.uniform(1.6, 2.8)
    osc = np.sin(2 * np.pi * f * t + rng.uniform(0, 6.3))
    abd = rng.uniform(1.1, 1.5)
    _arm(a, p, env, 0.25, abd, 0.35, abd + rng.uniform(0.5, 0.9) + 0.35 * osc)


def _g_clap(a, t, env, rng, lift):
    f = rng.uniform(1.8, 3.0)
    c = 0.5 + 0.5 * np.sin(2 * np.pi * f * t + rng.uniform(0, 6.3))
    fl = rng.uniform(0.8, 1.25)
    for p in ("r", "l"):
        _arm(a, p, env, fl, 0.1 + 0.35 * c, fl + 0.55, -0.35 + 0.3 * c)


def _g_stretch(a, t, env, rng, lift):
    up = rng.uniform(2.7, 3.05)
    for p in ("r", "l"):
        _arm(a, p, env, up, rng.uniform(0.1, 0.3), up + 0.05, rng.uniform(0.0, 0.2))
    _blend(a, "head_pitch", -0.15, env)


def _g_hips(a, t, env, rng, lift):
    for p in ("r", "l"):
        _arm(a, p, env, -0.15, 0.65, -0.2, -0.85)


def _g_scratch(a, t, env, rng, lift):
    p = "r" if rng.random() < 0.6 else "l"
    osc = 0.08 * np.sin(2 * np.pi * 3.5 * t)
    _arm(a, p, env, 1.45, 0.95, 2.7 + osc, -0.35)
    _blend(a, "head_pitch", 0.15, env)


def _g_watch(a, t, env, rng, lift):
    _arm(a, "l", env, 0.45, 0.1, 1.9, -0.5)
    _blend(a, "head_pitch", 0.35, env)


def _g_point(a, t, env, rng, lift):
    p = "r" if rng.random() < 0.6 else "l"
    fl = rng.uniform(1.2, 1.8)
    _arm(a, p, env, fl, rng.uniform(0.0, 0.5), fl + 0.05, rng.uniform(0.0, 0.4))


def _g_squat(a, t, env, rng, lift):
    depth = rng.uniform(0.7, 1.3)
    for p in ("r", "l"):
        _blend(a, f"{p}_hip_flex", depth * 0.9, env)
        _blend(a, f"{p}_shin_flex", -depth * 0.75, env)
        _blend(a, f"{p}_foot", 0.0, env)
        _arm(a, p, env, 1.4, 0.1, 1.45, 0.05)
    _blend(a, "lean", 0.35 * depth, env)


def _g_jacks(a, t, env, rng, lift):
    f = rng.uniform(1.1, 1.6)
    c = 0.5 - 0.5 * np.cos(2 * np.pi * f * t)
    for p in ("r", "l"):
        _arm(a, p, env, 0.0, 0.1 + 2.6 * c, 0.0, 0.15 + 2.75 * c)
        _blend(a, f"{p}_hip_abd", 0.04 + 0.3 * c, env)
    lift += env * 0.04 * np.abs(np.sin(2 * np.pi * f * t))


def _g_circles(a, t, env, rng, lift):
    f = rng.uniform(0.6, 1.2) * (1 if rng.random() < 0.5 else -1)
    ang = 2 * np.pi * f * t + rng.uniform(0, 6.3)
    for p in ("r", "l"):
        _arm(a, p, env, ang, 0.35, ang + 0.05, 0.35)


def _g_bow(a, t, env, rng, lift):
    _blend(a, "lean", rng.uniform(0.5, 0.9), env)
    _blend(a, "head_pitch", 0.2, env)


def _g_look(a, t, env, rng, lift):
    f = rng.uniform(0.3, 0.6)
    _blend(a, "head_yaw", 0.8 * np.sin(2 * np.pi * f * t), env)


GESTURES = {
    "wave": _g_wave, "clap": _g_clap, "stretch": _g_stretch, "hands_on_hips": _g_hips,
    "scratch_head": _g_scratch, "check_watch": _g_watch, "point": _g_point, "squat": _g_squat,
    "jumping_jacks": _g_jacks, "arm_circles": _g_circles, "bow": _g_bow, "look_around": _g_look,
}


def idle(T: int, fps: float, rng: np.random.Generator, body: Body) -> Motion:
    """Standing with weight shifts and head turns, plus random gestures (the same distribution
    for every class that uses it)."""
    t = np.arange(T) / fps
    a = _base(T)
    f_sway = rng.uniform(0.15, 0.4)
    sway = np.sin(2 * np.pi * f_sway * t + rng.uniform(0, 6.3))
    stance = rng.uniform(0.04, 0.14)
    for p, s in (("r", -1), ("l", 1)):
        hip = rng.uniform(-0.06, 0.08) + smooth_noise(rng, T, fps, 0.02)
        a[f"{p}_hip_flex"] = hip
        a[f"{p}_shin_flex"] = hip - rng.uniform(0.02, 0.12) - 0.05 * np.maximum(0, s * sway)
        a[f"{p}_hip_abd"] = stance + 0.03 * s * sway
        a[f"{p}_foot"] = np.full(T, rng.uniform(0.0, 0.1))
        arm = rng.uniform(-0.05, 0.15) + smooth_noise(rng, T, fps, 0.05)
        a[f"{p}_sh_flex"] = arm
        a[f"{p}_sh_abd"] = rng.uniform(0.06, 0.18) + smooth_noise(rng, T, fps, 0.02)
        a[f"{p}_fa_flex"] = arm + rng.uniform(0.1, 0.5)
        a[f"{p}_fa_abd"] = a[f"{p}_sh_abd"] - 0.03
    a["roll"] = 0.035 * sway + smooth_noise(rng, T, fps, 0.01)
    a["lean"] = rng.uniform(0.0, 0.06) + smooth_noise(rng, T, fps, 0.015)
    a["head_yaw"] = smooth_noise(rng, T, fps, 0.25, 0.3)
    a["head_pitch"] = smooth_noise(rng, T, fps, 0.06, 0.3)
    lift = np.zeros(T)
    names = list(GESTURES)
    done = []
    cur = rng.uniform(-0.5, 0.8)
    end = T / fps
    while cur < end:
        dur = rng.uniform(1.3, 3.0)
        name = names[rng.integers(len(names))]
        env = _envelope(t, cur, cur + dur, min(0.35, dur / 3))
        GESTURES[name](a, t, env, rng, lift)
        done.append(name)
        cur += dur + rng.uniform(0.2, 1.2)
    yaw, side = _facing(rng, T, fps, profile=False)
    root_x = 0.02 * sway + smooth_noise(rng, T, fps, 0.01)
    return Motion(a, yaw, root_x - root_x[0], lift, travels=False,
                  info={"gestures": done, "facing": "right" if side > 0 else "left"})


#: Motion name -> how to make it. The class catalogue refers to these names.
MOTIONS = {
    "walk": lambda T, fps, rng, body: gait(T, fps, rng, body, tempo=WALK_TEMPO, cycle=1, travel=1),
    "run": lambda T, fps, rng, body: gait(T, fps, rng, body, tempo=RUN_TEMPO, cycle=1, travel=1),
    "walk_backward": lambda T, fps, rng, body: gait(T, fps, rng, body, tempo=WALK_TEMPO, cycle=-1, travel=-1),
    "run_backward": lambda T, fps, rng, body: gait(T, fps, rng, body, tempo=RUN_TEMPO, cycle=-1, travel=-1),
    "moonwalk": lambda T, fps, rng, body: gait(T, fps, rng, body, tempo=WALK_TEMPO, cycle=1, travel=-1),
    "walk_in_place": lambda T, fps, rng, body: gait(T, fps, rng, body, tempo=WALK_TEMPO, cycle=1, travel=0),
    "idle": idle,
}


def make_motion(name: str, T: int, fps: float, rng: np.random.Generator, body: Body) -> Motion:
    return MOTIONS[name](T, fps, rng, body)
