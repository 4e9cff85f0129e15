"""Rig profiles: which of a character's morph targets each animation channel drives.

A *rig profile* is a small JSON file in ``rigs/`` (format in ``rigs/README.md``)
that lists target names and, for each, the mix of animation channels that
drives it.  This module loads the profiles, matches a model's target names to
the best profile (tolerating case, separators, ``_L/_R/Left/Right`` and
prefixes such as ``blendShape1.``, ``Fcl_MTH_`` or ``viseme_``) and turns an
`Animation` into per-target weights.

Functions the rest of the toolkit calls::

    load_profiles() -> list[Profile]                       every profile in rigs/ (+ $VISEME_RIG_PATH)
    load_profile(name_or_path) -> Profile                   one profile by name or JSON path
    normalize_name(name) -> str                             the key names are compared by
    match_profile(target_names, profiles=None, kind="morph", strict=True) -> RigMatch
    retarget(anim, target_names, profile=None) -> np.ndarray   frames x targets, weights in [0, 1]
    head_rotation(anim, facing="+z") -> np.ndarray          frames x 4 quaternions (x, y, z, w)

``target_names`` is one mesh's morph target names in target order (``None`` or
``""`` for an unnamed target), or the expression names of a VRM model with
``kind="vrm0"``/``"vrm1"``.

Example
-------
>>> import numpy as np
>>> from toolkit.animation import empty_animation
>>> anim = empty_animation(3, fps=30)
>>> anim.values[1, anim.channels.index("jawOpen")] = 0.8
>>> names = ["blendShape1.jawOpen", "eyeBlink_L", "eyeBlink_R", "mouthClose"] + ["x%d" % i for i in range(3)]
>>> m = match_profile(["jawOpen", "eyeBlink_L", "eyeBlink_R", "mouthClose", "browInnerUp", "cheekPuff",
...                    "mouthFunnel", "mouthPucker", "tongueOut"], profiles=[load_profile("arkit52")], strict=False)
>>> m.target_keys[:3]
['jawOpen', 'eyeBlinkLeft', 'eyeBlinkRight']
>>> w = retarget(anim, names, profile="arkit52")
>>> float(w[1, 0])
0.800000011920929
"""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from toolkit import resources
from toolkit.animation import ARKIT_BLENDSHAPES, CHANNELS, HEAD_CHANNELS, VISEME_CHANNELS, VISEMES, Animation
from toolkit.rotation import axis_angle_quat, quat_multiply
from toolkit.visemes.tables import VISEME_POSES, VISEME_TO_RHUBARB

RIGS_DIR = resources.RIGS_DIR
KINDS = ("morph", "vrm0", "vrm1")

# Prefixes that say where a name comes from, not what it is.  Stripped only
# when the full name finds no match (``Fcl_MTH_A`` then matches ``A``).
_SOURCE_PREFIXES = ("viseme_", "v_", "fcl_mth_", "fcl_eye_", "fcl_brw_", "fcl_all_", "fcl_ha_",
                    "arkit_", "blendshape_", "bs_", "morph_", "shape_", "vrc_v_")
_PREFIX_FAMILY = {"v_": "viseme_", "vrc_v_": "viseme_"}  # VRChat's v_aa is Oculus's viseme_aa
_SIDE_SUFFIX = re.compile(r"[._\- ]([LlRr])$")
_SIDE_WORD = {"L": "left", "R": "right", "": ""}
_SEPARATORS = re.compile(r"[\s._\-:|/]+")
# Blender's copy suffix (jawOpen.001) and Auto-Rig Pro's centre suffix (c_head.x) say nothing
# about what a name is; a dot elsewhere is only a separator ("Head.x" must not become "x")
_BLENDER_COPY = re.compile(r"\.\d{3,}$")
_CENTER_SUFFIX = re.compile(r"\.[xX]$")
# blendshape-node prefixes that exporters put before the target name: blendShape1.jawOpen,
# Face_BlendShapes.jawOpen, vrc.v_aa, BS.jawOpen
_NODE_PREFIX = re.compile(r"^(?:[\w\- ]*?blend_?shapes?\d*|vrc|bs\d*|morphs?|shape_?keys?|targets?)\.", re.I)
# channels that move the mouth while speaking (a rig needs one of them to lip-sync)
_MOUTH_CHANNEL_PREFIXES = ("jaw", "mouth", "tongue")


# Head bones, after normalize_name: "head" (Mixamo, VRoid, UE, Rigify), or ending in "head" (Bip001 Head,
# CC_Base_Head, Character1_Head, ORG-head, J_Bip_C_Head) or head plus a centre or joint tag (Head_M,
# headJnt, head_bone, Head01); not HeadTop_End / head_end / HeadNub, not forehead.  The glTF path and the
# Blender (.blend/FBX) path both ask `head_bone_rank`, so they turn the same bone.
_HEAD_BONE = re.compile(r"head(?:m|x|jnt|joint|bone|0?1)?$")


class RigError(ValueError):
    """A rig profile or a model's targets that cannot be used (the message says what was found)."""


# -- names -------------------------------------------------------------------
def _core_name(name: str) -> tuple[str, str]:
    """(the name without namespace, blendshape-node prefix, Blender copy suffix and side suffix,
    the side: "L", "R" or "")."""
    s = _BLENDER_COPY.sub("", str(name).strip())
    s = s.rsplit(":", 1)[-1]  # Maya/FBX namespaces: mixamorig:Head, head:jawOpen
    s = _CENTER_SUFFIX.sub("", _NODE_PREFIX.sub("", s))
    m = _SIDE_SUFFIX.search(s)
    if not m:
        return s, ""
    return s[: m.start()], "L" if m.group(1) in "Ll" else "R"


def normalize_name(name: str | None) -> str:
    """Compare key for a target or bone name: namespace, blendshape-node prefix and Blender
    ``.001`` suffix dropped, sides spelled out, lower case, no separators.

    >>> [normalize_name(n) for n in ["blendShape1.eyeBlink_L", "EyeBlinkLeft", "mixamorig:Head", "Blink.R"]]
    ['eyeblinkleft', 'eyeblinkleft', 'head', 'blinkright']
    >>> [normalize_name(n) for n in ["jawOpen.001", "c_head.x", "Head.x", "Bip001 Head"]]
    ['jawopen', 'chead', 'head', 'bip001head']
    """
    if not name:
        return ""
    s, side = _core_name(name)
    return _SEPARATORS.sub("", s.lower()) + _SIDE_WORD[side]


def head_bone_rank(name: str | None) -> int | None:
    """0 for a plain "head" bone, 1 for another head-bone name, None for anything else.

    >>> [head_bone_rank(n) for n in ["Head", "mixamorig:Head", "Bip001 Head", "Head_M", "HeadTop_End", "forehead"]]
    [0, 0, 1, 1, None, None]
    """
    n = normalize_name(name)
    if n == "head":
        return 0
    return 1 if _HEAD_BONE.search(n) and not n.endswith("forehead") else None


def _split_prefix(name: str | None) -> tuple[str, str]:
    """(`normalize_name` without source prefixes, the prefix family stripped or "").

    >>> _split_prefix("Fcl_MTH_A"), _split_prefix("vrc.v_pp"), _split_prefix("PP"), _split_prefix("face_BS.jawOpen")
    (('a', 'fcl_mth_'), ('pp', 'viseme_'), ('pp', ''), ('jawopen', ''))
    """
    if not name:
        return "", ""
    s, side = _core_name(name)
    # any other dotted prefix is a node or namespace (face_BS.jawOpen, Body.mouthSmile_L)
    tail = s.rsplit(".", 1)[-1]
    if len(tail) >= 2:
        s = tail
    low, family = s.lower(), ""
    changed = True
    while changed:
        changed = False
        for p in _SOURCE_PREFIXES:
            if low.startswith(p) and len(low) > len(p):
                low, changed = low[len(p):], True
                family = family or _PREFIX_FAMILY.get(p, p)
    return _SEPARATORS.sub("", low) + _SIDE_WORD[side], family


def _bare_name(name: str | None) -> str:
    return _split_prefix(name)[0]


# -- profiles ----------------------------------------------------------------
@dataclass
class Profile:
    """One rig profile.  ``targets`` maps a key (``"viseme_I|viseme_ih"``: alternatives
    separated by ``|``) to its channel mix ``{channel: weight}``."""

    name: str
    targets: dict[str, dict[str, float]]
    description: str = ""
    kind: str = "morph"
    priority: int = 0
    required: list[str] = field(default_factory=list)
    min_required: float = 0.5
    scale: dict[str, float] = field(default_factory=dict)
    stepped: bool = False
    rest: str | None = None
    only_if_missing: dict[str, list[str]] = field(default_factory=dict)
    targets_by_index: dict[int, dict[str, float]] = field(default_factory=dict)
    path: str = ""
    closure: list[str] = field(default_factory=list)   # keys whose targets press the lips shut (/p b m/)

    def key_for(self, name: str) -> str | None:
        """The profile key whose spelling (one of its alternatives) is ``name``."""
        n = normalize_name(name)
        for key in self.targets:
            if any(normalize_name(a) == n for a in key.split("|")):
                return key
        return None

    def mix(self, key: str) -> dict[str, float]:
        """The channel mix of a key from ``targets`` or, written ``#i``, from ``targets_by_index``."""
        return self.targets_by_index[int(key[1:])] if key.startswith("#") else self.targets[key]

    def drives_mouth(self, key: str) -> bool:
        """Whether the target of ``key`` moves the mouth while speaking: it mixes a viseme other
        than silence, or an ARKit jaw/mouth/tongue shape (blinks and brows alone cannot lip-sync)."""
        return any(w and (ch.startswith(_MOUTH_CHANNEL_PREFIXES) or (ch in VISEME_CHANNELS and ch != "viseme_sil"))
                   for ch, w in self.mix(key).items())

    @property
    def channels(self) -> list[str]:
        """Animation channels this profile reads."""
        out: list[str] = []
        for mix in list(self.targets.values()) + list(self.targets_by_index.values()):
            out += [c for c in mix if c not in out]
        return out


_PROFILE_FIELDS = {"name", "description", "kind", "priority", "required", "min_required", "targets", "scale",
                   "stepped", "rest", "only_if_missing", "targets_by_index", "extends", "rename", "closure"}


def _parse_mix(value, where: str) -> dict[str, float]:
    """A target's channel mix: "jawOpen", "rhubarb:A" or {"viseme_aa": 1.0, ...}."""
    if isinstance(value, str):
        value = {value: 1.0}
    if not isinstance(value, dict) or not value:
        raise RigError(f"{where}: a mix must be a channel name or an object of channel weights, got {value!r}")
    mix: dict[str, float] = {}
    for ch, w in value.items():
        if not isinstance(w, (int, float)) or isinstance(w, bool) or not math.isfinite(w):
            raise RigError(f"{where}: weight of {ch!r} must be a finite number, got {w!r}")
        if ch.startswith("rhubarb:"):
            # a Rhubarb/Preston Blair shape = every viseme the viseme table gives that shape
            shape = ch.split(":", 1)[1]
            vis = [v for v in VISEMES if VISEME_TO_RHUBARB[v] == shape]
            if not vis:
                raise RigError(f"{where}: no viseme maps to Rhubarb shape {shape!r}")
            for v in vis:
                mix[f"viseme_{v}"] = mix.get(f"viseme_{v}", 0.0) + float(w)
        elif ch in CHANNELS:
            mix[ch] = mix.get(ch, 0.0) + float(w)
        else:
            raise RigError(f"{where}: unknown animation channel {ch!r} (channels are viseme_*, the 52 ARKit names, "
                           f"head*; or rhubarb:A..H/X)")
    return mix


def _profile_from_dict(d: dict, path: str, search: tuple[Path, ...]) -> Profile:
    try:
        return _profile_fields(d, path, search)
    except (TypeError, ValueError, AttributeError, KeyError, OverflowError) as e:
        if isinstance(e, RigError):
            raise
        # a field of the wrong type ("targets": [...], "priority": null): one line naming the file
        raise RigError(f"{path}: malformed rig profile ({type(e).__name__}: {e})") from None


def _profile_fields(d: dict, path: str, search: tuple[Path, ...]) -> Profile:
    if not isinstance(d, dict):
        raise RigError(f"{path}: a rig profile must be a JSON object")
    unknown = set(d) - _PROFILE_FIELDS
    if unknown:
        raise RigError(f"{path}: unknown field(s) {sorted(unknown)}; allowed: {sorted(_PROFILE_FIELDS)}")
    base_targets: dict = {}
    base: dict = {}
    if "extends" in d:
        parent = _load_profile_cached(str(d["extends"]), search)
        rename = d.get("rename", {})
        base_targets = {rename.get(k, k): dict(v) for k, v in parent.targets.items()}
        base = {"only_if_missing": {rename.get(k, k): [rename.get(x, x) for x in v]
                                    for k, v in parent.only_if_missing.items()},
                "closure": [rename.get(k, k) for k in parent.closure]}
    targets = dict(base_targets)
    for key, mix in (d.get("targets") or {}).items():
        targets[key] = _parse_mix(mix, f"{path}: target {key!r}")
    by_index = {}
    for idx, mix in (d.get("targets_by_index") or {}).items():
        try:
            i = int(idx)
        except ValueError:
            raise RigError(f"{path}: targets_by_index keys must be target numbers, got {idx!r}") from None
        by_index[i] = _parse_mix(mix, f"{path}: target #{i}")
    if not targets and not by_index:
        raise RigError(f"{path}: the profile names no targets ('targets' or 'targets_by_index')")
    kind = d.get("kind", base.get("kind", "morph"))
    if kind not in KINDS:
        raise RigError(f"{path}: kind must be one of {KINDS}, got {kind!r}")
    scale = {str(k): float(v) for k, v in (d.get("scale") or {}).items()}
    if not all(math.isfinite(v) for v in scale.values()):
        raise RigError(f"{path}: scale values must be finite numbers")
    for k in scale:
        if k not in targets:
            raise RigError(f"{path}: scale names {k!r}, which is not one of the profile's targets")
    names = {normalize_name(alt) for key in targets for alt in key.split("|")}
    bad = [r for r in d.get("required", []) if not all(normalize_name(a) in names for a in r.split("|"))]
    if bad:
        raise RigError(f"{path}: 'required' names {bad}, which are not among the profile's targets")
    closure = _closure_keys(d.get("closure"), targets, by_index, base.get("closure", []), path)
    return Profile(
        name=str(d.get("name") or Path(path).stem), targets=targets, description=str(d.get("description", "")),
        kind=kind, priority=int(d.get("priority", 0)), required=list(d.get("required", [])),
        min_required=float(d.get("min_required", 0.5)), scale=scale, stepped=bool(d.get("stepped", False)),
        rest=d.get("rest"), only_if_missing=dict(d.get("only_if_missing", base.get("only_if_missing", {}))),
        targets_by_index=by_index, path=str(path), closure=closure,
    )


# A closure shape: its mix gives the bilabial viseme (lips pressed, /p b m/) or ARKit's mouthClose
# at least this much.  Used when a profile does not name its closure targets itself.
CLOSURE_MIN_WEIGHT = 0.5


def _closure_keys(given, targets: dict, by_index: dict, inherited: list[str], path: str) -> list[str]:
    """The keys whose targets close the lips: as the profile's "closure" field names them (a key,
    one of its spellings, or a list), else inherited from "extends", else every key whose mix gives
    viseme_PP or mouthClose at least CLOSURE_MIN_WEIGHT."""
    if given is None:
        keys = [k for k in inherited if k in targets]
        if keys or inherited:
            return keys
        mixes = {**targets, **{f"#{i}": m for i, m in by_index.items()}}
        return [k for k, m in mixes.items()
                if max(m.get("viseme_PP", 0.0), m.get("mouthClose", 0.0)) >= CLOSURE_MIN_WEIGHT]
    names = [given] if isinstance(given, str) else given
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise RigError(f"{path}: 'closure' must be a target name or a list of them, got {given!r}")
    out = []
    for n in names:
        key = next((k for k in targets if normalize_name(n) in {normalize_name(a) for a in k.split("|")}), None)
        if key is None and n.startswith("#") and n[1:].isdigit() and int(n[1:]) in by_index:
            key = n
        if key is None:
            raise RigError(f"{path}: 'closure' names {n!r}, which is not one of the profile's targets")
        out.append(key)
    return out


def _search_dirs() -> tuple[Path, ...]:
    extra = [Path(p) for p in os.environ.get("VISEME_RIG_PATH", "").split(os.pathsep) if p]
    return tuple(extra + [RIGS_DIR])


@lru_cache(maxsize=64)
def _load_profile_cached(name_or_path: str, search: tuple[Path, ...]) -> Profile:
    p = Path(name_or_path)
    if not (p.suffix == ".json" and p.is_file()):
        hits = [d / f"{name_or_path}.json" for d in search if (d / f"{name_or_path}.json").is_file()]
        if not hits and p.suffix == ".json":  # a path, not a profile's name
            raise RigError(f"{name_or_path}: rig file not found")
        if not hits:
            known = sorted({f.stem for d in search if d.is_dir() for f in d.glob("*.json")})
            raise RigError(f"no rig profile {name_or_path!r} (known: {', '.join(known)}; or give a .json path)")
        p = hits[0]
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as e:   # unreadable, not UTF-8, not JSON
        raise RigError(f"{p}: cannot read rig profile ({e})") from None
    return _profile_from_dict(d, str(p), search)


def load_profile(name_or_path: "str | Path | Profile | dict") -> Profile:
    """A profile by name (``"arkit52"``), by path to a JSON file, or from a dict in the file format.

    >>> load_profile("vrm0").targets["A"]["viseme_aa"]
    1.0
    """
    if isinstance(name_or_path, Profile):
        return name_or_path
    if isinstance(name_or_path, dict):
        return _profile_from_dict(name_or_path, "<rig profile>", _search_dirs())
    return _load_profile_cached(str(name_or_path), _search_dirs())


def load_profiles() -> list[Profile]:
    """Every profile in the search path, highest priority first."""
    seen: dict[str, Profile] = {}
    for d in _search_dirs():
        for f in sorted(d.glob("*.json")) if d.is_dir() else []:
            prof = load_profile(f)
            seen.setdefault(prof.name, prof)
    return sorted(seen.values(), key=lambda p: (-p.priority, p.name))


# -- matching ----------------------------------------------------------------
@dataclass
class RigMatch:
    """How a list of target names maps onto one profile.

    ``target_keys[i]`` is the profile key that drives target ``i`` (None: not driven);
    ``missing`` the profile keys no target carries; ``score`` the fraction of the
    profile's required keys found; ``ok`` whether that passes the profile's threshold
    and at least one matched target moves the mouth (see `Profile.drives_mouth`);
    ``ambiguous`` names that fit a key only after stripping prefixes and collide.
    """

    profile: Profile
    target_names: list[str | None]
    target_keys: list[str | None]
    missing: list[str]
    score: float
    ok: bool
    ambiguous: list[str] = field(default_factory=list)
    candidates: list[tuple[str, float]] = field(default_factory=list)
    sets: list = field(default_factory=list)   # every candidate `RigSet`, best first (from match_profile)

    @property
    def n_matched(self) -> int:
        return len({k for k in self.target_keys if k})

    def mixes(self) -> list[dict[str, float]]:
        """The channel mix (the profile's scale applied) that drives each target, in target order;
        ``{}`` for a target the profile does not drive.  Editors show and change these rows."""
        out = []
        for key in self.target_keys:
            scale = self.profile.scale.get(key, 1.0) if key else 1.0
            out.append({c: w * scale for c, w in self.profile.mix(key).items()} if key else {})
        return out

    @property
    def mouth_keys(self) -> list[str]:
        """Matched keys whose targets move the mouth."""
        return sorted({k for k in self.target_keys if k and self.profile.drives_mouth(k)})

    @property
    def problem(self) -> str:
        """Why the match does not pass ("" when it does)."""
        if self.ok:
            return ""
        if self.n_matched and not self.mouth_keys:  # the deeper reason: even a full score would not do
            found = sorted({k for k in self.target_keys if k})
            more = f" (+{len(found) - 6} more)" if len(found) > 6 else ""
            return f"no mouth target (viseme, jaw, mouth or tongue shape), only {', '.join(found[:6])}{more}"
        return "below threshold"

    def mapping(self) -> dict[str, list[int]]:
        """Profile key -> indices of the targets it drives."""
        out: dict[str, list[int]] = {}
        for i, k in enumerate(self.target_keys):
            if k:
                out.setdefault(k, []).append(i)
        return out

    def describe(self) -> str:
        n_keys = len(self.profile.targets) + len(self.profile.targets_by_index)
        lines = [f"profile {self.profile.name} ({self.profile.kind}): {self.n_matched}/{n_keys} "
                 f"keys matched, required score {self.score:.2f}{f' ({self.problem})' if self.problem else ''}"]
        for key, idx in self.mapping().items():
            names = sorted({str(self.target_names[i]) if self.target_names[i] else f"#{i}" for i in idx})
            mix = self.profile.mix(key)
            src = " + ".join(f"{w:g}*{c}" if w != 1 else c for c, w in mix.items())
            lines.append(f"  {key:<28} <- {src}   -> {', '.join(names)}")
        if self.missing:
            lines.append(f"  missing: {', '.join(self.missing)}")
        if self.ambiguous:
            lines.append(f"  ambiguous (not driven): {', '.join(self.ambiguous)}")
        return "\n".join(lines)


def match_one(profile: Profile, target_names: list[str | None]) -> RigMatch:
    """How ``target_names`` map onto one given profile (never raises; see RigMatch.ok)."""
    full: dict[str, str] = {}
    bare: dict[str, tuple[str, str]] = {}
    for key in profile.targets:
        for alt in key.split("|"):
            full.setdefault(normalize_name(alt), key)
            b, fam = _split_prefix(alt)
            bare.setdefault(b, (key, fam))
    keys: list[str | None] = [None] * len(target_names)
    full_hit: set[str] = set()
    bare_hits: dict[str, set[str]] = {}
    for i, name in enumerate(target_names):
        if i in profile.targets_by_index and not (name and normalize_name(name) in full):
            keys[i] = f"#{i}"
            continue
        if not name:
            continue
        k = full.get(normalize_name(name))
        if k:
            keys[i] = k
            full_hit.add(k)
    for i, name in enumerate(target_names):
        if keys[i] or not name:
            continue
        b, fam = _split_prefix(name)
        k, key_fam = bare.get(b, (None, ""))
        # prefixes of different families name different things ("viseme_I" is not "Fcl_MTH_I")
        if key_fam and fam and key_fam != fam:
            k = None
        if k and k not in full_hit:
            keys[i] = k
            bare_hits.setdefault(k, set()).add(normalize_name(name))
    # two different names that fit one key only once prefixes are gone
    # (Fcl_MTH_Close / Fcl_EYE_Close): drive neither rather than guess
    ambiguous = []
    for k, names in bare_hits.items():
        if len(names) > 1:
            ambiguous += sorted(str(target_names[i]) for i in range(len(keys)) if keys[i] == k)
            keys = [None if kk == k else kk for kk in keys]
    found = {k for k in keys if k}
    # keys driven only when their finer alternatives are absent (blink vs blinkLeft/Right)
    for k, alts in profile.only_if_missing.items():
        if k in found and all(a in found for a in alts):
            keys = [None if kk == k else kk for kk in keys]
            found.discard(k)
    req = profile.required or list(profile.targets)
    req_keys = {profile.key_for(r.split("|")[0]) or r for r in req}
    score = len(req_keys & found) / max(1, len(req_keys))
    if profile.targets_by_index and not profile.targets:
        score = len(found) / len(profile.targets_by_index)
    missing = [k for k in profile.targets if k not in found and k not in profile.only_if_missing]
    # a face whose matched targets are only blinks or brows cannot lip-sync: no match
    ok = score >= profile.min_required and any(profile.drives_mouth(k) for k in found)
    return RigMatch(profile, list(target_names), keys, missing, score, ok, ambiguous)


def match_profile(target_names: list[str | None], profiles: list[Profile] | None = None, kind: str = "morph",
                  strict: bool = True) -> RigMatch:
    """The rig that fits ``target_names`` best: the richest set drives the mouth (`rank_sets`), and
    sets of other profiles add only the motions it lacks (the profile of the match is then their
    combination, named ``base+other``).

    Profiles of ``kind`` whose required keys are found (at least their ``min_required``
    fraction) and that move the mouth qualify.  With ``strict`` a list that no profile fits
    raises `RigError` naming what was found; otherwise the best partial match comes back with
    ``ok=False``.  ``sets`` of the result lists every candidate with what it covers and why
    it won or lost.

    >>> match_profile(["viseme_sil", "viseme_PP", "viseme_FF", "viseme_TH", "viseme_DD", "viseme_kk",
    ...                "viseme_CH", "viseme_SS", "viseme_nn", "viseme_RR", "viseme_aa", "viseme_E",
    ...                "viseme_I", "viseme_O", "viseme_U"]).profile.name
    'oculus15'
    """
    names = list(target_names)
    cands = [p for p in (profiles if profiles is not None else load_profiles()) if p.kind == kind]
    if not cands:
        raise RigError(f"no rig profiles of kind {kind!r} to match against")
    sets = rank_sets(names, cands, kind=kind)
    best = sets[0].combined()
    best.sets = sets
    best.candidates = [(s.match.profile.name, round(s.match.score, 3))
                       for s in sorted(sets, key=lambda s: -s.match.score)]
    if strict and not best.ok:
        shown = [n for n in names if n][:40]
        more = f" (+{len([n for n in names if n]) - 40} more)" if len([n for n in names if n]) > 40 else ""
        raise RigError(
            f"no rig profile matches these {len(names)} {'expressions' if kind != 'morph' else 'morph targets'}: "
            f"{', '.join(map(str, shown)) or '(all unnamed)'}{more}. Closest: "
            + ", ".join(f"{n} {s:.0%}" for n, s in best.candidates[:4])
            + (f" ({best.profile.name}: {best.problem})" if best.n_matched else "")
            + ". Write a rig file (rigs/README.md) mapping your target names or indices to channels.")
    return best


# -- the richest set wins ----------------------------------------------------
# A model often carries several sets of targets at once (a VRoid avatar through gltfpack with its
# Fcl_* shapes, the 52 ARKit shapes and the 15 Oculus visemes).  One set drives the mouth: the one
# that reproduces most of the animation's mouth.  The others add only motions it lacks (blinks, gaze,
# brows...), each motion from one set, never a second mouth: two mouth sets open the jaw twice.

SPEECH_VISEMES = [v for v in VISEMES if v != "sil"]
# motions besides the mouth, by channel prefix; each is driven by one set only
MOTIONS: dict[str, tuple[str, ...]] = {"blinks": ("eyeBlink",), "eyes": ("eyeLook", "eyeSquint", "eyeWide"),
                                       "brows": ("brow",), "cheeks": ("cheek", "nose")}
# A viseme counts as shaped when a target made for it takes it at least this weight, or when the
# targets the set drives hold at least this share of its ARKit pose (toolkit.visemes.tables).
SHAPED_MIN = 0.5


def motion_of(mix: dict[str, float]) -> str:
    """What a target's mix moves: "mouth" (visemes, jaw, mouth, tongue), one of `MOTIONS`, or
    "other" (head channels, or a mix of several motions).

    >>> motion_of({"viseme_aa": 1.0}), motion_of({"eyeBlinkLeft": 0.5, "eyeBlinkRight": 0.5}), motion_of({"browInnerUp": 1})
    ('mouth', 'blinks', 'brows')
    """
    groups = set()
    for ch, w in mix.items():
        if not w:
            continue
        if ch in VISEME_CHANNELS or ch.startswith(_MOUTH_CHANNEL_PREFIXES):
            groups.add("mouth")
        else:
            groups.add(next((g for g, pre in MOTIONS.items() if ch.startswith(pre)), "other"))
    if "mouth" in groups:
        return "mouth"
    return groups.pop() if len(groups) == 1 else "other"


@dataclass
class Coverage:
    """What a set of matched targets reproduces of an animation: ``closure`` the targets that press
    the lips shut on /p b m/, ``jaw`` the one that opens the jaw, ``visemes`` the speech visemes it
    can shape (see `SHAPED_MIN`), ``mouth_shapes`` how many different mouth targets it has (keys,
    the rest shape not counted), ``motions`` the other `MOTIONS` it drives, ``n_targets`` how many
    targets it drives."""

    closure: list[str]
    jaw: str | None
    visemes: list[str]
    mouth_shapes: int
    motions: list[str]
    n_targets: int

    def describe(self) -> str:
        return ", ".join([f"{self.n_targets} targets",
                          f"closes the lips ({', '.join(self.closure)})" if self.closure else "no closure target",
                          f"jaw ({self.jaw})" if self.jaw else "no jaw",
                          f"{len(self.visemes)}/{len(SPEECH_VISEMES)} visemes",
                          f"{self.mouth_shapes} mouth shapes"] + self.motions)


def coverage(match: RigMatch, keys: "list[str] | None" = None) -> Coverage:
    """What ``match`` (or only its ``keys``) reproduces; targets are named as the model names them."""
    prof, mapping = match.profile, match.mapping()
    keys = [k for k in mapping if keys is None or k in keys]
    mixes = {k: prof.mix(k) for k in keys}

    def label(k: str) -> str:
        return str(match.target_names[mapping[k][0]] or k)

    closure = [label(k) for k in keys if k in prof.closure]
    jaw = next((label(k) for k in keys
                if max(mixes[k].get("jawOpen", 0.0), mixes[k].get("viseme_aa", 0.0)) >= SHAPED_MIN), None)
    held = {c for k in keys if motion_of(mixes[k]) == "mouth" for c, w in mixes[k].items() if w >= SHAPED_MIN}
    shaped = []
    for v in SPEECH_VISEMES:
        pose = VISEME_POSES[v]
        share = sum(w for c, w in pose.items() if c in held) / max(sum(pose.values()), 1e-9)
        if f"viseme_{v}" in held or share >= SHAPED_MIN:
            shaped.append(v)
    shapes = sum(motion_of(mixes[k]) == "mouth" and prof.drives_mouth(k) for k in keys)
    motions = [g for g in MOTIONS if any(motion_of(mixes[k]) == g for k in keys)]
    return Coverage(closure, jaw, shaped, shapes, motions, sum(len(mapping[k]) for k in keys))


@dataclass
class Fill:
    """Keys of another set that add one motion the mouth's set lacks ("closure" or one of `MOTIONS`)."""

    match: RigMatch
    keys: list[str]
    motion: str


@dataclass
class RigSet:
    """One candidate set of a model: its ``match``, what it covers alone (``own``), the ``fills``
    other sets add and what it covers with them (``total``); after `rank_sets`, ``why`` it won
    or lost."""

    match: RigMatch
    own: Coverage
    fills: list[Fill]
    total: Coverage
    why: str = ""

    @property
    def name(self) -> str:
        return "+".join(dict.fromkeys([self.match.profile.name] + [f.match.profile.name for f in self.fills]))

    def fill_profile(self) -> Profile | None:
        """The fills alone as one profile (to drive mesh targets beside a VRM's expressions), or None."""
        return _merged_profile(None, self.fills) if self.fills else None

    def combined(self) -> RigMatch:
        """The set and its fills as one match (a morph set; an expression set comes back alone)."""
        if not self.fills or self.match.profile.kind != "morph":
            return self.match
        return match_one(_merged_profile(self.match.profile, self.fills), self.match.target_names)

    def describe(self) -> str:
        """``name (kind): what it covers; + what other sets add; why it won or lost``."""
        lent: dict[str, list[str]] = {}
        for f in self.fills:
            closure = coverage(f.match, f.keys).closure
            lent.setdefault(f.match.profile.name, []).append(f"closure ({', '.join(closure)})" if closure else f.motion)
        fills = "".join(f"; + {', '.join(m)} from {d}" for d, m in lent.items())
        return f"{self.match.profile.name} ({self.match.profile.kind}): {self.own.describe()}{fills}; {self.why}"


def _merged_profile(base: Profile | None, fills: list[Fill]) -> Profile:
    """A profile with ``base``'s targets (if any) plus the keys each fill lends, under the base's rules."""
    targets = dict(base.targets) if base else {}
    scale = dict(base.scale) if base else {}
    only = dict(base.only_if_missing) if base else {}
    closure = list(base.closure) if base else []
    for f in fills:
        p = f.match.profile
        for k in f.keys:
            if k in targets and targets[k] != p.targets.get(k):
                continue   # the base spells a different target this way: keep the base's
            targets[k] = p.mix(k)
            if k in p.scale:
                scale[k] = p.scale[k]
            if k in p.closure:
                closure.append(k)
            if k in p.only_if_missing:
                only[k] = [a for a in p.only_if_missing[k] if a in f.keys]
    names = list(dict.fromkeys(([base.name] if base else []) + [f.match.profile.name for f in fills]))
    return Profile(name="+".join(names), targets=targets, kind="morph",
                   description=f"{names[0]} with " + ", ".join(f"{f.motion} from {f.match.profile.name}" for f in fills),
                   priority=base.priority if base else 0, required=list(base.required) if base else [],
                   min_required=base.min_required if base else 0.0, scale=scale, only_if_missing=only,
                   targets_by_index=dict(base.targets_by_index) if base else {}, closure=closure,
                   path=base.path if base else "")


def _fills(base: RigMatch, donors: list[RigMatch]) -> list[Fill]:
    """What the other sets lend ``base``: for each motion it lacks, the keys of the donor with the most
    targets for it (then the higher priority).  A lent closure must be a shape of its own (driven by
    viseme_PP: Fcl_MTH_Close, viseme_PP): ARKit's mouthClose only corrects its own set's jawOpen.
    Targets the base already drives are never lent (one target, one driver)."""
    if base.profile.stepped:
        return []   # a 2D chart shows one drawing at a time: nothing can be added to it
    own = coverage(base)
    taken = {i for i, k in enumerate(base.target_keys) if k} if base.profile.kind == "morph" else set()
    wants = ([] if own.closure else ["closure"]) + [g for g in MOTIONS if g not in own.motions]
    def lends(d: RigMatch, motion: str) -> list[str]:
        mapping = d.mapping()
        return [k for k in mapping if not taken & set(mapping[k]) and (
            k in d.profile.closure and d.profile.mix(k).get("viseme_PP", 0.0) >= SHAPED_MIN
            if motion == "closure" else motion_of(d.profile.mix(k)) == motion)]

    out = []
    donors = [d for d in donors if d.profile is not base.profile]
    for motion in wants:
        # a donor that fits, then one that lends more of the missing motions (fewer sets mixed), then
        # the most targets for this motion, then priority
        ranked = sorted(((d.ok, sum(bool(lends(d, w)) for w in wants), len(lends(d, motion)), d.profile.priority),
                         i, d) for i, d in enumerate(donors) if lends(d, motion))
        if ranked:
            d = ranked[-1][2]
            out.append(Fill(d, lends(d, motion), motion))
            taken |= {i for k in out[-1].keys for i in d.mapping()[k]}
    return out


def _rank_key(s: RigSet) -> tuple:
    """Lips that close first (a mouth that cannot shut on /p b m/ is the one fault every viewer sees), then
    the visemes shaped, then the mouth shapes (ARKit's 28 play curves 15 visemes cannot show: jawOpen
    follows loudness, mouthClose seals the lips over the jaw, smiles are one-sided), the other motions,
    the priority, the targets matched."""
    t = s.total
    return (not t.closure, -len(t.visemes), -t.mouth_shapes, -len(t.motions), -s.match.profile.priority,
            -s.match.n_matched)


def _why_lost(s: RigSet, win: RigSet) -> str:
    a, b = s.total, win.total
    if b.closure and not a.closure:
        return "cannot close the lips"
    if len(a.visemes) < len(b.visemes):
        return f"shapes fewer visemes ({len(a.visemes)} < {len(b.visemes)})"
    if a.mouth_shapes < b.mouth_shapes:
        return f"fewer mouth shapes ({a.mouth_shapes} < {b.mouth_shapes})"
    if len(a.motions) < len(b.motions):
        return f"drives fewer motions (no {', '.join(m for m in b.motions if m not in a.motions)})"
    pa, pb = s.match.profile.priority, win.match.profile.priority
    if pa < pb:
        return f"covers as much, lower priority ({pa} < {pb})"
    return f"covers as much, fewer targets ({s.match.n_matched} < {win.match.n_matched})"


def rank_sets(target_names: list[str | None], profiles: list[Profile] | None = None, kind: str = "morph",
              expressions: "tuple[list[str], str] | None" = None) -> list[RigSet]:
    """Every profile's set of ``target_names`` (of ``kind``), best first, with ``why`` each won or lost.

    ``expressions`` (names, "vrm0"|"vrm1"): a VRM model's bound expressions, ranked as one more set
    whose missing motions the mesh target names may fill; any bound mouth expression makes that set
    fit (the VRM presets are standard names).  The sets that fit rank by: closes the lips (a set that
    cannot never beats one that can), visemes shaped, mouth shapes, other motions driven, priority,
    targets matched (all counted with the fills); the rest follow by required-name score.

    >>> names = ["Fcl_MTH_A", "Fcl_MTH_I", "Fcl_MTH_U", "Fcl_MTH_E", "Fcl_MTH_O", "Fcl_EYE_Close",
    ...          "jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthSmileLeft", "mouthSmileRight"]
    >>> {s.name: s.why for s in rank_sets(names) if s.match.ok}
    {'arkit52+vroid': 'drives the mouth', 'vroid': 'cannot close the lips'}
    """
    profs = [p for p in (profiles if profiles is not None else load_profiles())]
    names = list(target_names)
    matches = [match_one(p, names) for p in profs if p.kind == kind]
    donors = [m for m in matches if m.n_matched and not m.profile.stepped] if kind == "morph" else []
    bases = list(matches)
    if expressions is not None:
        expr_names, expr_kind = expressions
        for p in profs:
            if p.kind == expr_kind:
                m = match_one(p, list(expr_names))
                m.ok = bool(m.mouth_keys)
                bases.append(m)
    sets = []
    for m in bases:
        fills = _fills(m, donors) if m.ok else []
        own = coverage(m)
        total = own
        if fills:
            extra = [coverage(f.match, f.keys) for f in fills]
            total = Coverage(own.closure + [c for e in extra for c in e.closure], own.jaw, own.visemes,
                             own.mouth_shapes + sum(e.mouth_shapes for e in extra),
                             [g for g in MOTIONS if g in own.motions or any(g in e.motions for e in extra)],
                             own.n_targets + sum(e.n_targets for e in extra))
            if total.closure and "PP" not in total.visemes:
                total.visemes = [v for v in SPEECH_VISEMES if v in own.visemes or v == "PP"]
        sets.append(RigSet(m, own, fills, total))
    fit = sorted((s for s in sets if s.match.ok), key=_rank_key)
    rest = sorted((s for s in sets if not s.match.ok), key=lambda s: (-s.match.score, -s.match.n_matched))
    for s in fit[1:]:
        s.why = _why_lost(s, fit[0])
    if fit:
        fit[0].why = "drives the mouth"
    for s in rest:
        s.why = f"does not fit ({s.match.problem})" if s.match.n_matched else "matches nothing"
    return fit + rest


# -- weights -----------------------------------------------------------------
def _with_arkit(anim: Animation) -> Animation:
    """ARKit channels made from the visemes when an animation carries only visemes."""
    if all(anim.has(c) for c in ARKIT_BLENDSHAPES) or not any(anim.has(v) for v in VISEME_CHANNELS):
        return anim
    pose = np.zeros((len(VISEMES), len(ARKIT_BLENDSHAPES)), np.float32)
    for i, v in enumerate(VISEMES):
        for k, w in VISEME_POSES[v].items():
            pose[i, ARKIT_BLENDSHAPES.index(k)] = w
    vis = np.stack([anim.channel(c) if anim.has(c) else np.zeros(anim.n_frames, np.float32)
                    for c in VISEME_CHANNELS], axis=1)
    missing = [j for j, c in enumerate(ARKIT_BLENDSHAPES) if not anim.has(c)]
    derived = np.clip(vis @ pose, 0, 1)[:, missing]
    return anim.with_channels([ARKIT_BLENDSHAPES[j] for j in missing], derived)


def _resolve(profile, target_names, kind) -> RigMatch:
    if profile is None:
        return match_profile(target_names, kind=kind)
    if isinstance(profile, RigMatch):
        return profile
    prof = load_profile(profile)
    # a profile the user named is used as long as it drives something
    match = match_profile(target_names, profiles=[prof], kind=prof.kind, strict=False)
    if not match.n_matched:
        shown = ", ".join(str(n) if n else f"#{i}" for i, n in enumerate(target_names[:40]))
        raise RigError(f"rig profile {prof.name!r} ({prof.path}) drives none of these targets: {shown}")
    return match


def retarget(anim: Animation, target_names: list[str | None], profile=None, kind: str = "morph") -> np.ndarray:
    """Per-target weights, frames x len(target_names), float32 in [0, 1].

    ``profile``: None (best match), a profile name, a JSON path, a `Profile`
    or a `RigMatch`.  Targets the profile does not drive get 0 (writers keep
    the model's own default weight for those).  A stepped profile (2D mouth
    charts) sets exactly one of its shapes to 1 on every frame.

    >>> from toolkit.animation import empty_animation
    >>> a = empty_animation(2, fps=30)
    >>> a.values[:, a.channels.index("viseme_PP")] = [0.0, 1.0]
    >>> retarget(a, ["viseme_PP", "viseme_aa"], profile="oculus15")[:, 0].tolist()
    [0.0, 1.0]
    """
    match = _resolve(profile, list(target_names), kind)
    prof = match.profile
    anim = _with_arkit(anim)
    out = np.zeros((anim.n_frames, len(target_names)), np.float32)
    cols: dict[str, np.ndarray] = {}
    for i, key in enumerate(match.target_keys):
        if not key:
            continue
        if key not in cols:
            mix = prof.mix(key)
            v = np.zeros(anim.n_frames, np.float32)
            for ch, w in mix.items():
                if anim.has(ch):
                    v += w * anim.channel(ch)
            cols[key] = v * prof.scale.get(key, 1.0)
        out[:, i] = cols[key]
    if prof.stepped and cols:
        keys = list(cols)
        score = np.stack([cols[k] for k in keys], axis=1)
        pick = np.argmax(score, axis=1)
        rest = prof.rest or next((k for k in keys if prof.targets.get(k) == {"viseme_sil": 1.0}), None)
        if rest in keys:  # nothing clearly said: hold the rest shape
            pick[score.max(axis=1) < 0.1] = keys.index(rest)
        for i, key in enumerate(match.target_keys):
            if key:
                out[:, i] = (pick == keys.index(key)).astype(np.float32)
    return np.clip(out, 0.0, 1.0)


def retarget_mixes(anim: Animation, target_names: list[str | None], mixes: list[dict[str, float]],
                   stepped: bool = False) -> np.ndarray:
    """`retarget` with the channel mix of every target given (``{}``: not driven), e.g. mapping
    rows a user edited by hand (the Blender add-on's list); each row drives exactly its own target.

    >>> from toolkit.animation import empty_animation
    >>> a = empty_animation(2, fps=30)
    >>> a.values[:, a.channels.index("jawOpen")] = [0.0, 0.8]
    >>> retarget_mixes(a, ["Mouth", "Brow"], [{"jawOpen": 0.5}, {}])[:, 0].tolist()
    [0.0, 0.4000000059604645]
    """
    names = [str(n) if n else f"#{i}" for i, n in enumerate(target_names)]
    targets = {name: mix for name, mix in zip(names, mixes) if mix}
    if not targets:
        raise RigError("the mapping drives no target: give at least one target a channel mix")
    prof = Profile(name="mapping", targets=targets, stepped=stepped, min_required=0.0)
    keys = [name if mix else None for name, mix in zip(names, mixes)]
    return retarget(anim, names, profile=RigMatch(prof, names, keys, [], 1.0, True))


# -- head --------------------------------------------------------------------
def head_rotation(anim: Animation, facing: str = "+z") -> np.ndarray:
    """Head rotation per frame as quaternions (x, y, z, w) in glTF's axes (+Y up).

    ``facing`` is where the character looks: ``"+z"`` (glTF, VRM 1.0) or
    ``"-z"`` (VRM 0.x).  Pitch + lowers the chin, yaw + turns to the
    character's left, roll + tilts towards its left shoulder; applied as
    yaw * pitch * roll.  Missing head channels count as 0.

    >>> from toolkit.animation import empty_animation
    >>> head_rotation(empty_animation(1, fps=30))[0].tolist()
    [0.0, 0.0, 0.0, 1.0]
    """
    if facing not in ("+z", "-z"):
        raise ValueError(f"facing must be '+z' or '-z', got {facing!r}")
    get = {c: (anim.channel(c).astype(np.float64) if anim.has(c) else np.zeros(anim.n_frames)) for c in HEAD_CHANNELS}
    sign = 1.0 if facing == "+z" else -1.0
    # facing +Z: +X rotation tips the face down, +Y turns it to +X (its left), -Z tilts its top to +X
    qp = axis_angle_quat(0, sign * get["headPitch"])
    qy = axis_angle_quat(1, get["headYaw"])
    qr = axis_angle_quat(2, -sign * get["headRoll"])
    return quat_multiply(quat_multiply(qy, qp), qr).astype(np.float32)
