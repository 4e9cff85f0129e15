"""Skins: where a skinned mesh's vertices are, from its joints and inverse bind matrices.

glTF places a skinned vertex at  sum_i w_i * J_i * IBM_i * v  (J_i the joint's world matrix, IBM_i
its inverse bind matrix, up to four influences per JOINTS_n/WEIGHTS_n set); the skinned mesh's own
node transform is ignored.  Exporters rely on it: gltfpack bakes the KHR_mesh_quantization
dequantization into the inverse bind matrices, and a mesh bound to one bone is often authored in
that bone's space, so a bind pose is only right once skinned.

    joint_matrices(model, skin) -> (joints, 4, 4)        J_i @ IBM_i in the rest pose
    influences(prim) -> (joints (n, k), weights (n, k))  every JOINTS_n/WEIGHTS_n set, weights summing to 1
    vertex_transforms(model, node, prim) -> (n, 3, 4)    each vertex's blended affine transform
    joint_share(model, node, prim, nodes) -> (n,)        the weight each vertex takes from ``nodes``

Example
-------
>>> from toolkit.gltf.read import load_model                              # doctest: +SKIP
>>> m = load_model("avatar.glb")                                           # doctest: +SKIP
>>> prim = m.meshes[0].primitives[0]                                       # doctest: +SKIP
>>> world = apply(vertex_transforms(m, 3, prim), prim.positions)           # doctest: +SKIP
"""
from __future__ import annotations

import numpy as np

from toolkit.gltf.errors import ModelError


def joint_matrices(model, skin: int, world: np.ndarray | None = None) -> np.ndarray:
    """(joints, 4, 4) skinning matrices of skin ``skin`` in the rest pose: joint world x inverse bind."""
    g = model.gltf
    if not 0 <= skin < len(g.skins):
        raise ModelError(f"{model.path}: skin #{skin} does not exist (the file has {len(g.skins)})")
    s = g.skins[skin]
    joints = list(s.joints or [])
    bad = [j for j in joints if not isinstance(j, int) or not 0 <= j < len(g.nodes)]
    if bad:
        raise ModelError(f"{model.path}: skin #{skin} names joint node {bad[0]}, which does not exist")
    world = model.world_matrices() if world is None else world
    ibm = np.repeat(np.eye(4)[None], len(joints), axis=0)
    if s.inverseBindMatrices is not None:
        raw = model.accessor(s.inverseBindMatrices).astype(np.float64).reshape(-1, 4, 4)
        if len(raw) < len(joints):
            raise ModelError(f"{model.path}: skin #{skin} has {len(joints)} joints but {len(raw)} inverse bind "
                             f"matrices")
        ibm = raw[:len(joints)].transpose(0, 2, 1)   # glTF stores matrices column-major
    return world[joints] @ ibm if joints else np.zeros((0, 4, 4))


def influences(prim) -> tuple[np.ndarray, np.ndarray]:
    """(joint slots (n, k) int64, weights (n, k) float64) of every JOINTS_n/WEIGHTS_n set of a primitive;
    weights are rescaled to sum to 1 (quantized weights rarely do exactly); (n, 0) without any."""
    n = len(prim.positions)
    js, ws = [], []
    k = 0
    while f"JOINTS_{k}" in prim.attributes and f"WEIGHTS_{k}" in prim.attributes:
        js.append(prim.model.accessor(prim.attributes[f"JOINTS_{k}"]).astype(np.int64).reshape(n, -1))
        ws.append(prim.model.accessor(prim.attributes[f"WEIGHTS_{k}"]).astype(np.float64).reshape(n, -1))
        k += 1
    if not js:
        return np.zeros((n, 0), np.int64), np.zeros((n, 0))
    j, w = np.concatenate(js, 1), np.maximum(np.concatenate(ws, 1), 0.0)
    total = w.sum(1, keepdims=True)
    return j, np.divide(w, total, out=np.zeros_like(w), where=total > 0)


def vertex_transforms(model, node: int, prim, world: np.ndarray | None = None) -> np.ndarray:
    """(n, 3, 4) the affine transform that places each vertex of ``prim`` (placed by ``node``) in the world:
    blended from its skin's joints, or the node's world matrix for an unskinned mesh and for vertices
    that carry no weight."""
    world = model.world_matrices() if world is None else world
    n = len(prim.positions)
    own = np.broadcast_to(world[node][:3], (n, 3, 4))
    skin = model.gltf.nodes[node].skin
    j, w = influences(prim)
    if skin is None or j.shape[1] == 0:
        return np.array(own)
    mats = joint_matrices(model, skin, world)[:, :3]
    if j.size and (j.min() < 0 or j.max() >= len(mats)):
        raise ModelError(f"{model.path}: {model.meshes[prim.mesh].label} primitive {prim.index} binds joint "
                         f"{int(j.max())}, but its skin #{skin} has {len(mats)} joints")
    out = np.einsum("nk,nkij->nij", w, mats[j])
    loose = w.sum(1) == 0
    out[loose] = own[loose]
    return out


def joint_share(model, node: int, prim, nodes: set[int]) -> np.ndarray:
    """(n,) how much of each vertex of ``prim`` follows the joints among ``nodes`` (0 to 1); for an
    unskinned mesh, 1 when ``node`` itself is among them, else 0."""
    n = len(prim.positions)
    skin = model.gltf.nodes[node].skin
    j, w = influences(prim)
    if skin is None or j.shape[1] == 0:
        return np.full(n, 1.0 if node in nodes else 0.0)
    joints = np.asarray(model.gltf.skins[skin].joints or [], np.int64)
    inside = np.isin(joints, list(nodes))
    return (w * inside[np.clip(j, 0, max(len(joints) - 1, 0))]).sum(1) if len(joints) else np.zeros(n)


def apply(transforms: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Points (n, 3) through per-vertex affine transforms (n, 3, 4)."""
    return np.einsum("nij,nj->ni", transforms[:, :, :3], points) + transforms[:, :, 3]


def apply_linear(transforms: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Displacements (..., n, 3) through the linear part of per-vertex transforms (n, 3, 4)."""
    return np.einsum("nij,...nj->...ni", transforms[:, :, :3], vectors)


def apply_normals(transforms: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """Unit normals (n, 3) through per-vertex transforms: the inverse transpose of the linear part
    (its cofactor matrix, signed by the determinant, which also copes with a singular one)."""
    lin = transforms[:, :, :3]
    a, b, c = lin[:, :, 0], lin[:, :, 1], lin[:, :, 2]
    cof = np.stack([np.cross(b, c), np.cross(c, a), np.cross(a, b)], axis=2)   # columns
    det = np.einsum("ni,ni->n", a, np.cross(b, c))
    out = np.einsum("nij,nj->ni", cof, normals) * np.sign(np.where(det == 0, 1.0, det))[:, None]
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def determinants(transforms: np.ndarray) -> np.ndarray:
    """(n,) determinant of each transform's linear part (negative: it mirrors)."""
    return np.linalg.det(transforms[:, :, :3])
