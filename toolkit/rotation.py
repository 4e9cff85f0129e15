"""Quaternions stored (x, y, z, w), as glTF stores them: the one place for rotation arithmetic.

Used by the head-motion mapping (`toolkit.rigs.head_rotation`), the glTF reader and
writer, the renderer and the live transports.

Example
-------
>>> import numpy as np
>>> q = axis_angle_quat(1, np.array([np.pi / 2]))[0]          # 90 degrees about +Y
>>> np.round(quat_to_matrix(q) @ [0, 0, 1], 6).tolist()       # +Z turns to +X
[1.0, 0.0, 0.0]
>>> np.allclose(matrix_to_quat(quat_to_matrix(q)), q)
True
"""
from __future__ import annotations

import numpy as np


def axis_angle_quat(axis: int, angle_rad: np.ndarray) -> np.ndarray:
    """(n, 4) quaternions turning ``angle_rad`` (n,) about the coordinate axis 0 (x), 1 (y) or 2 (z)."""
    angle_rad = np.asarray(angle_rad, np.float64).reshape(-1)
    q = np.zeros((angle_rad.size, 4), np.float64)
    q[:, axis] = np.sin(angle_rad / 2)
    q[:, 3] = np.cos(angle_rad / 2)
    return q


def quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product of (..., 4) quaternions: the rotation ``b`` followed by ``a``."""
    ax, ay, az, aw = np.moveaxis(np.asarray(a, np.float64), -1, 0)
    bx, by, bz, bw = np.moveaxis(np.asarray(b, np.float64), -1, 0)
    return np.stack([aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx,
                     aw * bz + ax * by - ay * bx + az * bw,
                     aw * bw - ax * bx - ay * by - az * bz], axis=-1)


def quat_to_matrix(q) -> np.ndarray:
    """A quaternion (normalized here) -> its 3x3 rotation matrix (column vectors)."""
    x, y, z, w = np.asarray(q, np.float64) / max(1e-12, float(np.linalg.norm(q)))
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def matrix_to_quat(m: np.ndarray) -> np.ndarray:
    """Rotation matrix (3x3, no scale) -> quaternion (x, y, z, w)."""
    m = np.asarray(m, np.float64)
    tr = np.trace(m)
    if tr > 0:
        s = np.sqrt(tr + 1.0) * 2
        q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, 0.25 * s]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2]) * 2
        q = [0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s]
    elif m[1, 1] > m[2, 2]:
        s = np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2]) * 2
        q = [(m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s]
    else:
        s = np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1]) * 2
        q = [(m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s, (m[1, 0] - m[0, 1]) / s]
    q = np.asarray(q)
    return q / np.linalg.norm(q)
