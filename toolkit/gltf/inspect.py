"""`viseme rig inspect`: what a model carries and how an animation would drive it, as text.

Every mesh and primitive with its morph targets, the VRM expressions and their binds,
the rig profile that matches (or how a given one maps), what it misses, what an
animation would drive, and the node head rotation would turn.

Example
-------
>>> print(inspect_model("avatar.glb"))                     # doctest: +SKIP
avatar.glb: glTF 2.0, 3 mesh(es), 57 node(s), 1 skin(s), 0 animation(s)
...
"""
from __future__ import annotations

from pathlib import Path

from toolkit import rigs
from toolkit.animation import empty_animation
from toolkit.gltf.drive import face_nodes, model_sets, perform, target_names_of
from toolkit.gltf.errors import ModelError
from toolkit.gltf.read import Model, load_model
from toolkit.gltf.scene import find_head_node


def _inspect_header(model: Model) -> list[str]:
    g = model.gltf
    lines = [f"{model.path}: glTF {g.asset.version}" + (f", VRM {model.vrm.version}" if model.vrm else "")
             + f", {len(model.meshes)} mesh(es), {len(g.nodes)} node(s), {len(g.skins)} skin(s), "
             f"{len(g.animations)} animation(s)"]
    if model.extensions_required:
        lines.append(f"extensions required: {', '.join(model.extensions_required)}")
    lines += [f"warning: {e}" for e in model.unreadable_images()]
    return lines


def _inspect_meshes(model: Model) -> list[str]:
    g, lines = model.gltf, []
    for m in model.meshes:
        nodes = ", ".join(f"#{n} {g.nodes[n].name or ''}".strip() for n in m.nodes) or "no node"
        lines.append(f"mesh #{m.index} {m.name or '(unnamed)'}: {len(m.primitives)} primitive(s), "
                     f"{m.n_targets} morph target(s), placed by {nodes}")
        for p in m.primitives:
            try:
                nv = g.accessors[p.attributes["POSITION"]].count
            except (KeyError, IndexError):
                nv = "?"
            lines.append(f"  primitive {p.index}: {nv} vertices, {len(p.targets)} targets, material {p.material}")
        if m.n_targets:
            names = [f"{i}:{n if n else '(unnamed)'}" for i, n in enumerate(m.target_names)]
            for k in range(0, len(names), 8):
                lines.append("    " + "  ".join(names[k:k + 8]))
    return lines


def _bind_label(model: Model, node: int, t: int, w: float) -> str:
    m = model.meshes[model.gltf.nodes[node].mesh]
    return f"node #{node} {m.label}[{t}:{m.target_names[t]}]*{w:g}" if m.target_names[t] else \
        f"node #{node} {m.label}[{t}]*{w:g}"


def _inspect_vrm(model: Model) -> list[str]:
    vrm = model.vrm
    lines = [f"VRM {vrm.version} expressions:"]
    for k, v in vrm.expressions.items():
        desc = [_bind_label(model, n, t, w) for n, t, w in v] + [f"BROKEN: {why}" for why in vrm.broken.get(k, [])]
        lines.append(f"  {k}: {', '.join(desc) or vrm.other_binds.get(k, 'no binds')}")
    return lines


def _inspect_sets(model: Model) -> list[str]:
    """Every rig set the model carries, best first, with what it covers and why it won or lost."""
    sets = model_sets(model)
    fit = [s for s in sets if s.match.ok]
    lines = []
    if fit:
        lines.append("rig sets, best first (the mouth goes to the set that closes the lips, then shapes the most visemes, "
                     "has the most mouth shapes, drives the most other motions, has the highest priority; other sets only add the "
                     "motions it lacks):")
        lines += [f"  {'*' if s is fit[0] else '-'} {s.describe()}" for s in fit]
    near = [s for s in sets if not s.match.ok and s.match.n_matched]
    if near:
        lines.append("  not fitting: " + "; ".join(f"{s.match.profile.name} ({s.match.n_matched} targets, "
                                                   f"{s.match.problem})" for s in near))
    return lines


def _inspect_rig(model: Model, prof) -> list[str]:
    """How the automatic match (or the profile ``prof``) maps the expressions or target names."""
    union = target_names_of(model)
    lines = [] if prof is not None else _inspect_sets(model)
    if model.vrm and model.vrm.bound and (prof is None or prof.kind == model.vrm.kind):
        m = rigs.match_profile(model.vrm.bound, profiles=[prof] if prof else None, kind=model.vrm.kind,
                               strict=False)
        # the VRM presets are standard names: any bound mouth expression is used, whatever the score
        lines.append("rig (VRM expressions, used when a mouth expression is bound and no richer set is there): "
                     + m.describe().replace(" (below threshold)", "").replace("\n", "\n  "))
    if prof is not None and prof.kind == "morph":
        for mesh in model.meshes:
            if mesh.n_targets:
                lines.append(f"rig {prof.name} ({prof.path or 'given'}) on {mesh.label}: "
                             + rigs.match_one(prof, mesh.target_names).describe().replace("\n", "\n  "))
    elif prof is None and union:
        m = rigs.match_profile(union, strict=False)
        lines.append(("rig (morph target names): " if m.ok else "no rig profile matches the target names; closest: ")
                     + m.describe().replace("\n", "\n  "))
    elif prof is None and any(m.n_targets for m in model.meshes) and not (model.vrm and model.vrm.bound):
        lines.append("all morph targets are unnamed: map them with a rig file using 'targets_by_index'")
    return lines


def _inspect_drive(model: Model, prof) -> tuple[list[str], ValueError | None]:
    """What an animation would drive (or why it cannot: also returned) and the node head rotation would turn."""
    problem = None
    try:
        perf = perform(empty_animation(1, fps=30), model, prof, head=False)
    except (ModelError, rigs.RigError) as e:
        problem, lines, head = e, [f"cannot animate: {e}"], find_head_node(model, face_nodes(model))
    else:
        lines = [f"animates: {perf.via}"] + [f"warning: {w}" for w in perf.warnings]
        head = find_head_node(model, list(perf.weights))
    name = model.gltf.nodes[head].name if head is not None else None
    return lines + ["head rotation node: " + (f"#{head} {name or ''}".strip() if head is not None
                                              else "none found (no head bone in the skeleton)")], problem


def inspect_model(path: str | Path, profile=None) -> str:
    """Human-readable report: meshes, primitives, every morph target, VRM expressions and binds,
    the rig profile that matches (or how ``profile`` maps), what it misses, what an animation
    would drive and the head node.  Raises ModelError for a model whose buffers cannot be read."""
    return inspect_report(path, profile)[0]


def inspect_report(path: str | Path, profile=None) -> tuple[str, ValueError | None]:
    """`inspect_model`'s report, and why an animation cannot drive the model (None when it can): the
    report of a model that cannot animate is still wanted, and so is an error a script can act on."""
    model = load_model(path)
    model.read_buffers()  # a missing or short .bin is an error, not a report of a model that cannot work
    prof = rigs.load_profile(profile) if profile is not None else None
    lines = _inspect_header(model) + _inspect_meshes(model)
    if model.vrm:
        lines += _inspect_vrm(model)
    drive, problem = _inspect_drive(model, prof)
    return "\n".join(lines + _inspect_rig(model, prof) + drive), problem