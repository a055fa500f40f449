"""Anti-aliased, shaded drawing with numpy signed distances (fast enough for ~1 ms per figure).

Every primitive is evaluated only inside its bounding box. Coverage is ``clip(r - d + 0.5, 0, 1)``
for a signed distance ``d`` in pixels (a one-pixel soft edge, i.e. box-filter anti-aliasing),
and shading is Lambertian on the primitive's round cross-section: a capsule is a tube, so its
normal at a pixel is ``(q / r, sqrt(1 - |q|^2 / r^2))`` with ``q`` the offset from its axis.
Images are float32 RGB in 0..255, pixel centres at integer coordinates.
"""

from __future__ import annotations

import math

import numpy as np

from csvr.synth.skeleton import HEAD, L_HAND, L_TOE, MID_HIP, R_HAND, R_TOE, Body

LIGHT = np.array([-0.45, -0.55, 0.70])
LIGHT = LIGHT / np.linalg.norm(LIGHT)
AMBIENT = 0.5
DIFFUSE = 0.62


_max, _min = np.maximum, np.minimum


def _clip01(a: np.ndarray) -> np.ndarray:
    """In-place clip to [0, 1] (two ufunc calls; ``np.clip``'s Python wrapper costs more)."""
    _max(a, 0.0, out=a)
    return _min(a, 1.0, out=a)


class Canvas:
    """A float32 image plus cached pixel-coordinate vectors."""

    def __init__(self, img: np.ndarray):
        self.img = img
        h, w = img.shape[:2]
        self.h, self.w = h, w
        self.xs = np.arange(w, dtype=np.float32)
        self.ys = np.arange(h, dtype=np.float32)[:, None]
        self.gx = np.broadcast_to(self.xs[None, :], (h, w))
        self.gy = np.broadcast_to(self.ys, (h, w))

    def _box(self, x0: float, y0: float, x1: float, y1: float):
        ix0, iy0 = max(0, int(math.floor(x0)) - 1), max(0, int(math.floor(y0)) - 1)
        ix1, iy1 = min(self.w, int(math.ceil(x1)) + 2), min(self.h, int(math.ceil(y1)) + 2)
        if ix0 >= ix1 or iy0 >= iy1:
            return None
        return iy0, iy1, ix0, ix1

    def _composite(self, box, cov: np.ndarray, color, shade: np.ndarray | float = 1.0) -> None:
        iy0, iy1, ix0, ix1 = box
        region = self.img[iy0:iy1, ix0:ix1]
        col = np.asarray(color, np.float32)
        if isinstance(shade, np.ndarray):
            src = shade[..., None] * col
            src -= region
        else:
            src = col * np.float32(shade) - region
        src *= cov[..., None]
        region += src

    # ------------------------------------------------------------------ primitives
    def capsule(self, ax, ay, bx, by, r0, r1, color, shaded=True, alpha=1.0, gain=1.0) -> None:
        """A tapered capsule (radius r0 at a, r1 at b), shaded as a tube."""
        rm = max(r0, r1)
        box = self._box(min(ax, bx) - rm, min(ay, by) - rm, max(ax, bx) + rm, max(ay, by) + rm)
        if box is None:
            return
        iy0, iy1, ix0, ix1 = box
        px = self.xs[ix0:ix1] - np.float32(ax)          # (w,)
        py = self.ys[iy0:iy1] - np.float32(ay)          # (h, 1)
        dx, dy = float(bx - ax), float(by - ay)
        l2 = dx * dx + dy * dy
        if l2 < 1e-6:
            t = None
            qx = np.broadcast_to(px[None, :], (iy1 - iy0, ix1 - ix0))
            qy = py
        else:
            t = (px * np.float32(dx / l2)) + (py * np.float32(dy / l2))
            _clip01(t)
            qx = px - t * np.float32(dx)
            qy = py - t * np.float32(dy)
        d2 = qx * qx
        d2 += qy * qy
        if t is None or abs(r1 - r0) < 1e-6:
            r = np.float32(r0)
            inv = np.float32(1.0 / max(r0, 0.5))
        else:
            r = t * np.float32(r1 - r0)
            r += np.float32(r0)
            inv = 1.0 / _max(r, 0.5)
        cov = r + np.float32(0.5) - np.sqrt(d2)
        _clip01(cov)
        if alpha != 1.0:
            cov *= np.float32(alpha)
        if shaded:
            ninv2 = inv * inv
            nz = 1.0 - d2 * ninv2
            _max(nz, 0.0, out=nz)
            np.sqrt(nz, out=nz)
            lam = qx * np.float32(LIGHT[0]) + qy * np.float32(LIGHT[1])
            lam *= inv
            nz *= np.float32(LIGHT[2])
            lam += nz
            _clip01(lam)
            lam *= np.float32(DIFFUSE * gain)
            lam += np.float32(AMBIENT * gain)
            self._composite(box, cov, color, lam)
        else:
            self._composite(box, cov, color, gain)

    def capsules(self, prims: list[tuple]) -> None:
        """Draw many capsules in order, evaluated together (one ragged batch of pixels).

        ``prims``: tuples ``(ax, ay, bx, by, r0, r1, R, G, B, gain, shaded, alpha)``. The same
        result as calling :meth:`capsule` for each in turn, at a fraction of the numpy calls.
        """
        if not prims:
            return
        A = np.asarray(prims, np.float32)
        ax, ay, bx, by, r0, r1 = (A[:, i] for i in range(6))
        col, gain, shaded, alpha = A[:, 6:9], A[:, 9], A[:, 10], A[:, 11]
        rm = np.maximum(r0, r1)
        x0 = np.clip(np.floor(np.minimum(ax, bx) - rm).astype(np.int64) - 1, 0, self.w)
        y0 = np.clip(np.floor(np.minimum(ay, by) - rm).astype(np.int64) - 1, 0, self.h)
        x1 = np.clip(np.ceil(np.maximum(ax, bx) + rm).astype(np.int64) + 2, 0, self.w)
        y1 = np.clip(np.ceil(np.maximum(ay, by) + rm).astype(np.int64) + 2, 0, self.h)
        w = np.maximum(x1 - x0, 0)
        h = np.maximum(y1 - y0, 0)
        area = w * h
        n = int(area.sum())
        if n == 0:
            return
        P = len(prims)
        pid = np.repeat(np.arange(P), area)
        ends = np.cumsum(area)
        starts = ends - area
        k = np.arange(n) - starts[pid]
        wp = w[pid]
        ly = k // wp
        px = (x0[pid] + (k - ly * wp)).astype(np.float32) - ax[pid]
        py = (y0[pid] + ly).astype(np.float32) - ay[pid]
        dx, dy = bx - ax, by - ay
        l2 = dx * dx + dy * dy
        il2 = np.where(l2 > 1e-6, 1.0 / np.maximum(l2, 1e-6), 0.0).astype(np.float32)
        dxp, dyp = dx[pid], dy[pid]
        t = (px * dxp + py * dyp) * il2[pid]
        _clip01(t)
        qx = px - t * dxp
        qy = py - t * dyp
        d2 = qx * qx + qy * qy
        r = r0[pid] + (r1 - r0)[pid] * t
        cov = r + np.float32(0.5) - np.sqrt(d2)
        _clip01(cov)
        cov *= alpha[pid]
        inv = 1.0 / _max(r, 0.5)
        nz = 1.0 - d2 * inv * inv
        _max(nz, 0.0, out=nz)
        np.sqrt(nz, out=nz)
        lam = (qx * np.float32(LIGHT[0]) + qy * np.float32(LIGHT[1])) * inv + nz * np.float32(LIGHT[2])
        _clip01(lam)
        g = gain[pid]
        shade = np.where(shaded[pid] > 0, (np.float32(AMBIENT) + np.float32(DIFFUSE) * lam) * g, g)
        src = shade[:, None] * col[pid]
        img = self.img
        for p in range(P):
            if area[p] == 0:
                continue
            s0, s1 = int(starts[p]), int(ends[p])
            hh, ww = int(h[p]), int(w[p])
            region = img[y0[p]:y0[p] + hh, x0[p]:x0[p] + ww]
            sp = src[s0:s1].reshape(hh, ww, 3)
            sp -= region
            sp *= cov[s0:s1].reshape(hh, ww, 1)
            region += sp

    def circle(self, cx, cy, r, color, shaded=True, alpha=1.0, gain=1.0) -> None:
        self.capsule(cx, cy, cx, cy, r, r, color, shaded, alpha, gain)

    def ellipse(self, cx, cy, rx, ry, angle, color, ring: float = 0.0, alpha=1.0, fill=None,
                fill_alpha=0.0) -> None:
        """An ellipse (or a ring of width ``ring`` px), rotated by ``angle`` radians."""
        rm = max(rx, ry)
        box = self._box(cx - rm, cy - rm, cx + rm, cy + rm)
        if box is None:
            return
        iy0, iy1, ix0, ix1 = box
        px = self.gx[iy0:iy1, ix0:ix1] - np.float32(cx)
        py = self.gy[iy0:iy1, ix0:ix1] - np.float32(cy)
        c, s = np.float32(math.cos(angle)), np.float32(math.sin(angle))
        u = (px * c + py * s) / np.float32(rx)
        v = (-px * s + py * c) / np.float32(ry)
        rho = np.sqrt(u * u + v * v)
        # approximate signed distance in pixels (exact on the axes)
        scale = np.float32(min(rx, ry))
        d = (rho - 1.0) * scale
        if ring > 0:
            cov = np.clip(np.float32(ring * 0.5) - np.abs(d + np.float32(ring * 0.5)) + 0.5, 0.0, 1.0)
            if fill is not None and fill_alpha > 0:
                inner = np.clip(-(d + np.float32(ring)) + 0.5, 0.0, 1.0) * np.float32(fill_alpha)
                self._composite(box, inner, fill)
        else:
            cov = np.clip(0.5 - d, 0.0, 1.0)
        if alpha != 1.0:
            cov = cov * np.float32(alpha)
        self._composite(box, cov, color)

    def rect(self, x0, y0, x1, y1, color, alpha=1.0) -> None:
        """An axis-aligned rectangle [x0, x1] x [y0, y1] with anti-aliased edges."""
        box = self._box(x0, y0, x1, y1)
        if box is None:
            return
        iy0, iy1, ix0, ix1 = box
        gx = self.gx[iy0:iy1, ix0:ix1]
        gy = self.gy[iy0:iy1, ix0:ix1]
        cx = np.clip(np.minimum(gx - np.float32(x0), np.float32(x1) - gx) + 0.5, 0.0, 1.0)
        cy = np.clip(np.minimum(gy - np.float32(y0), np.float32(y1) - gy) + 0.5, 0.0, 1.0)
        cov = cx * cy
        if alpha != 1.0:
            cov = cov * np.float32(alpha)
        self._composite(box, cov, color)

    def polygon(self, pts, color, alpha=1.0) -> None:
        """A convex polygon (vertices in either winding order) with anti-aliased edges."""
        pts = np.asarray(pts, np.float64)
        box = self._box(pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max())
        if box is None:
            return
        iy0, iy1, ix0, ix1 = box
        gx = self.gx[iy0:iy1, ix0:ix1]
        gy = self.gy[iy0:iy1, ix0:ix1]
        area = np.sum(pts[:, 0] * np.roll(pts[:, 1], -1) - np.roll(pts[:, 0], -1) * pts[:, 1])
        sign = 1.0 if area > 0 else -1.0
        d = None
        for i in range(len(pts)):
            x0, y0 = pts[i]
            x1, y1 = pts[(i + 1) % len(pts)]
            ex, ey = x1 - x0, y1 - y0
            n = math.hypot(ex, ey) or 1.0
            # inside distance for this edge (positive inside)
            e = np.float32(sign / n) * ((gy - np.float32(y0)) * np.float32(ex) - (gx - np.float32(x0)) * np.float32(ey))
            d = e if d is None else np.minimum(d, e)
        cov = np.clip(d + 0.5, 0.0, 1.0)
        if alpha != 1.0:
            cov = cov * np.float32(alpha)
        self._composite(box, cov, color)


# --------------------------------------------------------------------------- the figure

def draw_figure(cv: Canvas, S: np.ndarray, body: Body, scale: float, held: dict | None = None,
                light: float = 1.0) -> None:
    """Draw the figure for one frame. ``S`` is (NUM_POINTS, 3): pixel x, y and depth (bh)."""
    g = body.girth * scale
    sk, sh, tr, shoe, hair = body.skin, body.shirt, body.trousers, body.shoes, body.hair
    fore_col = sh if body.long_sleeves else sk
    shin_col = sk if body.shorts else tr
    torso_z = 0.5 * (S[1, 2] + S[MID_HIP, 2])

    parts: list[tuple[float, int, tuple]] = []

    def add(z, kind, *args):
        parts.append((z, len(parts), (kind, args)))

    def limb(i, j, r0, r1, col, bias=0.0):
        z = 0.5 * (S[i, 2] + S[j, 2]) + bias
        add(z, "cap", S[i, 0], S[i, 1], S[j, 0], S[j, 1], r0 * g, r1 * g, col, z)

    # torso: a tapered tube from the hips to just under the neck, widths as seen from the camera
    yaw_vis = abs(math.atan2(S[5, 2] - S[2, 2], (S[5, 0] - S[2, 0]) / scale + 1e-9))
    cw = math.sqrt((body.shoulder_w * math.cos(yaw_vis)) ** 2 + (body.torso_depth * math.sin(yaw_vis)) ** 2)
    hw = math.sqrt((body.hip_w * 1.25 * math.cos(yaw_vis)) ** 2 + (body.torso_depth * 0.95 * math.sin(yaw_vis)) ** 2)
    nx, ny = S[1, 0], S[1, 1]
    hx, hy = S[MID_HIP, 0], S[MID_HIP, 1]
    vx, vy = nx - hx, ny - hy
    ln = math.hypot(vx, vy) or 1.0
    ux, uy = vx / ln, vy / ln
    top = (nx - ux * cw * scale * 0.75, ny - uy * cw * scale * 0.75)
    bot = (hx + ux * hw * scale * 0.35, hy + uy * hw * scale * 0.35)
    add(torso_z - 0.004, "cap", bot[0], bot[1], top[0], top[1], hw * scale, cw * scale * 0.95, sh, torso_z)
    # trousers over the pelvis
    pel = (hx + ux * hw * scale * 0.2, hy + uy * hw * scale * 0.2)
    add(torso_z - 0.002, "cap", S[8, 0] * 0.5 + pel[0] * 0.5, S[8, 1] * 0.5 + pel[1] * 0.5,
        S[11, 0] * 0.5 + pel[0] * 0.5, S[11, 1] * 0.5 + pel[1] * 0.5, hw * scale * 0.95, hw * scale * 0.95, tr, torso_z)
    # neck + head
    add(torso_z + 0.001, "cap", S[1, 0], S[1, 1], S[HEAD, 0], S[HEAD, 1], 0.028 * g, 0.026 * g, sk, torso_z)
    add(S[HEAD, 2] + 0.05, "head")
    # legs
    for hip, kn, an, toe in ((8, 9, 10, R_TOE), (11, 12, 13, L_TOE)):
        limb(hip, kn, 0.052, 0.042, tr, -0.001)
        limb(kn, an, 0.04, 0.03, shin_col)
        limb(an, toe, 0.028, 0.024, shoe, 0.0005)
    # arms
    for shd, el, wr, tip in ((2, 3, 4, R_HAND), (5, 6, 7, L_HAND)):
        limb(shd, el, 0.035, 0.03, sh, 0.002)
        limb(el, wr, 0.029, 0.024, fore_col, 0.002)
        hx2 = S[wr, 0] + 0.45 * (S[tip, 0] - S[wr, 0])
        hy2 = S[wr, 1] + 0.45 * (S[tip, 1] - S[wr, 1])
        add(0.5 * (S[wr, 2] + S[tip, 2]) + 0.003, "cap", hx2, hy2, hx2, hy2, 0.03 * g, 0.03 * g, sk, S[wr, 2])
    if held is not None:
        add(S[4, 2] + 0.0025, "held")

    parts.sort(key=lambda p: (p[0], p[1]))
    batch: list[tuple] = []
    for z, _, (kind, args) in parts:
        if kind == "cap":
            ax, ay, bx, by, r0, r1, col, zz = args
            # parts behind the body get a little darker (ambient occlusion)
            gain = light * (0.8 if zz < torso_z - 0.04 else 1.0)
            batch.append((ax, ay, bx, by, max(r0, 0.6), max(r1, 0.6), *col, gain, 1.0, 1.0))
        elif kind == "head":
            batch.extend(_head_prims(S, body, scale, light))
        elif kind == "held":
            cv.capsules(batch)
            batch = []
            draw_held(cv, S, held, scale, light)
    cv.capsules(batch)


def _head_prims(S: np.ndarray, body: Body, scale: float, light: float) -> list[tuple]:
    """The head as capsule primitives: skull, hair cap (and long hair), face, eyes."""
    r = body.head_r * scale
    cx, cy = S[HEAD, 0], S[HEAD, 1]
    sk, hc = body.skin, body.hair
    out = [(cx, cy, cx, cy, r, r, *sk, light, 1.0, 1.0)]
    # hair: a cap on the back/top of the head, opposite to where the face points
    fx, fy = S[0, 0] - cx, S[0, 1] - cy
    fz = S[0, 2] - S[HEAD, 2]
    fl = math.hypot(fx, fy) + 1e-6
    k = min(1.0, fl / (r + 1e-6))
    bx, by = -fx / fl * k, -fy / fl * k
    ox, oy = 0.45 * bx * r, -0.35 * r + 0.4 * by * r
    hr = r * (0.98 + 0.1 * body.hair_len)
    if fz < -0.3 * body.head_r:   # facing away: the back of the head is all hair
        out.append((cx, cy - 0.05 * r, cx, cy - 0.05 * r, hr, hr, *hc, light, 1.0, 1.0))
        return out
    out.append((cx + ox, cy + oy, cx + ox, cy + oy, hr * 0.92, hr * 0.92, *hc, light, 1.0, 1.0))
    if body.hair_len > 0.6:
        out.append((cx + ox, cy + oy, cx + ox * 1.3, cy + r * 1.2, hr * 0.55, hr * 0.45, *hc, light, 1.0, 1.0))
    fcx, fcy = cx + 0.25 * fx / fl * r * k, cy + 0.18 * r
    out.append((fcx, fcy, fcx, fcy, r * 0.8, r * 0.8, *sk, light, 1.0, 1.0))
    if r >= 4.5:  # eyes, only when large enough to read
        for j in (14, 15):
            if S[j, 2] - S[HEAD, 2] > 0.0:
                e = max(0.6, 0.12 * r)
                out.append((S[j, 0], S[j, 1], S[j, 0], S[j, 1], e, e, 25, 20, 20, 1.0, 0.0, 0.8))
    return out


def draw_held(cv: Canvas, S: np.ndarray, held: dict, scale: float, light: float) -> None:
    """A racket or a bat in the right hand, pointing along the forearm turned by ``held['angle']``."""
    wx, wy = S[4, 0], S[4, 1]
    tx, ty = S[R_HAND, 0], S[R_HAND, 1]
    dx, dy = tx - wx, ty - wy
    ln = math.hypot(dx, dy)
    if ln < 1e-3:
        dx, dy, ln = 0.0, 1.0, 1.0
    ang = math.atan2(dy, dx) + held.get("angle", 0.0)
    ux, uy = math.cos(ang), math.sin(ang)
    gx, gy = wx + 0.55 * (tx - wx), wy + 0.55 * (ty - wy)
    if held["kind"] == "racket":
        L = held["handle"] * scale
        ex, ey = gx + ux * L, gy + uy * L
        cv.capsule(gx - ux * 0.02 * scale, gy - uy * 0.02 * scale, ex, ey, 0.012 * scale, 0.009 * scale,
                   held["grip"], gain=light)
        rx, ry = held["head_a"] * scale, held["head_b"] * scale
        hcx, hcy = ex + ux * rx * 0.95, ey + uy * rx * 0.95
        ring = max(1.0, 0.018 * scale)
        cv.ellipse(hcx, hcy, rx, ry, ang, held["frame"], ring=ring, fill=held["strings"], fill_alpha=0.55)
    else:  # bat
        L = held["length"] * scale
        ex, ey = gx + ux * L, gy + uy * L
        cv.capsule(gx - ux * 0.03 * scale, gy - uy * 0.03 * scale, ex, ey, 0.011 * scale,
                   held["barrel"] * scale, held["color"], gain=light)
        if held.get("tape") is not None:
            cv.capsule(gx - ux * 0.03 * scale, gy - uy * 0.03 * scale, gx + ux * 0.06 * scale,
                       gy + uy * 0.06 * scale, 0.0125 * scale, 0.0125 * scale, held["tape"], gain=light)


def random_held(kind: str, rng: np.random.Generator) -> dict:
    """Appearance of a held object; shapes stay in their class, colours vary per video."""
    if kind == "racket":
        frames = [(200, 30, 30), (30, 60, 200), (20, 20, 20), (240, 240, 240), (250, 200, 0), (0, 150, 90)]
        return {"kind": "racket", "handle": rng.uniform(0.09, 0.12), "head_a": rng.uniform(0.085, 0.105),
                "head_b": rng.uniform(0.065, 0.08), "frame": frames[rng.integers(len(frames))],
                "grip": (30, 30, 30) if rng.random() < 0.5 else (230, 230, 230),
                "strings": (235, 235, 220), "angle": rng.uniform(-0.5, 0.5)}
    if kind == "bat":
        colors = [(196, 150, 95), (170, 120, 70), (150, 150, 160), (25, 25, 25), (205, 175, 120)]
        return {"kind": "bat", "length": rng.uniform(0.33, 0.4), "barrel": rng.uniform(0.026, 0.034),
                "color": colors[rng.integers(len(colors))], "angle": rng.uniform(-0.5, 0.5),
                "tape": (20, 20, 20) if rng.random() < 0.5 else None}
    raise ValueError(f"unknown held object {kind!r}")
