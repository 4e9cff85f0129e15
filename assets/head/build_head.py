"""Build the toolkit's default head, ``assets/head/head.glb``, from nothing but numpy.

The head is sculpted as a signed distance field (smoothly blended ellipsoids and
capsules: cranium, hair, jaw, chin, cheeks, nose, brow, lips, ears, neck).  A
latitude/longitude grid of rays from the middle of the head is projected onto
that surface, so the mesh is a clean quad grid.  The grid is cut along the lip
line and each lip gets an inner surface that curls back into a mouth bag, so
the mouth really opens.  Eyeballs (sclera, iris, pupil), eyelid shells, upper
and lower teeth and a tongue are separate primitives of the same mesh.

Every ARKit blendshape is a morph target on every primitive (zero where it does
not apply): region weights with smooth falloff times displacements, and the jaw
targets are rotations about a hinge axis through the ears.

Run from the repository root::

    .venv/bin/python assets/head/build_head.py            # writes assets/head/head.glb

Units are metres, +Y up, the face looks along +Z, the character's left is +X.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from toolkit.animation import ARKIT_BLENDSHAPES  # noqa: E402

OUT = Path(__file__).resolve().parent / "head.glb"


# ---------------------------------------------------------------------------
# signed distance primitives (p: [..., 3])
# ---------------------------------------------------------------------------
def sd_ellipsoid(p, c, r):
    q = (p - np.asarray(c)) / np.asarray(r)
    k0 = np.linalg.norm(q, axis=-1)
    k1 = np.linalg.norm(q / np.asarray(r), axis=-1)
    return k0 * (k0 - 1.0) / np.maximum(k1, 1e-9)


def sd_capsule(p, a, b, r):
    a, b = np.asarray(a, float), np.asarray(b, float)
    pa, ba = p - a, b - a
    h = np.clip((pa @ ba) / (ba @ ba), 0.0, 1.0)
    return np.linalg.norm(pa - h[..., None] * ba, axis=-1) - r


def smin(a, b, k):
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b + (a - b) * h - k * h * (1.0 - h)


def smax(a, b, k):
    return -smin(-a, -b, k)


def smoothstep(e0, e1, x):
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def gauss(p, c, r):
    """Smooth bump 1 at c falling to ~0 at distance ~2r (anisotropic r)."""
    q = (p - np.asarray(c)) / np.asarray(r)
    return np.exp(-0.5 * np.sum(q * q, axis=-1))


# ---------------------------------------------------------------------------
# the sculpt
# ---------------------------------------------------------------------------
MOUTH_Y = -0.069        # lip line height at the middle
MOUTH_Z = 0.0915        # lip line depth at the middle (front of the lips)
MOUTH_HALF_W = 0.0235   # half width of the mouth, corner to middle
EYE_C = np.array([0.0315, 0.010, 0.0605])  # left eye centre (+x); right eye mirrored
EYE_R = 0.0152
HINGE = np.array([0.0, -0.022, -0.006])     # jaw hinge (axis along x)
NECK_CUT_Y = -0.215
CENTER = np.array([0.0, -0.012, 0.0])      # rays start here


def head_sdf(p):
    x = p[..., 0:1]
    pm = np.concatenate([np.abs(x), p[..., 1:]], axis=-1)  # mirrored: model the left side only
    d = sd_ellipsoid(p, (0, 0.022, -0.008), (0.074, 0.094, 0.094))                 # cranium
    d = smin(d, sd_ellipsoid(p, (0, -0.040, 0.018), (0.064, 0.072, 0.066)), 0.02)  # face mass
    d = smin(d, sd_ellipsoid(pm, (0.031, -0.078, 0.030), (0.028, 0.030, 0.046)), 0.022)  # jaw sides
    d = smin(d, sd_ellipsoid(p, (0, -0.098, 0.050), (0.024, 0.019, 0.026)), 0.018)  # chin
    d = smin(d, sd_ellipsoid(pm, (0.037, -0.026, 0.056), (0.025, 0.023, 0.025)), 0.02)  # cheeks
    d = smin(d, sd_capsule(pm, (0.012, 0.024, 0.076), (0.036, 0.028, 0.070), 0.0085), 0.012)  # brow
    # nose: bridge, tip, wings
    d = smin(d, sd_capsule(p, (0, 0.010, 0.080), (0, -0.027, 0.099), 0.0062), 0.010)
    d = smin(d, sd_ellipsoid(p, (0, -0.030, 0.099), (0.0095, 0.0085, 0.0092)), 0.006)
    d = smin(d, sd_ellipsoid(pm, (0.0092, -0.035, 0.090), (0.0062, 0.0055, 0.0062)), 0.005)
    # muzzle and lips
    d = smin(d, sd_ellipsoid(p, (0, -0.062, 0.070), (0.032, 0.025, 0.022)), 0.012)
    d = smin(d, sd_ellipsoid(p, (0, MOUTH_Y + 0.0045, MOUTH_Z - 0.0085), (0.022, 0.0062, 0.0092)), 0.004)
    d = smin(d, sd_ellipsoid(p, (0, MOUTH_Y - 0.0052, MOUTH_Z - 0.0095), (0.0195, 0.0068, 0.0092)), 0.004)
    # lip line crease and the groove under the lower lip
    d = smax(d, -sd_capsule(p, (-0.02, MOUTH_Y, MOUTH_Z + 0.0012), (0.02, MOUTH_Y, MOUTH_Z + 0.0012), 0.0011), 0.0022)
    # eye sockets (the eyeballs sit in them)
    d = smax(d, -sd_ellipsoid(pm, EYE_C + (0, 0.0, 0.004), (0.0170, 0.0125, 0.014)), 0.006)
    # ears
    d = smin(d, sd_ellipsoid(pm, (0.073, -0.005, -0.008), (0.010, 0.026, 0.017)), 0.008)
    # neck, cut flat at the bottom
    d = smin(d, sd_capsule(p, (0, -0.07, -0.020), (0, -0.30, -0.026), 0.044), 0.03)
    # hair: a cap over the cranium with a soft fringe
    hair = sd_ellipsoid(p, (0, 0.030, -0.014), (0.079, 0.099, 0.099))
    hair = smax(hair, -(p[..., 1] - 0.060 + 0.5 * np.maximum(-p[..., 2], 0)), 0.02)  # off the forehead
    d = smin(d, hair, 0.006)
    d = np.maximum(d, NECK_CUT_Y - p[..., 1])
    return d


def hair_mask(p):
    """1 on hair, 0 on skin: a hairline high on the forehead, over the ears, low at the nape."""
    ang = np.abs(np.arctan2(p[..., 0], p[..., 2] + 0.01))          # 0 front .. pi back
    line_y = np.interp(ang, [0.0, 0.35, 0.85, 1.35, 1.75, 2.3, np.pi],
                       [0.062, 0.060, 0.050, 0.032, 0.028, -0.020, -0.050])
    m = smoothstep(-0.0025, 0.0025, p[..., 1] - line_y)
    ear = gauss(np.concatenate([np.abs(p[..., :1]), p[..., 1:]], -1), (0.075, -0.005, -0.008), (0.012, 0.03, 0.02))
    return np.clip(m * (1 - ear), 0, 1)


def project_rays(dirs, t_max=0.35, n=420):
    """Outermost surface point along each ray from CENTER."""
    ts = np.linspace(0.0, t_max, n)
    inside = np.zeros((len(dirs), n), bool)
    for i0 in range(0, n, 60):
        pts = CENTER + dirs[:, None, :] * ts[None, i0:i0 + 60, None]
        inside[:, i0:i0 + 60] = head_sdf(pts) < 0
    last = n - 1 - np.argmax(inside[:, ::-1], axis=1)
    lo, hi = ts[last], ts[np.minimum(last + 1, n - 1)]
    for _ in range(30):
        mid = 0.5 * (lo + hi)
        ins = head_sdf(CENTER + dirs * mid[:, None]) < 0
        lo, hi = np.where(ins, mid, lo), np.where(ins, hi, mid)
    return CENTER + dirs * lo[:, None]


def sdf_normal(p, eps=2e-4):
    g = np.zeros_like(p)
    for k in range(3):
        e = np.zeros(3)
        e[k] = eps
        g[:, k] = head_sdf(p + e) - head_sdf(p - e)
    return g / np.linalg.norm(g, axis=1, keepdims=True)


# ---------------------------------------------------------------------------
# mesh helpers
# ---------------------------------------------------------------------------
def warped_samples(n, lo, hi, dense_at, dense_w, gain):
    """n increasing samples on [lo, hi], denser (by `gain`) within dense_w of dense_at."""
    u = np.linspace(lo, hi, 4000)
    dens = 1.0 + gain * np.exp(-0.5 * ((u - dense_at) / dense_w) ** 2)
    cdf = np.concatenate([[0], np.cumsum(0.5 * (dens[1:] + dens[:-1]) * np.diff(u))])
    return np.interp(np.linspace(0, cdf[-1], n), cdf, u)


def quad_tris(a, b, c, d):
    """Triangles of quads a-b-c-d (counter-clockwise seen from outside), dropping degenerate ones."""
    t = np.concatenate([np.stack([a, b, c], -1).reshape(-1, 3), np.stack([a, c, d], -1).reshape(-1, 3)])
    ok = (t[:, 0] != t[:, 1]) & (t[:, 1] != t[:, 2]) & (t[:, 0] != t[:, 2])
    return t[ok]


def uv_sphere(n_lat, n_lon, pole_axis):
    """Unit sphere with poles on `pole_axis` (+Z for eyes); returns verts, tris, polar angle per vert."""
    th = np.linspace(0, np.pi, n_lat + 1)[1:-1]
    ph = np.linspace(0, 2 * np.pi, n_lon, endpoint=False)
    T, P = np.meshgrid(th, ph, indexing="ij")
    v = np.stack([np.sin(T) * np.cos(P), np.sin(T) * np.sin(P), np.cos(T)], -1).reshape(-1, 3)
    v = np.concatenate([[[0, 0, 1]], v, [[0, 0, -1]]])
    polar = np.concatenate([[0], T.ravel(), [np.pi]])
    idx = 1 + np.arange((n_lat - 1) * n_lon).reshape(n_lat - 1, n_lon)
    nxt = np.roll(idx, -1, axis=1)
    tris = [quad_tris(idx[:-1], idx[1:], nxt[1:], nxt[:-1])]
    tris.append(np.stack([np.zeros(n_lon, int), idx[0], nxt[0]], -1))
    last = len(v) - 1
    tris.append(np.stack([np.full(n_lon, last), nxt[-1], idx[-1]], -1))
    tris = np.concatenate(tris)
    if pole_axis != "z":
        raise NotImplementedError
    return v, tris, polar


def rot_x(angle):
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def rot_y(angle):
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def rotate_about(p, R, pivot):
    return (p - pivot) @ R.T + pivot


# ---------------------------------------------------------------------------
# parts
# ---------------------------------------------------------------------------
class Part:
    def __init__(self, name, verts, tris, material, colors=None, ref=None, side=None):
        self.name, self.v, self.t, self.material = name, np.asarray(verts, float), np.asarray(tris, np.int64), material
        self.colors = colors
        self.ref = self.v.copy() if ref is None else ref   # where region weights are evaluated
        self.side = np.zeros(len(self.v)) if side is None else side  # +1 upper lip, -1 lower lip, 0 other
        self.targets: dict[str, np.ndarray] = {}

    def add(self, name, delta):
        self.targets[name] = self.targets.get(name, np.zeros_like(self.v)) + delta


def build_skin():
    n_cols, n_rows = 104, 78
    # columns: azimuth, denser over the face; force the mouth corners onto columns
    half = np.linspace(0, 1, n_cols // 2 + 1)[1:]
    az_pos = np.pi * (0.40 * half + 0.60 * half ** 3)
    corner_az = np.arctan2(MOUTH_HALF_W, MOUTH_Z - 0.012)
    az_pos[np.argmin(np.abs(az_pos - corner_az))] = corner_az
    az = np.concatenate([-az_pos[::-1], [0.0], az_pos[:-1]])   # symmetric, -pi .. pi (exclusive)
    n_cols = len(az)
    # rows: elevation from the neck pole to the crown, denser around the mouth and eyes
    mouth_el = np.arctan2(MOUTH_Y - CENTER[1], MOUTH_Z)
    el = warped_samples(n_rows, -np.pi / 2, np.pi / 2, 0.0, 0.55, 2.2)[1:-1]
    rm = int(np.argmin(np.abs(el - mouth_el)))
    el[rm] = mouth_el
    E, A = np.meshgrid(el, az, indexing="ij")
    dirs = np.stack([np.cos(E) * np.sin(A), np.sin(E), np.cos(E) * np.cos(A)], -1).reshape(-1, 3)
    dirs = np.concatenate([dirs, [[0, -1, 0], [0, 1, 0]]])
    verts = project_rays(dirs)
    nr = len(el)
    grid = np.arange(nr * n_cols).reshape(nr, n_cols)
    bottom, top = nr * n_cols, nr * n_cols + 1
    ref = verts.copy()
    side = np.zeros(len(verts))

    # the lip slit: seam vertices strictly between the corners get a lower copy
    jmid = int(np.argmin(np.abs(az)))
    jl = int(np.argmin(np.abs(az + corner_az)))
    jr = int(np.argmin(np.abs(az - corner_az)))
    slit = np.arange(jl + 1, jr)
    upper_seam = grid[rm, jl:jr + 1].copy()
    lower_seam = upper_seam.copy()
    new = np.arange(len(verts), len(verts) + len(slit))
    lower_seam[1:-1] = new
    verts = np.concatenate([verts, verts[grid[rm, slit]]])
    ref = np.concatenate([ref, ref[grid[rm, slit]]])
    side = np.concatenate([side, np.zeros(len(slit))])
    grid_below = grid.copy()
    grid_below[rm, slit] = new

    tris = []
    nxt = np.roll(np.arange(n_cols), -1)
    for r in range(nr - 1):
        lo_row = grid[r]   # above the seam the quads use the upper copies, below it the lower ones
        up_row = grid_below[r + 1] if (r + 1) == rm else grid[r + 1]
        tris.append(quad_tris(lo_row, lo_row[nxt], up_row[nxt], up_row))
    tris.append(np.stack([np.full(n_cols, bottom), grid[0][nxt], grid[0]], -1))
    tris.append(np.stack([np.full(n_cols, top), grid[-1], grid[-1][nxt]], -1))

    # inner lip surfaces: curl back from the seam into the mouth
    t = (az[jl:jr + 1] - az[jmid]) / corner_az          # -1 .. 1 across the mouth
    thick = np.sqrt(np.clip(1 - t ** 2, 0, 1))
    depth = np.array([0.0016, 0.0040, 0.0068, 0.0098])
    rise = np.array([0.0014, 0.0026, 0.0034, 0.0038])
    seam_p = verts[upper_seam]
    for sgn, seam in ((+1, upper_seam), (-1, lower_seam)):
        prev = seam
        for k in range(len(depth)):
            p = seam_p + np.stack([0 * t, sgn * rise[k] * thick, -depth[k] * thick], -1)
            idx = np.empty(len(t), int)
            idx[0], idx[-1] = seam[0], seam[-1]                   # corners are shared
            idx[1:-1] = np.arange(len(verts), len(verts) + len(t) - 2)
            keep = np.zeros(len(t), bool)
            keep[1:-1] = True
            verts = np.concatenate([verts, p[keep]])
            r_ = seam_p + np.stack([0 * t, sgn * (0.0015 + 0.0006 * k) * np.ones_like(t), 0 * t], -1)
            ref = np.concatenate([ref, r_[keep]])
            side = np.concatenate([side, np.full(keep.sum(), float(sgn))])
            if sgn > 0:   # upper lip: inner row sits "below" the previous row in the grid sense
                tris.append(quad_tris(idx[:-1], idx[1:], prev[1:], prev[:-1]))
            else:
                tris.append(quad_tris(prev[:-1], prev[1:], idx[1:], idx[:-1]))
            prev = idx
    side[upper_seam[1:-1]] = 1
    side[lower_seam[1:-1]] = -1
    ref[upper_seam[1:-1]] += (0, 0.0012, 0)
    ref[lower_seam[1:-1]] -= (0, 0.0012, 0)
    tris = np.concatenate(tris)
    info = dict(grid=grid, rm=rm, upper_seam=upper_seam, lower_seam=lower_seam, jl=jl, jr=jr)
    return verts, tris, ref, side, info


def skin_colors(v, ref, side):
    """Per-vertex colour multipliers on the skin tone: lips, brows, blush, hair."""
    n = len(v)
    col = np.ones((n, 3))
    pm = np.concatenate([np.abs(ref[:, :1]), ref[:, 1:]], 1)
    # lips: an ellipse around the lip line, slightly wider for the lower lip
    dx = pm[:, 0] / (MOUTH_HALF_W + 0.0015)
    dy_up = (ref[:, 1] - MOUTH_Y) / (0.0078 - 0.0020 * dx ** 2)
    dy_lo = (MOUTH_Y - ref[:, 1]) / (0.0088 - 0.0030 * dx ** 2)
    dy = np.where(ref[:, 1] >= MOUTH_Y, dy_up, dy_lo)
    front = smoothstep(MOUTH_Z - 0.030, MOUTH_Z - 0.018, ref[:, 2])
    lip = (1 - smoothstep(0.80, 1.05, np.sqrt(dx ** 2 + np.clip(dy, 0, None) ** 2))) * front
    lip = np.maximum(lip, (side != 0) * 1.0)
    lip_col = np.array([0.74, 0.38, 0.42])
    col = col * (1 - lip[:, None]) + lip_col * lip[:, None]
    # inner lip surfaces darken towards the mouth
    inner = (side != 0) & (v[:, 2] < ref[:, 2] - 0.003)
    col[inner] *= 0.55
    # cheek blush
    blush = 0.22 * gauss(pm, (0.040, -0.035, 0.070), (0.014, 0.010, 0.03))
    col = col * (1 - blush[:, None]) + np.array([1.0, 0.62, 0.62]) * blush[:, None]
    # hair
    h = hair_mask(ref)
    hair_col = np.array([0.075, 0.065, 0.065])
    col = col * (1 - h[:, None]) + hair_col * h[:, None]
    return np.clip(col, 0, 1)


def brow_curve(u, sign):
    """Points along the left (+1) or right (-1) eyebrow, u = 0 inner end .. 1 outer end, and the width."""
    x = sign * (0.014 + 0.034 * u)
    y = 0.0285 + 0.0075 * np.sin(np.pi * np.clip(u * 0.85 + 0.05, 0, 1)) - 0.004 * u ** 2
    width = 0.0052 * (1 - 0.55 * u) * np.clip(u / 0.08, 0.35, 1) ** 0.5 * np.clip((1 - u) / 0.12, 0.25, 1) ** 0.5
    return x, y, width


def build_brow(sign):
    """A thin ribbon lying on the skin above the eye."""
    n_u, n_w = 26, 4
    u = np.linspace(0, 1, n_u)
    x, y, width = brow_curve(u, sign)
    w = np.linspace(-0.5, 0.5, n_w)
    X = np.repeat(x[:, None], n_w, 1)
    Y = y[:, None] + w[None, :] * width[:, None]
    # project onto the skin along rays from the head centre, then lift a little off it
    guess = np.stack([X.ravel(), Y.ravel(), np.full(X.size, 0.08)], 1)
    dirs = guess - CENTER
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    p = project_rays(dirs)
    lift = 0.0006 * (1 + 0.6 * (1 - (2 * np.tile(w, n_u)) ** 2))
    p += sdf_normal(p) * lift[:, None]
    idx = np.arange(n_u * n_w).reshape(n_u, n_w)
    if sign > 0:
        tris = quad_tris(idx[:-1, :-1], idx[1:, :-1], idx[1:, 1:], idx[:-1, 1:])
    else:
        tris = quad_tris(idx[:-1, 1:], idx[1:, 1:], idx[1:, :-1], idx[:-1, :-1])
    return p, tris


def build_eye(sign):
    """Sclera, iris and pupil primitives of one eyeball (sign +1 = left/+x)."""
    v, tris, polar = uv_sphere(24, 36, "z")
    c = EYE_C * (sign, 1, 1)
    # cornea bulge over the iris
    bulge = 1 + 0.08 * np.clip(np.cos(polar / 0.55 * np.pi / 2), 0, None) * (polar < 0.55)
    # aim the eyes slightly inwards and down (a relaxed gaze at the camera)
    R = rot_y(-sign * 0.02) @ rot_x(0.03)
    p = (v * bulge[:, None] * EYE_R) @ R.T + c
    tri_polar = polar[tris].mean(1)
    parts = {}
    # the back of the eyeball is never seen: keep the front 115 degrees
    for name, lo, hi in (("pupil", -1, 0.22), ("iris", 0.22, 0.56), ("sclera", 0.56, np.radians(115))):
        sel = (tri_polar >= lo) & (tri_polar < hi)
        parts[name] = tris[sel]
    return p, parts, c


def build_lid(sign, upper):
    """An eyelid shell around the eyeball; its edge sits above (upper) or below the iris."""
    c = EYE_C * (sign, 1, 1)
    n_a, n_b = 30, 14
    alpha = np.linspace(-1.25, 1.25, n_a)                  # around the eye horizontally
    if upper:
        beta = np.concatenate([np.linspace(0.30, 1.2, n_b), np.linspace(1.3, 2.6, 6)])
    else:
        beta = -np.concatenate([np.linspace(0.62, 1.2, 8), np.linspace(1.3, 2.4, 5)])
    A, B = np.meshgrid(alpha, beta, indexing="ij")
    edge = np.abs(beta - beta[0])[None, :] * np.ones_like(A)
    # radius: thick rim at the lid edge, hugging the eyeball further back
    r = EYE_R * (1.07 + 0.03 * np.exp(-edge / 0.07) - 0.03 * (np.abs(A) / 1.25) ** 4)
    # the lid edge follows an almond: it dips towards the corners
    Bc = B + np.where(upper, -1, 1) * 0.18 * (A / 1.25) ** 2 * (B == beta[0])
    d = np.stack([np.cos(Bc) * np.sin(A), np.sin(Bc), np.cos(Bc) * np.cos(A)], -1)
    R = rot_y(sign * 0.10)   # the eye opening turns slightly outwards
    p = (d * r[..., None]) @ R.T + c
    p = p.reshape(-1, 3)
    idx = np.arange(n_a * len(beta)).reshape(n_a, len(beta))
    if upper:
        tris = quad_tris(idx[:-1, :-1], idx[1:, :-1], idx[1:, 1:], idx[:-1, 1:])
    else:
        tris = quad_tris(idx[:-1, 1:], idx[1:, 1:], idx[1:, :-1], idx[:-1, :-1])
    # colour: skin, with a dark lash line on the upper edge
    col = np.ones((len(p), 3))
    e = edge.reshape(-1)
    lash = (1 - smoothstep(0.0, 0.12, e)) * (1.0 if upper else 0.35)
    col = col * (1 - lash[:, None]) + np.array([0.10, 0.08, 0.08]) * lash[:, None]
    return p, tris, col, edge.reshape(-1)


def build_teeth(upper):
    """A rounded band of teeth following the dental arch."""
    n_u, n_v = 34, 10
    u = np.linspace(-1, 1, n_u)
    half = 0.0215 if upper else 0.0185
    front = 0.0815 if upper else 0.0775
    x = half * np.sin(u * 1.35) / np.sin(1.35)
    z = front - 0.020 * u ** 2
    h = 0.0090 if upper else 0.0072
    # upper biting edge just above the lip line, the lower teeth just under it (behind the upper)
    centre_y = MOUTH_Y + 0.0002 + h / 2 if upper else MOUTH_Y - 0.0022 - h / 2
    # cross-section: a flattened loop (front face, biting edge, back face)
    w = np.linspace(0, 2 * np.pi, n_v, endpoint=False)
    cy = -np.cos(w) * h / 2 * (1 if upper else -1)
    cz = np.sin(w) * 0.0022
    # scalloped biting edge: one bump per tooth
    scal = 1 - 0.10 * np.abs(np.sin(u * 5.5 * np.pi / 2))
    tan = np.stack([np.gradient(x), np.zeros_like(x), np.gradient(z)], -1)
    tan /= np.linalg.norm(tan, axis=1, keepdims=True)
    nrm = np.stack([tan[:, 2], np.zeros_like(x), -tan[:, 0]], -1)  # outward in xz
    P = (np.stack([x, np.full_like(x, centre_y), z], -1)[:, None, :]
         + nrm[:, None, :] * cz[None, :, None]
         + np.array([0, 1, 0])[None, None, :] * (cy[None, :, None] * scal[:, None, None]))
    # taper the back ends
    P = P.reshape(-1, 3)
    idx = np.arange(n_u * n_v).reshape(n_u, n_v)
    nx = np.roll(idx, -1, axis=1)
    tris = quad_tris(idx[:-1], idx[1:], nx[1:], nx[:-1])
    # close the ends with fans
    for row, flip in ((idx[0], True), (idx[-1], False)):
        cidx = len(P)
        P = np.concatenate([P, P[row].mean(0, keepdims=True)])
        f = np.stack([np.full(n_v, cidx), row, np.roll(row, -1)], -1)
        tris = np.concatenate([tris, f[:, ::-1] if flip else f])
    return P, tris


def build_tongue():
    v, tris, polar = uv_sphere(14, 24, "z")
    r = np.array([0.0175, 0.0065, 0.026])
    p = v * r
    p[:, 1] -= 0.004 * (v[:, 2] + 1) ** 2 * 0.25        # tip curls down a little
    p += (0, MOUTH_Y - 0.0105, 0.052)
    return p, tris


def build_mouth_bag():
    v, tris, _ = uv_sphere(16, 28, "z")
    r = np.array([0.030, 0.020, 0.034])
    p = v * r + (0, MOUTH_Y - 0.002, 0.058)
    return p, tris[:, ::-1]   # faces point inwards: only the far wall shows through the lips


# ---------------------------------------------------------------------------
# blendshapes
# ---------------------------------------------------------------------------
JAW_OPEN_RAD = np.radians(21.0)


def jaw_weight(ref, side):
    """How much each vertex follows the jaw: 1 below the lip line / on the chin, 0 above."""
    x, y, z = ref[:, 0], ref[:, 1], ref[:, 2]
    ax = np.abs(x)
    # the split line runs along the lip line, then from the mouth corner back and up to the hinge
    t = np.clip((ax - MOUTH_HALF_W) / (0.065 - MOUTH_HALF_W), 0, 1)
    y_line = MOUTH_Y + 0.001 + t * (HINGE[1] - 0.002 - MOUTH_Y)
    width = 0.0012 + 0.014 * t + 0.008 * smoothstep(MOUTH_Z - 0.02, MOUTH_Z - 0.06, z) * (ax < MOUTH_HALF_W)
    w = 1 - smoothstep(-width, width, y - y_line)
    # the jaw ends behind its angle and at the throat
    w *= smoothstep(-0.030, 0.010, z + 0.35 * (y + 0.11))
    w *= smoothstep(-0.160, -0.125, y)
    w = np.where(side < 0, 1.0, np.where(side > 0, 0.0, w))
    return w


def lip_region(ref, upper, spread=1.0):
    """Soft mask of the upper or lower lip (and the skin right around it)."""
    x, y, z = ref[:, 0], ref[:, 1], ref[:, 2]
    dy = (y - MOUTH_Y) if upper else (MOUTH_Y - y)
    side_ok = smoothstep(-0.0005, 0.0015, dy)
    h = gauss(np.stack([x, dy, z], 1), (0, 0.004, MOUTH_Z - 0.005), (0.017 * spread, 0.0065 * spread, 0.012))
    return h * side_ok * smoothstep(MOUTH_Z - 0.035, MOUTH_Z - 0.015, z)


def corner_region(ref, sign, r=0.011):
    c = (sign * MOUTH_HALF_W, MOUTH_Y, MOUTH_Z - 0.011)
    return gauss(ref, c, (r, r * 0.9, r * 1.2))


def mouth_region(ref):
    return gauss(ref, (0, MOUTH_Y, MOUTH_Z - 0.006), (0.024, 0.013, 0.02)) * smoothstep(0.03, 0.06, ref[:, 2])


def add_face_targets(part: Part, jw: np.ndarray):
    v, ref, side = part.v, part.ref, part.side
    pm_x = ref[:, 0]
    up = lip_region(ref, True)
    lo = lip_region(ref, False)
    mouth = mouth_region(ref)
    # --- jaw -----------------------------------------------------------------
    part.add("jawOpen", jw[:, None] * (rotate_about(v, rot_x(JAW_OPEN_RAD), HINGE) - v))
    part.add("jawForward", jw[:, None] * np.array([0, 0, 0.0055]))
    part.add("jawLeft", jw[:, None] * np.array([0.006, 0, 0]))
    part.add("jawRight", jw[:, None] * np.array([-0.006, 0, 0]))
    # mouthClose: with the jaw open the lips meet half way (a corrective on top of jawOpen):
    # the lower lip moves back by half its jaw motion, the upper lip down by the other half
    open_d = rotate_about(v, rot_x(JAW_OPEN_RAD), HINGE) - v
    lips = gauss(ref, (0, MOUTH_Y, MOUTH_Z - 0.004), (0.024, 0.012, 0.016))
    lips *= 1 - smoothstep(0.006, 0.012, np.abs(ref[:, 1] - MOUTH_Y))
    lower = (ref[:, 1] < MOUTH_Y)[:, None]
    part.add("mouthClose", np.where(lower, -0.5 * open_d * jw[:, None], 0.5 * open_d) * lips[:, None])
    # --- lips ---------------------------------------------------------------
    cl, cr = corner_region(ref, +1), corner_region(ref, -1)
    # funnel: lips flare forward and part into a rounded opening; the corners come in
    gx = np.exp(-0.5 * (pm_x / 0.0095) ** 2)          # opening largest in the middle: an O, not a slot
    o = np.zeros_like(v)
    o[:, 0] = -0.26 * pm_x * mouth
    o[:, 1] = (0.0036 * up - 0.0046 * lo) * gx
    o[:, 2] = 0.0050 * mouth + 0.0025 * (up + lo)
    part.add("mouthFunnel", o)
    # pucker: lips pushed forward and gathered towards the middle, mouth stays closed
    o = np.zeros_like(v)
    o[:, 0] = -0.38 * pm_x * mouth
    o[:, 1] = (-0.0008 * up + 0.0008 * lo)
    o[:, 2] = 0.0085 * mouth + 0.0025 * (up + lo)
    part.add("mouthPucker", o)
    part.add("mouthLeft", mouth[:, None] * np.array([0.0065, 0, 0]))
    part.add("mouthRight", mouth[:, None] * np.array([-0.0065, 0, 0]))
    for sgn, nm, c in ((+1, "Left", cl), (-1, "Right", cr)):
        part.add("mouthSmile" + nm, c[:, None] * np.array([sgn * 0.0035, 0.0050, -0.0030]))
        part.add("mouthFrown" + nm, c[:, None] * np.array([0, -0.0045, -0.0005]))
        part.add("mouthDimple" + nm, c[:, None] * np.array([sgn * 0.0025, 0.0005, -0.0040]))
        part.add("mouthStretch" + nm, c[:, None] * np.array([sgn * 0.0055, -0.0020, -0.0020]))
        half = smoothstep(-0.004, 0.010, sgn * pm_x)
        press = np.zeros_like(v)
        press[:, 1] = (-0.0018 * up + 0.0018 * lo) * half
        press[:, 2] = -0.0015 * (up + lo) * half
        part.add("mouthPress" + nm, press)
        part.add("mouthLowerDown" + nm, (lo * half)[:, None] * np.array([0, -0.0055, 0.0008]))
        part.add("mouthUpperUp" + nm, (up * half)[:, None] * np.array([0, 0.0045, 0.0005]))
    part.add("mouthRollLower", lo[:, None] * np.array([0, 0.0030, -0.0045]))
    part.add("mouthRollUpper", up[:, None] * np.array([0, -0.0025, -0.0040]))
    chin = gauss(ref, (0, -0.095, 0.06), (0.02, 0.02, 0.03))
    part.add("mouthShrugLower", (lo * 1.0 + 0.5 * chin)[:, None] * np.array([0, 0.0030, 0.0020]))
    part.add("mouthShrugUpper", up[:, None] * np.array([0, 0.0025, 0.0015]))
    # --- cheeks and nose ------------------------------------------------------
    pmr = np.concatenate([np.abs(ref[:, :1]), ref[:, 1:]], 1)
    puff = gauss(pmr, (0.036, -0.055, 0.060), (0.014, 0.014, 0.02))
    outward = np.stack([np.sign(ref[:, 0]) * 0.8, np.zeros(len(v)), np.full(len(v), 0.6)], 1)
    part.add("cheekPuff", puff[:, None] * outward * 0.0065)
    for sgn, nm in ((+1, "Left"), (-1, "Right")):
        cheek = gauss(ref, (sgn * 0.036, -0.018, 0.066), (0.013, 0.010, 0.02))
        part.add("cheekSquint" + nm, cheek[:, None] * np.array([0, 0.0040, 0.0010]))
        sneer = gauss(ref, (sgn * 0.012, -0.030, 0.090), (0.007, 0.008, 0.012))
        part.add("noseSneer" + nm, sneer[:, None] * np.array([0, 0.0030, 0.0005]))
    # --- brows ----------------------------------------------------------------
    for sgn, nm in ((+1, "Left"), (-1, "Right")):
        browband = gauss(ref, (sgn * 0.030, 0.031, 0.072), (0.017, 0.008, 0.02))
        outer = gauss(ref, (sgn * 0.042, 0.030, 0.064), (0.010, 0.008, 0.02))
        part.add("browDown" + nm, browband[:, None] * np.array([-sgn * 0.0018, -0.0045, 0.0005]))
        part.add("browOuterUp" + nm, outer[:, None] * np.array([0, 0.0050, 0]))
    inner = gauss(np.concatenate([np.abs(ref[:, :1]), ref[:, 1:]], 1), (0.016, 0.030, 0.076), (0.009, 0.008, 0.02))
    part.add("browInnerUp", inner[:, None] * np.array([0, 0.0050, 0.0004]))
    # blink/squint pull the skin right under and over the eye slightly
    for sgn, nm in ((+1, "Left"), (-1, "Right")):
        under = gauss(ref, (sgn * EYE_C[0], EYE_C[1] - 0.014, EYE_C[2] + 0.006), (0.011, 0.005, 0.01))
        part.add("eyeSquint" + nm, under[:, None] * np.array([0, 0.0020, 0.0008]))
        over = gauss(ref, (sgn * EYE_C[0], EYE_C[1] + 0.016, EYE_C[2] + 0.006), (0.012, 0.005, 0.01))
        part.add("eyeBlink" + nm, over[:, None] * np.array([0, -0.0012, 0]))
        part.add("eyeWide" + nm, over[:, None] * np.array([0, 0.0012, 0]))


def build():
    parts: list[Part] = []
    # skin
    v, tris, ref, side, info = build_skin()
    skin = Part("skin", v, tris, "skin", colors=skin_colors(v, ref, side), ref=ref, side=side)
    parts.append(skin)
    # eyes and lids
    eye_parts = []
    for sgn, nm in ((+1, "Left"), (-1, "Right")):
        p, prims, c = build_eye(sgn)
        for mat in ("sclera", "iris", "pupil"):
            t = prims[mat]
            used = np.unique(t)
            remap = -np.ones(len(p), int)
            remap[used] = np.arange(len(used))
            e = Part(f"eye{nm}_{mat}", p[used], remap[t], mat)
            e.eye = (sgn, nm, c)
            eye_parts.append(e)
        for upper in (True, False):
            lp, lt, lc, edge = build_lid(sgn, upper)
            lid = Part(f"lid{'Upper' if upper else 'Lower'}{nm}", lp, lt, "skin", colors=lc)
            lid.lid = (sgn, nm, c, upper, edge)
            eye_parts.append(lid)
    parts += eye_parts
    for sgn in (+1, -1):
        bp, bt = build_brow(sgn)
        parts.append(Part("brow" + ("Left" if sgn > 0 else "Right"), bp, bt, "brow"))
    # mouth interior
    up_t, up_tt = build_teeth(True)
    lo_t, lo_tt = build_teeth(False)
    tongue, tongue_t = build_tongue()
    bag, bag_t = build_mouth_bag()
    parts += [Part("teethUpper", up_t, up_tt, "teeth"), Part("teethLower", lo_t, lo_tt, "teeth"),
              Part("tongue", tongue, tongue_t, "tongue"), Part("mouthBag", bag, bag_t, "mouth")]

    for part in parts:
        if part.name == "skin" or part.name.startswith("brow"):
            add_face_targets(part, jaw_weight(part.ref, part.side))
        elif hasattr(part, "eye"):
            sgn, nm, c = part.eye
            look = np.radians(24)
            inward = -sgn   # the left eye (+x) looks in towards -x
            part.add(f"eyeLookUp{nm}", rotate_about(part.v, rot_x(-look * 0.8), c) - part.v)
            part.add(f"eyeLookDown{nm}", rotate_about(part.v, rot_x(look * 0.8), c) - part.v)
            part.add(f"eyeLookIn{nm}", rotate_about(part.v, rot_y(inward * look), c) - part.v)
            part.add(f"eyeLookOut{nm}", rotate_about(part.v, rot_y(-inward * look), c) - part.v)
        elif hasattr(part, "lid"):
            sgn, nm, c, upper, edge = part.lid
            v = part.v
            # the far part of a shell stays put (it is buried in the socket)
            follow = 1 - smoothstep(0.9, 1.9, edge)
            if upper:
                rot = lambda a: (rotate_about(v, rot_x(a), c) - v) * follow[:, None]  # noqa: E731
                part.add(f"eyeBlink{nm}", rot(np.radians(47)))
                part.add(f"eyeSquint{nm}", rot(np.radians(8)))
                part.add(f"eyeWide{nm}", rot(np.radians(-11)))
                part.add(f"eyeLookDown{nm}", rot(np.radians(14)))
                part.add(f"eyeLookUp{nm}", rot(np.radians(-8)))
            else:
                rot = lambda a: (rotate_about(v, rot_x(a), c) - v) * follow[:, None]  # noqa: E731
                part.add(f"eyeBlink{nm}", rot(np.radians(-9)))
                part.add(f"eyeSquint{nm}", rot(np.radians(-12)))
                part.add(f"eyeWide{nm}", rot(np.radians(5)))
                part.add(f"eyeLookDown{nm}", rot(np.radians(4)))
                part.add(f"eyeLookUp{nm}", rot(np.radians(-5)))
        elif part.name in ("teethLower", "tongue", "mouthBag"):
            v = part.v
            if part.name == "mouthBag":
                w = 1 - smoothstep(-0.006, 0.004, v[:, 1] - MOUTH_Y)
            else:
                w = np.ones(len(v))
            d = rotate_about(v, rot_x(JAW_OPEN_RAD), HINGE) - v
            part.add("jawOpen", w[:, None] * d)
            part.add("jawForward", w[:, None] * np.array([0, 0, 0.0055]))
            part.add("jawLeft", w[:, None] * np.array([0.006, 0, 0]))
            part.add("jawRight", w[:, None] * np.array([-0.006, 0, 0]))
            if part.name == "tongue":
                tip = smoothstep(-0.02, 0.026, v[:, 2] - 0.052)
                part.add("tongueOut", tip[:, None] * np.array([0, -0.003, 0.030]) +
                         np.array([0, 0.002, 0.006]))
    return parts


# ---------------------------------------------------------------------------
# glTF writing (pygltflib): one mesh, one primitive per part, sparse morph targets
# ---------------------------------------------------------------------------
MATERIALS = {
    # name: (base colour, linear RGBA; roughness)
    "skin": ((0.68, 0.43, 0.33, 1.0), 0.62),
    "sclera": ((0.86, 0.85, 0.83, 1.0), 0.25),
    "iris": ((0.16, 0.30, 0.42, 1.0), 0.25),
    "pupil": ((0.01, 0.01, 0.012, 1.0), 0.2),
    "brow": ((0.055, 0.040, 0.035, 1.0), 0.8),
    "teeth": ((0.74, 0.71, 0.64, 1.0), 0.4),
    "tongue": ((0.62, 0.22, 0.24, 1.0), 0.5),
    "mouth": ((0.18, 0.04, 0.05, 1.0), 0.9),
}


def write_glb(parts: list[Part], path: Path, threshold_m: float = 4e-5) -> None:
    import pygltflib as g

    names = list(ARKIT_BLENDSHAPES)
    blob = bytearray()
    views, accessors = [], []

    def add_view(arr: np.ndarray, target=None) -> int:
        while len(blob) % 4:
            blob.append(0)
        views.append(g.BufferView(buffer=0, byteOffset=len(blob), byteLength=arr.nbytes, target=target))
        blob.extend(arr.tobytes())
        return len(views) - 1

    def add_accessor(arr: np.ndarray, type_: str, ctype: int, target=None, minmax=False) -> int:
        view = add_view(np.ascontiguousarray(arr), target)
        acc = g.Accessor(bufferView=view, componentType=ctype, count=len(arr), type=type_)
        if minmax:
            acc.min = arr.min(0).tolist()
            acc.max = arr.max(0).tolist()
        accessors.append(acc)
        return len(accessors) - 1

    mat_names = list(MATERIALS)
    materials = []
    for m in mat_names:
        col, rough = MATERIALS[m]
        materials.append(g.Material(name=m, pbrMetallicRoughness=g.PbrMetallicRoughness(
            baseColorFactor=list(col), metallicFactor=0.0, roughnessFactor=rough)))
    prims = []
    for part in parts:
        v = part.v.astype(np.float32)
        attrs = g.Attributes(POSITION=add_accessor(v, "VEC3", g.FLOAT, g.ARRAY_BUFFER, True),
                             NORMAL=add_accessor(vertex_normals(part.v, part.t).astype(np.float32), "VEC3",
                                                 g.FLOAT, g.ARRAY_BUFFER))
        if part.colors is not None:
            rgba = np.concatenate([part.colors, np.ones((len(v), 1))], 1)
            attrs.COLOR_0 = add_accessor(np.round(np.clip(rgba, 0, 1) * 255).astype(np.uint8), "VEC4",
                                         g.UNSIGNED_BYTE, g.ARRAY_BUFFER)
            accessors[attrs.COLOR_0].normalized = True
        idx = add_accessor(part.t.astype(np.uint16 if len(v) < 65536 else np.uint32).ravel(), "SCALAR",
                           g.UNSIGNED_SHORT if len(v) < 65536 else g.UNSIGNED_INT, g.ELEMENT_ARRAY_BUFFER)
        targets = []
        for nm in names:
            d = part.targets.get(nm, np.zeros_like(part.v)).astype(np.float32)
            moved = np.flatnonzero(np.abs(d).max(1) > threshold_m)
            # no bufferView: the data is zeros plus the sparse values, so no byteOffset either
            # (pygltflib writes byteOffset 0 by default, which the validator rejects)
            acc = g.Accessor(componentType=g.FLOAT, count=len(v), type="VEC3", byteOffset=None)
            if len(moved):
                iv = add_view(moved.astype(np.uint16 if len(v) < 65536 else np.uint32))
                vv = add_view(np.ascontiguousarray(d[moved]))
                acc.sparse = g.Sparse(count=len(moved),
                                      indices=g.AccessorSparseIndices(bufferView=iv, componentType=g.UNSIGNED_SHORT
                                                              if len(v) < 65536 else g.UNSIGNED_INT),
                                      values=g.AccessorSparseValues(bufferView=vv))
                # min/max are over the whole accessor: the unmoved vertices are zeros
                vals = d[moved]
                if len(moved) < len(v):
                    vals = np.concatenate([vals, np.zeros((1, 3), np.float32)])
                acc.min = vals.min(0).tolist()
                acc.max = vals.max(0).tolist()
            else:
                acc.min, acc.max = [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]
            accessors.append(acc)
            targets.append({"POSITION": len(accessors) - 1})
        prims.append(g.Primitive(attributes=attrs, indices=idx, material=mat_names.index(part.material),
                                 targets=targets, extras={"part": part.name}))
    mesh = g.Mesh(name="Head", primitives=prims, weights=[0.0] * len(names), extras={"targetNames": names})
    gltf = g.GLTF2(
        asset=g.Asset(version="2.0", generator="viseme-toolkit assets/head/build_head.py"),
        scene=0, scenes=[g.Scene(nodes=[0])],
        nodes=[g.Node(name="Head", mesh=0)],
        meshes=[mesh], materials=materials, accessors=accessors, bufferViews=views,
        buffers=[g.Buffer(byteLength=len(blob))],
    )
    gltf.set_binary_blob(bytes(blob))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".glb", dir=path.parent)
    os.close(fd)
    try:
        gltf.save_binary(tmp)
        os.chmod(tmp, 0o644)   # mkstemp makes it private; the asset is for everyone
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def vertex_normals(v, t):
    fn = np.cross(v[t[:, 1]] - v[t[:, 0]], v[t[:, 2]] - v[t[:, 0]])
    n = np.zeros_like(v)
    for k in range(3):
        np.add.at(n, t[:, k], fn)
    ln = np.linalg.norm(n, axis=1, keepdims=True)
    return n / np.where(ln > 0, ln, 1)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-o", "--out", default=str(OUT))
    args = ap.parse_args(argv)
    parts = build()
    write_glb(parts, Path(args.out))
    n_v = sum(len(p.v) for p in parts)
    print(f"wrote {args.out}: {n_v} vertices, {sum(len(p.t) for p in parts)} triangles, "
          f"{Path(args.out).stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
