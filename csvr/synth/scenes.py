"""Scene backgrounds and moving distractors.

A scene is an endless horizontal strip in world units of the frame height (u = H pixels): a
*style* (colours, horizon, floor) drawn once per group, and *cells* one unit wide whose
furniture comes from a random generator seeded by (style seed, cell index). So a group's
kitchen is the same kitchen in every class and clip of that group, whatever part of it a
camera shows, and any camera path finds scenery.

Kinds: the generic pool shared by the motion classes and the held-object classes (``room``,
``street``, ``hall``, ``yard``) and the context scenes that name classes (``kitchen``,
``beach``, ``gym``). Context scenes never occur in the generic pool.
"""

from __future__ import annotations

import colorsys
import math

import numpy as np

from csvr.synth.render import Canvas

GENERIC_SCENES = ("room", "street", "hall", "yard")
CONTEXT_SCENES = ("kitchen", "beach", "gym")
SCENE_IDS = {k: i for i, k in enumerate(GENERIC_SCENES + CONTEXT_SCENES)}


def _hsv(h, s, v):
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, min(max(s, 0), 1), min(max(v, 0), 1))
    return (r * 255, g * 255, b * 255)


def _jit(rng, c, amt=12):
    return tuple(float(np.clip(v + rng.uniform(-amt, amt), 0, 255)) for v in c)


def scene_style(kind: str, rng: np.random.Generator) -> dict:
    """The group-level look of a scene kind (colours, horizon) plus a seed for its cells."""
    st: dict = {"kind": kind, "seed": int(rng.integers(2**31)), "tint": tuple(rng.uniform(0.92, 1.06, 3))}
    u = rng.uniform
    if kind == "room":
        st.update(horizon=u(0.58, 0.68), wall=_hsv(u(0, 1), u(0.08, 0.35), u(0.62, 0.9)),
                  floor=_hsv(u(0.05, 0.11), u(0.35, 0.7), u(0.3, 0.6)), skirting=_hsv(0, 0, u(0.2, 0.95)))
    elif kind == "street":
        st.update(horizon=u(0.6, 0.7), sky=_hsv(u(0.55, 0.63), u(0.15, 0.55), u(0.75, 0.97)),
                  pavement=_hsv(u(0.05, 0.15), u(0.0, 0.12), u(0.45, 0.7)), road=_hsv(0, 0, u(0.2, 0.35)))
    elif kind == "hall":
        st.update(horizon=u(0.55, 0.66), wall=_hsv(u(0.05, 0.15), u(0.03, 0.2), u(0.78, 0.95)),
                  tile_a=_hsv(u(0, 1), u(0.0, 0.2), u(0.65, 0.9)), tile_b=_hsv(u(0, 1), u(0.0, 0.3), u(0.3, 0.6)),
                  column=_hsv(u(0.05, 0.12), u(0.05, 0.25), u(0.7, 0.92)))
    elif kind == "yard":
        st.update(horizon=u(0.55, 0.65), sky=_hsv(u(0.55, 0.62), u(0.2, 0.6), u(0.8, 0.98)),
                  grass=_hsv(u(0.2, 0.33), u(0.35, 0.7), u(0.35, 0.65)), hills=_hsv(u(0.25, 0.45), u(0.2, 0.5), u(0.4, 0.7)),
                  fence=_hsv(u(0.05, 0.1), u(0.0, 0.5), u(0.45, 0.95)))
    elif kind == "kitchen":
        cab = [(240, 240, 235), (200, 160, 110), (120, 140, 160), (150, 170, 140), (60, 60, 65)]
        tiles = [(235, 235, 230), (170, 200, 225), (180, 215, 190), (205, 120, 90), (230, 220, 180)]
        st.update(horizon=u(0.66, 0.74), cabinet=_jit(rng, cab[rng.integers(len(cab))]),
                  counter=_jit(rng, [(40, 40, 45), (220, 220, 215), (110, 100, 95)][rng.integers(3)]),
                  tile=_jit(rng, tiles[rng.integers(len(tiles))]), floor=_hsv(u(0, 0.12), u(0.0, 0.3), u(0.4, 0.8)),
                  floor2=_hsv(u(0, 0.12), u(0.0, 0.3), u(0.2, 0.5)), checker=bool(rng.random() < 0.5))
    elif kind == "beach":
        st.update(horizon=u(0.4, 0.5), sand_top=u(0.58, 0.66), sky=_hsv(u(0.54, 0.6), u(0.3, 0.6), u(0.88, 1.0)),
                  sea=_hsv(u(0.5, 0.58), u(0.55, 0.9), u(0.55, 0.85)), sand=_hsv(u(0.1, 0.14), u(0.25, 0.45), u(0.8, 0.95)))
    elif kind == "gym":
        st.update(horizon=u(0.6, 0.7), wall=_hsv(u(0, 1), u(0.05, 0.25), u(0.72, 0.92)),
                  floor=_hsv(u(0.07, 0.1), u(0.45, 0.7), u(0.6, 0.85)),
                  line=_hsv(u(0, 1), u(0.6, 0.9), u(0.5, 0.9)), mat=_hsv(u(0.55, 0.68), u(0.5, 0.85), u(0.4, 0.75)))
    else:
        raise ValueError(f"unknown scene kind {kind!r}")
    return st


def _texture(rng: np.random.Generator, h: int, w: int, cell: int, amp: float) -> np.ndarray:
    """A smooth multiplicative texture around 1.0 (bilinear upsampling of coarse noise)."""
    gh, gw = h // cell + 2, w // cell + 2
    g = rng.standard_normal((gh, gw)).astype(np.float32)
    ys = np.arange(h, dtype=np.float32) / cell
    xs = np.arange(w, dtype=np.float32) / cell
    y0, x0 = ys.astype(int), xs.astype(int)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    t = (g[y0][:, x0] * (1 - fy) * (1 - fx) + g[y0 + 1][:, x0] * fy * (1 - fx)
         + g[y0][:, x0 + 1] * (1 - fy) * fx + g[y0 + 1][:, x0 + 1] * fy * fx)
    return 1.0 + amp * t


def paint_scene(style: dict, H: int, x0: float, y0: float, width: int, height: int) -> np.ndarray:
    """The scene as float32 RGB (height, width, 3); canvas pixel (0, 0) is world pixel (x0, y0)."""
    img = np.zeros((height, width, 3), np.float32)
    cv = Canvas(img)
    kind = style["kind"]
    X = lambda u: u * H - x0  # noqa: E731  world units -> canvas pixels
    Y = lambda v: v * H - y0  # noqa: E731
    hz = style["horizon"]
    tex_rng = np.random.default_rng([style["seed"], 7, int(math.floor(x0)) & 0xFFFFFF])
    first = int(math.floor(x0 / H)) - 1
    last = int(math.ceil((x0 + width) / H)) + 1

    def cells():
        for k in range(first, last + 1):
            yield k, np.random.default_rng([style["seed"], SCENE_IDS[kind], k + 10**7])

    def fill(v0, v1, color):
        a, b = max(0, int(round(Y(v0)))), min(height, int(round(Y(v1))))
        if b > a:
            img[a:b] = color

    def vgrad(v0, v1, c0, c1):
        a, b = max(0, int(round(Y(v0)))), min(height, int(round(Y(v1))))
        if b > a:
            ys = (np.arange(a, b, dtype=np.float32) - Y(v0)) / max(1e-6, Y(v1) - Y(v0))
            img[a:b] = (np.asarray(c0, np.float32)[None, :] * (1 - ys[:, None])
                        + np.asarray(c1, np.float32)[None, :] * ys[:, None])[:, None, :]

    if kind == "room":
        fill(-1, hz, style["wall"])
        fill(hz, 2, style["floor"])
        for k, r in cells():
            item = r.choice(["window", "picture", "door", "sofa", "lamp", "plant", "none"],
                            p=[0.22, 0.2, 0.12, 0.18, 0.1, 0.1, 0.08])
            cx = k + r.uniform(0.25, 0.75)
            if item == "window":
                w, top, bot = r.uniform(0.2, 0.32), r.uniform(0.1, 0.2), hz - r.uniform(0.15, 0.25)
                cv.rect(X(cx - w), Y(top), X(cx + w), Y(bot), (235, 235, 235))
                cv.rect(X(cx - w) + 2, Y(top) + 2, X(cx + w) - 2, Y(bot) - 2, _hsv(0.58, 0.35, 0.95))
                cv.rect(X(cx) - 1, Y(top), X(cx) + 1, Y(bot), (235, 235, 235))
                if r.random() < 0.6:
                    cc = _hsv(r.uniform(0, 1), r.uniform(0.3, 0.7), r.uniform(0.4, 0.8))
                    cv.rect(X(cx - w - 0.06), Y(top - 0.03), X(cx - w + 0.04), Y(bot + 0.04), cc)
                    cv.rect(X(cx + w - 0.04), Y(top - 0.03), X(cx + w + 0.06), Y(bot + 0.04), cc)
            elif item == "picture":
                w, h2, top = r.uniform(0.08, 0.18), r.uniform(0.06, 0.14), r.uniform(0.12, 0.3)
                cv.rect(X(cx - w), Y(top), X(cx + w), Y(top + 2 * h2), _hsv(0.08, 0.5, r.uniform(0.2, 0.6)))
                cv.rect(X(cx - w) + 2, Y(top) + 2, X(cx + w) - 2, Y(top + 2 * h2) - 2,
                        _hsv(r.uniform(0, 1), r.uniform(0.2, 0.8), r.uniform(0.4, 0.95)))
                cv.circle(X(cx), Y(top + h2), h2 * H * 0.5, _hsv(r.uniform(0, 1), 0.6, 0.8))
            elif item == "door":
                cv.rect(X(cx - 0.13), Y(hz - 0.5), X(cx + 0.13), Y(hz), _hsv(0.07, r.uniform(0.3, 0.6), r.uniform(0.3, 0.7)))
                cv.circle(X(cx + 0.09), Y(hz - 0.24), 0.012 * H, (210, 190, 90))
            elif item == "sofa":
                c = _hsv(r.uniform(0, 1), r.uniform(0.3, 0.7), r.uniform(0.3, 0.7))
                cv.rect(X(cx - 0.35), Y(hz - 0.2), X(cx + 0.35), Y(hz + 0.02), c)
                cv.rect(X(cx - 0.35), Y(hz - 0.1), X(cx + 0.35), Y(hz + 0.02), tuple(v * 0.85 for v in c))
                cv.capsule(X(cx - 0.35), Y(hz - 0.12), X(cx - 0.35), Y(hz), 0.04 * H, 0.04 * H, c)
                cv.capsule(X(cx + 0.35), Y(hz - 0.12), X(cx + 0.35), Y(hz), 0.04 * H, 0.04 * H, c)
            elif item == "lamp":
                cv.capsule(X(cx), Y(hz - 0.42), X(cx), Y(hz), 0.008 * H, 0.008 * H, (60, 60, 60))
                cv.polygon([(X(cx - 0.06), Y(hz - 0.38)), (X(cx + 0.06), Y(hz - 0.38)),
                            (X(cx + 0.04), Y(hz - 0.48)), (X(cx - 0.04), Y(hz - 0.48))], _hsv(0.12, 0.4, 0.95))
            elif item == "plant":
                cv.rect(X(cx - 0.05), Y(hz - 0.1), X(cx + 0.05), Y(hz), (150, 80, 50))
                for _ in range(5):
                    cv.circle(X(cx + r.uniform(-0.07, 0.07)), Y(hz - 0.12 - r.uniform(0, 0.14)), 0.05 * H,
                              _hsv(r.uniform(0.25, 0.38), 0.6, r.uniform(0.3, 0.6)))
        cv.rect(-2, Y(hz) - 0.025 * H, width + 2, Y(hz), style["skirting"])
        for j in range(1, 5):
            yy = Y(hz + j * (1 - hz) / 4.5)
            cv.rect(-2, yy - 0.5, width + 2, yy + 0.5, tuple(v * 0.8 for v in style["floor"]))
        tex = _texture(tex_rng, height, width, max(4, H // 12), 0.035)
        img *= tex[..., None]

    elif kind == "street":
        vgrad(-1, hz, _hsv(0.6, 0.5, 0.9), style["sky"])
        fill(hz, 2, style["pavement"])
        for k, r in cells():
            for b in range(2):
                bx0 = k + b * 0.5 + r.uniform(0.0, 0.05)
                bw = r.uniform(0.38, 0.5)
                top = hz - r.uniform(0.25, 0.6)
                col = _hsv(r.uniform(0.0, 0.12) if r.random() < 0.6 else r.uniform(0, 1), r.uniform(0.1, 0.5), r.uniform(0.4, 0.85))
                cv.rect(X(bx0), Y(top), X(bx0 + bw), Y(hz), col)
                win = _hsv(0.6, 0.3, 0.35) if r.random() < 0.6 else (230, 210, 130)
                nx, ny = int(r.integers(2, 4)), int(max(1, (hz - top) / 0.12))
                for ix in range(nx):
                    for iy in range(ny):
                        wx = bx0 + bw * (ix + 0.5) / nx
                        wy = top + 0.05 + iy * 0.12
                        if wy + 0.06 < hz - 0.03:
                            cv.rect(X(wx - 0.035), Y(wy), X(wx + 0.035), Y(wy + 0.06), win)
            if r.random() < 0.35:
                lx = k + r.uniform(0, 1)
                cv.capsule(X(lx), Y(hz - 0.45), X(lx), Y(hz + 0.04), 0.008 * H, 0.01 * H, (50, 55, 60))
                cv.circle(X(lx), Y(hz - 0.46), 0.02 * H, (240, 230, 170))
        cv.rect(-2, Y(hz), width + 2, Y(hz) + 0.02 * H, tuple(v * 0.75 for v in style["pavement"]))
        for k in range(first * 4, last * 4 + 4):
            xx = X(k * 0.25)
            cv.rect(xx - 0.5, Y(hz), xx + 0.5, Y(0.97), tuple(v * 0.85 for v in style["pavement"]))
        fill(0.97, 2, style["road"])
        tex = _texture(tex_rng, height, width, max(3, H // 16), 0.03)
        img *= tex[..., None]

    elif kind == "hall":
        fill(-1, hz, style["wall"])
        nt = 6
        a, b = style["tile_a"], style["tile_b"]
        rows = np.linspace(hz, 1.05, nt)
        for i in range(nt - 1):
            for k in range(first * 4, last * 4 + 4):
                cv.rect(X(k * 0.25), Y(rows[i]), X(k * 0.25 + 0.25), Y(rows[i + 1]), a if (i + k) % 2 == 0 else b)
        for k, r in cells():
            cx = k + 0.5
            cv.capsule(X(cx), Y(-0.2), X(cx), Y(hz), 0.06 * H, 0.06 * H, style["column"])
            cv.rect(X(cx - 0.085), Y(hz - 0.04), X(cx + 0.085), Y(hz), tuple(v * 0.85 for v in style["column"]))
            if r.random() < 0.6:
                c = _hsv(r.uniform(0, 1), r.uniform(0.4, 0.8), r.uniform(0.4, 0.8))
                bx = k + r.uniform(0.15, 0.3)
                cv.polygon([(X(bx), Y(0.08)), (X(bx + 0.16), Y(0.08)), (X(bx + 0.16), Y(0.36)),
                            (X(bx + 0.08), Y(0.31)), (X(bx), Y(0.36))], c)
        tex = _texture(tex_rng, height, width, max(4, H // 10), 0.025)
        img *= tex[..., None]

    elif kind == "yard":
        vgrad(-1, hz, _hsv(0.6, 0.45, 0.85), style["sky"])
        fill(hz, 2, style["grass"])
        for k, r in cells():
            cv.ellipse(X(k + 0.5), Y(hz + 0.02), 0.9 * H, r.uniform(0.08, 0.16) * H, 0.0, style["hills"])
        for k, r in cells():
            if r.random() < 0.55:
                tx = k + r.uniform(0.1, 0.9)
                th = r.uniform(0.2, 0.4)
                cv.capsule(X(tx), Y(hz - th * 0.5), X(tx), Y(hz + 0.02), 0.02 * H, 0.025 * H, (100, 70, 45))
                for _ in range(4):
                    cv.circle(X(tx + r.uniform(-0.08, 0.08)), Y(hz - th * 0.6 - r.uniform(0, 0.15)),
                              r.uniform(0.07, 0.11) * H, _hsv(r.uniform(0.22, 0.36), 0.6, r.uniform(0.3, 0.55)))
            for p in range(5):
                px = k + p * 0.2 + 0.1
                cv.rect(X(px) - 0.012 * H, Y(hz - 0.14), X(px) + 0.012 * H, Y(hz + 0.03), style["fence"])
            cv.rect(X(k), Y(hz - 0.11), X(k + 1), Y(hz - 0.09), style["fence"])
            cv.rect(X(k), Y(hz - 0.04), X(k + 1), Y(hz - 0.02), style["fence"])
        tex = _texture(tex_rng, height, width, max(3, H // 20), 0.06)
        ystart = max(0, int(Y(hz)))
        img[ystart:] *= tex[ystart:, :, None]

    elif kind == "kitchen":
        fill(-1, 0.30, _hsv(0, 0, 0.92))
        cab, tile = style["cabinet"], style["tile"]
        fill(0.30, 0.5, tile)
        ts = 0.045
        for j in range(int(0.2 / ts) + 1):
            yy = Y(0.30 + j * ts)
            cv.rect(-2, yy - 0.4, width + 2, yy + 0.4, tuple(v * 0.82 for v in tile))
        for k in range(int(first / ts) - 1, int(last / ts) + 2):
            xx = X(k * ts)
            cv.rect(xx - 0.4, Y(0.30), xx + 0.4, Y(0.5), tuple(v * 0.82 for v in tile))
        fill(0.5, style["horizon"], cab)
        if style["checker"]:
            for i in range(5):
                for k in range(first * 5, last * 5 + 5):
                    v0 = hz + i * (1.05 - hz) / 5
                    cv.rect(X(k * 0.2), Y(v0), X(k * 0.2 + 0.2), Y(v0 + (1.05 - hz) / 5),
                            style["floor"] if (i + k) % 2 else style["floor2"])
        else:
            fill(hz, 2, style["floor"])
        for k, r in cells():
            item = r.choice(["cabinets", "fridge", "stove", "sink"], p=[0.4, 0.2, 0.2, 0.2])
            if item == "fridge":
                fx = k + r.uniform(0.1, 0.5)
                steel = (200, 205, 210) if r.random() < 0.5 else (245, 245, 245)
                cv.rect(X(fx), Y(0.06), X(fx + 0.36), Y(hz), steel)
                cv.rect(X(fx), Y(0.3) - 0.5, X(fx + 0.36), Y(0.3) + 0.5, (120, 120, 125))
                cv.rect(X(fx + 0.3), Y(0.12), X(fx + 0.32), Y(0.26), (90, 90, 95))
                cv.rect(X(fx + 0.3), Y(0.34), X(fx + 0.32), Y(0.5), (90, 90, 95))
                continue
            for d in range(3):
                dx = k + d / 3.0
                cv.rect(X(dx + 0.015), Y(0.04), X(dx + 0.32), Y(0.27), cab)
                cv.rect(X(dx + 0.015), Y(0.04), X(dx + 0.32), Y(0.27), tuple(v * 0.8 for v in cab), alpha=0.25)
                cv.rect(X(dx + 0.26), Y(0.2), X(dx + 0.275), Y(0.25), (80, 80, 80))
                cv.rect(X(dx + 0.02), Y(0.55), X(dx + 0.315), Y(hz - 0.02), tuple(v * 0.93 for v in cab))
                cv.rect(X(dx + 0.26), Y(0.58), X(dx + 0.275), Y(0.64), (80, 80, 80))
            if item == "stove":
                sx = k + r.uniform(0.2, 0.6)
                cv.rect(X(sx), Y(0.48), X(sx + 0.3), Y(0.51), (30, 30, 30))
                for p in range(int(r.integers(1, 3))):
                    px = sx + 0.07 + p * 0.15
                    pc = _hsv(r.uniform(0, 1), r.uniform(0.0, 0.7), r.uniform(0.3, 0.9))
                    cv.rect(X(px - 0.06), Y(0.4), X(px + 0.06), Y(0.48), pc)
                    cv.ellipse(X(px), Y(0.4), 0.06 * H, 0.015 * H, 0.0, tuple(v * 0.7 for v in pc))
            elif item == "sink":
                wx = k + r.uniform(0.25, 0.55)
                cv.rect(X(wx - 0.16), Y(0.02), X(wx + 0.16), Y(0.26), (235, 235, 235))
                cv.rect(X(wx - 0.14), Y(0.04), X(wx + 0.14), Y(0.24), _hsv(0.58, 0.4, 0.95))
                cv.capsule(X(wx), Y(0.42), X(wx), Y(0.49), 0.008 * H, 0.008 * H, (170, 170, 175))
                cv.capsule(X(wx), Y(0.42), X(wx + 0.05), Y(0.42), 0.008 * H, 0.008 * H, (170, 170, 175))
            else:
                for _ in range(int(r.integers(1, 4))):
                    jx = k + r.uniform(0.05, 0.95)
                    jc = _hsv(r.uniform(0, 1), r.uniform(0.3, 0.8), r.uniform(0.4, 0.9))
                    cv.rect(X(jx - 0.025), Y(0.43), X(jx + 0.025), Y(0.5), jc)
        fill(0.5, 0.53, style["counter"])
        tex = _texture(tex_rng, height, width, max(4, H // 12), 0.02)
        img *= tex[..., None]

    elif kind == "beach":
        vgrad(-1, hz, _hsv(0.58, 0.6, 0.85), style["sky"])
        st = style["sand_top"]
        vgrad(hz, st, tuple(v * 0.8 for v in style["sea"]), style["sea"])
        fill(st, 2, style["sand"])
        for k, r in cells():
            for _ in range(3):
                wy = r.uniform(hz + 0.02, st - 0.01)
                wx = k + r.uniform(0, 1)
                cv.capsule(X(wx - 0.08), Y(wy), X(wx + 0.08), Y(wy), 0.004 * H + 0.4, 0.004 * H + 0.4, (235, 245, 250), False, 0.7)
            if r.random() < 0.5:
                cx, cy = k + r.uniform(0, 1), r.uniform(0.05, hz - 0.12)
                for j in range(3):
                    cv.circle(X(cx + j * 0.05), Y(cy + (0.01 if j == 1 else 0.02)), (0.04 if j == 1 else 0.03) * H,
                              (250, 250, 252), shaded=False, alpha=0.9)
            if r.random() < 0.55:
                px = k + r.uniform(0.1, 0.9)
                top = st - r.uniform(0.12, 0.22)
                base = st + r.uniform(0.06, 0.14)
                c1 = _hsv(r.uniform(0, 1), r.uniform(0.6, 0.9), r.uniform(0.7, 0.95))
                cv.capsule(X(px), Y(top), X(px), Y(base), 0.006 * H, 0.006 * H, (230, 230, 230))
                cv.polygon([(X(px - 0.2), Y(top + 0.06)), (X(px), Y(top - 0.03)), (X(px + 0.2), Y(top + 0.06))], c1)
                cv.polygon([(X(px - 0.07), Y(top + 0.06)), (X(px), Y(top - 0.03)), (X(px + 0.07), Y(top + 0.06))], (245, 245, 245))
            if r.random() < 0.45:
                tx, ty = k + r.uniform(0.1, 0.8), r.uniform(st + 0.06, 0.8)
                c2 = _hsv(r.uniform(0, 1), r.uniform(0.5, 0.9), r.uniform(0.6, 0.95))
                cv.polygon([(X(tx), Y(ty)), (X(tx + 0.22), Y(ty)), (X(tx + 0.26), Y(ty + 0.05)), (X(tx + 0.04), Y(ty + 0.05))], c2)
        cv.rect(-2, Y(st) - 0.6, width + 2, Y(st) + 0.012 * H, (245, 245, 240), alpha=0.8)
        tex = _texture(tex_rng, height, width, max(2, H // 24), 0.05)
        ystart = max(0, int(Y(st)))
        img[ystart:] *= tex[ystart:, :, None]

    elif kind == "gym":
        fill(-1, hz, style["wall"])
        fill(hz, 2, style["floor"])
        for k in range(first * 6, last * 6 + 6):
            xx = X(k / 6.0)
            cv.rect(xx - 0.4, Y(hz), xx + 0.4, Y(1.1), tuple(v * 0.9 for v in style["floor"]))
        cv.rect(-2, Y(hz + 0.12), width + 2, Y(hz + 0.12) + max(1.0, 0.012 * H), style["line"])
        for k, r in cells():
            item = r.choice(["bars", "hoop", "mats", "rack"], p=[0.4, 0.2, 0.25, 0.15])
            if item == "bars":
                for b in range(int(r.integers(2, 4))):
                    bx = k + 0.1 + b * 0.28
                    wood = (200, 150, 90)
                    cv.rect(X(bx), Y(0.05), X(bx) + 0.02 * H, Y(hz), wood)
                    cv.rect(X(bx + 0.22), Y(0.05), X(bx + 0.22) + 0.02 * H, Y(hz), wood)
                    for j in range(9):
                        yy = Y(0.1 + j * (hz - 0.12) / 9)
                        cv.rect(X(bx), yy, X(bx + 0.22), yy + max(1.0, 0.012 * H), tuple(v * 0.9 for v in wood))
            elif item == "hoop":
                hx = k + r.uniform(0.3, 0.7)
                cv.rect(X(hx - 0.14), Y(0.05), X(hx + 0.14), Y(0.24), (245, 245, 245))
                cv.rect(X(hx - 0.05), Y(0.14), X(hx + 0.05), Y(0.22), (200, 40, 40), alpha=0.8)
                cv.ellipse(X(hx), Y(0.25), 0.07 * H, 0.015 * H, 0.0, (230, 90, 20), ring=max(1.0, 0.01 * H))
            elif item == "mats":
                mx = k + r.uniform(0.05, 0.4)
                cv.rect(X(mx), Y(hz - 0.32), X(mx + 0.45), Y(hz), style["mat"])
                cv.rect(X(mx), Y(hz - 0.16) - 0.5, X(mx + 0.45), Y(hz - 0.16) + 0.5, tuple(v * 0.7 for v in style["mat"]))
            else:
                rx = k + r.uniform(0.1, 0.5)
                cv.rect(X(rx), Y(hz - 0.2), X(rx + 0.4), Y(hz - 0.18), (60, 60, 60))
                cv.rect(X(rx), Y(hz - 0.08), X(rx + 0.4), Y(hz - 0.06), (60, 60, 60))
                for d in range(5):
                    dx = rx + 0.04 + d * 0.08
                    for yy in (hz - 0.21, hz - 0.09):
                        cv.circle(X(dx), Y(yy), 0.022 * H, (40, 40, 45))
        tex = _texture(tex_rng, height, width, max(4, H // 12), 0.025)
        img *= tex[..., None]

    img *= np.asarray(style["tint"], np.float32)[None, None, :]
    return img


# --------------------------------------------------------------------------- moving distractors

def random_distractors(rng: np.random.Generator, duration: float, view_x0: float, view_w: float,
                       horizon: float) -> list[dict]:
    """1-2 things that move by themselves (ball, bird, balloon, leaf), independent of the class.

    Positions are in world units (u = frame heights); ``view_x0 .. view_x0 + view_w`` is roughly
    the part of the strip the camera sees.
    """
    out = []
    for _ in range(int(rng.integers(1, 3))):
        kind = rng.choice(["ball", "bird", "balloon", "leaf"])
        direction = 1.0 if rng.random() < 0.5 else -1.0
        t0 = rng.uniform(-0.3, 0.6) * duration
        speed = {"ball": rng.uniform(0.15, 0.45), "bird": rng.uniform(0.3, 0.7),
                 "balloon": rng.uniform(0.04, 0.12), "leaf": rng.uniform(0.08, 0.25)}[kind]
        x_start = view_x0 - 0.1 if direction > 0 else view_x0 + view_w + 0.1
        if kind == "balloon":
            x_start = view_x0 + rng.uniform(0.1, 0.9) * view_w
        d = {"kind": str(kind), "t0": t0, "x0": x_start, "vx": direction * speed,
             "color": _hsv(rng.uniform(0, 1), rng.uniform(0.6, 1.0), rng.uniform(0.6, 1.0)),
             "size": rng.uniform(0.022, 0.04), "phase": rng.uniform(0, 6.3),
             "y": rng.uniform(0.04, max(0.08, horizon - 0.12)) if kind in ("bird", "leaf") else
             rng.uniform(horizon + 0.05, 0.8) if kind == "ball" else 0.9,
             "freq": rng.uniform(1.5, 3.0), "bounce": rng.uniform(0.08, 0.2)}
        out.append(d)
    return out


def draw_distractors(cv: Canvas, ds: list[dict], t: float, H: int, cam_x: float, cam_y: float,
                     light: float) -> None:
    for d in ds:
        dt = t - d["t0"]
        if dt < 0:
            continue
        x = (d["x0"] + d["vx"] * dt) * H - cam_x
        s = d["size"] * H
        if x < -4 * s or x > cv.w + 4 * s:
            continue
        col = tuple(v * light for v in d["color"])
        if d["kind"] == "ball":
            y = (d["y"] - d["bounce"] * abs(math.sin(math.pi * d["freq"] * 0.5 * dt + d["phase"]))) * H - cam_y
            cv.circle(x, y, s, col)
        elif d["kind"] == "bird":
            y = (d["y"] + 0.02 * math.sin(0.8 * dt + d["phase"])) * H - cam_y
            flap = math.sin(2 * math.pi * d["freq"] * 2 * dt + d["phase"])
            dark = (35 * light, 35 * light, 40 * light)
            w = s * 1.3
            cv.capsule(x - w, y - flap * s * 0.8, x, y, max(0.6, s * 0.15), max(0.6, s * 0.15), dark, False)
            cv.capsule(x, y, x + w, y - flap * s * 0.8, max(0.6, s * 0.15), max(0.6, s * 0.15), dark, False)
        elif d["kind"] == "balloon":
            y = (d["y"] - d["vx"] * 0 - abs(d["vx"]) * dt * 1.5) * H - cam_y
            x = (d["x0"] + 0.03 * math.sin(1.3 * dt + d["phase"])) * H - cam_x
            cv.ellipse(x, y, s * 1.0, s * 1.25, 0.0, col)
            cv.capsule(x, y + s * 1.25, x + 0.2 * s, y + s * 3.5, 0.5, 0.5, (90, 90, 90), False)
        else:  # leaf / paper
            y = (d["y"] + 0.15 * dt + 0.03 * math.sin(2.0 * dt + d["phase"])) * H - cam_y
            a = 1.5 * dt + d["phase"]
            c, sn = math.cos(a) * s, math.sin(a) * s
            cv.polygon([(x - c, y - sn), (x - sn * 0.5, y + c * 0.5), (x + c, y + sn), (x + sn * 0.5, y - c * 0.5)], col)
