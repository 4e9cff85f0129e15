"""Our exports read by a real consumer: three.js's GLTFLoader with three-vrm's plugins, in Chromium.

Every .glb/.gltf/.vrm/.vrma the exporters write is loaded by the viewer's own loader
(`window.viseme.inspect`, the same code `viseme view` uses); any loader error, console error
or page error fails.  The VRM Animation is also applied to a VRM (three-vrm-animation's
createVRMAnimationClip) and its expressions and head read back at a chosen time.
"""
from __future__ import annotations

import base64

import numpy as np
import pytest

from gltf_helpers import MODELS, read_clip, rpm_avatar, speech_anim, vrm0_model, vrm1_model
from toolkit.export import gltf as G

VRM1_BINDS = {"aa": [{"node": 2, "index": 0, "weight": 1.0}], "blink": [{"node": 2, "index": 1, "weight": 1.0}],
              "ou": [{"node": 2, "index": 2, "weight": 0.5}]}


def _b64(path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def _inspect(browser, path) -> dict:
    browser.goto_blank()
    info = browser.eval("(b) => window.viseme.inspect(b)", _b64(path))
    assert browser.errors() == [], (path.name, browser.errors())
    return info


def _exports(tmp_path):
    """(label, path, is VRM) of every kind of file the exporters write."""
    anim = speech_anim()
    out = []
    for suffix in (".glb", ".gltf"):
        p = tmp_path / f"head{suffix}"
        G.write_standalone_head(anim, p)
        out.append((f"default head {suffix}", p, False))
    p = tmp_path / "rpm_talking.glb"
    G.write_animated_model(anim, rpm_avatar(tmp_path), p)
    out.append(("procedural ARKit + visemes avatar (skinned)", p, False))
    p = tmp_path / "vrm1_talking.vrm"
    G.write_animated_model(anim, vrm1_model(tmp_path, VRM1_BINDS, full_humanoid=True), p)
    out.append(("VRM 1.0", p, True))
    p = tmp_path / "vrm0_talking.vrm"
    G.write_animated_model(anim, vrm0_model(tmp_path, full_humanoid=True), p)
    out.append(("VRM 0.x", p, True))
    return out


def test_every_export_loads_in_threejs(browser, tmp_path):
    anim = speech_anim()
    loaded = []
    for label, path, is_vrm in _exports(tmp_path):
        info = _inspect(browser, path)
        clip = [a for a in info["animations"] if a["name"] == "viseme-talk"]
        assert clip and clip[0]["tracks"] >= 2, (label, info["animations"])  # morph weights + head
        assert clip[0]["duration"] == pytest.approx(anim.duration_s, abs=1e-4), label
        assert info["meshes"] and all(m["targets"] > 0 for m in info["meshes"]), label
        if is_vrm:
            assert info["vrm"] and info["vrm"]["head"], (label, info["vrm"])
            assert {"aa", "blink"} <= set(info["vrm"]["expressions"]), label
        loaded.append(label)
    print("three.js loaded:", ", ".join(loaded))


def test_vrma_plays_on_a_vrm_in_three_vrm(browser, tmp_path):
    anim = speech_anim()
    vrma = tmp_path / "talk.vrma"
    G.write_vrma(anim, vrma)
    info = _inspect(browser, vrma)
    (a,) = info["vrmAnimations"]
    assert {"aa", "ih", "ou", "ee", "oh", "blink"} <= set(a["expressions"]) and "head" in a["humanoid"]
    assert a["duration"] == pytest.approx(anim.duration_s, abs=1e-4)

    # applied to a VRM: expression weights and the head at t are the file's curves at t
    vrm = tmp_path / "face.vrm"
    presets = ["aa", "ih", "ou", "ee", "oh", "blink", "blinkLeft", "blinkRight"]
    vrm1_model(tmp_path, {p: [{"node": 2, "index": i % 3, "weight": 1.0}] for i, p in enumerate(presets)},
               full_humanoid=True, name="face.vrm")
    t = 10.5 / anim.fps  # between two keys, in the first /a/
    got = browser.eval("(a) => window.viseme.playVrma(a[0], a[1], a[2])", [_b64(vrm), _b64(vrma), t])
    assert browser.errors() == []
    m, clip = read_clip(vrma)
    names = {i: n.get("name") for i, n in enumerate(m.doc["nodes"])}
    assert set(got["expressions"]) >= {names[n] for n, p in clip if p == "translation"}
    for (node, path), (times, values, _) in clip.items():
        if path == "translation":
            want = np.interp(t, times, values.reshape(len(times), -1)[:, 0])
            assert got["expressions"][names[node]] == pytest.approx(want, abs=0.02), names[node]
        else:
            q = np.array([np.interp(t, times, values.reshape(len(times), 4)[:, k]) for k in range(4)])
            assert abs(float(np.dot(q / np.linalg.norm(q), got["head"]))) > 0.999
    assert got["expressions"]["aa"] > 0.1  # the clip moves the mouth: the comparison can fail


def test_real_models_exported_load_in_threejs(browser, tmp_path):
    """The real VRM 1.0 / glTF samples in ../shared/data, animated by the toolkit, read back by three.js."""
    cube = MODELS / "vrm" / "three-vrm-core_cube" / "cube.gltf"
    simple = MODELS / "khronos_gltf_samples" / "SimpleMorph" / "glTF" / "SimpleMorph.gltf"
    if not cube.exists() or not simple.exists():
        pytest.skip(f"{MODELS} not present (real test models live in ../shared/data/models)")
    anim = speech_anim()
    out = tmp_path / "cube_talking.vrm"
    G.write_animated_model(anim, cube, out)
    browser.goto_blank()
    info = browser.eval("(b) => window.viseme.inspect(b)", _b64(out))
    # the cube's VRM thumbnail names a thumbnail.png its publisher does not ship (kept as a reference)
    assert all("thumbnail" in e or "Failed to load resource" in e or "Couldn't load texture" in e
               for e in browser.errors()), browser.errors()
    assert info["vrm"]["version"] == "1" and "aa" in info["vrm"]["expressions"]
    assert any(a["name"] == "viseme-talk" for a in info["animations"])
    out = tmp_path / "simple.glb"
    G.write_animated_model(anim, simple, out, profile={"targets_by_index": {"0": "jawOpen", "1": "viseme_PP"}})
    info = _inspect(browser, out)
    assert any(a["name"] == "viseme-talk" for a in info["animations"])
