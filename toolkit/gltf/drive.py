"""Driving a character: an `Animation` plus a model -> a `Performance`.

A `Performance` is what the animation does to one character, frame by frame: the
morph weights of every node that places a face mesh and the rotation of its head
node, as named tracks in three.js's style (``Face.morphTargetInfluences``,
``Head.quaternion``).  It is computed once, by `perform`, and every consumer reads
it: the glTF/VRM writer (`toolkit.export.gltf`), the renderer (`toolkit.render`),
the Blender exporter (`toolkit.export.blend`), `viseme rig inspect`.

How the weights are found: VRM models go through their expressions (VRM 0.x
blendShapeGroups or VRM 1.0 expressions) and the expressions' morph target binds;
other models match their target names against the rig profiles (`toolkit.rigs`),
or the ``profile`` given.  Every mesh that carries the matching names is driven
(head, teeth, tongue, beard); targets nobody drives keep the mesh's own weight.

Example
-------
>>> from toolkit.gltf.read import load_model                          # doctest: +SKIP
>>> perf = perform(anim, load_model("avatar.vrm"))                    # doctest: +SKIP
>>> [t.name for t in perf.tracks()]                                   # doctest: +SKIP
['Face.morphTargetInfluences', 'J_Bip_C_Head.quaternion']
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from toolkit import rigs
from toolkit.animation import Animation, empty_animation
from toolkit.gltf.errors import ModelError
from toolkit.gltf.read import Model, load_model
from toolkit.gltf.scene import find_head_node
from toolkit.rotation import matrix_to_quat, quat_multiply

# Targets a --rig profile asks for and the model lacks, named in the warning (an ARKit profile on a model
# with a few mouth shapes lacks dozens; the rest are counted).
MISSING_SHOWN = 8


@dataclass
class Track:
    """One animated property of one node, sampled at the performance's frames (three.js KeyframeTrack).

    ``name`` is three.js's binding path (``"<node name>.morphTargetInfluences"`` or
    ``"<node name>.quaternion"``); ``path`` the glTF channel path (``"weights"`` or
    ``"rotation"``); ``values`` frames x k (k targets, or 4 for an x, y, z, w quaternion)."""

    name: str
    node: int
    path: str
    values: np.ndarray
    interpolation: str = "LINEAR"


@dataclass
class Performance:
    """What an animation does to one character.

    ``weights[node]`` frames x targets for every node that places a driven mesh (targets the
    animation does not move hold the mesh's default weight); ``driven[node]`` the target
    indices it moves; ``match`` the rig match; ``via`` a one-line summary;
    ``expression_weights`` VRM expression curves (VRM only); ``stepped`` whether keys hold
    (2D mouth charts); ``head_node`` the node head rotation turns (None: none found or not
    asked), ``head_rotation`` its local rotation per frame (rest pose included, as glTF
    animates it) and ``head_delta`` the turn in world axes (frames x 4, x y z w; there even
    when no head node is known, for a renderer that turns the whole model);
    ``warnings`` what the user should know."""

    weights: dict[int, np.ndarray]
    driven: dict[int, list[int]]
    match: "rigs.RigMatch | None"
    via: str
    expression_weights: dict[str, np.ndarray] = field(default_factory=dict)
    stepped: bool = False
    warnings: list[str] = field(default_factory=list)
    model: Model | None = field(default=None, repr=False)
    fps: float = 30.0
    head_node: int | None = None
    head_rotation: np.ndarray | None = None
    head_delta: np.ndarray | None = None

    @property
    def n_frames(self) -> int:
        return next(iter(self.weights.values())).shape[0] if self.weights else 0

    def node_name(self, node: int) -> str:
        """The node's name, or ``#index`` for an unnamed node."""
        return self.model.gltf.nodes[node].name or f"#{node}"

    def tracks(self) -> list[Track]:
        """Every animated property as a named track: morph weights per node, then the head rotation."""
        interp = "STEP" if self.stepped else "LINEAR"
        out = [Track(f"{self.node_name(n)}.morphTargetInfluences", n, "weights", w, interp)
               for n, w in self.weights.items()]
        if self.head_node is not None and self.head_rotation is not None:
            out.append(Track(f"{self.node_name(self.head_node)}.quaternion", self.head_node, "rotation",
                             self.head_rotation))
        return out

    def describe_driven(self) -> list[str]:
        """One line per driven node: how many of its targets move, and the first names."""
        lines = []
        for node, idx in self.driven.items():
            m = self.model.meshes[self.model.gltf.nodes[node].mesh]
            names = [m.target_names[i] or f"#{i}" for i in idx]
            lines.append(f"node #{node} {m.label}: {len(idx)}/{m.n_targets} targets "
                         f"({', '.join(names[:6])}{' ...' if len(names) > 6 else ''})")
        return lines

    @property
    def head_label(self) -> str | None:
        if self.head_node is None:
            return None
        return f"node #{self.head_node} {self.model.gltf.nodes[self.head_node].name or ''}".strip()


def perform(anim: Animation, model: Model, profile=None, *, head: bool = True) -> Performance:
    """What ``anim`` does to ``model``: the weights of every mesh that shares the face targets and,
    with ``head``, the head node's rotation.

    VRM models go through their expressions (VRM 0.x blendShapeGroups or VRM 1.0
    expressions) and the expression binds; other models match target names against
    the rig profiles (or ``profile``: a name, JSON path or Profile); a VRM whose bound
    expressions move no mouth falls back to its target names (with a warning).  Raises
    ModelError listing what was found when nothing can move the mouth, and for a broken
    VRM bind of an expression the animation drives.
    """
    perf = _morph_weights(anim, model, profile)
    perf.model, perf.fps = model, anim.fps
    if head:
        perf.head_delta = rigs.head_rotation(anim, model.facing)
        node = find_head_node(model, list(perf.weights))
        if node is None:
            perf.warnings.append("no head bone found in the skeleton: head rotation not written")
        else:
            perf.head_node = node
            perf.head_rotation = _local_head_rotation(model, node, perf.head_delta)
    return perf


def face_nodes(model: Model) -> list[int]:
    """Nodes whose meshes the automatic rig match drives; else every node placing morph targets."""
    try:
        return list(_morph_weights(_still_animation(), model, None).weights)
    except (ModelError, rigs.RigError):
        return [n for m in model.meshes if m.n_targets for n in m.nodes] or \
            [n for n, node in enumerate(model.gltf.nodes) if node.mesh is not None]


def head_node(model: Model, profile=None) -> int | None:
    """The node an animation's head rotation turns (see `toolkit.gltf.scene.find_head_node`)."""
    try:
        faces = list(_morph_weights(_still_animation(), model, profile).weights)
    except (ModelError, rigs.RigError):
        faces = face_nodes(model)
    return find_head_node(model, faces)


def _local_head_rotation(model: Model, node: int, delta: np.ndarray) -> np.ndarray:
    """Local rotations of ``node`` that turn it by ``delta`` (world axes) on top of its rest pose."""
    par = model.parents()[node]
    pw = np.eye(3)
    if par is not None:
        m = model.world_matrices()[par][:3, :3]
        pw = m / np.maximum(np.linalg.norm(m, axis=0), 1e-12)[None, :]
    pq = matrix_to_quat(pw)
    pq_inv = pq * np.array([-1, -1, -1, 1])
    lm = model.local_matrix(node)[:3, :3]
    lq = matrix_to_quat(lm / np.maximum(np.linalg.norm(lm, axis=0), 1e-12)[None, :])
    # world delta D applied on top of the rest pose: local' = P^-1 D P L
    q = quat_multiply(quat_multiply(quat_multiply(pq_inv[None], delta.astype(np.float64)), pq[None]), lq[None])
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    q[q[:, 3] < 0] *= -1  # one hemisphere: linear interpolation between keys stays short
    return q.astype(np.float32)


def target_names_of(model: Model) -> list[str | None]:
    """Every named morph target of the model, once each, in file order."""
    seen: list[str | None] = []
    for m in model.meshes:
        for n in m.target_names:
            if n and n not in seen:
                seen.append(n)
    return seen


def _describe_found(model: Model) -> str:
    parts = []
    for m in model.meshes:
        if m.n_targets:
            named = [n for n in m.target_names if n]
            parts.append(f"{m.label}: {m.n_targets} targets" + (f" ({', '.join(named[:12])}"
                         + (" ..." if len(named) > 12 else "") + ")" if named else " (unnamed)"))
    if model.vrm:
        ex = [f"{k}{'' if v else ' (no morph binds)'}" for k, v in model.vrm.expressions.items()]
        parts.append(f"VRM {model.vrm.version} expressions: {', '.join(ex) or 'none'}")
    return "; ".join(parts) or "no morph targets and no expressions"


def model_sets(model: Model) -> list[rigs.RigSet]:
    """Every rig set the model carries (its mesh target names under each profile, and a VRM's bound
    expressions), best first, with what each covers and why it won or lost (`toolkit.rigs.rank_sets`)."""
    vrm = model.vrm
    return rigs.rank_sets(target_names_of(model),
                          expressions=(vrm.bound, vrm.kind) if vrm is not None and vrm.bound else None)


def _morph_weights(anim: Animation, model: Model, profile=None) -> Performance:
    """The morph weights of `perform` (see there)."""
    if not any(m.n_targets and m.nodes for m in model.meshes):
        raise ModelError(f"{model.path}: the model has no morph targets (blendshapes), so nothing can move its face; "
                         f"found {len(model.meshes)} mesh(es): "
                         f"{', '.join(m.label for m in model.meshes) or 'none'}")
    if profile is None:
        return _richest_weights(anim, model)
    prof = rigs.load_profile(profile)
    errors = []
    if model.vrm is not None and prof.kind == model.vrm.kind:
        try:
            return _vrm_weights(anim, model, prof)
        except rigs.RigError as e:  # (a broken bind is a ModelError: reported, never worked around)
            errors.append(str(e))
    if prof.kind == "morph":
        try:
            drive = _morph_name_weights(anim, model, prof)
        except rigs.RigError as e:
            errors.append(str(e))
        else:
            drive.warnings += [f"{e.rstrip('.')}. Driving the mesh target names instead." for e in errors]
            return drive
    elif not errors:
        errors.append(f"profile {prof.name!r} is for {prof.kind} expressions but the model is not "
                      f"{'a VRM' if model.vrm is None else 'VRM ' + model.vrm.version}")
    raise ModelError(f"{model.path}: cannot drive this model. Found {_describe_found(model)}. "
                     + " ".join(e.rstrip(".") + "." for e in errors))


def _richest_weights(anim: Animation, model: Model) -> Performance:
    """The automatic choice: the richest set drives the mouth, other sets add what it lacks
    (`model_sets`); VRM expressions are one of the sets."""
    sets = model_sets(model)
    best = sets[0] if sets and sets[0].match.ok else None
    vrm, errors = model.vrm, []
    if vrm is not None:
        vrm_set = next((s for s in sets if s.match.profile.kind == vrm.kind), None)
        if not vrm.bound:
            errors.append(f"VRM {vrm.version} expressions have no morph target binds "
                          f"({', '.join(vrm.expressions) or 'no expressions at all'})")
        elif not vrm_set.match.ok:
            p = vrm_set.match.profile
            errors.append(f"the VRM {vrm.version} expressions bound to morph targets ({', '.join(vrm.bound)}) move "
                          f"no mouth (profile {p.name} needs one of "
                          f"{', '.join(k for k in p.targets if p.drives_mouth(k))})")
    if best is None:
        union = target_names_of(model)
        if not union:
            errors.append("all morph targets are unnamed: give a rig file with 'targets_by_index'")
        else:
            try:
                rigs.match_profile(union)
            except rigs.RigError as e:
                errors.append(str(e))
        raise ModelError(f"{model.path}: cannot drive this model. Found {_describe_found(model)}. "
                         + " ".join(e.rstrip(".") + "." for e in errors))
    if best.match.profile.kind != "morph":
        perf = _vrm_match_weights(anim, model, best.match)
        if best.fills:
            _add_fills(anim, model, perf, best.fill_profile())
            perf.via += "; " + "; ".join(f"{f.motion} from mesh targets by profile {f.match.profile.name}"
                                         for f in best.fills)
        return perf
    perf = _morph_name_weights(anim, model, best.combined().profile)
    perf.warnings += [f"{e.rstrip('.')}. Driving the mesh target names instead." for e in errors]
    lost = next((s for s in sets if vrm is not None and s.match.profile.kind == vrm.kind and s.match.ok), None)
    if lost is not None:
        perf.via += f"; the VRM {vrm.version} expressions are not driven ({lost.why})"
    return perf


def _matched_meshes(anim: Animation, model: Model, prof: rigs.Profile):
    """(mesh, its match to ``prof``, its weights frames x targets) for every placed mesh ``prof`` matches."""
    for m in model.meshes:
        if not m.n_targets or not m.nodes:
            continue
        mm = rigs.match_one(prof, m.target_names)
        if mm.n_matched:
            yield m, mm, rigs.retarget(anim, m.target_names, mm)


def _add_fills(anim: Animation, model: Model, perf: Performance, prof: rigs.Profile) -> None:
    """Drive the mesh targets ``prof`` names beside what ``perf`` drives already (one target, one driver)."""
    for m, mm, w in _matched_meshes(anim, model, prof):
        for node in m.nodes:
            idx = [i for i, k in enumerate(mm.target_keys) if k and i not in perf.driven.get(node, [])]
            if not idx:
                continue
            if node not in perf.weights:
                perf.weights[node] = np.repeat(m.default_weights[None, :], anim.n_frames, axis=0)
                perf.driven[node] = []
            perf.weights[node][:, idx] = w[:, idx]
            perf.driven[node] += idx


def _morph_name_weights(anim: Animation, model: Model, prof) -> Performance:
    union = target_names_of(model)
    weights, driven, matches = {}, {}, []
    for m, mm, w in _matched_meshes(anim, model, prof):
        matches.append(mm)
        idx = [i for i, k in enumerate(mm.target_keys) if k]
        full = np.repeat(m.default_weights[None, :], anim.n_frames, axis=0)
        full[:, idx] = w[:, idx]
        for node in m.nodes:
            weights[node], driven[node] = full, idx
    if not weights:
        raise rigs.RigError(f"rig profile {prof.name!r} drives none of the model's morph targets")
    mouth = {k for m in matches for k in m.mouth_keys}
    if not mouth:  # only an explicit profile gets here: an automatic match needs a mouth target
        found = sorted({k for m in matches for k in m.target_keys if k})
        raise rigs.RigError(f"rig profile {prof.name!r} drives no mouth target (viseme, jaw, mouth or tongue "
                            f"shape), only {', '.join(found)}; map a mouth target in the rig file")
    n_meshes = len({model.gltf.nodes[n].mesh for n in weights})
    n = sum(len(driven[next(x for x in weights if model.gltf.nodes[x].mesh == mi)])
            for mi in {model.gltf.nodes[x].mesh for x in weights})
    match = rigs.match_one(prof, union if union else model.meshes[0].target_names)
    perf = Performance(weights, driven, match, f"morph target names -> profile {prof.name} ({n} targets on "
                       f"{n_meshes} mesh(es))", stepped=prof.stepped)
    if match.missing:  # the profile was named by the user: say what it asks for that is not there
        shown = ", ".join(match.missing[:MISSING_SHOWN]) + (", ..." if len(match.missing) > MISSING_SHOWN else "")
        perf.warnings.append(f"rig profile {prof.name!r}: {len(match.missing)} of its targets are not on the model "
                             f"({shown}); those motions are not written (viseme rig inspect lists them)")
    return perf


def _vrm_weights(anim: Animation, model: Model, prof) -> Performance:
    """A VRM's expressions through the given VRM profile."""
    vrm = model.vrm
    bound = vrm.bound
    if not bound:
        raise rigs.RigError(f"VRM {vrm.version} expressions have no morph target binds "
                            f"({', '.join(vrm.expressions) or 'no expressions at all'})")
    # a VRM's expression names are standard: use the VRM profile even if only some presets are bound
    match = rigs.match_profile(bound, profiles=[prof], kind=vrm.kind, strict=False)
    if not match.mouth_keys:
        raise rigs.RigError(f"the VRM {vrm.version} expressions bound to morph targets ({', '.join(bound)}) move "
                            f"no mouth (profile {match.profile.name} needs one of "
                            f"{', '.join(k for k in match.profile.targets if match.profile.drives_mouth(k))})")
    return _vrm_match_weights(anim, model, match)


def _vrm_match_weights(anim: Animation, model: Model, match: rigs.RigMatch) -> Performance:
    """The morph weights of a VRM's bound expressions as ``match`` maps them, through their binds."""
    vrm = model.vrm
    bound = match.target_names
    used = [(j, name) for j, (name, key) in enumerate(zip(bound, match.target_keys)) if key]
    _check_binds(model, [name for _, name in used])
    ew = rigs.retarget(anim, bound, match)
    weights: dict[int, np.ndarray] = {}
    driven: dict[int, list[int]] = {}
    for j, name in used:
        for node, target, bw in vrm.expressions[name]:
            m = model.meshes[model.gltf.nodes[node].mesh]
            if node not in weights:
                weights[node] = np.repeat(m.default_weights[None, :], anim.n_frames, axis=0)
                driven[node] = []
            if target not in driven[node]:
                driven[node].append(target)
                weights[node][:, target] = m.default_weights[target]
            # VRM: a target's weight is the sum over expressions of expression weight x bind weight
            weights[node][:, target] += ew[:, j] * bw
    expr_w = {name: ew[:, j] for j, name in used}
    return Performance(weights, driven, match, f"VRM {vrm.version} expressions -> profile {match.profile.name} "
                      f"({len(expr_w)} expressions: {', '.join(expr_w)})", expression_weights=expr_w,
                      stepped=match.profile.stepped)


def _check_binds(model: Model, names: list[str]) -> None:
    """A broken bind of an expression the animation drives is an error, not a silently still mouth."""
    bad = [f"VRM expression {n!r} {why}" for n in names for why in model.vrm.broken.get(n, [])]
    if bad:
        # a broken VRM is reported as such, not papered over by guessing from target names
        raise ModelError(f"{model.path}: {'; '.join(bad)} (broken bind); fix the VRM's expressions")


def check_model(path: str | Path, profile=None) -> Model:
    """Load a model and check everything an animated output needs: its buffers can be read and
    an animation can drive its mouth (with ``profile``, or the matched one).  Raises ModelError /
    RigError naming the file and the problem; cheap enough to call before any long work."""
    model = load_model(path)
    model.read_buffers()
    _morph_weights(_still_animation(), model, profile)
    return model



def _still_animation() -> Animation:
    """One frame of rest: enough to ask what an animation would drive."""
    return empty_animation(1, fps=30)
