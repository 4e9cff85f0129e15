"""What a material looks like, as far as a preview draws it: base colour (factor, texture, UV set and
KHR_texture_transform), alpha mode and cutoff, sidedness.

Sources, in order: the glTF material itself (pbrMetallicRoughness; VRM 1.0's VRMC_materials_mtoon keeps
its lit colour there too, so MToon is drawn as its base colour); for a VRM 0.x file whose glTF
material lacks a texture, the VRM extension's ``materialProperties`` (``_MainTex``, ``_Color``,
``RenderType``, ``_Cutoff``, ``_CullMode``).  A texture's image is the one Pillow can decode: the core
``source`` (PNG/JPEG), else EXT_texture_webp's, else any other (KHR_texture_basisu, reported as
undecodable by the caller).

Example
-------
>>> from toolkit.gltf.read import load_model                       # doctest: +SKIP
>>> s = surface(load_model("avatar.vrm"), 3)                        # doctest: +SKIP
>>> s.alpha_mode, s.alpha_cutoff, s.image, s.source                 # doctest: +SKIP
('MASK', 0.5, 2, 'VRM 0.x MToon')
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# image extensions in the order a preview prefers them (Pillow reads WebP, not Basis Universal)
_IMAGE_EXTENSIONS = ("EXT_texture_webp", "KHR_texture_basisu", "MSFT_texture_dds")
_VRM0_RENDER_TYPE = {"Opaque": "OPAQUE", "TransparentCutout": "MASK", "Transparent": "BLEND"}
ALPHA_MODES = ("OPAQUE", "MASK", "BLEND")
REPEAT = 10497   # glTF's (and OpenGL's) default texture wrap mode


@dataclass
class Surface:
    """``color`` linear RGBA factor; ``image`` index of the base-colour image (None: none); ``texcoord``
    the UV set; ``uv_transform`` a 2x3 affine map applied to the UVs (KHR_texture_transform, None:
    identity); ``wrap`` the sampler's (wrapS, wrapT) GL modes; ``alpha_mode`` OPAQUE, MASK or BLEND with ``alpha_cutoff``; ``double_sided``;
    ``source`` where these came from ("glTF", "VRM 1.0 MToon", "VRM 0.x MToon")."""

    color: np.ndarray
    image: int | None = None
    texcoord: int = 0
    uv_transform: np.ndarray | None = None
    wrap: tuple = (REPEAT, REPEAT)
    alpha_mode: str = "OPAQUE"
    alpha_cutoff: float = 0.5
    double_sided: bool = False
    source: str = "glTF"

    def transform_uv(self, uv: np.ndarray) -> np.ndarray:
        """``uv`` (n, 2) through the texture transform."""
        if self.uv_transform is None:
            return uv
        return (uv.astype(np.float64) @ self.uv_transform[:, :2].T + self.uv_transform[:, 2]).astype(np.float32)


def uv_transform(ext: dict | None) -> np.ndarray | None:
    """KHR_texture_transform's offset, rotation and scale as a 2x3 matrix (translation * rotation *
    scale, rotation counter-clockwise as the extension's GLSL writes it); None for the identity.

    >>> uv_transform({"offset": [0.5, 0.0], "scale": [0.5, 1.0]}).tolist()
    [[0.5, -0.0, 0.5], [0.0, 1.0, 0.0]]
    """
    if not ext:
        return None
    ox, oy = (list(ext.get("offset") or [0.0, 0.0]) + [0.0, 0.0])[:2]
    sx, sy = (list(ext.get("scale") or [1.0, 1.0]) + [1.0, 1.0])[:2]
    r = float(ext.get("rotation", 0.0) or 0.0)
    c, s = np.cos(r), np.sin(r)
    m = np.array([[c * sx, -s * sy, ox], [s * sx, c * sy, oy]], np.float64)
    return None if np.allclose(m, [[1, 0, 0], [0, 1, 0]]) else m


def texture_image(model, texture: int | None) -> int | None:
    """The image of texture ``texture`` a preview can best decode (see the module docstring)."""
    g = model.gltf
    if texture is None or not 0 <= texture < len(g.textures):
        return None
    t = g.textures[texture]
    exts = t.extensions or {}
    cands = ([t.source] if t.source is not None else []) + \
        [exts[k].get("source") for k in _IMAGE_EXTENSIONS if isinstance(exts.get(k), dict)] + \
        [e.get("source") for k, e in exts.items() if k not in _IMAGE_EXTENSIONS and isinstance(e, dict)]
    cands = [c for c in cands if isinstance(c, int) and 0 <= c < len(g.images)]
    return cands[0] if cands else None


def wrap_modes(model, texture: int | None) -> tuple[int, int]:
    """(wrapS, wrapT) of a texture's sampler (REPEAT when it has none)."""
    g = model.gltf
    if texture is None or not 0 <= texture < len(g.textures):
        return REPEAT, REPEAT
    s = g.textures[texture].sampler
    smp = g.samplers[s] if s is not None and 0 <= s < len(g.samplers) else None
    return (int(smp.wrapS or REPEAT), int(smp.wrapT or REPEAT)) if smp is not None else (REPEAT, REPEAT)


def _vrm0_properties(model, material: int) -> dict | None:
    """The VRM 0.x materialProperties entry of a material (matched by name, else by position)."""
    props = (((model.doc.get("extensions") or {}).get("VRM") or {}).get("materialProperties")) or []
    name = model.gltf.materials[material].name
    hit = next((p for p in props if isinstance(p, dict) and name and p.get("name") == name), None)
    if hit is None and material < len(props) and isinstance(props[material], dict):
        hit = props[material]
    return hit if hit and hit.get("shader") != "VRM_USE_GLTFSHADER" else None


def surface(model, material: int | None) -> Surface:
    """The `Surface` of material ``material`` of a `toolkit.gltf.read.Model` (defaults for None)."""
    g = model.gltf
    if material is None or not 0 <= material < len(g.materials):
        return Surface(np.ones(4, np.float32))
    mat = g.materials[material]
    pbr = mat.pbrMetallicRoughness
    color = np.asarray(pbr.baseColorFactor if pbr and pbr.baseColorFactor else [1, 1, 1, 1], np.float32)
    info = pbr.baseColorTexture if pbr else None
    out = Surface(color, alpha_mode=mat.alphaMode if mat.alphaMode in ALPHA_MODES else "OPAQUE",
                  alpha_cutoff=float(mat.alphaCutoff if mat.alphaCutoff is not None else 0.5),
                  double_sided=bool(mat.doubleSided),
                  source="VRM 1.0 MToon" if "VRMC_materials_mtoon" in (mat.extensions or {}) else "glTF")
    if info is not None and info.index is not None:
        ext = (info.extensions or {}).get("KHR_texture_transform")
        out.image = texture_image(model, info.index)
        out.texcoord = int((ext or {}).get("texCoord", info.texCoord or 0))
        out.uv_transform = uv_transform(ext)
        out.wrap = wrap_modes(model, info.index)
    vrm0 = _vrm0_properties(model, material)
    if vrm0 is not None:
        _apply_vrm0(model, vrm0, out)
    return out


def _apply_vrm0(model, props: dict, out: Surface) -> None:
    """Fill what the glTF material leaves out from VRM 0.x MToon properties."""
    floats = props.get("floatProperties") or {}
    tex = (props.get("textureProperties") or {}).get("_MainTex")
    if out.image is None and isinstance(tex, int):
        out.image, out.source, out.wrap = texture_image(model, tex), "VRM 0.x MToon", wrap_modes(model, tex)
        col = (props.get("vectorProperties") or {}).get("_Color")
        if isinstance(col, list) and len(col) == 4:
            out.color = np.asarray(col, np.float32)
    mode = _VRM0_RENDER_TYPE.get((props.get("tagMap") or {}).get("RenderType", ""), "OPAQUE")
    if out.alpha_mode == "OPAQUE" and mode != "OPAQUE":
        out.alpha_mode = mode
        if "_Cutoff" in floats:
            out.alpha_cutoff = float(floats["_Cutoff"])
    if floats.get("_CullMode") == 0:   # Unity's Cull Off
        out.double_sided = True
