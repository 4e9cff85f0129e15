"""Unity .anim and Godot 4 .tres clips: read back by a parser of each format, compared in structure with
files the engines saved (tests/fixtures/engines, see its README) and in values with the Performance."""
from __future__ import annotations

import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import yaml

import godot_resource
from gltf_helpers import ROOT, rpm_avatar, speech_anim, vrm1_model
from toolkit.export.godot import GodotNames, write_godot_animation
from toolkit.export.keyframes import performance_for, reduce_keys
from toolkit.export.unity import unity_path, write_unity_anim
from toolkit.rotation import axis_angle_quat, quat_multiply

FIXTURES = Path(__file__).parent / "fixtures" / "engines"
ULIPSYNC = FIXTURES / "uLipSync_Sample_Baked_Data_02_reduction_excerpt.anim"
FLAGSWING = FIXTURES / "ml-agents_FlagSwing.anim"
ENEMY = FIXTURES / "godot-demo-projects_enemy_idle_excerpt.tscn"
VRM_SAMPLES = FIXTURES / "animation_vrm_samples.tres"


# -- Unity ------------------------------------------------------------------------------------------
class UnityLoader(yaml.SafeLoader):
    """PyYAML for Unity's flavour: the !u! tag (tag:unity3d.com,2011:) on each document's object."""


UnityLoader.add_multi_constructor("tag:unity3d.com,2011:", lambda loader, suffix, node: loader.construct_mapping(
    node, deep=True))


def load_unity(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    assert text.startswith("%YAML 1.1\n%TAG !u! tag:unity3d.com,2011:\n--- !u!74 &7400000\n"), path
    (doc,) = list(yaml.load_all(text, Loader=UnityLoader))
    return doc["AnimationClip"]


def shape(x):
    """The keys of a parsed document, nested (lists merge their items' shapes): what the structure is."""
    if isinstance(x, dict):
        return {k: shape(v) for k, v in x.items()}
    if isinstance(x, list):
        merged = {}
        for item in x:
            s = shape(item)
            if isinstance(s, dict):
                merged.update(s)
        return [merged] if merged else []
    return None


def _same_keys(ours, ref, where=""):
    """Every mapping in ``ref`` has exactly the keys of the matching mapping in ``ours`` (recursively)."""
    if isinstance(ref, dict) and isinstance(ours, dict):
        assert set(ours) == set(ref), f"{where}: {sorted(set(ours) ^ set(ref))}"
        for k in ref:
            _same_keys(ours[k], ref[k], f"{where}.{k}")
    elif isinstance(ref, list) and ref and isinstance(ours, list) and ours:
        _same_keys(ours[0], ref[0], where + "[]")


def _curve_at(keys, t):
    times = [float(k["time"]) for k in keys]
    return np.interp(t, times, [float(k["value"]) for k in keys])


def test_unity_reference_files_follow_the_rules_we_write_by():
    """The CRC32 bindings, in a clip Unity saved: path = crc32(path), attribute = crc32(blend shape name)."""
    ref = load_unity(ULIPSYNC)
    (fc,) = ref["m_FloatCurves"]
    (b,) = ref["m_ClipBindingConstant"]["genericBindings"]
    assert b["path"] == zlib.crc32(fc["path"].encode())
    assert b["attribute"] == zlib.crc32(fc["attribute"].removeprefix("blendShape.").encode())
    assert (b["typeID"], b["customType"], fc["classID"]) == (137, 20, 137)
    euler = load_unity(FLAGSWING)["m_ClipBindingConstant"]["genericBindings"][0]
    assert (euler["attribute"], euler["typeID"], euler["customType"]) == (4, 4, 4)


def test_unity_clip_matches_unity_files_and_the_performance(tmp_path):
    anim = speech_anim()
    src = rpm_avatar(tmp_path)
    out = tmp_path / "talk.anim"
    rep = write_unity_anim(anim, out, model=src)
    clip = load_unity(out)
    # the structure of clips Unity saved: blend shapes (uLipSync's baked clip), Euler rotation (FlagSwing)
    _same_keys(shape(clip), shape(load_unity(ULIPSYNC)) | {"m_EulerCurves": shape(load_unity(FLAGSWING))["m_EulerCurves"]})
    _same_keys(shape(clip)["m_EditorCurves"], shape(load_unity(FLAGSWING))["m_EditorCurves"])
    assert clip["m_SampleRate"] == 30 and clip["m_AnimationClipSettings"]["m_StopTime"] == pytest.approx(2.0)

    perf, model = performance_for(anim, src)
    t = np.arange(anim.n_frames) / anim.fps
    by_path = {}
    for fc in clip["m_FloatCurves"]:
        assert fc["classID"] == 137 and fc["attribute"].startswith("blendShape.")
        by_path.setdefault(fc["path"], {})[fc["attribute"][len("blendShape."):]] = fc["curve"]["m_Curve"]
    assert set(by_path) == {"Head", "Teeth"}  # the SkinnedMeshRenderers' GameObjects
    worst = 0.0
    for node, idx in perf.driven.items():
        mesh = model.meshes[model.gltf.nodes[node].mesh]
        curves = by_path[unity_path(model, node)[0]]
        for i in idx:
            got = _curve_at(curves[mesh.target_names[i]], t) / 100
            worst = max(worst, float(np.abs(got - perf.weights[node][:, i]).max()))
    assert worst <= 2e-3, worst  # keys dropped only where a line stays within a thousandth
    bindings = clip["m_ClipBindingConstant"]["genericBindings"]
    assert len(bindings) == 1 + len(clip["m_FloatCurves"])
    assert {b["path"] for b in bindings} == {zlib.crc32(p.encode()) for p in
                                             ["Hips/Spine/Neck/mixamorig:Head", "Head", "Teeth"]}

    # head: Euler Z-X-Y degrees on the head bone's path; rebuilt, it is the Performance's rotation mirrored
    (ec,) = clip["m_EulerCurves"]
    assert ec["path"] == "Hips/Spine/Neck/mixamorig:Head" and rep.head_node
    keys = ec["curve"]["m_Curve"]
    kt = [float(k["time"]) for k in keys]
    e = np.radians(np.stack([np.interp(t, kt, [float(k["value"][a]) for k in keys]) for a in "xyz"], axis=1))
    q = quat_multiply(axis_angle_quat(1, e[:, 1]), quat_multiply(axis_angle_quat(0, e[:, 0]),
                                                                  axis_angle_quat(2, e[:, 2])))
    want = perf.head_rotation * np.array([1, -1, -1, 1])
    assert np.abs(np.abs(np.sum(q * want, axis=1)) - 1).max() < 1e-4
    assert np.ptp(e[:, 1]) > 0.2  # the head really turns: the comparison can fail


def test_unity_default_head_and_a_vrm(tmp_path):
    out = tmp_path / "head.anim"
    write_unity_anim(speech_anim(), out)
    clip = load_unity(out)
    assert {fc["path"] for fc in clip["m_FloatCurves"]} == {"Head"} and len(clip["m_FloatCurves"]) == 52
    vrm = vrm1_model(tmp_path, {"aa": [{"node": 2, "index": 0, "weight": 1.0}]}, target_names=["A", "B", "C"])
    write_unity_anim(speech_anim(), out, model=vrm)
    assert [fc["attribute"] for fc in load_unity(out)["m_FloatCurves"]] == ["blendShape.A"]


# -- Godot ------------------------------------------------------------------------------------------
def _animation(path: Path) -> tuple[dict, list[dict]]:
    sections = godot_resource.parse(path.read_text(encoding="utf-8"))
    props = [s for s in sections if s[0] == "resource" or s[1].get("type") == "Animation"][-1][2]
    return props, godot_resource.animation_tracks(props)


def test_godot_reader_reads_files_godot_saved():
    props, tracks = _animation(ENEMY)
    assert [t["type"] for t in tracks] == ["position_3d", "rotation_3d"] and len(tracks[1]["keys"]) == 5
    props, tracks = _animation(VRM_SAMPLES)
    assert props["length"] == 10.0 and tracks[0]["keys"]["times"] == ("PackedFloat32Array", [0, 2, 2.5, 3.5, 4, 6, 6.5, 7.5, 8, 10])
    with pytest.raises(ValueError, match="not a whole number"):
        godot_resource.animation_tracks({"tracks/0/type": "blend_shape", "tracks/0/path": ("NodePath", ["A:b"]),
                                         "tracks/0/keys": ("PackedFloat32Array", [0, 1, 0.5, 1])})


def test_godot_animation_matches_godot_files_and_the_performance(tmp_path):
    anim = speech_anim()
    src = rpm_avatar(tmp_path)
    out = tmp_path / "talk.tres"
    write_godot_animation(anim, out, model=src)
    sections = godot_resource.parse(out.read_text(encoding="utf-8"))
    assert sections[0][:2] == ("gd_resource", {"type": "Animation", "format": 3})
    props, tracks = _animation(out)
    assert props["length"] == pytest.approx(2.0) and props["step"] == pytest.approx(1 / 30, abs=1e-6)
    _, ref = _animation(ENEMY)
    assert all(set(t) == set(ref[1]) for t in tracks)  # the properties Godot saves per track
    perf, model = performance_for(anim, src)
    names = GodotNames(model)
    t = np.arange(anim.n_frames) / anim.fps
    shapes = [tr for tr in tracks if tr["type"] == "blend_shape"]
    assert len(shapes) == sum(len(i) for i in perf.driven.values())
    worst = 0.0
    for node, idx in perf.driven.items():
        mesh = model.meshes[model.gltf.nodes[node].mesh]
        for i in idx:
            (tr,) = [x for x in shapes if x["path"][1][0] == f"{names.path(node)}:{mesh.target_names[i]}"]
            k = np.asarray(tr["keys"])
            assert tr["interp"] == 1 and np.all(k[:, 1] == 1)
            worst = max(worst, float(np.abs(np.interp(t, k[:, 0], k[:, 2]) - perf.weights[node][:, i]).max()))
    assert worst <= 2e-3, worst
    # skinned meshes under the Skeleton3D Godot makes from the joints; the head bone addressed Skeleton:Bone
    assert {tr["path"][1][0].split(":")[0] for tr in shapes} == {"Skeleton3D/Head", "Teeth"}  # Hips is a joint
    (rot,) = [tr for tr in tracks if tr["type"] == "rotation_3d"]
    assert rot["path"][1][0] == "Skeleton3D:mixamorig_Head"
    k = np.asarray(rot["keys"])
    q = np.stack([np.interp(t, k[:, 0], k[:, 2 + c]) for c in range(4)], axis=1)
    assert np.abs(q - perf.head_rotation).max() < 2e-3
    assert np.abs(np.linalg.norm(k[:, 2:], axis=1) - 1).max() < 1e-4


def test_godot_paths_for_plain_nodes_and_unnamed_targets(tmp_path):
    out = tmp_path / "head.tres"
    write_godot_animation(speech_anim(), out)
    _, tracks = _animation(out)
    assert tracks[0]["path"] == ("NodePath", ["Head:eyeBlinkLeft"]) and tracks[-1]["type"] == "rotation_3d"
    vrm = vrm1_model(tmp_path, {"aa": [{"node": 2, "index": 0, "weight": 1.0}]})  # unnamed targets
    rep = write_godot_animation(speech_anim(), out, model=vrm)
    _, tracks = _animation(out)
    assert tracks[0]["path"] == ("NodePath", ["Face:morph0"]) and tracks[1]["path"] == ("NodePath", ["Hips/Head"])
    assert any("no name" in w for w in rep.warnings)


def test_keys_are_reduced_within_the_tolerance():
    rng = np.random.default_rng(0)
    v = np.cumsum(rng.normal(0, 0.01, 600))
    v[100:300] = 0
    k = reduce_keys(v)
    assert len(k) < 0.9 * len(v) and k[0] == 0 and k[-1] == len(v) - 1
    assert np.abs(np.interp(np.arange(len(v)), k, v[k]) - v).max() <= 1e-3 + 1e-12
    assert reduce_keys(np.array([0, 0, 1, 1, 1, 0.0]), stepped=True).tolist() == [0, 2, 5]


def test_cli_writes_engine_clips_and_captions(tmp_path, espeak_wav, espeak_speech):
    src = rpm_avatar(tmp_path)
    outs = [tmp_path / n for n in ("a.anim", "a.tres", "a.srt", "a.vtt")]
    r = subprocess.run([sys.executable, "-m", "toolkit.cli", "animate", str(espeak_wav), "--text", espeak_speech.text,
                        "--model", str(src)] + sum((["-o", str(o)] for o in outs), []),
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert load_unity(outs[0])["m_FloatCurves"] and _animation(outs[1])[1]
    assert "Bob made a map of Paris." in outs[2].read_text() and outs[3].read_text().startswith("WEBVTT")
