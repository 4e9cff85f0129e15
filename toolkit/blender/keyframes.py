"""Write sampled curves into Blender Actions on every supported Blender (4.2 .. 5.x).

Blender 4.4 introduced *slotted* Actions (``action.slots``, ``action.layers``,
channelbags) and 5.0 removed the flat ``action.fcurves``; 4.2 has only the
flat API.  Everything version-specific lives here, behind four functions:

* `owned_action(id_block, role)`   the add-on's own Action for one data-block (found or made),
* `write_curves(action, id_block, curves, frame_start)`  replace some F-Curves by per-frame samples,
* `make_active(id_block, action)`  play it now (the user's own active Action moves to the NLA, not away),
* `push_to_nla(id_block, action)`  play it from an NLA strip instead.

The add-on marks its Actions with the custom property ``viseme_lipsync`` so a
second run reuses (and rewrites) only them, never the user's own Actions.

Example (inside Blender)
------------------------
>>> key = obj.data.shape_keys                                    # doctest: +SKIP
>>> act = owned_action(key, "lipsync")                           # doctest: +SKIP
>>> write_curves(act, key, {('key_blocks["jawOpen"].value', 0): jaw}, frame_start=1)  # doctest: +SKIP
>>> make_active(key, act)                                        # doctest: +SKIP
"""
from __future__ import annotations

import bpy
import numpy as np

OWNER_PROP = "viseme_lipsync"  # value: the role ("lipsync", "head")
NLA_TRACK_NAME = "Viseme Lip Sync"
USER_TRACK_PREFIX = "[moved by Viseme] "

# Keyframe interpolation as the enum index foreach_set wants (CONSTANT, LINEAR, BEZIER ...).
_LINEAR = 1


def is_slotted() -> bool:
    """True on Blender 4.4+ (Actions have slots and layers)."""
    return "slots" in bpy.types.Action.bl_rna.properties


def _id_type(id_block) -> str:
    # ID.id_type exists on every ID ('KEY', 'OBJECT', ...)
    return id_block.id_type


def is_owned(action, role: str | None = None) -> bool:
    if action is None:
        return False
    value = action.get(OWNER_PROP)
    return value is not None and (role is None or value == role)


def _actions_of(id_block):
    """Every Action the data-block plays: the active one and those on NLA strips."""
    ad = id_block.animation_data
    if ad is None:
        return []
    found = [ad.action] if ad.action is not None else []
    for track in ad.nla_tracks:
        found += [s.action for s in track.strips if s.action is not None]
    return found


def owned_action(id_block, role: str):
    """The add-on's Action for `id_block` and `role`, reused when a previous run made one."""
    for act in _actions_of(id_block):
        if is_owned(act, role) and act.get("viseme_target") == id_block.name:
            return act
    name = f"{id_block.name}_{'LipSync' if role == 'lipsync' else role.capitalize()}"
    act = bpy.data.actions.new(name)
    act[OWNER_PROP] = role
    act["viseme_target"] = id_block.name
    if not is_slotted():
        act.id_root = _id_type(id_block)
    return act


def _slot_for(action, id_block):
    """The slot of `action` meant for `id_block` (made on first use)."""
    id_type = _id_type(id_block)
    for slot in action.slots:
        if slot.target_id_type in (id_type, "UNSPECIFIED"):
            return slot
    return action.slots.new(id_type, id_block.name)


def _channelbag(action, id_block):
    """The channelbag that animates `id_block` in `action` (4.4+; made on first use)."""
    slot = _slot_for(action, id_block)
    if len(action.layers) == 0:
        action.layers.new("Layer")
    layer = action.layers[0]
    if len(layer.strips) == 0:
        layer.strips.new(type="KEYFRAME")
    return layer.strips[0].channelbag(slot, ensure=True)


def fcurves_of(action, id_block):
    """Read access for tests and tools: the F-Curves animating `id_block` (None when there are none)."""
    if not is_slotted():
        return action.fcurves
    for slot in action.slots:
        if slot.target_id_type in (_id_type(id_block), "UNSPECIFIED"):
            for layer in action.layers:
                for strip in layer.strips:
                    bag = strip.channelbag(slot)
                    if bag is not None:
                        return bag.fcurves
    return None


def write_curves(action, id_block, curves: dict, frame_start: int, group: str = "Viseme") -> int:
    """Replace the F-Curves named in `curves` by one linear key per frame.

    `curves` maps ``(data_path, array_index)`` to a 1-D array of per-frame
    values; frame i lands on ``frame_start + i``.  F-Curves of the Action not
    named here (a hand-keyed channel, say) are left as they are.  A constant
    curve gets just its two end keys.  Returns the number of keys written.
    """
    bag = _channelbag(action, id_block) if is_slotted() else None
    fcurves = bag.fcurves if bag is not None else action.fcurves
    n_keys = 0
    for (path, index), values in curves.items():
        values = np.asarray(values, np.float64).ravel()
        if values.size == 0:
            continue
        fc = fcurves.find(path, index=index)
        if fc is None:
            fc = _new_fcurve(fcurves, path, index, group, bag)
        else:
            fc.keyframe_points.clear()
        frames = np.arange(values.size, dtype=np.float64) + frame_start
        if np.ptp(values) < 1e-6:  # constant: two keys hold it (and keep the range)
            keep = np.unique([0, values.size - 1])
            frames, values = frames[keep], values[keep]
        fc.keyframe_points.add(values.size)
        fc.keyframe_points.foreach_set("co", np.column_stack([frames, values]).ravel())
        fc.keyframe_points.foreach_set("interpolation", np.full(values.size, _LINEAR, np.int32))
        fc.update()
        n_keys += values.size
    return n_keys


def drop_stale_curves(action, id_block, keep: set, group: str) -> list[tuple[str, int]]:
    """Remove F-Curves of `group` (the add-on's own) whose ``(data_path, index)`` is not in `keep`.

    Returns the ``(data_path, index)`` of those removed: the property keeps the
    last value its curve gave it, so the caller resets it.
    """
    fcurves = fcurves_of(action, id_block)
    if fcurves is None:
        return []
    stale = [fc for fc in fcurves if fc.group is not None and fc.group.name == group
             and (fc.data_path, fc.array_index) not in keep]
    dropped = [(fc.data_path, fc.array_index) for fc in stale]
    for fc in stale:
        fcurves.remove(fc)
    return dropped


def owned_actions(id_block, role: str) -> list:
    """The add-on's Actions of `role` that `id_block` plays (active or on the NLA)."""
    return [act for act in _actions_of(id_block) if is_owned(act, role)]


def owned_curve_paths(id_block, role: str) -> list[tuple[str, int]]:
    """``(data_path, index)`` of every F-Curve in the add-on's Actions of `role` on `id_block`."""
    return [(fc.data_path, fc.array_index) for act in owned_actions(id_block, role)
            for fc in fcurves_of(act, id_block) or []]


def _new_fcurve(fcurves, path: str, index: int, group: str, channelbag=None):
    if not is_slotted():
        return fcurves.new(path, index=index, action_group=group)
    params = fcurves.bl_rna.functions["new"].parameters
    if "group_name" in params:  # 5.0+
        return fcurves.new(path, index=index, group_name=group)
    fc = fcurves.new(path, index=index)  # 4.4 / 4.5: group through the channelbag
    if channelbag is not None:
        grp = channelbag.groups.get(group) or channelbag.groups.new(group)
        fc.group = grp
    return fc


def _set_slot(holder, action, id_block) -> None:
    """Point an AnimData or NlaStrip at the right slot (4.4+)."""
    if is_slotted() and "action_slot" in holder.bl_rna.properties:
        holder.action_slot = _slot_for(action, id_block)


def make_active(id_block, action) -> str | None:
    """Play `action` on `id_block` right away (as its active Action).

    A user's own active Action is not replaced silently: it moves onto an NLA
    track of its own (still playing underneath; our curves override only the
    channels they animate).  Returns a message when that happened.
    """
    ad = id_block.animation_data or id_block.animation_data_create()
    moved = None
    previous = ad.action
    if previous is not None and previous != action and not is_owned(previous):
        track = ad.nla_tracks.new()
        track.name = USER_TRACK_PREFIX + previous.name
        prev_slot = ad.action_slot if is_slotted() else None
        strip = track.strips.new(previous.name, int(previous.frame_range[0]), previous)
        if prev_slot is not None:
            strip.action_slot = prev_slot
        moved = (f"Your Action '{previous.name}' on {id_block.name} now plays from the NLA track "
                 f"'{track.name}' so the lip sync can play on top")
    _remove_from_nla(ad, action)
    ad.action = action
    _set_slot(ad, action, id_block)
    ad.use_nla = True
    return moved


def stash_active(id_block) -> str | None:
    """Move a non-add-on active Action to a muted NLA track (kept in the file, not played).

    For ``viseme animate -o scene.blend``: a model's own facial clip (the glTF
    importer makes its first one active) would otherwise play under the lip
    sync on every shape key the lip sync leaves at 0.  Returns its name.
    """
    ad = id_block.animation_data
    if ad is None or ad.action is None or is_owned(ad.action):
        return None
    act = ad.action
    stashed = any(s.action == act for t in ad.nla_tracks if t.mute for s in t.strips)
    if not stashed:  # the glTF importer already keeps one on a muted track; others get one
        track = ad.nla_tracks.new()
        track.name, track.mute = act.name, True
        prev_slot = ad.action_slot if is_slotted() else None
        strip = track.strips.new(act.name, int(act.frame_range[0]), act)
        if prev_slot is not None:
            strip.action_slot = prev_slot
    ad.action = None
    return act.name


def push_to_nla(id_block, action) -> str | None:
    """Play `action` from an NLA strip on the add-on's own track (replacing its previous strip)."""
    ad = id_block.animation_data or id_block.animation_data_create()
    if ad.action == action:
        ad.action = None
    _remove_from_nla(ad, action)
    track = ad.nla_tracks.get(NLA_TRACK_NAME) or ad.nla_tracks.new()
    track.name = NLA_TRACK_NAME
    for s in list(track.strips):
        if is_owned(s.action):
            track.strips.remove(s)
    start = int(round(action.frame_range[0]))
    strip = track.strips.new(action.name, start, action)
    _set_slot(strip, action, id_block)
    ad.use_nla = True
    if ad.action is not None and not is_owned(ad.action):
        # an active Action is evaluated on top of every NLA track: say so, it is why mouths "don't move"
        return (f"The active Action '{ad.action.name}' on {id_block.name} is evaluated on top of the NLA "
                "and may hide the lip sync on the channels it animates")
    return None


def _remove_from_nla(ad, action) -> None:
    for track in list(ad.nla_tracks):
        for s in list(track.strips):
            if s.action == action:
                track.strips.remove(s)
        if track.name == NLA_TRACK_NAME and len(track.strips) == 0:
            ad.nla_tracks.remove(track)


def remove_owned(id_block) -> int:
    """Drop the add-on's Actions from `id_block` (active and NLA); the user's stay.  Returns how many."""
    ad = id_block.animation_data
    if ad is None:
        return 0
    n = 0
    if is_owned(ad.action):
        act, ad.action = ad.action, None
        n += 1
        if act.users == 0:
            bpy.data.actions.remove(act)
    for track in list(ad.nla_tracks):
        for s in list(track.strips):
            if is_owned(s.action):
                act = s.action
                track.strips.remove(s)
                n += 1
                if act.users == 0:
                    bpy.data.actions.remove(act)
        if track.name == NLA_TRACK_NAME and len(track.strips) == 0:
            ad.nla_tracks.remove(track)
    return n
