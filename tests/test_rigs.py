"""Rig profiles: loading, name matching, retargeting, head rotation."""
from __future__ import annotations

import json

import numpy as np
import pytest
from gltf_helpers import speech_anim  # aa, /m/ on frames 15-23, aa, silence; a blink at frames 39-41

from toolkit import rigs
from toolkit.animation import ARKIT_BLENDSHAPES, VISEMES, empty_animation
from toolkit.visemes.tables import VISEME_POSES

OCULUS = [f"viseme_{v}" for v in VISEMES]
RPM = [n.replace("viseme_ih", "viseme_I").replace("viseme_oh", "viseme_O").replace("viseme_ou", "viseme_U")
       for n in OCULUS] + ARKIT_BLENDSHAPES
FACECAP = [n[:-4] + "_L" if n.endswith("Left") and n not in ("mouthLeft", "jawLeft") else
           n[:-5] + "_R" if n.endswith("Right") and n not in ("mouthRight", "jawRight") else n
           for n in ARKIT_BLENDSHAPES]


@pytest.mark.parametrize("name,want", [
    ("blendShape1.eyeBlink_L", "eyeblinkleft"), ("EyeBlinkLeft", "eyeblinkleft"), ("eye_blink_left", "eyeblinkleft"),
    ("mixamorig:Head", "head"), ("Blink.R", "blinkright"), ("viseme_RR", "visemerr"), ("JAW-OPEN", "jawopen"),
    # a dot is a separator, not a namespace: only known blendshape-node prefixes and Blender's copy suffix go
    ("Head.x", "head"), ("c_head.x", "chead"), ("jawOpen.001", "jawopen"), ("eyeBlink_L.001", "eyeblinkleft"),
    ("head:jawOpen", "jawopen"), ("Face_BlendShapes.jawOpen", "jawopen"), ("vrc.v_aa", "vaa"),
    ("Bip001 Head", "bip001head"), ("Head_M", "headm"), ("mouth.smile.L", "mouthsmileleft"),
])
def test_normalize_name(name, want):
    assert rigs.normalize_name(name) == want


def test_all_shipped_profiles_load_and_read_known_channels():
    profs = {p.name: p for p in rigs.load_profiles()}
    assert {"arkit52", "oculus15", "readyplayerme", "vrm0", "vrm1", "vroid", "rhubarb", "prestonblair",
            "flame"} <= set(profs)
    assert profs["vrm0"].kind == "vrm0" and profs["vrm1"].kind == "vrm1" and profs["vroid"].kind == "morph"
    assert profs["rhubarb"].stepped and profs["prestonblair"].stepped
    # rhubarb:A expands through the one viseme table, not a second copy of it
    assert profs["rhubarb"].targets["A|mouth_A"] == {"viseme_PP": 1.0}


@pytest.mark.parametrize("names,want", [
    (ARKIT_BLENDSHAPES, "arkit52"),
    (FACECAP, "arkit52"),
    (["blendShape1." + n for n in ARKIT_BLENDSHAPES], "arkit52"),
    (["face_BS." + n for n in FACECAP], "arkit52"),  # any node prefix before a dot
    (OCULUS, "oculus15"),
    (["vrc.v_" + v.lower() for v in VISEMES], "oculus15"),
    (RPM, "arkit52"),   # visemes + ARKit: ARKit's 28 mouth shapes play more of the animation than 15 visemes
    (RPM[:15] + ["eyeBlinkLeft", "eyeBlinkRight", "browInnerUp"], "readyplayerme"),
    (["Fcl_MTH_A", "Fcl_MTH_I", "Fcl_MTH_U", "Fcl_MTH_E", "Fcl_MTH_O", "Fcl_EYE_Close", "Fcl_MTH_Close",
      "Fcl_BRW_Angry"], "vroid"),
    (list("ABCDEFGHX"), "rhubarb"),
    (["rest", "MBP", "etc", "E", "AI", "O", "U", "FV", "L"], "prestonblair"),
    (["jaw_open", "eyelid_left", "eyelid_right", "exp_0", "exp_1"], "flame"),
])
def test_match_profile_picks_the_rig(names, want):
    assert rigs.match_profile(names).profile.name == want


def test_match_reports_mapping_and_missing():
    m = rigs.match_profile(FACECAP[:40])
    assert m.profile.name == "arkit52" and m.ok
    assert m.target_keys[FACECAP.index("eyeBlink_L")] == "eyeBlinkLeft"
    assert "tongueOut" in m.missing and "jawOpen" not in m.missing
    assert "eyeBlink_L" in m.describe()


def test_vrm_expressions_match_by_kind():
    assert rigs.match_profile(["a", "i", "u", "e", "o", "blink", "blink_l", "blink_r"], kind="vrm0").profile.name == "vrm0"
    m = rigs.match_profile(["aa", "ih", "ou", "ee", "oh", "blink", "happy"], kind="vrm1")
    assert m.profile.name == "vrm1" and m.target_keys[-1] is None


def test_node_prefixed_names_map_every_target():
    m = rigs.match_profile(["Body." + n for n in FACECAP])
    assert m.profile.name == "arkit52" and m.n_matched == 52
    assert m.target_keys[FACECAP.index("mouthSmile_L")] == "mouthSmileLeft"


def test_blendered_copies_match_like_the_originals():
    m = rigs.match_profile([n + ".001" for n in FACECAP])
    assert m.profile.name == "arkit52" and m.n_matched == 52


def test_live_link_face_names_match_the_arkit_profile():
    """Live Link Face writes UpperCamelCase (JawOpen, EyeBlinkLeft): the same names to the matcher."""
    from toolkit.animation import ARKIT_BLENDSHAPES

    m = rigs.match_profile([n[0].upper() + n[1:] for n in ARKIT_BLENDSHAPES])
    assert m.profile.name == "arkit52" and m.n_matched == 52


def test_a_face_without_mouth_targets_matches_no_profile():
    eyes = ["eyeBlink_L", "eyeBlink_R", "eyeLookUp_L", "eyeLookUp_R", "eyeWide_L"]
    with pytest.raises(rigs.RigError, match=r"eyeBlink_L.*no mouth target.*eyeBlinkLeft"):
        rigs.match_profile(eyes)
    m = rigs.match_one(rigs.load_profile("arkit52"), eyes)
    assert m.score >= m.profile.min_required and not m.ok and m.mouth_keys == []  # the score alone would pass
    assert rigs.match_one(rigs.load_profile("arkit52"), eyes + ["jawOpen"]).ok
    vrm1 = rigs.load_profile("vrm1")
    assert vrm1.drives_mouth("aa") and not vrm1.drives_mouth("blink")
    rhubarb = rigs.load_profile("rhubarb")
    assert not rhubarb.drives_mouth(rhubarb.key_for("X"))  # the rest shape alone cannot lip-sync


def test_no_match_names_what_was_found():
    with pytest.raises(rigs.RigError, match=r"Key 1, Key 2.*Closest"):
        rigs.match_profile(["Key 1", "Key 2", "Key 3"])


def test_prefixed_names_that_collide_drive_nothing():
    prof = rigs.load_profile({"name": "t", "targets": {"close": "eyeBlinkLeft", "A": "viseme_aa"}})
    m = rigs.match_one(prof, ["Fcl_MTH_Close", "Fcl_EYE_Close", "Fcl_MTH_A"])
    assert m.target_keys == [None, None, "A"]
    assert set(m.ambiguous) == {"Fcl_MTH_Close", "Fcl_EYE_Close"}


def test_retarget_rpm_lip_closure_during_m():
    a = speech_anim()
    # visemes + the 52 ARKit shapes: ARKit drives the mouth and the visemes stay still (not twice)
    w = rigs.retarget(a, RPM)
    jaw, press, pp = RPM.index("jawOpen"), RPM.index("mouthPressLeft"), RPM.index("viseme_PP")
    assert w[15:24, jaw].max() < 0.01 and w[15:24, press].min() == pytest.approx(0.45)
    assert w[:15, jaw].min() == pytest.approx(VISEME_POSES["aa"]["jawOpen"])
    assert np.all(w[:, :15] == 0)
    # the readyplayerme profile, asked for, drives the mouth through the visemes only
    w = rigs.retarget(a, RPM, profile="readyplayerme")
    aa = RPM.index("viseme_aa")
    assert w[15:24, pp].min() > 0.99 and w[:15, pp].max() < 0.01
    assert w[:15, aa].min() > 0.99 and w[15:24, aa].max() < 0.01
    assert np.all(w[:, jaw] == 0)
    assert w[40, RPM.index("eyeBlinkLeft")] == pytest.approx(1.0)


def test_retarget_arkit_facecap_names():
    a = speech_anim()
    w = rigs.retarget(a, FACECAP)
    jaw, press = FACECAP.index("jawOpen"), FACECAP.index("mouthPress_L")
    assert w[5, jaw] == pytest.approx(VISEME_POSES["aa"]["jawOpen"], abs=1e-6)
    assert w[18, jaw] < 0.01 and w[18, press] == pytest.approx(VISEME_POSES["PP"]["mouthPressLeft"], abs=1e-6)
    assert w[40, FACECAP.index("eyeBlink_R")] == pytest.approx(1.0)
    assert w.dtype == np.float32 and w.min() >= 0 and w.max() <= 1


def test_retarget_vrm_vowels_close_for_m_and_blink_not_doubled():
    a = speech_anim()
    names = ["aa", "ih", "ou", "ee", "oh", "blink", "blinkLeft", "blinkRight"]
    w = rigs.retarget(a, names, profile="vrm1")
    assert w[15:24, :5].max() < 0.01  # lips closed for /m/
    assert w[5, 0] > 0.99 and w[5, 1:5].max() < 0.25
    assert np.all(w[:, 5] == 0)  # 'blink' left alone: blinkLeft/Right carry it
    assert w[40, 6] == pytest.approx(1.0)
    w2 = rigs.retarget(a, ["aa", "blink"], profile="vrm1")
    assert w2[40, 1] == pytest.approx(1.0)


def test_retarget_stepped_rhubarb():
    a = speech_anim()
    names = list("XABCDEFGH")
    w = rigs.retarget(a, names)
    assert np.all(w.sum(axis=1) == 1)  # exactly one shape per frame
    assert np.all(w[15:24, names.index("A")] == 1)
    assert np.all(w[:15, names.index("D")] == 1)
    assert np.all(w[50:, names.index("X")] == 1)


def test_visemes_only_animation_gets_arkit_from_the_table():
    a = speech_anim().select(OCULUS)
    w = rigs.retarget(a, ["jawOpen", "mouthPucker"], profile="arkit52")
    assert w[5, 0] == pytest.approx(VISEME_POSES["aa"]["jawOpen"], abs=1e-6)


def test_user_rig_file_index_table_scale_and_search_path(tmp_path, monkeypatch):
    rig = {"name": "gamehead", "priority": 99, "required": ["JawDrop"],
           "targets": {"JawDrop|jaw_down": "jawOpen", "LipsTogether": {"viseme_PP": 1.0}},
           "scale": {"JawDrop|jaw_down": 0.5}, "targets_by_index": {"3": "eyeBlinkLeft"}}
    (tmp_path / "gamehead.json").write_text(json.dumps(rig))
    monkeypatch.setenv("VISEME_RIG_PATH", str(tmp_path))
    assert "gamehead" in [p.name for p in rigs.load_profiles()]
    names = ["jaw_down", "LipsTogether", None, None]
    m = rigs.match_profile(names)
    assert m.profile.name == "gamehead" and m.target_keys == ["JawDrop|jaw_down", "LipsTogether", None, "#3"]
    w = rigs.retarget(speech_anim(), names, profile=str(tmp_path / "gamehead.json"))
    assert w[5, 0] == pytest.approx(0.5 * VISEME_POSES["aa"]["jawOpen"], abs=1e-6)
    assert w[18, 1] == 1 and w[40, 3] == 1 and np.all(w[:, 2] == 0)


@pytest.mark.parametrize("bad,msg", [
    ({"targets": {"x": "jawOpenn"}}, "unknown animation channel 'jawOpenn'"),
    ({"targets": {"x": "jawOpen"}, "colour": 1}, "unknown field"),
    ({"targets": {"x": "jawOpen"}, "required": ["y"]}, "'required' names"),
    ({"targets": {}}, "names no targets"),
])
def test_bad_profile_names_the_file_and_problem(tmp_path, bad, msg):
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(bad))
    with pytest.raises(rigs.RigError, match=msg) as e:
        rigs.load_profile(p)
    assert str(p) in str(e.value)


def test_explicit_profile_that_drives_nothing_is_refused():
    with pytest.raises(rigs.RigError, match="drives none"):
        rigs.retarget(speech_anim(), ["Key 1", "Key 2"], profile="arkit52")


def _rotate(q, v):
    x, y, z, w = q
    u = np.array([x, y, z])
    return v + 2 * np.cross(u, np.cross(u, v) + w * v)


@pytest.mark.parametrize("facing", ["+z", "-z"])
def test_head_rotation_directions(facing):
    a = empty_animation(3, 30)
    fwd = np.array([0, 0, 1.0 if facing == "+z" else -1.0])
    left = np.array([1.0 if facing == "+z" else -1.0, 0, 0])  # the character's left
    a.values[0, a.channels.index("headPitch")] = 0.3
    a.values[1, a.channels.index("headYaw")] = 0.3
    a.values[2, a.channels.index("headRoll")] = 0.3
    q = rigs.head_rotation(a, facing)
    assert np.allclose(np.linalg.norm(q, axis=1), 1, atol=1e-6)
    assert _rotate(q[0], fwd)[1] < -0.25  # pitch +: chin down, the face looks down
    assert _rotate(q[1], fwd) @ left > 0.25  # yaw +: turns to its left
    assert _rotate(q[2], np.array([0, 1.0, 0])) @ left > 0.25  # roll +: top of the head to its left
