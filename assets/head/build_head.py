"""Build the toolkit's default head, ``assets/head/head.glb``, from nothing but numpy.

The head is sculpted as a signed distance field (smoothly blended ellipsoids and
capsules: cranium, hair, jaw, chin, cheeks, nose, brow, lips, ears, neck), the
left side mirrored to the right.  A latitude/longitude grid of rays from the
middle of the head, spaced by distance on the skin, is projected onto that
surface and smoothed, so the mesh is a clean, symmetric quad grid.  The grid is
cut along the lip line and each lip gets an inner surface that curls back into a
mouth bag, so the mouth really opens.  Eyeballs (sclera, iris, pupil), eyelid
shells that close to the eye corners, upper and lower teeth and a tongue are
separate primitives of the same mesh.

Every ARKit blendshape is a morph target on every primitive (zero where it does
not apply): region weights with smooth falloff times displacements; the jaw
targets are rotations about a hinge axis through the ears (plus a glide) and
shifts, and the lids turn about each eye's horizontal axis.  assets/head/README.md
describes the choices.

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


def gauss(p, c, r, cut=2.8):
    """Smooth bump 1 at c falling to ~0 at distance ~2r (anisotropic r), exactly 0 beyond `cut` r
    (lowered by its value there and rescaled, so it stays continuous): a morph target then moves
    only the vertices it visibly moves, which keeps the sparse targets, and the file, small."""
    q = (p - np.asarray(c)) / np.asarray(r)
    floor = np.exp(-0.5 * cut * cut)
    return np.clip((np.exp(-0.5 * np.sum(q * q, axis=-1)) - floor) / (1 - floor), 0, None)


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


def smooth_abs(x, eps=0.0025):
    """|x| rounded off within ~eps of 0, so shapes mirrored about the face's middle blend into each
    other without a crease along it (|x| itself has a kink there)."""
    return np.sqrt(x * x + eps * eps)


def head_sdf(p):
    x = p[..., 0:1]
    pm = np.concatenate([smooth_abs(x), p[..., 1:]], axis=-1)  # mirrored: model the left side only
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
    # eye sockets: the eyeballs sit in them, and the lids show from their margins to the creases
    d = smax(d, -eye_window_sdf(pm), 0.0045)
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


SOCKET_BAND_UP = 0.17    # the skin meets the upper lid this far (radians round the eye) above its margin
SOCKET_BAND_LO = 0.13    # ... and the lower lid this far below its margin
SOCKET_DEPTH = 1.5       # the socket is carved out to this many EYE_R from the eye centre


def eye_window_sdf(pm):
    """Roughly the distance to the left eye's opening in the skin (negative inside), for mirrored
    points `pm`: a cone from the eye centre through the almond of `lid_margins` widened by the
    bands of lid that show, cut off at SOCKET_DEPTH (a deeper cut would groove the nose)."""
    q = (pm - EYE_C) @ eye_frame(+1)
    rho = np.linalg.norm(q, axis=-1)
    a = np.arcsin(np.clip(q[..., 0] / np.maximum(rho, 1e-9), -1, 1))
    b = np.arctan2(q[..., 1], q[..., 2])
    up, lo = lid_margins(a)
    ang = np.maximum.reduce([b - up - SOCKET_BAND_UP, lo - SOCKET_BAND_LO - b, np.abs(a) - CANTHUS_A - 0.12])
    return np.maximum(ang * rho, rho - SOCKET_DEPTH * EYE_R)


def hair_mask(p):
    """1 on hair, 0 on skin: a hairline high on the forehead, over the ears, low at the nape."""
    ang = np.abs(np.arctan2(p[..., 0], p[..., 2] + 0.01))          # 0 front .. pi back
    line_y = np.interp(ang, [0.0, 0.35, 0.85, 1.35, 1.75, 2.3, np.pi],
                       [0.062, 0.060, 0.050, 0.032, 0.028, -0.020, -0.050])
    soft = 0.004 + 0.008 * ang / np.pi                 # wider where the grid is coarse (sides, back)
    m = smoothstep(-soft, soft, p[..., 1] - line_y)
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
def density_samples(lo, hi, n, density, knots=()):
    """n increasing samples on [lo, hi] spaced as 1/density(u), with each knot exactly on a sample.

    The samples between two knots follow the density's cumulative integral, so the spacing changes
    smoothly everywhere (forcing a single sample onto a knot afterwards leaves a visible crease
    along that grid line)."""
    u = np.linspace(lo, hi, 8000)
    dens = density(u)
    cdf = np.concatenate([[0], np.cumsum(0.5 * (dens[1:] + dens[:-1]) * np.diff(u))])
    anchors_u = [lo, *sorted(knots), hi]
    anchors_c = np.interp(anchors_u, u, cdf)
    idx = np.round(anchors_c / cdf[-1] * (n - 1))
    idx[0], idx[-1] = 0, n - 1
    target_c = np.interp(np.arange(n), idx, anchors_c)
    out = np.interp(target_c, cdf, u)
    out[idx.astype(int)] = anchors_u          # exact, not just within interpolation error
    return out


def quad_tris(a, b, c, d, pos=None, shorter=True):
    """Triangles of quads a-b-c-d (counter-clockwise seen from outside), dropping degenerate ones.

    With `pos`, each quad is split along its shorter diagonal where one is clearly shorter, else
    along the diagonal mirrored between the two sides of the face (x > 0 and x < 0), so a symmetric
    grid gives a symmetric mesh (one fixed diagonal everywhere shades the two halves of the face
    differently).  shorter=False: always the mirrored diagonal (for strips whose vertex normals
    must not depend on which diagonal happens to be shorter, like the curl of the inner lips)."""
    a, b, c, d = (np.asarray(x).ravel() for x in (a, b, c, d))
    if pos is None:
        t = np.concatenate([np.stack([a, b, c], -1), np.stack([a, c, d], -1)])
    else:
        ac = np.linalg.norm(pos[a] - pos[c], axis=1)
        bd = np.linalg.norm(pos[b] - pos[d], axis=1)
        # the shorter diagonal where it is clearly shorter; else one per side of the face, mirrored
        # (on long thin quads an arbitrary choice zigzags the shading)
        mirrored = pos[a, 0] + pos[b, 0] + pos[c, 0] + pos[d, 0] > 0    # a-c on the left, b-d on the right
        use_ac = np.where((np.abs(ac - bd) > 0.02 * np.maximum(ac, bd)) & shorter, ac < bd, mirrored)
        t = np.concatenate([np.stack([a, b, c], -1)[use_ac], np.stack([a, c, d], -1)[use_ac],
                            np.stack([a, b, d], -1)[~use_ac], np.stack([b, c, d], -1)[~use_ac]])
    ok = (t[:, 0] != t[:, 1]) & (t[:, 1] != t[:, 2]) & (t[:, 0] != t[:, 2])
    return t[ok]


def vertex_neighbours(tris):
    """Unique undirected edges (i, j) of a triangle list, both directions, for Laplacians."""
    e = np.concatenate([tris[:, [0, 1]], tris[:, [1, 2]], tris[:, [2, 0]]])
    e = np.unique(np.sort(e, axis=1), axis=0)
    return np.concatenate([e, e[:, ::-1]])


def smooth_along_normals(v, tris, normals, iters=6, lam=0.5, mu=-0.53, keep=None):
    """Taubin smoothing of `v`, moving vertices only along their normals: removes the ripples the
    ray grid leaves on creases it cannot resolve, without sliding vertices over the surface (the
    grid lines that must stay on the lip line and the mouth corners stay there).
    `keep`: weight per vertex, 0 = do not move."""
    e = vertex_neighbours(tris)
    deg = np.bincount(e[:, 0], minlength=len(v)).astype(float)
    keep = np.ones(len(v)) if keep is None else keep
    v = v.copy()
    for k in range(2 * iters):
        acc = np.zeros_like(v)
        for ax in range(3):
            acc[:, ax] = np.bincount(e[:, 0], v[e[:, 1], ax], minlength=len(v))
        lap = acc / np.maximum(deg, 1)[:, None] - v
        step = (lam if k % 2 == 0 else mu) * np.sum(lap * normals, 1)
        v += (step * keep)[:, None] * normals
    return v


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
        self.ref0 = self.ref      # like ref, with lip vertices on the lip line (see build_skin)
        self.targets: dict[str, np.ndarray] = {}

    def add(self, name, delta):
        self.targets[name] = self.targets.get(name, np.zeros_like(self.v)) + delta


SKIN_COLS_HALF = 60     # grid columns from the front (azimuth 0) to the back of the head
SKIN_ROWS = 98          # grid rows from the neck to the crown


def surface_speed(az, el, along):
    """Metres of skin per radian when the ray grid steps in `along` ("az" or "el"), averaged over a
    few grid lines across the head: rays that graze the surface (under the chin, the neck) cover
    much more skin per step than rays that meet it head on."""
    if along == "el":
        A, E = np.meshgrid(az, el, indexing="ij")      # lines of constant azimuth, stepping in el
    else:
        E, A = np.meshgrid(el, az, indexing="ij")      # lines of constant elevation, stepping in az
    dirs = np.stack([np.cos(E) * np.sin(A), np.sin(E), np.cos(E) * np.cos(A)], -1)
    p = project_rays(dirs.reshape(-1, 3)).reshape(dirs.shape)
    step = np.linalg.norm(np.diff(p, axis=1), axis=-1) / np.diff(el if along == "el" else az)
    speed = np.median(step, axis=0)
    mid = 0.5 * ((el if along == "el" else az)[1:] + (el if along == "el" else az)[:-1])
    return mid, speed


def skin_angles():
    """Azimuths and elevations of the skin's ray grid: symmetric about the face's middle, spaced by
    distance on the skin (not by angle), ~3x denser over the face than at the back; a column on each
    mouth corner and a row on the lip line (the lips are cut along it).  Returns az, el and the
    lip-line row index."""
    corner_az = np.arctan2(MOUTH_HALF_W, MOUTH_Z - 0.012)
    mouth_el = np.arctan2(MOUTH_Y - CENTER[1], MOUTH_Z)
    eye_el = np.arctan2(EYE_C[1] - CENTER[1], EYE_C[2])
    # columns: skin distance along the face's parallels (eyes, nose, mouth, chin)
    a_mid, a_speed = surface_speed(np.linspace(0, np.pi, 181), np.array([eye_el, -0.2, mouth_el, -0.8]), "az")

    def az_density(a):
        return np.interp(a, a_mid, a_speed) * (1 + 2.8 * np.exp(-0.5 * (a / 0.85) ** 4))
    half = density_samples(0.0, np.pi, SKIN_COLS_HALF + 1, az_density, knots=[corner_az])
    az = np.concatenate([-half[::-1][:-1], half[:-1]])          # -pi .. pi (exclusive), 0 included
    # rows: skin distance along meridians over the face and the sides, finer at the eyes and mouth
    # and along the hairline
    e_mid, e_speed = surface_speed(np.array([0.0, 0.3, 0.6, 1.2]), np.linspace(-np.pi / 2, np.pi / 2, 241), "el")

    def el_density(e):
        face = 3.2 * np.exp(-0.5 * ((e + 0.15) / 0.62) ** 4) + 1.4 * np.exp(-0.5 * ((e - mouth_el) / 0.12) ** 2) \
            + 1.0 * np.exp(-0.5 * ((e - eye_el) / 0.12) ** 2) + 0.9 * np.exp(-0.5 * ((e - 0.72) / 0.2) ** 2)
        return np.interp(e, e_mid, e_speed) ** 0.6 * (1 + face)
    el = density_samples(-np.pi / 2, np.pi / 2, SKIN_ROWS + 2, el_density, knots=[mouth_el])[1:-1]
    rm = int(np.argmin(np.abs(el - mouth_el)))
    return az, el, rm


def grid_tris(grid, pos, grid_below=None, seam_row=None):
    """Quads between consecutive rows of a grid that wraps around in columns (shorter diagonals)."""
    nxt = np.roll(np.arange(grid.shape[1]), -1)
    tris = []
    for r in range(grid.shape[0] - 1):
        lo_row = grid[r]   # above the seam the quads use the upper copies, below it the lower ones
        up_row = grid_below[r + 1] if (r + 1) == seam_row else grid[r + 1]
        # next to the lip line one diagonal rule for all: a seam vertex's normal must not depend on
        # which diagonal happened to be shorter
        near_seam = seam_row is not None and r in (seam_row - 1, seam_row)
        tris.append(quad_tris(lo_row, lo_row[nxt], up_row[nxt], up_row, pos, shorter=not near_seam))
    return np.concatenate(tris)


def skin_grid():
    """The skin's ray grid projected on the sculpt and smoothed: positions, the (rows x columns)
    index grid, the lip-line row, the azimuths, and the closed triangle list (two pole fans)."""
    az, el, rm = skin_angles()
    n_cols = len(az)
    E, A = np.meshgrid(el, az, indexing="ij")
    dirs = np.stack([np.cos(E) * np.sin(A), np.sin(E), np.cos(E) * np.cos(A)], -1).reshape(-1, 3)
    verts = project_rays(np.concatenate([dirs, [[0, -1, 0], [0, 1, 0]]]))
    grid = np.arange(len(el) * n_cols).reshape(len(el), n_cols)
    # smooth the ripples of creases finer than the grid, but not the lips (the cut goes along the
    # lip row) and not the neck (on its long thin quads smoothing would itself leave streaks)
    lips = gauss(verts, (0, MOUTH_Y, MOUTH_Z), (MOUTH_HALF_W + 0.004, 0.0045, 0.012))
    keep = (1 - lips) * smoothstep(-0.115, -0.095, verts[:, 1])
    verts = smooth_along_normals(verts, pole_caps(grid, grid_tris(grid, verts)), sdf_normal(verts), keep=keep)
    return verts, grid, rm, az


def pole_caps(grid, tris):
    """`tris` plus the fans closing the grid at the neck (vertex after the grid) and the crown."""
    n_cols = grid.shape[1]
    nxt = np.roll(np.arange(n_cols), -1)
    bottom, top = grid.size, grid.size + 1
    return np.concatenate([tris, np.stack([np.full(n_cols, bottom), grid[0][nxt], grid[0]], -1),
                           np.stack([np.full(n_cols, top), grid[-1], grid[-1][nxt]], -1)])


def inner_lip_rows(seam_p, t):
    """Positions of the inner lip rows that curl back from the lip line into the mouth, for the
    upper (+1) and lower (-1) lip: (sign, row, position) over the seam's columns."""
    thick = np.sqrt(np.clip(1 - t ** 2, 0, 1))
    depth = np.array([0.0016, 0.0040, 0.0068, 0.0098])
    rise = np.array([0.0014, 0.0026, 0.0034, 0.0038])
    for sgn in (+1, -1):
        for k in range(len(depth)):
            yield sgn, k, seam_p + np.stack([0 * t, sgn * rise[k] * thick, -depth[k] * thick], -1)


def build_skin():
    """The skin: the ray grid cut open along the lip line between the mouth corners (the lower lip
    gets its own copies of the lip-line vertices), with inner lip surfaces curling into the mouth.

    Returns positions, triangles, `ref` (where region weights are evaluated: lip vertices pushed
    off the lip line towards their own lip), `side` (+1 upper lip, -1 lower lip, 0 elsewhere) and
    an info dict, whose "ref0" is like ref with every lip vertex at its lip-line point (for masks
    that must move both lips alike, so they do not part)."""
    verts, grid, rm, az = skin_grid()
    corner_az = np.arctan2(MOUTH_HALF_W, MOUTH_Z - 0.012)
    jl, jr = int(np.argmin(np.abs(az + corner_az))), int(np.argmin(np.abs(az - corner_az)))
    slit = np.arange(jl + 1, jr)
    upper_seam = grid[rm, jl:jr + 1].copy()
    lower_seam = upper_seam.copy()
    lower_seam[1:-1] = np.arange(len(verts), len(verts) + len(slit))
    # the lower copies sit 10 um under the upper ones: closed lips show no gap, but a renderer that
    # welds coincident vertices (toolkit.render.scene.NormalSolver) keeps the two lips' normals apart
    # (one normal shared across the slit averages faces that point in opposite directions)
    verts = np.concatenate([verts, verts[grid[rm, slit]] - (0, 1e-5, 0)])
    grid_below = grid.copy()
    grid_below[rm, slit] = lower_seam[1:-1]
    tris = [pole_caps(grid, grid_tris(grid, verts, grid_below, rm))]
    ref0 = verts.copy()
    side = np.zeros(len(verts))
    side[upper_seam[1:-1]], side[lower_seam[1:-1]] = 1, -1
    ref = ref0.copy()
    ref[upper_seam[1:-1]] += (0, 0.0012, 0)
    ref[lower_seam[1:-1]] -= (0, 0.0012, 0)

    seam_p = verts[upper_seam]
    t = az[jl:jr + 1] / corner_az                         # -1 .. 1 across the mouth
    prev = {+1: upper_seam, -1: lower_seam}
    for sgn, k, p in inner_lip_rows(seam_p, t):
        idx = prev[sgn].copy()                            # the corners are shared
        idx[1:-1] = np.arange(len(verts), len(verts) + len(t) - 2)
        verts = np.concatenate([verts, p[1:-1]])
        ref = np.concatenate([ref, seam_p[1:-1] + (0, sgn * (0.0015 + 0.0006 * k), 0)])
        ref0 = np.concatenate([ref0, seam_p[1:-1]])
        side = np.concatenate([side, np.full(len(t) - 2, float(sgn))])
        p_ = prev[sgn]
        if sgn > 0:   # upper lip: the inner row is "below" the previous row in the grid's sense
            tris.append(quad_tris(idx[:-1], idx[1:], p_[1:], p_[:-1], verts, shorter=False))
        else:
            tris.append(quad_tris(p_[:-1], p_[1:], idx[1:], idx[:-1], verts, shorter=False))
        prev[sgn] = idx
    info = dict(grid=grid, rm=rm, upper_seam=upper_seam, lower_seam=lower_seam, jl=jl, jr=jr, ref0=ref0)
    return verts, np.concatenate(tris), ref, side, info


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
    # inner lip surfaces darken smoothly with depth into the mouth
    depth = np.clip(ref[:, 2] - v[:, 2], 0, None) * (side != 0)
    col *= (1 - 0.45 * smoothstep(0.001, 0.007, depth))[:, None]
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


CORNEA = 0.035          # the cornea bulges this far (x EYE_R) over the iris
EYE_TURN = 0.10         # the eye opening (and the lids) turn this far outwards (radians about y)
CANTHUS_A = 1.0         # half-angle of the eye opening: the lids meet at the corners +-CANTHUS_A
LID_A_MAX = 1.62        # the lid shells wrap this far round the eyeball (into the socket)
# lid cross-sections, from the inside of the margin (next to the eyeball) round the rounded edge
# and up over the lid into the socket: (angle from the margin, radius / EYE_R).  The radii keep
# every part of a lid off the cornea over the whole blink (see lid_clearance in the tests).
UPPER_LID = ((0.070, 1.100), (0.032, 1.112), (0.010, 1.128), (0.0, 1.146), (0.010, 1.164), (0.035, 1.172),
             (0.080, 1.170), (0.14, 1.165), (0.22, 1.160), (0.32, 1.155), (0.45, 1.150), (0.62, 1.145),
             (0.82, 1.140), (1.05, 1.132), (1.30, 1.125), (1.58, 1.118), (1.85, 1.110))
LOWER_LID = ((0.060, 1.082), (0.025, 1.092), (0.008, 1.105), (0.0, 1.118), (0.010, 1.128), (0.035, 1.132),
             (0.08, 1.130), (0.15, 1.126), (0.25, 1.122), (0.38, 1.117), (0.55, 1.112), (0.78, 1.105),
             (1.05, 1.098), (1.35, 1.092), (1.65, 1.086))
LID_RIM = 3             # index of the rim (the lash line) in both profiles


def build_eye(sign):
    """Sclera, iris and pupil primitives of one eyeball (sign +1 = left/+x)."""
    v, tris, polar = uv_sphere(24, 36, "z")
    c = EYE_C * (sign, 1, 1)
    # cornea bulge over the iris
    bulge = 1 + CORNEA * np.clip(np.cos(polar / 0.55 * np.pi / 2), 0, None) * (polar < 0.55)
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


def lid_margins(a):
    """Rest angles (about the eye's horizontal axis, up positive) of the upper and lower lid margins
    of the left eye at horizontal angle `a` round the eye (positive: outwards, towards the ear).
    An almond: the margins meet at the corners (canthi), the outer corner a little higher, the upper
    lid highest towards the nose, the lower lid lowest towards the ear; past the corners both stay
    on the corner line, so the lids always close there."""
    u = np.clip(a / CANTHUS_A, -1, 1)
    corner = np.interp(u, [-1, 1], [-0.09, 0.03])
    open_ = 1 - u * u
    upper = corner + 0.44 * open_ ** 0.55 * (1 - 0.10 * u)
    lower = corner - 0.50 * open_ ** 0.80 * (1 + 0.10 * u)
    return upper, lower


def eye_frame(sign):
    """Rotation from the (left) eye's lid frame to the world, for eye `sign`: turned outwards."""
    return rot_y(sign * EYE_TURN)


def build_lid(upper):
    """The left eye's upper or lower eyelid: a shell round the eyeball, a grid of columns round the
    eye (angle `a`) by rows along the `UPPER_LID`/`LOWER_LID` cross-section, whose rim follows
    `lid_margins`.  In the lid frame, a direction is (sin a, cos a sin b, cos a cos b): turning
    about the eye's horizontal axis only changes b, which is how the lids blink.
    Returns world positions, triangles, colours, and per vertex: a, the angle from the margin (0
    on the inside of the margin), and the row of the cross-section (LID_RIM: the rim)."""
    profile = np.array(UPPER_LID if upper else LOWER_LID)
    n_a = 34
    a = LID_A_MAX * np.sin(np.linspace(-np.pi / 2, np.pi / 2, n_a))     # denser towards the middle
    up_m, lo_m = lid_margins(a)
    margin = up_m if upper else lo_m
    A = np.repeat(a[:, None], len(profile), 1)
    # past the corners the two lids just meet: no rounded margin there (seen from the side, the two
    # margins would show as a slot) and no lash line
    past = smoothstep(CANTHUS_A, CANTHUS_A + 0.15, np.abs(a))[:, None] * (np.arange(len(profile)) < LID_RIM)
    dB = profile[None, :, 0] * (1 - past) * (1 if upper else -1)
    Bv = margin[:, None] + dB
    r = EYE_R * (profile[None, :, 1] * (1 - past) + profile[LID_RIM, 1] * past)
    d = np.stack([np.sin(A), np.cos(A) * np.sin(Bv), np.cos(A) * np.cos(Bv)], -1)
    p = (d * r[..., None]).reshape(-1, 3) @ eye_frame(+1).T + EYE_C
    idx = np.arange(A.size).reshape(A.shape)
    # rows run from the inside of the margin outwards: for the upper lid that is upwards
    if upper:
        tris = quad_tris(idx[:-1, :-1], idx[1:, :-1], idx[1:, 1:], idx[:-1, 1:], p, shorter=False)
    else:
        tris = quad_tris(idx[:-1, 1:], idx[1:, 1:], idx[1:, :-1], idx[:-1, :-1], p, shorter=False)
    # colour: skin, with a dark lash line along the rim and a pinker inner margin
    k = np.tile(np.arange(len(profile)), n_a)
    at_eye = np.repeat(1 - smoothstep(CANTHUS_A - 0.05, CANTHUS_A + 0.12, np.abs(a)), len(profile))
    lash = np.exp(-0.5 * ((k - LID_RIM - 0.6) / 1.1) ** 2) * (0.95 if upper else 0.35) * at_eye
    col = np.ones((len(p), 3))
    inner = (k < LID_RIM)[:, None] * np.array([0.0, 0.18, 0.16])
    col = (col - inner) * (1 - lash[:, None]) + np.array([0.10, 0.08, 0.08]) * lash[:, None]
    return p, tris, np.clip(col, 0, 1), A.ravel(), (np.abs(dB) * np.ones_like(A)).ravel() * (k >= LID_RIM), k


def mirror_x(p):
    """Positions mirrored to the other side of the face (x -> -x)."""
    return p * np.array([-1.0, 1.0, 1.0])


def lid_rotation(part, angle, push=0.0):
    """Displacements that turn each column of a (left-eye frame) lid about the eye's horizontal axis
    by `angle` (per vertex, radians, positive closes the upper lid), fading out over the far part of
    the shell, which stays buried in the socket; `push` (x EYE_R) moves the moving part outwards
    (a closed lid bulges over the cornea, and the linear blend of a turn cuts inside the arc)."""
    follow = 1 - smoothstep(0.9, 1.7, part.lid_s)
    ang = angle * follow
    sign = part.eye_sign
    F = eye_frame(sign)
    c = EYE_C * (sign, 1, 1)
    q = (part.v - c) @ F                          # lid frame
    cy, sy = np.cos(ang), np.sin(ang)
    y = cy * q[:, 1] - sy * q[:, 2]               # a turn about x by -ang: positive angles turn down
    z = sy * q[:, 1] + cy * q[:, 2]
    q2 = np.stack([q[:, 0], y, z], 1)
    q2 *= (1 + push * follow / np.maximum(np.linalg.norm(q2, axis=1) / EYE_R, 1e-9))[:, None]
    return q2 @ F.T + c - part.v


def lid_angles(a, upper):
    """Per-column angles of the lid shapes, largest in the middle and 0 at the corners: blink (the
    margins meet, overlapping a little, the lower lid doing ~30% of the travel), squint, wide."""
    up_m, lo_m = lid_margins(a)
    gap = up_m - lo_m
    taper = np.sqrt(np.clip(1 - (a / CANTHUS_A) ** 2, 0, 1))
    if upper:
        return dict(blink=0.70 * gap + 0.05 * taper, squint=0.10 * gap, wide=-0.16 * taper,
                    down=0.24 * taper, up=-0.14 * taper, cheek=0.04 * gap, sneer=0.05 * gap)
    return dict(blink=-(0.30 * gap + 0.05 * taper), squint=-0.36 * gap, wide=0.08 * taper,
                down=0.06 * taper, up=-0.08 * taper, cheek=-0.24 * gap, sneer=-0.12 * gap)


def add_lid_targets(part):
    """Blink, squint, wide and the lids' share of the eye looking up and down."""
    nm = part.eye_name
    ang = lid_angles(part.lid_a, part.upper)
    # outward pushes: the upper lid's turns that open the eye (wide, looking up) also puff it out a
    # little, so blinking while doing them (their displacements add, and two turns the opposite way
    # add up to a chord well inside the arc) still keeps the lid off the cornea
    push = 0.05 if part.upper else 0.0
    open_push = 0.06 if part.upper else 0.0
    part.add(f"eyeBlink{nm}", lid_rotation(part, ang["blink"], push))
    part.add(f"eyeSquint{nm}", lid_rotation(part, ang["squint"]))
    part.add(f"eyeWide{nm}", lid_rotation(part, ang["wide"], open_push))
    part.add(f"eyeLookDown{nm}", lid_rotation(part, ang["down"]))
    part.add(f"eyeLookUp{nm}", lid_rotation(part, ang["up"], open_push))
    # a raised cheek pushes the lower lid up; a sneer narrows the eye a little
    part.add(f"cheekSquint{nm}", lid_rotation(part, ang["cheek"]))
    part.add(f"noseSneer{nm}", lid_rotation(part, ang["sneer"]))


def build_teeth(upper):
    """A rounded band of teeth following the dental arch."""
    n_u, n_v = 34, 10
    u = np.linspace(-1, 1, n_u)
    half = 0.0215 if upper else 0.0185
    front = 0.0815 if upper else 0.0765
    x = half * np.sin(u * 1.35) / np.sin(1.35)
    z = front - 0.020 * u ** 2
    h = 0.0090 if upper else 0.0072
    # the upper biting edge a little under the lip line, so the upper teeth show when the mouth
    # opens (behind closed lips they are hidden); the lower teeth under and behind them
    centre_y = MOUTH_Y - 0.0024 + h / 2 if upper else MOUTH_Y - 0.0034 - h / 2
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
    """The inside of the mouth: a rounded box (a superquadric, not an ellipsoid, whose front would
    narrow before it reaches the mouth corners: through the far corner of an open mouth one would
    see out of the head) enclosing the inner lips' edges and the mouth corners."""
    v, tris, _ = uv_sphere(16, 28, "z")
    box = np.sign(v) * np.abs(v) ** np.array([0.6, 1.0, 0.9])      # boxy across, round up and down
    # (fitted so that at rest the bag stays 0.6 mm inside the sculpt everywhere and still holds the
    # inner lips' edges and reaches the corners)
    p = box * np.array([0.034, 0.016, 0.030]) + (0, MOUTH_Y - 0.001, 0.058)
    return p, tris[:, ::-1]   # faces point inwards: only the far wall shows through the lips


# ---------------------------------------------------------------------------
# blendshapes
# ---------------------------------------------------------------------------
JAW_OPEN_RAD = np.radians(21.0)


JAW_GLIDE = np.array([0.0, -0.001, 0.005])   # the jaw also slides forward a little as it opens
MOUTH_CLOSE_AT = 0.3    # with mouthClose = jawOpen the lips meet this far down the jaw's travel


def jaw_open_delta(v):
    """How jawOpen = 1 moves points carried rigidly by the jaw: a swing about the hinge through the
    ears plus a small forward glide (a pure swing would pull the chin back into the neck)."""
    return rotate_about(v, rot_x(JAW_OPEN_RAD), HINGE) - v + JAW_GLIDE


def jaw_weight(ref, side):
    """How much each vertex follows the jaw: 1 below the lip line / on the chin, 0 above.

    The split runs along the lip line (which is cut, so there it can be sharp), then from each
    mouth corner back and up towards the hinge, widening smoothly over the cheek (a narrow split
    there shows as a crease from the corner to the cheek whenever the jaw moves).  Under the chin
    the weight fades down the throat over ~8 cm, so the skin there stretches instead of shearing."""
    x, y, z = ref[:, 0], ref[:, 1], ref[:, 2]
    ax = smooth_abs(x, 0.002)
    s = smoothstep(-0.15, 1.0, (ax - MOUTH_HALF_W) / 0.042)      # 0 in the mouth .. 1 on the cheek
    # height over the lip line, measured the way the skin grid's lip row was cast (a ray from
    # CENTER at a fixed elevation), so that row is exactly at 0 all the way to the corners
    r_xz = np.hypot(x, z)
    over_lip = (y - CENTER[1]) - r_xz * np.tan(np.arctan2(MOUTH_Y - CENTER[1], MOUTH_Z))
    rise = s * (HINGE[1] - 0.002 - MOUTH_Y)
    # narrow along the lips (the rows next to the cut are all upper or all lower lip), widening
    # from just inside each corner: the corners move about half with the jaw, and the split
    # spreads over the cheek instead of showing as a line on it
    beyond = ax - (MOUTH_HALF_W - 0.007)
    width = 0.0007 + 0.55 * 0.002 * np.logaddexp(0, beyond / 0.002)
    w = 1 - smoothstep(-width, width, over_lip - rise)
    # the jaw ends behind its angle, at the sides of the head (the ears stay) and down the throat
    w *= smoothstep(-0.020, 0.015, z + 0.35 * (y + 0.11))
    w *= 1 - smoothstep(0.058, 0.072, ax)
    w *= smoothstep(-0.195, -0.105, y + 0.5 * (z - 0.05))
    # the lips themselves: the lower lip follows the jaw, the upper lip stays, except towards the
    # corners, which move about half way, so the mouth opens to a lens and not to a hexagon
    forced = np.where(side < 0, 1.0, 0.0)
    near_corner = smoothstep(MOUTH_HALF_W - 0.009, MOUTH_HALF_W, ax)
    return np.where(side != 0, forced + (w - forced) * near_corner, w)


def smooth_jaw_weight(w, ref, tris, iters=160):
    """The skin's jaw weights diffused over the mesh beyond the mouth corners (an explicit heat
    flow along the mesh's edges): wherever the jaw moves the skin sideways or forwards, a split that
    is a line in space shows as a crease from the mouth corner across the cheek; spread over the
    surface it reads as the cheek stretching.  The lips between the corners, the chin and the
    throat keep their weights."""
    e = vertex_neighbours(tris)
    deg = np.maximum(np.bincount(e[:, 0], minlength=len(w)), 1)
    ax = np.abs(ref[:, 0])
    free = smoothstep(MOUTH_HALF_W - 0.004, MOUTH_HALF_W + 0.006, ax) * smoothstep(-0.11, -0.085, ref[:, 1]) \
        * (1 - smoothstep(MOUTH_Y + 0.025, MOUTH_Y + 0.045, ref[:, 1]))
    w = w.copy()
    for _ in range(iters):
        w += 0.5 * free * (np.bincount(e[:, 0], w[e[:, 1]], minlength=len(w)) / deg - w)
    # diffusion leaves a faint tail everywhere; cut it off smoothly (it moves nothing visibly but
    # would put thousands more vertices into each sparse jaw target)
    return w * smoothstep(0.004, 0.02, w)


def mouth_close_delta(v, ref, jw):
    """mouthClose, the ARKit corrective used together with jawOpen: around the lips (corners and
    inner lips included) it replaces each vertex's jaw weight by MOUTH_CLOSE_AT, so at
    mouthClose = jawOpen the upper and lower lips meet (the lower lip rises most of the way, the
    upper lip comes down a little) and the lips move as one; the region fades out smoothly
    towards the chin and cheeks, where the skin keeps following the jaw."""
    x, y = ref[:, 0], ref[:, 1] - MOUTH_Y
    e = np.sqrt((x / (MOUTH_HALF_W + 0.006)) ** 2 + (y / np.where(y < 0, 0.016, 0.013)) ** 2)
    region = 1 - smoothstep(0.75, 1.6, e)
    region *= smoothstep(MOUTH_Z - 0.05, MOUTH_Z - 0.025, ref[:, 2])   # not the back of the head
    return (region * (MOUTH_CLOSE_AT - jw))[:, None] * jaw_open_delta(v)


def lip_region(ref, upper, spread=1.0):
    """Soft mask of the upper or lower lip (and the skin right around it)."""
    x, y, z = ref[:, 0], ref[:, 1], ref[:, 2]
    dy = (y - MOUTH_Y) if upper else (MOUTH_Y - y)
    side_ok = smoothstep(-0.0005, 0.0015, dy)
    h = gauss(np.stack([x, dy, z], 1), (0, 0.004, MOUTH_Z - 0.005), (0.017 * spread, 0.0065 * spread, 0.012))
    return h * side_ok * smoothstep(MOUTH_Z - 0.035, MOUTH_Z - 0.015, z)


def corner_region(ref, sign, r=0.014):
    """Soft mask around one mouth corner (sign +1: the left, +x): wide enough to carry the cheek
    next to it and a quarter of the lips' middle, so a moved corner bends the whole lip line."""
    c = (sign * MOUTH_HALF_W, MOUTH_Y, MOUTH_Z - 0.011)
    return gauss(ref, c, (r, r * 0.9, r * 1.2))


def mouth_region(ref):
    return gauss(ref, (0, MOUTH_Y, MOUTH_Z - 0.006), (0.024, 0.013, 0.02)) * smoothstep(0.03, 0.06, ref[:, 2])


def mirrored(ref):
    """Positions with |x|: masks written for the left side apply to both."""
    return np.concatenate([np.abs(ref[:, :1]), ref[:, 1:]], 1)


def add_jaw_targets(part: Part, jw: np.ndarray):
    v = part.v
    part.add("jawOpen", jw[:, None] * jaw_open_delta(v))
    part.add("jawForward", jw[:, None] * np.array([0, 0, 0.0055]))
    part.add("jawLeft", jw[:, None] * np.array([0.006, 0, 0]))
    part.add("jawRight", jw[:, None] * np.array([-0.006, 0, 0]))
    part.add("mouthClose", mouth_close_delta(v, part.ref, jw))


def add_lip_targets(part: Part):
    """Shapes of the lips as a whole: funnel, pucker, left/right, roll, shrug, and per side press,
    lower lip down and upper lip up."""
    v, ref = part.v, part.ref
    pm_x = ref[:, 0]
    up, lo, mouth = lip_region(ref, True), lip_region(ref, False), mouth_region(ref)
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
    # the whole mouth slides sideways, corners leading
    side_shift = np.maximum(mouth, 0.8 * (corner_region(ref, +1) + corner_region(ref, -1)))
    part.add("mouthLeft", side_shift[:, None] * np.array([0.0085, 0.0, -0.0010]))
    part.add("mouthRight", side_shift[:, None] * np.array([-0.0085, 0.0, -0.0010]))
    for sgn, nm in ((+1, "Left"), (-1, "Right")):
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


def add_corner_targets(part: Part):
    """Per side, what the mouth corner does: smile (up, out and back, lifting the cheek), frown
    (down, pulling the skin under it), dimple (back into the cheek), stretch (out and down).
    The masks are evaluated at ref0, so the two lips move alike and stay closed."""
    ref = part.ref0
    for sgn, nm in ((+1, "Left"), (-1, "Right")):
        c = corner_region(ref, sgn)
        cheek = gauss(ref, (sgn * 0.036, MOUTH_Y + 0.022, MOUTH_Z - 0.022), (0.013, 0.012, 0.02))
        below = gauss(ref, (sgn * (MOUTH_HALF_W + 0.002), MOUTH_Y - 0.016, MOUTH_Z - 0.016), (0.012, 0.012, 0.02))
        part.add("mouthSmile" + nm, c[:, None] * np.array([sgn * 0.0045, 0.0070, -0.0035])
                 + cheek[:, None] * np.array([sgn * 0.0008, 0.0030, 0.0020]))
        part.add("mouthFrown" + nm, c[:, None] * np.array([sgn * 0.0010, -0.0065, -0.0008])
                 + below[:, None] * np.array([0, -0.0025, 0.0005]))
        dimple = corner_region(ref, sgn, 0.010)
        part.add("mouthDimple" + nm, dimple[:, None] * np.array([sgn * 0.0035, 0.0008, -0.0050]))
        part.add("mouthStretch" + nm, c[:, None] * np.array([sgn * 0.0070, -0.0028, -0.0028]))


def add_cheek_nose_targets(part: Part):
    """cheekPuff (both cheeks out), cheekSquint (the cheek under the eye rises and bunches up), and
    noseSneer (the nose wing and the skin beside it pulled up, the inner brow down a little)."""
    ref = part.ref
    puff = gauss(mirrored(ref), (0.040, -0.050, 0.058), (0.019, 0.020, 0.025))
    outward = np.stack([np.sign(ref[:, 0]) * 0.8, np.zeros(len(ref)), np.full(len(ref), 0.6)], 1)
    lips = mouth_region(ref)     # the air pushes the lips forward a little too
    part.add("cheekPuff", puff[:, None] * outward * 0.014 + lips[:, None] * np.array([0, 0, 0.0015]))
    for sgn, nm in ((+1, "Left"), (-1, "Right")):
        cheek = gauss(ref, (sgn * 0.037, -0.017, 0.066), (0.014, 0.010, 0.02))
        part.add("cheekSquint" + nm, cheek[:, None] * np.array([sgn * 0.0005, 0.0055, 0.0030]))
        wing = gauss(ref, (sgn * 0.011, -0.029, 0.088), (0.008, 0.010, 0.012))
        fold = gauss(ref, (sgn * 0.020, -0.040, 0.082), (0.007, 0.010, 0.012))    # beside the nose, above the lip
        bridge = gauss(ref, (sgn * 0.009, -0.004, 0.088), (0.006, 0.008, 0.012))  # the skin bunches on the nose
        brow = gauss(ref, (sgn * 0.015, 0.026, 0.076), (0.008, 0.007, 0.02))
        part.add("noseSneer" + nm, wing[:, None] * np.array([sgn * 0.0012, 0.0065, 0.0010])
                 + fold[:, None] * np.array([0, 0.0035, 0.0010]) + bridge[:, None] * np.array([0, 0.0020, 0.0012])
                 + brow[:, None] * np.array([0, -0.0025, 0]))


def add_brow_targets(part: Part):
    ref = part.ref
    for sgn, nm in ((+1, "Left"), (-1, "Right")):
        browband = gauss(ref, (sgn * 0.030, 0.031, 0.072), (0.017, 0.008, 0.02))
        outer = gauss(ref, (sgn * 0.042, 0.030, 0.064), (0.010, 0.008, 0.02))
        part.add("browDown" + nm, browband[:, None] * np.array([-sgn * 0.0025, -0.0055, 0.0008]))
        part.add("browOuterUp" + nm, outer[:, None] * np.array([0, 0.0060, 0]))
    inner = gauss(mirrored(ref), (0.016, 0.030, 0.076), (0.009, 0.008, 0.02))
    part.add("browInnerUp", inner[:, None] * np.array([0, 0.0060, 0.0004]))


def add_eye_skin_targets(part: Part):
    """Blink/squint/wide pull the skin right over and under the eye a little, with the lids."""
    ref = part.ref
    for sgn, nm in ((+1, "Left"), (-1, "Right")):
        under = gauss(ref, (sgn * EYE_C[0], EYE_C[1] - 0.014, EYE_C[2] + 0.006), (0.011, 0.005, 0.01))
        part.add("eyeSquint" + nm, under[:, None] * np.array([0, 0.0020, 0.0008]))
        over = gauss(ref, (sgn * EYE_C[0], EYE_C[1] + 0.016, EYE_C[2] + 0.006), (0.012, 0.005, 0.01))
        part.add("eyeBlink" + nm, over[:, None] * np.array([0, -0.0012, 0]))
        part.add("eyeWide" + nm, over[:, None] * np.array([0, 0.0012, 0]))


def add_face_targets(part: Part, jw: np.ndarray):
    """Every skin (and eyebrow) target: jaw, lips, mouth corners, cheeks and nose, brows, eyes."""
    add_jaw_targets(part, jw)
    add_lip_targets(part)
    add_corner_targets(part)
    add_cheek_nose_targets(part)
    add_brow_targets(part)
    add_eye_skin_targets(part)


def add_mouth_interior_targets(part: Part):
    """Lower teeth and tongue ride on the jaw, the mouth bag's lower half too; the bag's front
    follows the lips when mouthClose closes them over an open jaw (else it would show through the
    stretched skin under the lower lip); the tongue comes out for tongueOut."""
    v = part.v
    # (the bag's weight fades over its whole height: a sharp fade folds its side walls over, and
    # through a fold the far corner of an open mouth shows the background)
    w = 1 - smoothstep(-0.014, 0.010, v[:, 1] - MOUTH_Y) if part.name == "mouthBag" else np.ones(len(v))
    part.add("jawOpen", w[:, None] * jaw_open_delta(v))
    part.add("jawForward", w[:, None] * np.array([0, 0, 0.0055]))
    part.add("jawLeft", w[:, None] * np.array([0.006, 0, 0]))
    part.add("jawRight", w[:, None] * np.array([-0.006, 0, 0]))
    if part.name == "mouthBag":
        front = smoothstep(0.066, 0.080, v[:, 2])
        part.add("mouthClose", (front * (MOUTH_CLOSE_AT - w))[:, None] * jaw_open_delta(v))
    if part.name == "tongue":
        tip = smoothstep(-0.02, 0.026, v[:, 2] - 0.052)
        part.add("tongueOut", tip[:, None] * np.array([0, -0.003, 0.030]) + np.array([0, 0.002, 0.006]))


def build():
    parts: list[Part] = []
    # skin
    v, tris, ref, side, info = build_skin()
    skin = Part("skin", v, tris, "skin", colors=skin_colors(v, ref, side), ref=ref, side=side)
    skin.ref0 = info["ref0"]
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
            lp, lt, lc, lid_a, lid_s, lid_k = build_lid(upper)
            if sgn < 0:   # the right eye's lids are the left ones mirrored
                lp, lt = mirror_x(lp), lt[:, ::-1]
            lid = Part(f"lid{'Upper' if upper else 'Lower'}{nm}", lp, lt, "skin", colors=lc)
            lid.eye_sign, lid.eye_name, lid.upper, lid.lid_a, lid.lid_s, lid.lid_k = sgn, nm, upper, lid_a, lid_s, lid_k
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
        if part.name == "skin":
            add_face_targets(part, smooth_jaw_weight(jaw_weight(part.ref, part.side), part.ref, part.t))
        elif part.name.startswith("brow"):
            add_face_targets(part, jaw_weight(part.ref, part.side))
        elif hasattr(part, "eye"):
            sgn, nm, c = part.eye
            look = np.radians(24)
            inward = -sgn   # the left eye (+x) looks in towards -x
            part.add(f"eyeLookUp{nm}", rotate_about(part.v, rot_x(-look * 0.8), c) - part.v)
            part.add(f"eyeLookDown{nm}", rotate_about(part.v, rot_x(look * 0.8), c) - part.v)
            part.add(f"eyeLookIn{nm}", rotate_about(part.v, rot_y(inward * look), c) - part.v)
            part.add(f"eyeLookOut{nm}", rotate_about(part.v, rot_y(-inward * look), c) - part.v)
        elif hasattr(part, "lid_a"):
            add_lid_targets(part)
        elif part.name in ("teethLower", "tongue", "mouthBag"):
            add_mouth_interior_targets(part)
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
    """Angle-weighted vertex normals, as the toolkit's renderer computes them per frame."""
    from toolkit.render.scene import corner_angles

    fn = np.cross(v[t[:, 1]] - v[t[:, 0]], v[t[:, 2]] - v[t[:, 0]])
    fn /= np.maximum(np.linalg.norm(fn, axis=1, keepdims=True), 1e-30)
    w = corner_angles(v, t).reshape(3, -1)
    n = np.zeros_like(v)
    for k in range(3):
        np.add.at(n, t[:, k], fn * w[k][:, None])
    # a vertex only in collapsed triangles (the lids' margin rows past the eye corners) has no
    # normal of its own: point it away from the part's middle (glTF normals must be unit length)
    lone = np.linalg.norm(n, axis=1) < 1e-12
    n[lone] = v[lone] - v.mean(0)
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
