"""The add-on as a user gets it: built zip -> installed extension -> Generate on real speech.

Checks the keys Blender evaluates (lips closed on /m/, jaw open on vowels), edited mapping rows, the offset,
the sound strip, the frame range, re-runs that keep the user's Actions, the
error messages, and that a glTF export + re-import keeps the animation.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import SENTENCE, bpy, new_face

ARKIT = [
    "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft", "eyeSquintLeft",
    "eyeWideLeft", "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight", "eyeLookOutRight", "eyeLookUpRight",
    "eyeSquintRight", "eyeWideRight", "jawForward", "jawRight", "jawLeft", "jawOpen", "mouthClose", "mouthFunnel",
    "mouthPucker", "mouthRight", "mouthLeft", "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft",
    "mouthFrownRight", "mouthDimpleLeft", "mouthDimpleRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper", "mouthPressLeft", "mouthPressRight",
    "mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft", "mouthUpperUpRight", "browDownLeft",
    "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight", "cheekPuff", "cheekSquintLeft",
    "cheekSquintRight", "noseSneerLeft", "noseSneerRight", "tongueOut",
]
VROID = ["Fcl_ALL_Neutral", "Fcl_MTH_A", "Fcl_MTH_I", "Fcl_MTH_U", "Fcl_MTH_E", "Fcl_MTH_O", "Fcl_EYE_Close",
         "Fcl_EYE_Close_L", "Fcl_EYE_Close_R", "Fcl_BRW_Angry"]
VOWELS = ("a", "ɑ", "æ", "ʌ", "aɪ", "aʊ", "ɛ", "eɪ", "oʊ", "ɔ")


def settings(audio, text=SENTENCE, **kw):
    s = bpy.context.scene.viseme_lipsync
    s.audio_source = "FILE"
    s.audio_path = str(audio)
    s.transcript_source = "TEXT"
    s.transcript = text
    s.frame_start = kw.pop("frame_start", 1)
    # every test starts from the defaults (the settings live on the scene, across tests)
    s.head, s.use_nla, s.intensity, s.offset_ms, s.blinks = "NONE", False, 1.0, 0.0, True
    for k, v in kw.items():
        setattr(s, k, v)
    return s


def curve(obj, name: str, frames: np.ndarray) -> np.ndarray:
    """What Blender evaluates for a shape key at each frame (active Action and NLA together)."""
    scene = bpy.context.scene
    out = []
    for f in frames:
        scene.frame_set(int(f))
        out.append(obj.data.shape_keys.key_blocks[name].value)
    return np.array(out)


def phonemes_of(obj):
    act = own_action(obj)
    return [tuple(p) for p in json.loads(act["viseme_phonemes"])]


def own_action(obj):
    ad = obj.data.shape_keys.animation_data
    acts = [ad.action] + [s.action for t in ad.nla_tracks for s in t.strips]
    return next(a for a in acts if a is not None and a.get("viseme_lipsync") == "lipsync")


def closure_windows(phones, fps, start, lead_s=0.1):
    """Blender frames from a little before each /m p b/ (the lips close ahead of the sound) to its end."""
    return [np.arange(int(np.ceil((t0 - lead_s) * fps)), int(np.floor(t1 * fps)) + 1) + start
            for lab, t0, t1 in phones if lab in ("m", "p", "b")]


def frames_during(phones, labels, fps, start, share=(0.25, 0.75)) -> list[int]:
    out = []
    for lab, t0, t1 in phones:
        if lab in labels:
            a, b = t0 + share[0] * (t1 - t0), t0 + share[1] * (t1 - t0)
            out += list(range(int(np.ceil(a * fps)), int(np.floor(b * fps)) + 1))
    return [start + f for f in out]


def test_installed_addon_runs_its_bundled_toolkit(addon):
    bpy.ops.viseme.detect_mapping  # registered
    import toolkit

    assert "extensions" in toolkit.__file__ and "vendor" in toolkit.__file__
    import numpy

    assert numpy.__version__.startswith("1."), "the bpy environment pins numpy<2"


def test_arkit_mesh_gets_lip_closure_on_m_and_jaw_on_vowels(addon, speech):
    obj = new_face("ArkitFace", ARKIT)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 24, 1.0
    settings(speech, frame_start=10)
    assert bpy.ops.viseme.generate() == {"FINISHED"}
    assert obj.get("viseme_profile") == "arkit52"
    phones = phonemes_of(obj)
    v_frames = frames_during(phones, VOWELS, 24, 10)
    assert len(v_frames) >= 5
    # lips together on every /m/: the lip gap (jaw opening not cancelled by mouthClose) reaches ~0
    closures = []
    for frames in closure_windows(phones, 24, 10):
        gap = curve(obj, "jawOpen", frames) - curve(obj, "mouthClose", frames)
        closures.append(1.0 - max(0.0, gap.min()))
    assert len(closures) >= 6 and min(closures) > 0.95, closures
    jaw_v = curve(obj, "jawOpen", np.array(v_frames))
    assert np.median(jaw_v) > 0.15
    # timing: frame range and sound strip start where the audio starts
    dur = phones[-1][2]
    assert scene.frame_start == 10 and abs((scene.frame_end - 10 + 1) / 24 - 2.65) < 0.1 and dur < 2.7
    if bpy.app.build_options.audaspace:  # the pip builds of bpy 4.2 have no audio
        ed = scene.sequence_editor
        strips = [s for s in (ed.strips_all if hasattr(ed, "strips_all") else ed.sequences_all) if s.type == "SOUND"]
        assert len(strips) == 1 and strips[0].frame_start == 10
    # plays immediately: the lip-sync Action is the active one on the shape keys, with its slot
    ad = obj.data.shape_keys.animation_data
    assert ad.action is not None and ad.action.get("viseme_lipsync") == "lipsync"
    if "action_slot" in ad.bl_rna.properties:
        assert ad.action_slot is not None


def test_rerun_replaces_only_own_action_and_keeps_user_actions(addon, speech):
    obj = new_face("RerunFace", ARKIT)
    key = obj.data.shape_keys
    # the user's own animation of the brows, active before the first run
    kb = key.key_blocks["browInnerUp"]
    kb.value = 0.7
    kb.keyframe_insert("value", frame=1)
    user_action = key.animation_data.action
    settings(speech)
    assert bpy.ops.viseme.generate() == {"FINISHED"}
    own = own_action(obj)
    n_actions = len(bpy.data.actions)
    settings(speech, intensity=0.5)
    assert bpy.ops.viseme.generate() == {"FINISHED"}
    assert own_action(obj) == own and len(bpy.data.actions) == n_actions
    # the user's Action still plays (moved to an NLA track underneath), untouched
    assert any(s.action == user_action for t in key.animation_data.nla_tracks for s in t.strips)
    assert curve(obj, "browInnerUp", np.array([20]))[0] == pytest.approx(0.7, abs=1e-4)
    ed = bpy.context.scene.sequence_editor
    if ed is not None:  # the second run replaced the add-on's sound strip instead of adding one
        assert len([s for s in (ed.strips_all if hasattr(ed, "strips_all") else ed.sequences_all)
                    if s.type == "SOUND"]) <= 1


def test_two_characters_keep_their_own_sound_strips(addon, speech):
    """A dialogue: Generate on Bob left Alice's sound strip alone (it removed every add-on strip of the
    scene, so Alice spoke in silence), and Clear on Bob removes only Bob's."""
    alice = new_face("Alice", ARKIT)
    bob = alice.copy()
    bob.data = alice.data.copy()
    bob.name = "Bob"
    bpy.context.scene.collection.objects.link(bob)
    strips = lambda: sorted((s.get("viseme_object"), int(s.frame_start)) for s in  # noqa: E731
                            bpy.context.scene.sequence_editor.strips_all if s.type == "SOUND")
    settings(speech, frame_start=1)
    assert bpy.ops.viseme.generate() == {"FINISHED"}
    bpy.context.view_layer.objects.active = bob
    settings(speech, frame_start=80)
    assert bpy.ops.viseme.generate() == {"FINISHED"}
    assert bpy.ops.viseme.generate() == {"FINISHED"}  # again: Bob's strip replaced, not doubled
    assert strips() == [("Alice", 1), ("Bob", 80)]
    assert bpy.ops.viseme.clear() == {"FINISHED"}
    assert strips() == [("Alice", 1)]


def test_nla_push_plays_without_active_action(addon, speech):
    obj = new_face("NlaFace", ARKIT)
    settings(speech, use_nla=True)
    assert bpy.ops.viseme.generate() == {"FINISHED"}
    ad = obj.data.shape_keys.animation_data
    assert ad.action is None and "Viseme Lip Sync" in ad.nla_tracks
    v = curve(obj, "jawOpen", np.arange(1, bpy.context.scene.frame_end + 1))
    assert v.max() > 0.2


def test_vroid_names_drive_vowel_keys(addon, speech):
    obj = new_face("VroidFace", VROID)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 30, 1.0
    settings(speech, use_nla=False, intensity=1.0)
    assert bpy.ops.viseme.generate() == {"FINISHED"}
    assert obj.get("viseme_profile") == "vroid"
    phones = phonemes_of(obj)
    mouth = ("Fcl_MTH_A", "Fcl_MTH_I", "Fcl_MTH_U", "Fcl_MTH_E", "Fcl_MTH_O")
    # closure on every /m/: all mouth-open keys come down to ~0 in the /m/ window
    for frames in closure_windows(phones, 30, 1):
        opens = np.max([curve(obj, k, frames) for k in mouth], axis=0)
        assert opens.min() < 0.05, (frames, opens)
    v_frames = np.array(frames_during(phones, {"a", "ɑ", "aɪ", "æ"}, 30, 1))
    a_v = curve(obj, "Fcl_MTH_A", v_frames)
    assert np.median(a_v) > 0.3
    # not driven by the profile: no keys on the brows
    own = own_action(obj)
    from toolkit.blender import keyframes

    paths = {fc.data_path for fc in keyframes.fcurves_of(own, obj.data.shape_keys)}
    assert 'key_blocks["Fcl_BRW_Angry"].value' not in paths and 'key_blocks["Fcl_MTH_A"].value' in paths


def test_clear_messages(addon, speech, tmp_path):
    reports = []

    def run(**kw):
        try:
            return bpy.ops.viseme.generate(**kw)
        except RuntimeError as e:  # operator errors reach Python as RuntimeError with the message
            reports.append(str(e))
            return {"CANCELLED"}

    # a mesh without shape keys
    obj = new_face("Plain", [])
    obj.shape_key_clear()
    settings(speech)
    assert run() == {"CANCELLED"} and "has no shape keys" in reports[-1]
    # no audio
    obj = new_face("NoAudio", ARKIT)
    settings(tmp_path / "missing.wav")
    assert run() == {"CANCELLED"} and "Audio file not found" in reports[-1]
    # shape keys no rig profile knows
    new_face("Odd", ["Key 1", "Key 2", "smile_big"])
    settings(speech)
    assert run() == {"CANCELLED"} and "No shape key matched" in reports[-1]
    # no transcript, and no audio-only model: the message says why there is none
    new_face("NoText", ARKIT)
    settings(speech, text="")
    saved = addon._neural_state
    addon._neural_state = (False, "the audio-only engine needs PyTorch, which Blender's Python does not have")
    try:
        assert run() == {"CANCELLED"}
    finally:
        addon._neural_state = saved
    assert "Type the transcript" in reports[-1] and "PyTorch" in reports[-1]


def test_gltf_export_keeps_the_animation(addon, speech, tmp_path):
    obj = new_face("GltfFace", ARKIT)
    settings(speech)
    assert bpy.ops.viseme.generate() == {"FINISHED"}
    jaw_before = curve(obj, "jawOpen", np.arange(1, bpy.context.scene.frame_end + 1))
    out = tmp_path / "face.glb"
    bpy.ops.export_scene.gltf(filepath=str(out), export_format="GLB", export_animations=True,
                              export_morph_animation=True, export_force_sampling=True)
    assert out.stat().st_size > 1000
    fps = bpy.context.scene.render.fps
    bpy.ops.wm.read_homefile(use_empty=True)
    bpy.context.scene.render.fps, bpy.context.scene.render.fps_base = fps, 1.0
    bpy.ops.import_scene.gltf(filepath=str(out))
    meshes = [o for o in bpy.data.objects if o.type == "MESH" and o.data.shape_keys]
    assert len(meshes) == 1
    imported = meshes[0]
    key = imported.data.shape_keys
    acts = [a for a in bpy.data.actions]
    assert acts, "the glTF re-import has no animation"
    ad = key.animation_data
    if ad is None or ad.action is None:  # the importer may leave it on an NLA track: play that
        track = ad.nla_tracks[0]
        ad.action = track.strips[0].action
        if "action_slot" in ad.bl_rna.properties:
            ad.action_slot = track.strips[0].action_slot
    start = int(min(a.frame_range[0] for a in acts))
    jaw_after = curve(imported, "jawOpen", np.arange(start, start + len(jaw_before)))
    assert np.corrcoef(jaw_before, jaw_after)[0, 1] > 0.95
    assert np.max(np.abs(jaw_before - jaw_after)) < 0.05


def test_head_bone_turns_and_transcript_from_text_block(addon, speech):
    obj = new_face("HeadFace", ARKIT)
    arm_data = bpy.data.armatures.new("Rig")
    arm = bpy.data.objects.new("Rig", arm_data)
    bpy.context.scene.collection.objects.link(arm)
    bpy.context.view_layer.objects.active = arm
    bpy.ops.object.mode_set(mode="EDIT")
    for name, head, tail in (("Neck", (0, 0, 0), (0, 0, 0.1)), ("Head", (0, 0, 0.1), (0, 0, 0.3))):
        b = arm_data.edit_bones.new(name)
        b.head, b.tail = head, tail
    arm_data.edit_bones["Head"].parent = arm_data.edit_bones["Neck"]
    bpy.ops.object.mode_set(mode="OBJECT")
    bpy.context.view_layer.objects.active = obj
    block = bpy.data.texts.new("words")
    block.write(SENTENCE)
    s = settings(speech, head="BONE", head_object=arm, head_bone="Head")
    s.transcript_source = "BLOCK"
    s.transcript_block = block
    s.transcript = ""
    assert bpy.ops.viseme.generate() == {"FINISHED"}
    pb = arm.pose.bones["Head"]
    scene = bpy.context.scene
    angles = []
    for f in range(scene.frame_start, scene.frame_end + 1):
        scene.frame_set(f)
        angles.append(pb.matrix_basis.to_quaternion().angle)
    # the head moves (a few degrees), never wildly, and only the Head bone is keyed
    assert 0.005 < max(angles) < 0.5
    act = arm.animation_data.action
    assert act.get("viseme_lipsync") == "head"
    from toolkit.blender import keyframes

    assert {fc.data_path for fc in keyframes.fcurves_of(act, arm)} == {'pose.bones["Head"].rotation_quaternion'}
    assert arm.pose.bones["Neck"].matrix_basis.to_quaternion().angle == 0


@pytest.mark.skipif(not bpy.app.build_options.audaspace, reason="this bpy build has no audio (Audaspace)")
def test_audio_from_an_existing_sound_strip_and_transcript_file(addon, speech, tmp_path):
    obj = new_face("StripFace", ARKIT)
    scene = bpy.context.scene
    scene.sequence_editor_create()
    strips = scene.sequence_editor.strips if hasattr(scene.sequence_editor, "strips") else \
        scene.sequence_editor.sequences
    for st in list(strips):
        strips.remove(st)
    user_strip = strips.new_sound("Dialogue", str(speech), 3, 40)
    words = tmp_path / "words.txt"
    words.write_text(SENTENCE + "\n", encoding="utf-8")
    s = settings(speech)
    s.audio_source, s.audio_strip = "STRIP", "Dialogue"
    s.transcript_source, s.transcript_path = "FILE", str(words)
    assert bpy.ops.viseme.generate() == {"FINISHED"}
    # keyed from the strip's start, and no second strip for the same sound
    assert scene.frame_start == 40
    assert [st.name for st in strips] == ["Dialogue"] and user_strip.frame_start == 40
    assert own_action(obj).frame_range[0] == 40
    jaw = curve(obj, "jawOpen", np.arange(40, scene.frame_end + 1))
    assert jaw.max() > 0.2


def test_a_packed_sound_strip_leaves_no_temporary_file(addon, speech):
    """A packed sound is written to a temporary file for the toolkit to read; every Generate left it
    behind (a copy of the dialogue in the temp folder per run)."""
    import glob
    import tempfile

    new_face("PackedFace", ARKIT)
    scene = bpy.context.scene
    scene.sequence_editor_create()
    strip = scene.sequence_editor.strips.new_sound("Packed", str(speech), 5, 1)
    strip.sound.pack()
    before = set(glob.glob(f"{tempfile.gettempdir()}/viseme_*"))
    s = settings(speech)
    s.audio_source, s.audio_strip = "STRIP", "Packed"
    assert bpy.ops.viseme.generate() == {"FINISHED"}
    assert set(glob.glob(f"{tempfile.gettempdir()}/viseme_*")) == before


OOV_SENTENCE = "Zorblaxian quuxified the frobnicator."


def test_words_missing_from_the_dictionary_use_the_bundled_g2p(addon, tmp_path):
    """Made-up words go through g2p-en's model (its weights ship as a wheel; the package is never imported)."""
    import shutil
    import subprocess
    import sys

    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (scripts/setup.sh installs it)")
    wav = tmp_path / "oov.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "140", "-w", str(wav), OOV_SENTENCE], check=True)
    obj = new_face("OovFace", ARKIT)
    settings(wav, text=OOV_SENTENCE)
    assert bpy.ops.viseme.generate() == {"FINISHED"}
    labels = [p[0] for p in phonemes_of(obj)]
    assert labels[0] == "z" and "f" in labels and "b" in labels
    from toolkit.phonemes.g2p import words_to_phonemes

    assert [w.source for w in words_to_phonemes(OOV_SENTENCE)] == ["g2p", "g2p", "cmudict", "g2p"]
    # g2p_en's __init__ imports nltk (absent here, and it would download data): it must stay unimported
    assert "g2p_en" not in sys.modules and "nltk" not in sys.modules


def test_rerun_without_blinks_and_clear_leave_no_stale_values(addon):
    """A curve the add-on drops (blinks turned off, Clear) must not leave its property at the last value."""
    from conftest import REPO

    wav = REPO / "assets" / "samples" / "bob.wav"  # long enough for blinks
    text = (REPO / "assets" / "samples" / "bob.txt").read_text(encoding="utf-8")
    obj = new_face("StaleFace", ARKIT)
    obj.rotation_euler = (0.1, 0.0, 0.3)  # head motion on the face object itself
    scene = bpy.context.scene
    settings(wav, text=text, blinks=True, head="OBJECT", head_object=obj)
    assert bpy.ops.viseme.generate() == {"FINISHED"}
    frames = np.arange(scene.frame_start, scene.frame_end + 1)
    blink = curve(obj, "eyeBlinkLeft", frames)
    assert blink.max() > 0.5
    scene.frame_set(5)
    pose_at_5 = tuple(obj.rotation_euler)
    scene.frame_set(int(frames[blink.argmax()]))  # stop mid-blink
    settings(wav, text=text, blinks=False, head="OBJECT", head_object=obj)
    assert bpy.ops.viseme.generate() == {"FINISHED"}
    assert np.abs(curve(obj, "eyeBlinkLeft", frames)).max() == 0.0
    # the head motion is added to the rest rotation, not to the pose the first run left on screen
    scene.frame_set(5)
    assert np.allclose(tuple(obj.rotation_euler), pose_at_5, atol=1e-5)
    scene.frame_set(int(frames[curve(obj, "jawOpen", frames).argmax()]))  # stop with the mouth open
    assert bpy.ops.viseme.clear() == {"FINISHED"}
    for f in (1, scene.frame_current):
        scene.frame_set(f)
        assert max(kb.value for kb in obj.data.shape_keys.key_blocks[1:]) == 0.0
        assert np.allclose(tuple(obj.rotation_euler), (0.1, 0.0, 0.3), atol=1e-6)


def _generate_error(**kw) -> str:
    """The message Generate reports (operator errors reach Python as RuntimeError)."""
    with pytest.raises(RuntimeError) as err:
        bpy.ops.viseme.generate(**kw)
    return str(err.value)


def _armature(name: str):
    arm = bpy.data.objects.new(name, bpy.data.armatures.new(name))
    bpy.context.scene.collection.objects.link(arm)
    return arm


def test_head_bone_mode_without_a_bone_is_an_error(addon, speech):
    obj = new_face("BoneFace", ARKIT)
    arm = _armature("NoBoneRig")
    settings(speech, head="BONE", head_object=arm, head_bone="")
    assert "Choose the head bone of 'NoBoneRig'" in _generate_error()
    assert arm.animation_data is None and obj.data.shape_keys.animation_data is None  # nothing keyed
    settings(speech, head="BONE", head_object=obj, head_bone="")
    assert "needs an armature" in _generate_error()
    settings(speech, head="BONE", head_object=arm, head_bone="Neck")
    assert "has no bone 'Neck'" in _generate_error()


def test_unexpected_failures_are_reported_not_raised(addon, speech, monkeypatch):
    """A wheel missing for this Blender's Python (or any bug) gives a message in the status bar."""
    import toolkit.pipeline

    new_face("BrokenFace", ARKIT)
    settings(speech)

    def missing(*a, **k):
        raise ImportError("No module named 'scipy._lib._ccallback_c'")

    monkeypatch.setattr(toolkit.pipeline, "animate", missing)
    msg = _generate_error()
    assert "cannot load one of its modules" in msg and "Python 3." in msg and "Reinstall" in msg

    def bug(*a, **k):
        raise KeyError("jawOpen")

    monkeypatch.setattr(toolkit.pipeline, "animate", bug)
    msg = _generate_error()
    assert "failed unexpectedly (KeyError" in msg and "system console" in msg


def test_zip_carries_wheels_for_every_blender_python(addon_zip):
    """Blender 4.2 - 5.0 run Python 3.11, 5.1+ runs 3.13: each finds a wheel of every requirement."""
    import importlib.util
    import tomllib
    import zipfile

    from conftest import REPO

    spec = importlib.util.spec_from_file_location("viseme_build", REPO / "blender_addon" / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    with zipfile.ZipFile(addon_zip) as zf:
        manifest = tomllib.loads(zf.read("blender_manifest.toml").decode("utf-8"))
        names = set(zf.namelist())
    wheels = [w[2:] for w in manifest["wheels"]]
    assert all(w in names for w in wheels)
    assert "blender_version_max" not in manifest
    for py in ("3.11", "3.13"):
        for req in build.requirements():
            canon = build.re.sub(r"[-_.]+", "_", build.re.split(r"[<>=!~ \[]", req, maxsplit=1)[0]).lower()
            fits = [w for w in wheels if w.split("/")[-1].split("-")[0].lower() == canon
                    and build.wheel_fits(w.split("/")[-1], py)]
            assert len(fits) == 1, (req, py, fits)


def test_audio_only_engine_runs_the_numpy_model_without_torch(addon, speech):
    """Blender's Python has no torch: the bundled numpy copy of the neural model animates from audio alone."""
    import importlib.util

    assert importlib.util.find_spec("torch") is None
    assert addon.neural_available(), addon.neural_unavailable_reason()
    assert {"neural", "hybrid"} <= {i[0] for i in addon._engine_items(None, bpy.context)}
    obj = new_face("AudioOnly", ARKIT)
    settings(speech, text="")  # no transcript: Generate picks the audio-only engine
    assert bpy.ops.viseme.generate() == {"FINISHED"}
    frames = np.arange(bpy.context.scene.frame_start, bpy.context.scene.frame_end + 1)
    assert curve(obj, "jawOpen", frames).max() > 0.2
    settings(speech, engine="hybrid")
    assert bpy.ops.viseme.generate() == {"FINISHED"}
    assert curve(obj, "jawOpen", frames).max() > 0.2


def test_edited_mapping_rows_drive_the_shape_keys(addon, speech):
    """The panel's mapping rows, as a user edits them: a scaled channel, a row switched off, a key
    driven by another channel; the edits stay on the object, and a typo is reported naming its row."""
    obj = new_face("MappedFace", ARKIT)
    bpy.context.scene.render.fps, bpy.context.scene.render.fps_base = 30, 1.0
    settings(speech, blinks=False)
    assert bpy.ops.viseme.detect_mapping() == {"FINISHED"}
    rows = {m.target: m for m in obj.viseme_mapping}
    assert rows["jawOpen"].mix == "jawOpen" and rows["mouthClose"].enabled
    assert bpy.ops.viseme.generate() == {"FINISHED"}
    frames = np.arange(bpy.context.scene.frame_start, bpy.context.scene.frame_end + 1)
    jaw = curve(obj, "jawOpen", frames)
    assert curve(obj, "mouthClose", frames).max() > 0.1
    rows["jawOpen"].mix = "0.5*jawOpen"
    rows["mouthClose"].enabled = False
    rows["mouthSmileLeft"].mix = "viseme_aa"
    assert bpy.ops.viseme.generate() == {"FINISHED"}
    assert obj.viseme_mapping[[m.target for m in obj.viseme_mapping].index("jawOpen")].mix == "0.5*jawOpen"
    np.testing.assert_allclose(curve(obj, "jawOpen", frames), 0.5 * jaw, atol=2e-3)
    assert np.abs(curve(obj, "mouthClose", frames)).max() == 0.0  # not animated any more, and back at rest
    phones = phonemes_of(obj)
    smile = curve(obj, "mouthSmileLeft", np.array(frames_during(phones, {"a", "ɑ", "æ"}, 30, 1)))
    assert np.median(smile) > 0.3  # the open vowels now pull the smile key
    rows["jawOpen"].mix = "0.5*jawOpn"
    err = _generate_error()
    assert "mapping of 'jawOpen'" in err and "jawOpn" in err


def test_offset_moves_the_keys_in_time(addon, speech):
    """Offset (ms): +100 ms keys the same mouth 3 frames later at 30 fps, -100 ms 3 frames earlier."""
    obj = new_face("OffsetFace", ARKIT)
    bpy.context.scene.render.fps, bpy.context.scene.render.fps_base = 30, 1.0
    jaw, phones = {}, {}
    for ms in (0.0, 100.0, -100.0):
        settings(speech, blinks=False, offset_ms=ms)
        assert bpy.ops.viseme.generate() == {"FINISHED"}
        frames = np.arange(bpy.context.scene.frame_start, bpy.context.scene.frame_end + 1)
        jaw[ms], phones[ms] = curve(obj, "jawOpen", frames), phonemes_of(obj)
    assert jaw[0.0].max() > 0.2
    np.testing.assert_allclose(jaw[100.0][3:], jaw[0.0][:-3], atol=1e-3)
    np.testing.assert_allclose(jaw[-100.0][:-3], jaw[0.0][3:], atol=1e-3)
    for ms in (100.0, -100.0):  # the phonemes stored with the Action move with it
        assert phones[ms][1][1] == pytest.approx(phones[0.0][1][1] + ms / 1000, abs=1e-3)
