"""The articulated figure: body proportions, forward kinematics and OpenPose COCO-18 keypoints.

The body lives in a 3D body frame (x: the person's left, y: up, z: the facing direction; unit:
the actor's standing height, "bh"). A motion (:mod:`csvr.synth.motions`) gives joint angles
per frame; :func:`forward_kinematics` turns them into 3D points for all frames at once
(vectorised over time), places the feet on the ground and rotates the body by its yaw about the
vertical axis. The camera looks along -Z (orthographic), so screen x = X, screen y = -Y and the
depth towards the camera is Z; the renderer and the pose writer both use :func:`to_screen`.

Limb directions use one parametrisation for arms and legs: starting from "hanging down"
``(0, -1, 0)``, rotate outwards by ``abd`` (towards the body's side) and then forwards by
``flex`` about the body x axis::

    d(flex, abd, side) = (side * sin(abd), -cos(abd) * cos(flex), cos(abd) * sin(flex))

so ``flex = pi/2`` points forwards, ``flex = pi`` straight up, ``abd = pi/2`` sideways.
Forearms and shanks are given as absolute directions (the motion adds the elbow / knee angle).
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np

#: OpenPose COCO-18 keypoint order (``--model_pose COCO``).
OPENPOSE_COCO18 = (
    "Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist",
    "RHip", "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar", "LEar",
)
NUM_KEYPOINTS = 18

# Extra points the renderer needs (indices after the 18 OpenPose ones).
MID_HIP, HEAD, R_TOE, L_TOE, R_HAND, L_HAND = 18, 19, 20, 21, 22, 23
NUM_POINTS = 24

#: Joint-angle channels every motion must provide, each a float array of shape (T,).
ANGLE_CHANNELS = (
    "lean", "roll", "head_yaw", "head_pitch",
    "r_sh_flex", "r_sh_abd", "r_fa_flex", "r_fa_abd",
    "l_sh_flex", "l_sh_abd", "l_fa_flex", "l_fa_abd",
    "r_hip_flex", "r_hip_abd", "r_shin_flex", "l_hip_flex", "l_hip_abd", "l_shin_flex",
    "r_foot", "l_foot",
)


@dataclass(frozen=True)
class Body:
    """One actor's proportions (fractions of standing height) and clothing colours (RGB 0-255)."""

    torso: float = 0.30
    neck: float = 0.075
    head_r: float = 0.062
    shoulder_w: float = 0.105   # half width
    hip_w: float = 0.062        # half width
    torso_depth: float = 0.065  # half depth (what a profile view shows)
    upper_arm: float = 0.165
    forearm: float = 0.15
    hand: float = 0.055
    thigh: float = 0.235
    shin: float = 0.225
    foot: float = 0.085
    ankle_h: float = 0.03
    girth: float = 1.0          # scales every limb radius
    skin: tuple = (224, 172, 140)
    hair: tuple = (60, 40, 30)
    shirt: tuple = (40, 90, 170)
    trousers: tuple = (50, 50, 60)
    shoes: tuple = (30, 30, 30)
    long_sleeves: bool = True
    shorts: bool = False
    hair_len: float = 0.5       # 0 = cropped, 1 = long

    @property
    def leg(self) -> float:
        return self.thigh + self.shin


def random_body(rng: np.random.Generator) -> Body:
    """A random actor: proportions within about +-10 %, clothing and skin colours."""
    j = lambda lo, hi: float(rng.uniform(lo, hi))  # noqa: E731
    skins = [(241, 194, 160), (224, 172, 140), (198, 134, 96), (160, 104, 70), (112, 72, 48), (88, 58, 40)]
    hairs = [(20, 16, 14), (60, 40, 28), (110, 72, 40), (180, 140, 80), (140, 140, 140), (90, 30, 20)]
    skin = np.array(skins[rng.integers(len(skins))], float) * j(0.93, 1.05)
    shirt = _vivid(rng)
    trousers = _vivid(rng, sat=(0.15, 0.7), val=(0.18, 0.65))
    shoes = tuple(int(v) for v in rng.uniform(15, 230) * np.array([1, 1, 1]) * rng.uniform(0.8, 1.0, 3))
    s = j(0.92, 1.08)
    return Body(
        torso=0.30 * j(0.92, 1.08), neck=0.075 * j(0.85, 1.15), head_r=0.062 * j(0.92, 1.1),
        shoulder_w=0.105 * j(0.88, 1.12), hip_w=0.062 * j(0.9, 1.15), torso_depth=0.065 * j(0.85, 1.25),
        upper_arm=0.165 * s * j(0.96, 1.04), forearm=0.15 * s * j(0.96, 1.04), hand=0.055 * j(0.9, 1.1),
        thigh=0.235 * j(0.93, 1.07), shin=0.225 * j(0.93, 1.07), foot=0.085 * j(0.9, 1.1),
        girth=j(0.85, 1.25),
        skin=tuple(int(min(255, v)) for v in skin), hair=tuple(int(v) for v in hairs[rng.integers(len(hairs))]),
        shirt=shirt, trousers=trousers, shoes=shoes,
        long_sleeves=bool(rng.random() < 0.55), shorts=bool(rng.random() < 0.3), hair_len=j(0.0, 1.0),
    )


def _vivid(rng: np.random.Generator, sat=(0.35, 0.9), val=(0.3, 0.95)) -> tuple:
    r, g, b = colorsys.hsv_to_rgb(float(rng.random()), float(rng.uniform(*sat)), float(rng.uniform(*val)))
    return (int(r * 255), int(g * 255), int(b * 255))


def limb_dir(flex: np.ndarray, abd: np.ndarray, side: float) -> np.ndarray:
    """Unit direction (T, 3) of a limb segment (see the module docstring)."""
    ca = np.cos(abd)
    return np.stack([side * np.sin(abd), -ca * np.cos(flex), ca * np.sin(flex)], axis=-1)


def forward_kinematics(body: Body, a: dict[str, np.ndarray], yaw: np.ndarray,
                       lift: np.ndarray | None = None) -> np.ndarray:
    """3D points (T, NUM_POINTS, 3) in bh units, feet on the ground (y = 0), yaw applied.

    ``a`` holds every channel of :data:`ANGLE_CHANNELS`; ``yaw`` (T,) is the facing angle
    (0: facing the camera, +pi/2: facing screen right); ``lift`` (T,) raises the body off the
    ground (jumps). The root's horizontal position is added by the caller.
    """
    T = len(yaw)
    P = np.zeros((T, NUM_POINTS, 3))
    lean, roll = a["lean"], a["roll"]
    spine = np.stack([np.sin(roll), np.cos(roll) * np.cos(lean), np.cos(roll) * np.sin(lean)], -1)
    pelvis = np.zeros((T, 3))
    neck = pelvis + body.torso * spine
    P[:, MID_HIP] = pelvis
    P[:, 1] = neck
    # shoulders follow the spine's roll a little (one shoulder drops when the body bends sideways)
    side_axis = np.stack([np.cos(roll), -np.sin(roll), np.zeros(T)], -1)
    P[:, 2] = neck - body.shoulder_w * side_axis + np.array([0, -0.012, 0])
    P[:, 5] = neck + body.shoulder_w * side_axis + np.array([0, -0.012, 0])
    P[:, 8] = pelvis - body.hip_w * np.array([1.0, 0, 0])
    P[:, 11] = pelvis + body.hip_w * np.array([1.0, 0, 0])
    # head: centre above the neck along the (slightly straightened) spine, turned by head_yaw
    hp = a["head_pitch"]
    head_up = np.stack([np.sin(roll) * 0.5, np.cos(lean * 0.5 + hp), np.sin(lean * 0.5 + hp)], -1)
    head = neck + (body.neck + body.head_r * 0.85) * head_up
    P[:, HEAD] = head
    hy = a["head_yaw"]
    c, s = np.cos(hy), np.sin(hy)

    def face(dx: float, dy: float, dz: float) -> np.ndarray:
        r = body.head_r
        x, z = dx * r, dz * r
        return head + np.stack([x * c + z * s, np.full(T, dy * r), -x * s + z * c], -1)

    P[:, 0] = face(0.0, -0.25, 1.05)                     # nose
    P[:, 14], P[:, 15] = face(-0.38, 0.12, 0.88), face(0.38, 0.12, 0.88)   # eyes (R, L)
    P[:, 16], P[:, 17] = face(-0.97, 0.0, -0.05), face(0.97, 0.0, -0.05)   # ears (R, L)
    # arms: R side is -x
    for side, sh, el, wr, tip, p in ((-1.0, 2, 3, 4, R_HAND, "r"), (1.0, 5, 6, 7, L_HAND, "l")):
        upper = limb_dir(a[f"{p}_sh_flex"], a[f"{p}_sh_abd"], side)
        fore = limb_dir(a[f"{p}_fa_flex"], a[f"{p}_fa_abd"], side)
        P[:, el] = P[:, sh] + body.upper_arm * upper
        P[:, wr] = P[:, el] + body.forearm * fore
        P[:, tip] = P[:, wr] + body.hand * fore
    for side, hip, kn, an, toe, p in ((-1.0, 8, 9, 10, R_TOE, "r"), (1.0, 11, 12, 13, L_TOE, "l")):
        thigh = limb_dir(a[f"{p}_hip_flex"], a[f"{p}_hip_abd"], side)
        shin = limb_dir(a[f"{p}_shin_flex"], a[f"{p}_hip_abd"], side)
        P[:, kn] = P[:, hip] + body.thigh * thigh
        P[:, an] = P[:, kn] + body.shin * shin
        f = a[f"{p}_foot"]
        P[:, toe] = P[:, an] + body.foot * np.stack([np.zeros(T), -np.sin(f), np.cos(f)], -1)
    # feet on the ground: the lowest ankle / toe touches y = 0 (ankle height above it)
    low = np.minimum(np.minimum(P[:, 10, 1], P[:, 13, 1]) - body.ankle_h,
                     np.minimum(P[:, R_TOE, 1], P[:, L_TOE, 1]) - body.ankle_h * 0.4)
    P[:, :, 1] -= low[:, None]
    if lift is not None:
        P[:, :, 1] += lift[:, None]
    # yaw about the vertical axis
    cy, sy = np.cos(yaw)[:, None], np.sin(yaw)[:, None]
    x, z = P[:, :, 0].copy(), P[:, :, 2].copy()
    P[:, :, 0] = x * cy + z * sy
    P[:, :, 2] = -x * sy + z * cy
    return P


def to_screen(P: np.ndarray, root_px: np.ndarray, scale: float, ground_y: float,
              cam_x: np.ndarray, cam_y: np.ndarray) -> np.ndarray:
    """Screen coordinates (T, N, 3): pixel x, pixel y, depth towards the camera (bh).

    ``root_px`` (T,) is the body's horizontal world position in pixels, ``cam_x``/``cam_y`` (T,)
    the world position of the frame's top-left corner.
    """
    out = np.empty_like(P)
    out[:, :, 0] = P[:, :, 0] * scale + (root_px - cam_x)[:, None]
    out[:, :, 1] = ground_y - P[:, :, 1] * scale - cam_y[:, None]
    out[:, :, 2] = P[:, :, 2]
    return out


def keypoint_confidence(P: np.ndarray, S: np.ndarray, body: Body, scale: float, width: int, height: int,
                        rng: np.random.Generator) -> np.ndarray:
    """OpenPose-like (T, 18, 3) keypoints: pixel x, y and a confidence in [0, 1].

    Eyes and ears facing away from the camera are not seen (x = y = c = 0, as OpenPose writes a
    missed part), joints outside the frame likewise. Far-side arm and leg joints hidden behind
    the torso keep their position with a lower confidence, as OpenPose usually still finds them.
    """
    T = P.shape[0]
    kp = np.zeros((T, NUM_KEYPOINTS, 3))
    kp[:, :, :2] = S[:, :NUM_KEYPOINTS, :2]
    conf = 0.88 + 0.06 * np.tanh(rng.standard_normal((T, NUM_KEYPOINTS)) * 0.8)
    # smooth the confidence over time a little (detectors are temporally correlated)
    k = np.array([0.25, 0.5, 0.25])
    for j in range(NUM_KEYPOINTS):
        conf[:, j] = np.convolve(np.pad(conf[:, j], 1, mode="edge"), k, mode="valid")
    # face points: visible when their outward direction faces the camera
    head = P[:, HEAD]
    for j, thresh, full in ((14, -0.05, 0.25), (15, -0.05, 0.25), (16, -0.25, 0.15), (17, -0.25, 0.15)):
        d = P[:, j] - head
        facing = d[:, 2] / (np.linalg.norm(d, axis=-1) + 1e-9)
        conf[:, j] *= np.clip((facing - thresh) / full, 0.0, 1.0) ** 0.5
    nose_face = (P[:, 0, 2] - head[:, 2]) / body.head_r
    conf[:, 0] *= np.clip((nose_face + 0.6) / 0.4, 0.0, 1.0) ** 0.5
    # far-side limbs behind the torso: lower confidence
    torso_z = 0.5 * (P[:, 1, 2] + P[:, MID_HIP, 2])
    torso_x = 0.5 * (S[:, 1, 0] + S[:, MID_HIP, 0])
    half_w = body.shoulder_w * np.abs(np.cos(np.arctan2(P[:, 5, 2] - P[:, 2, 2], P[:, 5, 0] - P[:, 2, 0])))
    for j in (3, 4, 6, 7, 9, 10, 12, 13):
        behind = (P[:, j, 2] < torso_z - 0.03) & (np.abs(S[:, j, 0] - torso_x) < (half_w + body.torso_depth) * scale)
        conf[behind, j] *= 0.45
    conf = np.clip(conf, 0.0, 1.0)
    inside = (kp[:, :, 0] >= 0) & (kp[:, :, 0] <= width - 1) & (kp[:, :, 1] >= 0) & (kp[:, :, 1] <= height - 1)
    seen = inside & (conf >= 0.05)
    kp[:, :, 2] = np.where(seen, conf, 0.0)
    kp[~seen, :2] = 0.0
    return kp

