"""The richest set wins: models carrying two and three sets of morph targets (VRoid Fcl_*, ARKit 52,
Oculus visemes, VRM expressions) are driven by the set that reproduces most of the animation, with the
lips closing on /p b m/, each motion driven once, and `rig inspect` saying why."""
from __future__ import annotations

import json

import numpy as np
import pytest
from gltf_helpers import OCULUS, PP, Builder, read_clip, speech_anim

from toolkit import rigs
from toolkit.animation import ARKIT_BLENDSHAPES
from toolkit.export import gltf as G
from toolkit.gltf.drive import perform
from toolkit.gltf.inspect import inspect_model
from toolkit.gltf.read import load_model

VOWELS = ["Fcl_MTH_A", "Fcl_MTH_I", "Fcl_MTH_U", "Fcl_MTH_E", "Fcl_MTH_O"]
VROID = VOWELS + ["Fcl_MTH_Close", "Fcl_EYE_Close", "Fcl_EYE_Close_L", "Fcl_EYE_Close_R", "Fcl_BRW_Angry",
                  "Fcl_MTH_Joy"]
BLINK = slice(39, 42)   # the blink in speech_anim
OPEN = slice(0, 15)     # "aa"


def _model(tmp_path, names, name="avatar.glb"):
    b = Builder()
    b.node(name="Face", mesh=b.mesh("Face", names))
    return load_model(b.save(tmp_path / name))


def _moved(perf, names) -> set[str]:
    """Target names whose weight moves during the clip."""
    w = perf.weights[0]
    return {names[i] for i in range(len(names)) if np.ptp(w[:, i]) > 1e-6}


def test_three_sets_arkit_drives_everything_once(tmp_path):
    """VRoid Fcl_* + ARKit 52 + Oculus 15 on one mesh (a VRoid avatar through gltfpack): the 52 ARKit
    shapes drive mouth, blinks, gaze, brows; the visemes and Fcl_* stay still (no motion twice)."""
    names = VROID + ARKIT_BLENDSHAPES + OCULUS
    model = _model(tmp_path, names)
    perf = perform(speech_anim(), model)
    assert perf.match.profile.name == "arkit52" and "arkit52" in perf.via
    moved = _moved(perf, names)
    assert moved and moved <= set(ARKIT_BLENDSHAPES)
    w = perf.weights[0]
    col = names.index
    # lips close on the /m/: pressed, jaw shut; open on "aa"
    assert w[PP, col("mouthPressLeft")].min() > 0.4 and w[PP, col("jawOpen")].max() < 0.01
    assert w[OPEN, col("jawOpen")].min() > 0.6
    assert w[BLINK, col("eyeBlinkLeft")].min() == pytest.approx(1.0)
    assert np.all(w[:, col("Fcl_EYE_Close_L")] == 0) and np.all(w[:, col("viseme_PP")] == 0)
    # 52 targets driven: all of ARKit
    assert len(perf.driven[0]) == 52


def test_three_sets_inspect_says_why_the_winner_won(tmp_path):
    b = Builder()
    b.node(name="Face", mesh=b.mesh("Face", VROID + ARKIT_BLENDSHAPES + OCULUS))
    text = inspect_model(b.save(tmp_path / "three.glb"))
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("rig sets, best first"))
    assert lines[first + 1].startswith("  * arkit52 (morph): 52 targets, closes the lips (mouthClose), jaw (jawOpen), "
                                       "14/14 visemes, 28 mouth shapes, blinks, eyes, brows, cheeks; drives the mouth")
    losers = "\n".join(lines[first + 2:first + 6])
    assert "- oculus15 (morph): 15 targets, closes the lips (viseme_PP)" in losers and \
        "fewer mouth shapes (14 < 28)" in losers
    assert "- vroid (morph): 8 targets, closes the lips (Fcl_MTH_Close), jaw (Fcl_MTH_A), 7/14 visemes" in losers
    assert "shapes fewer visemes (7 < 14)" in losers
    assert "animates: morph target names -> profile arkit52" in text


def test_vroid_and_visemes_combine_visemes_for_the_mouth_vroid_for_the_blinks(tmp_path):
    """Two sets, neither complete: the visemes shape the mouth (14 visemes beat 5 vowels), the VRoid
    blinks close the eyes; VRoid's mouth shapes, Close included, stay still (one mouth)."""
    names = VROID + OCULUS
    perf = perform(speech_anim(), _model(tmp_path, names))
    assert perf.match.profile.name == "oculus15+vroid"
    assert _moved(perf, names) <= set(OCULUS) | {"Fcl_EYE_Close_L", "Fcl_EYE_Close_R"}
    w = perf.weights[0]
    assert w[PP, names.index("viseme_PP")].min() > 0.99
    assert w[BLINK, names.index("Fcl_EYE_Close_L")].min() == pytest.approx(1.0)
    assert np.all(w[:, names.index("Fcl_EYE_Close")] == 0)   # both-eyes blink: left/right carry it
    # the Blender add-on's rows (RigMatch.mixes) show the same combination
    rows = dict(zip(names, rigs.match_profile(names).mixes()))
    assert rows["Fcl_EYE_Close_R"] == {"eyeBlinkRight": 1.0} and rows["Fcl_MTH_A"] == {}


def test_vroid_closes_its_lips_with_fcl_mth_close(tmp_path):
    """VRoid's own set: closure weight 1 at the bilabial (it was 0.0 at every /p b m/), vowels off there."""
    names = VROID
    perf = perform(speech_anim(), _model(tmp_path, names))
    w = perf.weights[0]
    assert perf.match.profile.name == "vroid"
    assert w[PP, names.index("Fcl_MTH_Close")].min() > 0.99 and w[OPEN, names.index("Fcl_MTH_Close")].max() < 0.01
    assert w[PP][:, [names.index(v) for v in VOWELS]].max() < 0.01


def test_vroid_and_arkit(tmp_path):
    names = VROID + ARKIT_BLENDSHAPES
    perf = perform(speech_anim(), _model(tmp_path, names))
    assert perf.match.profile.name == "arkit52" and _moved(perf, names) <= set(ARKIT_BLENDSHAPES)


def test_a_set_that_cannot_close_the_lips_never_wins(tmp_path, monkeypatch):
    """A rig file with the highest priority and 13 viseme shapes but none that closes the lips loses to
    five ARKit shapes that can (ARKit's mouthClose only corrects its own jaw, so it is never lent)."""
    vis = [v for v in rigs.SPEECH_VISEMES if v != "PP"]
    rig = {"name": "nolips", "priority": 99, "targets": {f"Lips{v}": f"viseme_{v}" for v in vis}}
    (tmp_path / "nolips.json").write_text(json.dumps(rig))
    monkeypatch.setenv("VISEME_RIG_PATH", str(tmp_path))
    arkit = ["jawOpen", "mouthClose", "mouthPressLeft", "mouthPressRight", "eyeBlinkLeft", "eyeBlinkRight"]
    m = rigs.match_profile([f"Lips{v}" for v in vis] + arkit)
    assert m.profile.name.startswith("arkit52")
    why = {s.match.profile.name: s.why for s in m.sets}
    assert why["nolips"] == "cannot close the lips"
    assert rigs.match_profile([f"Lips{v}" for v in vis]).profile.name == "nolips"   # alone, it drives
    # with a closure shape of its own in another set (viseme_PP), that shape is lent instead
    m = rigs.match_profile([f"Lips{v}" for v in vis] + ["viseme_PP", "viseme_aa", "viseme_sil"])
    assert m.profile.name.startswith("nolips+") and m.target_keys[-3:] == ["viseme_PP", None, None]


def test_profiles_know_their_closure_target(tmp_path):
    profs = {p.name: p for p in rigs.load_profiles()}
    assert profs["arkit52"].closure == ["mouthClose"] and profs["oculus15"].closure == ["viseme_PP"]
    assert profs["vroid"].closure == ["Fcl_MTH_Close"] and profs["readyplayerme"].closure == ["viseme_PP"]
    assert profs["vrm1"].closure == [] and profs["flame"].closure == []
    # a rig file that does not say: the targets mixing viseme_PP or mouthClose
    assert rigs.load_profile({"targets": {"Lips": {"viseme_PP": 1.0}, "Jaw": "jawOpen"}}).closure == ["Lips"]
    with pytest.raises(rigs.RigError, match="'closure' names 'Nope'"):
        rigs.load_profile({"targets": {"Jaw": "jawOpen"}, "closure": "Nope"})


# -- VRM: the expressions are one more set --------------------------------------------------------------
def _vrm_with_mesh_targets(tmp_path, extra: list[str], name: str):
    """A VRM 1.0 whose expressions bind only the five vowels and the blinks to Fcl_* targets, while
    its face mesh carries ``extra`` targets too."""
    names = VOWELS + ["Fcl_EYE_Close_L", "Fcl_EYE_Close_R"] + extra
    b = Builder()
    face = b.mesh("Face", names)
    head = b.node(False, name="Head", translation=[0, 0.5, 0])
    b.node(name="Hips", children=[head])
    b.node(name="Face", mesh=face)
    binds = {p: [{"node": 2, "index": i, "weight": 1.0}] for i, p in enumerate(["aa", "ih", "ou", "ee", "oh"])}
    binds["blinkLeft"] = [{"node": 2, "index": 5, "weight": 1.0}]
    binds["blinkRight"] = [{"node": 2, "index": 6, "weight": 1.0}]
    b.doc["extensionsUsed"] = ["VRMC_vrm"]
    b.doc["extensions"] = {"VRMC_vrm": {
        "specVersion": "1.0", "meta": {"name": "test", "licenseUrl": "https://vrm.dev/licenses/1.0/"},
        "humanoid": {"humanBones": {"hips": {"node": 1}, "head": {"node": 0}}},
        "expressions": {"preset": {k: {"morphTargetBinds": v} for k, v in binds.items()}}}}
    return b.save(tmp_path / name), names


def test_vrm_expressions_borrow_the_closure_from_the_mesh(tmp_path, gltf_validator):
    """Expressions for A I U E O and blinks, Fcl_MTH_Close on the mesh: the expressions drive the
    vowels and blinks, Fcl_MTH_Close closes the lips; no target is driven twice."""
    src, names = _vrm_with_mesh_targets(tmp_path, ["Fcl_MTH_Close", "Fcl_EYE_Close"], "close.vrm")
    perf = perform(speech_anim(), load_model(src))
    assert perf.via.startswith("VRM 1.0 expressions -> profile vrm1") and "closure from mesh targets" in perf.via
    w = perf.weights[2]
    close = names.index("Fcl_MTH_Close")
    assert w[PP, close].min() > 0.99 and w[OPEN, close].max() < 0.01
    assert w[OPEN, 0].min() > 0.99 and w[PP, 0].max() < 0.01               # aa through its expression
    assert w[BLINK, names.index("Fcl_EYE_Close_L")].min() == pytest.approx(1.0)
    assert np.all(w[:, names.index("Fcl_EYE_Close")] == 0)                # the expressions blink already
    assert sorted(perf.driven[2]) == sorted(set(perf.driven[2]))
    out = tmp_path / "close_talking.vrm"
    G.write_animated_model(speech_anim(), src, out)
    gltf_validator(out)
    _, clip = read_clip(out)
    assert clip[(2, "weights")][1][PP.start + 2, close] > 0.99
    assert "closes the lips (Fcl_MTH_Close)" in inspect_model(src)


def test_vrm_expressions_lose_to_a_richer_arkit_set_on_the_mesh(tmp_path):
    src, names = _vrm_with_mesh_targets(tmp_path, ARKIT_BLENDSHAPES, "arkit.vrm")
    perf = perform(speech_anim(), load_model(src))
    assert perf.match.profile.name == "arkit52"
    assert "VRM 1.0 expressions are not driven (cannot close the lips)" in perf.via
    w = perf.weights[2]
    assert w[PP, names.index("mouthPressLeft")].min() > 0.4 and np.all(w[:, :7] == 0)
    text = inspect_model(src)
    assert "- vrm1 (vrm1): 7 targets, no closure target" in text


def test_a_named_profile_warns_of_the_targets_the_model_lacks(tmp_path):
    """--rig arkit52 on a model with a third of the ARKit shapes drives those, and says how many it asked
    for that are not there (only `rig inspect` listed them: the rest of the face stayed still unseen)."""
    names = ARKIT_BLENDSHAPES[::3]
    perf = perform(speech_anim(), _model(tmp_path, names), "arkit52")
    lacking = len(ARKIT_BLENDSHAPES) - len(names)
    said = [w for w in perf.warnings if "are not on the model" in w]
    assert len(said) == 1 and f"{lacking} of its targets" in said[0] and ARKIT_BLENDSHAPES[1] in said[0], said
    assert not [w for w in perform(speech_anim(), _model(tmp_path, ARKIT_BLENDSHAPES, "all.glb"), "arkit52").warnings
                if "are not on the model" in w]
