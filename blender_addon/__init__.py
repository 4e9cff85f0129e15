"""Viseme Lip Sync: speech (+ transcript) to shape-key animation, inside Blender.

A Blender extension (4.2 and later).  The sidebar tab "Lip Sync" in the 3D
view takes an audio file or a sound strip, a transcript, a language and the
rig mapping detected from the active mesh's shape keys; Generate runs the
viseme toolkit's pipeline in Blender's own Python (bundled with the
extension: no external program) and keys the shape keys, the head and the
sound strip.

Running Generate again rewrites only the add-on's own Action; the user's
other Actions and hand edits stay.
"""

import json
import os
import sys
import time

import bpy
from bpy.props import (BoolProperty, CollectionProperty, EnumProperty, FloatProperty, IntProperty,
                       PointerProperty, StringProperty)

_HERE = os.path.dirname(os.path.abspath(__file__))
# the installed extension carries the toolkit (and rigs/, assets/) in vendor/, laid out as in the repo
_VENDOR = os.path.join(_HERE, "vendor")


def _ensure_toolkit() -> None:
    """Make `import toolkit` work: the bundled copy, else one already importable (a dev checkout)."""
    if os.path.isdir(os.path.join(_VENDOR, "toolkit")) and _VENDOR not in sys.path:
        sys.path.insert(0, _VENDOR)
    try:
        import toolkit
    except ImportError as e:
        raise ImportError(f"The viseme toolkit is not bundled with this add-on ({e}); reinstall the extension zip") \
            from None
    bundled = os.path.isdir(os.path.join(_VENDOR, "toolkit"))
    if bundled and not os.path.abspath(toolkit.__file__).startswith(_VENDOR + os.sep):
        # another add-on or script brought a different package named "toolkit" first
        raise ImportError(f"Another 'toolkit' package is loaded ({toolkit.__file__}); restart Blender "
                          "or disable the add-on that provides it")


# The add-on is the toolkit's panel: everything it does comes from the toolkit (one way).  These
# are bound by `register()`, once the bundled toolkit is importable.
keyframes = lipsync = None


class LipSyncError(ValueError):
    """Stands for `toolkit.blender.lipsync.LipSyncError` until `register()` binds the real one."""


def _bind_toolkit() -> None:
    global keyframes, lipsync, LipSyncError
    _ensure_toolkit()
    from toolkit.blender import keyframes, lipsync  # noqa: F811
    from toolkit.blender.lipsync import LipSyncError  # noqa: F811


# -- engines (the toolkit chooses; the panel only offers what can run here) --------------------------
_ENGINE_ITEMS_ALIGNED = [("align", "Aligned", "Forced alignment of the transcript (PocketSphinx) + coarticulation")]
_ENGINE_ITEMS_NEURAL = [
    ("auto", "Automatic", "Aligned + neural with a transcript, the audio alone without one"),
    ("hybrid", "Aligned + neural", "Aligned timing refined by the neural model"),
    ("neural", "Audio only", "The neural model, from the audio alone (no transcript needed)"),
]
_neural_state: tuple[bool, str] | None = None  # (available, why not)


def neural_available() -> bool:
    """Whether the audio-only and hybrid engines can run here (the numpy model loads); checked once."""
    return _neural_check()[0]


def neural_unavailable_reason() -> str:
    """Why the audio-only engine cannot run (empty when it can)."""
    return _neural_check()[1]


def _neural_check() -> tuple[bool, str]:
    global _neural_state
    if _neural_state is None:
        try:
            from toolkit.motion.model import NeuralAnimator

            NeuralAnimator.load()
            _neural_state = (True, "")
        except Exception as e:  # noqa: BLE001 - a broken model must not break the aligned engine
            _neural_state = (False, f"the neural model does not load ({type(e).__name__}: {e})")
    return _neural_state


def _engine_items(self, context):
    return (_ENGINE_ITEMS_NEURAL if neural_available() else []) + _ENGINE_ITEMS_ALIGNED


# -- properties ------------------------------------------------------------------------------------
class VISEME_PG_mapping(bpy.types.PropertyGroup):
    """One shape key and the channel mix that drives it."""

    target: StringProperty(name="Shape key")
    mix: StringProperty(name="Channels", description="Channel mix, e.g. 'jawOpen' or 'viseme_aa + 0.2*viseme_E'; "
                                                     "empty: not animated")
    enabled: BoolProperty(name="Animate", default=True)


def _strip_collection_name() -> str:
    return "strips_all" if "strips_all" in bpy.types.SequenceEditor.bl_rna.properties else "sequences_all"


class VISEME_PG_settings(bpy.types.PropertyGroup):
    audio_source: EnumProperty(name="Audio", items=[
        ("FILE", "File", "An audio file (wav, flac, ogg, mp3 ...)"),
        ("STRIP", "Sound strip", "A sound strip already in the sequencer"),
    ], default="FILE")
    audio_path: StringProperty(name="Audio file", subtype="FILE_PATH")
    audio_strip: StringProperty(name="Sound strip", description="Name of the sound strip to lip-sync to")
    transcript_source: EnumProperty(name="Transcript", items=[
        ("TEXT", "Text", "Type the words"),
        ("FILE", "File", "A .txt file"),
        ("BLOCK", "Text block", "A text data-block of this .blend"),
    ], default="TEXT")
    transcript: StringProperty(name="Words", description="What is said in the audio (empty: audio-only engine)")
    transcript_path: StringProperty(name="Transcript file", subtype="FILE_PATH")
    transcript_block: PointerProperty(name="Text block", type=bpy.types.Text)
    language: StringProperty(name="Language", default="en",
                             description="Language code (en, de, fr, es, ...); English runs without espeak-ng")
    engine: EnumProperty(name="Engine", items=_engine_items)
    intensity: FloatProperty(name="Intensity", default=1.0, min=0.0, soft_max=1.5, max=3.0,
                             description="Scale of the mouth movement")
    offset_ms: FloatProperty(name="Offset (ms)", default=0.0, soft_min=-500, soft_max=500,
                             description="Move the mouth later (+) or earlier (-) than the sound")
    frame_start: IntProperty(name="Start frame", default=1, description="Frame where the audio starts")
    blinks: BoolProperty(name="Blinks", default=True, description="Key eye blinks (when the rig has blink keys)")
    head: EnumProperty(name="Head motion", items=[
        ("NONE", "None", "No head rotation"),
        ("OBJECT", "Object", "Rotate an object"),
        ("BONE", "Bone", "Rotate a bone of an armature"),
    ], default="NONE")
    head_object: PointerProperty(name="Head", type=bpy.types.Object)
    head_bone: StringProperty(name="Bone")
    use_nla: BoolProperty(name="Push to NLA strip", default=False,
                          description="Play from an NLA strip instead of the active Action")
    add_sound: BoolProperty(name="Add sound strip", default=True)
    set_range: BoolProperty(name="Set frame range", default=True)


# -- helpers the operators share -----------------------------------------------------------------------
def _fill_mapping(obj, rows, profile_name: str, stepped: bool) -> None:
    obj.viseme_mapping.clear()
    for name, mix in rows:
        item = obj.viseme_mapping.add()
        item.target = name
        item.mix = lipsync.mix_to_text(mix)
        item.enabled = bool(mix)
    obj["viseme_profile"] = profile_name
    obj["viseme_stepped"] = stepped


def _mapping_rows(obj, names: list[str]):
    """The panel's rows (auto-detected when absent or stale); returns (rows, profile, message)."""
    have = [m.target for m in obj.viseme_mapping]
    msg = None
    if have != names:  # new object, or shape keys added/renamed since the last detection
        rows, match = lipsync.detect_mapping(names)
        _fill_mapping(obj, rows, match.profile.name, match.profile.stepped)
        msg = f"Mapping detected: {match.profile.name} ({match.n_matched} keys)"
    rows = [(m.target, lipsync.text_to_mix(m.mix, f"mapping of '{m.target}'") if m.enabled else {})
            for m in obj.viseme_mapping]
    return rows, obj.get("viseme_profile", "custom"), msg


def _audio_for(scene, s) -> tuple[str, int, bool]:
    """(audio path, start frame, add a strip?) from the settings."""
    if s.audio_source == "STRIP":
        strip = next((x for x in lipsync.all_strips(scene) if x.name == s.audio_strip), None)
        if strip is None:
            raise LipSyncError("Choose a sound strip (Audio > Sound strip)" if not s.audio_strip
                               else f"No strip named '{s.audio_strip}' in this scene")
        return lipsync.sound_strip_path(strip), int(strip.frame_start), False
    if not s.audio_path:
        raise LipSyncError("Choose an audio file (or a sound strip) first")
    path = bpy.path.abspath(s.audio_path)
    if not os.path.isfile(path):
        raise LipSyncError(f"Audio file not found: {path}")
    return path, s.frame_start, s.add_sound


def _check_head(s) -> None:
    """Fail before the (slow) pipeline when the head-motion target is incomplete."""
    if s.head == "NONE":
        return
    if s.head_object is None:
        raise LipSyncError("Choose the head object (or armature) for head motion, or set Head motion to None")
    if s.head != "BONE":
        return
    ob = s.head_object
    if ob.type != "ARMATURE":
        raise LipSyncError(f"Head motion 'Bone' needs an armature, and '{ob.name}' is a {ob.type.lower()}: "
                           "choose the armature, or set Head motion to Object")
    if not s.head_bone:
        raise LipSyncError(f"Choose the head bone of '{ob.name}' (Head motion > Bone)")
    if s.head_bone not in ob.pose.bones:
        raise LipSyncError(f"'{ob.name}' has no bone '{s.head_bone}': choose its head bone")


def _transcript_for(s) -> str | None:
    if s.transcript_source == "FILE":
        if not s.transcript_path:
            return None
        path = bpy.path.abspath(s.transcript_path)
        try:
            with open(path, encoding="utf-8") as f:
                return f.read().strip() or None
        except (OSError, UnicodeDecodeError) as e:
            raise LipSyncError(f"Cannot read transcript {path}: {e}") from None
    if s.transcript_source == "BLOCK":
        return s.transcript_block.as_string().strip() or None if s.transcript_block else None
    return s.transcript.strip() or None


def _report_failure(op, e: Exception) -> None:
    """One clear line in Blender's status bar for any failure (details of unexpected ones on the console)."""
    py = f"{sys.version_info.major}.{sys.version_info.minor}"
    if isinstance(e, LipSyncError):
        op.report({"ERROR"}, str(e))
    elif isinstance(e, ImportError):
        # a wheel missing for this Blender's Python, or built for another one
        op.report({"ERROR"}, f"Lip sync cannot load one of its modules in Blender {bpy.app.version_string} "
                             f"(Python {py}): {e}. Reinstall the extension zip; if it persists, this Blender "
                             "version is not supported yet")
    elif isinstance(e, (ValueError, RuntimeError, OSError)):  # the toolkit's clear errors (bad audio, no words ...)
        op.report({"ERROR"}, f"Lip sync failed: {e}")
    else:
        import traceback

        traceback.print_exc()
        op.report({"ERROR"}, f"Lip sync failed unexpectedly ({type(e).__name__}: {e}); "
                             "the details are in the system console")


# -- operators -----------------------------------------------------------------------------------------
class VISEME_OT_detect_mapping(bpy.types.Operator):
    """Match the active mesh's shape keys to a rig profile (ARKit, VRM, Oculus visemes, ...)"""

    bl_idname = "viseme.detect_mapping"
    bl_label = "Detect Mapping"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        obj = context.active_object
        try:
            _ensure_toolkit()
            names = lipsync.shape_key_names(obj)
            rows, match = lipsync.detect_mapping(names)
        except Exception as e:  # noqa: BLE001
            _report_failure(self, e)
            return {"CANCELLED"}
        _fill_mapping(obj, rows, match.profile.name, match.profile.stepped)
        self.report({"INFO"}, f"{match.profile.name}: {match.n_matched} of {len(names)} shape keys driven")
        return {"FINISHED"}


class VISEME_OT_generate(bpy.types.Operator):
    """Generate lip-sync shape-key animation for the active mesh from the audio and transcript"""

    bl_idname = "viseme.generate"
    bl_label = "Generate Lip Sync"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return context.active_object is not None

    def execute(self, context):
        try:
            return self._run(context)
        except Exception as e:  # noqa: BLE001 - every failure becomes a message, never a traceback popup
            _report_failure(self, e)
        return {"CANCELLED"}

    def _run(self, context):
        t0 = time.perf_counter()
        obj = context.active_object
        _ensure_toolkit()
        names = lipsync.shape_key_names(obj)
        rows, profile_name, msg = _mapping_rows(obj, names)
        if msg:
            self.report({"INFO"}, msg)
        audio, frame_start, add_strip = _audio_for(context.scene, context.scene.viseme_lipsync)
        try:
            return self._generate(context, t0, names, (rows, profile_name), audio, frame_start, add_strip)
        finally:
            lipsync.release_audio(audio)  # a packed sound's temporary copy

    def _generate(self, context, t0: float, names, mapping, audio: str, frame_start: int, add_strip: bool):
        scene = context.scene
        s = scene.viseme_lipsync
        obj = context.active_object
        rows, profile_name = mapping
        text = _transcript_for(s)
        engine = s.engine or "align"
        if not text and not neural_available():
            raise LipSyncError(f"Type the transcript (what is said): {neural_unavailable_reason()}")
        _check_head(s)
        from toolkit.pipeline import animate

        wm = context.window_manager
        wm.progress_begin(0, 3)
        try:
            anim = animate(audio, text, lang=s.language.strip() or "en", fps=lipsync.scene_fps(scene),
                           engine=engine, offset_ms=s.offset_ms, intensity=s.intensity, blinks=s.blinks,
                           head_motion=s.head != "NONE")
            wm.progress_update(1)
            weights = lipsync.weights_for(anim, names, rows, stepped=bool(obj.get("viseme_stepped", False)))
            driven = [bool(mix) for _, mix in rows]
            act, msgs = lipsync.apply_shape_keys(obj, names, weights, frame_start, use_nla=s.use_nla,
                                                 only_driven=driven)
            # the timed phonemes travel with the Action (scripts, debugging, re-timing by hand)
            act["viseme_phonemes"] = json.dumps([[p.label, round(p.start, 4), round(p.end, 4)]
                                                 for p in anim.phonemes], ensure_ascii=False)
            wm.progress_update(2)
            if s.head != "NONE":
                bone = s.head_bone if s.head == "BONE" else ""
                msgs += lipsync.apply_head(s.head_object, anim, frame_start, bone=bone)[1]
            if add_strip:
                try:
                    lipsync.add_sound_strip(scene, audio, frame_start, owner=obj.name)
                except LipSyncError as e:  # the keys are made; a missing strip is worth a warning, not a failure
                    msgs.append(str(e))
            if s.set_range:
                lipsync.set_frame_range(scene, frame_start, anim.n_frames)
        finally:
            wm.progress_end()
        for m in msgs + [f"{w}" for w in anim.meta.get("warnings", [])]:
            self.report({"WARNING"}, m)
        scene.frame_set(scene.frame_current)
        self.report({"INFO"}, f"Lip sync: {anim.n_frames} frames on {sum(driven)} shape keys "
                              f"({profile_name}, engine {anim.meta.get('engine', engine)}, "
                              f"{time.perf_counter() - t0:.1f} s)")
        return {"FINISHED"}


class VISEME_OT_clear(bpy.types.Operator):
    """Remove the add-on's lip-sync Action, head Action and sound strip (your own Actions stay)"""

    bl_idname = "viseme.clear"
    bl_label = "Clear Lip Sync"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        removed = 0
        targets = [context.active_object, context.scene.viseme_lipsync.head_object]
        for ob in {o for o in targets if o is not None}:
            # shape keys go back to 0 and the head to its rest rotation: without their
            # curves they would keep the values of the frame shown
            removed += lipsync.remove_lipsync(ob) + lipsync.remove_head(ob)
        owner = context.active_object.name if context.active_object else ""
        for st in lipsync.own_strips(context.scene, owner):  # another character's sound stays
            lipsync.strips_of(context.scene).remove(st)
            removed += 1
        self.report({"INFO"}, f"Removed {removed} lip-sync item(s)")
        return {"FINISHED"}


# -- UI ----------------------------------------------------------------------------------------------------
class VISEME_UL_mapping(bpy.types.UIList):
    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index):
        row = layout.row(align=True)
        row.prop(item, "enabled", text="")
        sub = row.row(align=True)
        sub.label(text=item.target)
        sub.prop(item, "mix", text="")
        sub.active = item.enabled


class VISEME_PT_panel(bpy.types.Panel):
    bl_label = "Lip Sync"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Lip Sync"

    def draw(self, context):
        layout = self.layout
        scene = context.scene
        s = scene.viseme_lipsync
        obj = context.active_object

        col = layout.column()
        col.prop(s, "audio_source", expand=True)
        if s.audio_source == "FILE":
            col.prop(s, "audio_path", text="")
        elif scene.sequence_editor is not None:
            col.prop_search(s, "audio_strip", scene.sequence_editor, _strip_collection_name(), text="")
        else:
            col.label(text="No sound strips in this scene", icon="INFO")

        col = layout.column()
        col.prop(s, "transcript_source", expand=True)
        field = {"TEXT": "transcript", "FILE": "transcript_path", "BLOCK": "transcript_block"}[s.transcript_source]
        col.prop(s, field, text="")

        col = layout.column(align=True)
        col.prop(s, "language")
        col.prop(s, "engine")
        col.label(text=f"Frame rate: {lipsync.scene_fps(scene):g} fps (scene)")
        col.prop(s, "intensity")
        col.prop(s, "offset_ms")
        if s.audio_source == "FILE":
            col.prop(s, "frame_start")

        col = layout.column(heading="Options")
        col.prop(s, "blinks")
        col.prop(s, "add_sound")
        col.prop(s, "set_range")
        col.prop(s, "use_nla")
        col.prop(s, "head")
        if s.head != "NONE":
            col.prop(s, "head_object")
            if s.head == "BONE" and s.head_object is not None and s.head_object.type == "ARMATURE":
                col.prop_search(s, "head_bone", s.head_object.data, "bones")

        box = layout.box()
        if obj is None or obj.type != "MESH" or obj.data.shape_keys is None:
            box.label(text="Select a mesh with shape keys", icon="ERROR")
        else:
            row = box.row()
            row.label(text=f"Rig: {obj.get('viseme_profile', 'not detected')}")
            row.operator(VISEME_OT_detect_mapping.bl_idname, text="Detect", icon="FILE_REFRESH")
            box.template_list("VISEME_UL_mapping", "", obj, "viseme_mapping", obj, "viseme_mapping_index", rows=6)

        row = layout.row(align=True)
        row.scale_y = 1.4
        row.operator(VISEME_OT_generate.bl_idname, icon="PLAY_SOUND")
        row.operator(VISEME_OT_clear.bl_idname, text="", icon="TRASH")


_CLASSES = (VISEME_PG_mapping, VISEME_PG_settings, VISEME_OT_detect_mapping, VISEME_OT_generate, VISEME_OT_clear,
            VISEME_UL_mapping, VISEME_PT_panel)


def register():
    _bind_toolkit()
    for cls in _CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.viseme_lipsync = PointerProperty(type=VISEME_PG_settings)
    bpy.types.Object.viseme_mapping = CollectionProperty(type=VISEME_PG_mapping)
    bpy.types.Object.viseme_mapping_index = IntProperty()


def unregister():
    del bpy.types.Object.viseme_mapping_index
    del bpy.types.Object.viseme_mapping
    del bpy.types.Scene.viseme_lipsync
    for cls in reversed(_CLASSES):
        bpy.utils.unregister_class(cls)
    if _VENDOR in sys.path:
        sys.path.remove(_VENDOR)
