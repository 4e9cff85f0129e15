"""glTF 2.0 / VRM characters, one concept per module:

    read.py      a .gltf/.glb/.vrm file -> `Model` (buffers, accessors, meshes, nodes, materials)
    vrm.py       VRM 0.x / 1.0 expressions and their morph target binds
    scene.py     the head node and the parts that turn with it
    skin.py      skinned vertices in their bind pose (joints x inverse bind matrices), head-bone shares
    materials.py what a material looks like to a preview (base colour, texture transform, alpha, MToon)
    drive.py     an `Animation` + a `Model` -> a `Performance` (morph weights per node, head rotation)
    inspect.py   the `viseme rig inspect` report
    errors.py    `ModelError`
"""
