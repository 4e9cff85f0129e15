"""`viseme view`: the self-contained page, checked in a real browser (Debian chromium, headless).

The page is loaded, seeked to chosen times, and the morph target influences three.js holds are
compared with what the animation asks for (the Performance the glTF writer uses, and the
animation JSON's own ARKit curves); a screenshot must show the face.
"""
from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
from conftest import missing_dependency, require_espeak

from gltf_helpers import ROOT, vrm1_model
from toolkit.animation import Animation
from toolkit.gltf.drive import perform
from toolkit.gltf.read import load_model
from toolkit.resources import DEFAULT_HEAD
from toolkit.view import page

TOLERANCE = 0.02  # the bound on |influence - expected|


@pytest.fixture(scope="module")
def spoken(tmp_path_factory):
    """"Bob made a map of Paris." spoken by espeak-ng and animated: (wav path, anim json path, Animation)."""
    from toolkit import pipeline
    from toolkit.audio import write_wav
    from toolkit.export.tracks import write_json

    d = tmp_path_factory.mktemp("spoken")
    require_espeak()  # only a missing espeak-ng skips; an error of ours fails
    speech, anim = pipeline.say("Bob made a map of Paris.", lang="en", seed=3)
    wav = write_wav(d / "bob.wav", speech.samples, speech.sample_rate)
    write_json(anim, d / "bob.json")
    return wav, d / "bob.json", Animation.load(d / "bob.json")


def _data(html: str) -> dict:
    m = re.search(r'<script type="application/json" id="viseme-data">(.*?)</script>', html, re.S)
    return json.loads(m.group(1))


def _expected(perf, node: int, t: float) -> np.ndarray:
    """The weights of ``node`` at ``t`` as the clip plays them (linear between frame keys)."""
    w = perf.weights[node]
    f = min(max(t * perf.fps, 0.0), len(w) - 1)
    i = int(np.floor(f))
    k = min(i + 1, len(w) - 1)
    return w[i] * (1 - (f - i)) + w[k] * (f - i)


def _max_error(browser, perf, times) -> float:
    """Seek to each time and compare every morph mesh's influences with the Performance."""
    worst = 0.0
    for t in times:
        browser.eval("(t) => window.viseme.seek(t)", t)
        meshes = browser.eval("() => window.viseme.influences()")
        assert {m["node"] for m in meshes} >= set(perf.weights), meshes
        for m in meshes:
            if m["node"] in perf.weights:
                worst = max(worst, float(np.abs(np.asarray(m["values"]) - _expected(perf, m["node"], t)).max()))
    return worst


# -- the page itself (no browser) -------------------------------------------------------------------
def test_page_is_self_contained(spoken, tmp_path):
    wav, anim_json, anim = spoken
    out = tmp_path / "bob.html"
    r = subprocess.run([sys.executable, "-m", "toolkit.cli", "view", "--animation", str(anim_json), "--audio",
                        str(wav), "-o", str(out)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    html = out.read_text(encoding="utf-8")
    # nothing fetched from anywhere: no external scripts, styles or URLs the page loads
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", html)
    assert "three" in html.lower() and "VRMLoaderPlugin" in html or "vrm" in html
    data = _data(html)
    assert base64.b64decode(data["model"]["base64"])[:4] == b"glTF"
    assert base64.b64decode(data["audio"]["base64"]) == wav.read_bytes() and data["audio"]["mime"] == "audio/wav"
    assert Animation.from_dict(data["animation"]).n_frames == anim.n_frames
    assert data["animation"]["words"][0]["label"].lower() == "bob"


def test_bad_inputs_fail_before_work(tmp_path, spoken):
    wav, anim_json, _ = spoken
    r = subprocess.run([sys.executable, "-m", "toolkit.cli", "view", "-o", str(tmp_path / "x.html")],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2 and "--animation" in r.stderr
    r = subprocess.run([sys.executable, "-m", "toolkit.cli", "view", str(tmp_path / "missing.glb"), "--animation",
                        str(anim_json), "-o", str(tmp_path / "x.html")], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2 and "missing.glb" in r.stderr
    assert not (tmp_path / "x.html").exists()


def test_serve_answers_the_page_on_localhost(spoken):
    wav, anim_json, _ = spoken
    proc = subprocess.Popen([sys.executable, "-m", "toolkit.cli", "view", "--animation", str(anim_json), "--audio",
                             str(wav), "--serve", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT)
    try:
        line = proc.stdout.readline()
        m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert m, (line, proc.stderr.read() if proc.poll() is not None else "")
        with urllib.request.urlopen(m.group(0), timeout=30) as resp:
            body = resp.read().decode("utf-8")
            assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/html")
        assert _data(body)["animation"]["fps"] == 30
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(m.group(0) + "etc/passwd", timeout=30)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_served_page_answers_the_favicon_request_without_an_error():
    """Browsers ask every served page for /favicon.ico; a 404 there is a console error on the page.
    A HEAD request gets the headers a GET would."""
    import threading

    from toolkit.view.serve import make_server

    server = make_server("<p>hi</p>", port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        with urllib.request.urlopen(base + "/favicon.ico", timeout=30) as resp:
            assert resp.status == 204 and resp.read() == b""
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(base + "/other.ico", timeout=30)
        # HEAD (link checkers, curl -I) gets the page's headers and no body; it was 501
        with urllib.request.urlopen(urllib.request.Request(base + "/", method="HEAD"), timeout=30) as resp:
            assert resp.status == 200 and resp.headers["Content-Length"] == str(len(b"<p>hi</p>"))
            assert resp.read() == b""
    finally:
        server.shutdown()
        server.server_close()


def test_a_page_named_like_another_format_is_refused(spoken, tmp_path, capsys):
    """`view -o talk.mp4` (or .json, .glb) would get a web page under a name that promises a video or
    data: refused, naming the file; the page's own names (.html, .htm, none) are written."""
    from toolkit.cli import main

    wav, anim_json, _ = spoken
    for name in ("talk.mp4", "talk.json", "talk.glb"):
        assert main(["view", "--animation", str(anim_json), "-o", str(tmp_path / name)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"viseme: error: {tmp_path / name}: viseme view writes a web page") and "\n" not in err
        assert not (tmp_path / name).exists()
    for name in ("talk.htm", "talk"):
        assert main(["view", "--animation", str(anim_json), "-o", str(tmp_path / name)]) == 0
        assert (tmp_path / name).read_text(encoding="utf-8").lstrip().lower().startswith("<!doctype html")


def test_a_page_on_standard_output_is_the_page_alone(spoken):
    """`view -o -` streams the page; the line saying where it went goes to stderr, not after </html>."""
    wav, anim_json, _ = spoken
    r = subprocess.run([sys.executable, "-m", "toolkit.cli", "view", "--animation", str(anim_json), "-o", "-"],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.lstrip().lower().startswith("<!doctype html") and r.stdout.rstrip().endswith("</html>")
    assert "wrote -: open it in a browser" in r.stderr


def test_a_taken_serve_port_is_refused_before_the_audio_is_animated(spoken, capsys, monkeypatch):
    from toolkit import cli, pipeline
    from toolkit.view.serve import make_server

    def boom(*a, **k):
        raise AssertionError("the audio was animated before the port was taken")

    monkeypatch.setattr(pipeline, "animate", boom)
    monkeypatch.setattr(cli, "_load_audio", boom)
    wav, _, _ = spoken
    busy = make_server("<p>someone else</p>", port=0)
    try:
        port = busy.server_address[1]
        assert cli.main(["view", "--audio", str(wav), "--text", "Bob made a map of Paris.", "--serve", str(port)]) == 2
    finally:
        busy.server_close()
    err = capsys.readouterr().err.strip()
    assert err == f"viseme: error: cannot serve on 127.0.0.1:{port} (Address already in use); choose another " \
                  "--serve port"


def test_bundle_rebuilds_to_the_committed_file(tmp_path):
    """The shipped viewer.bundle.js is what scripts/build_viewer.sh makes from viewer/main.js and the
    npm versions in package-lock.json (rebuild it after changing either)."""
    if not (ROOT / "node_modules" / ".bin" / "esbuild").exists() or shutil.which("node") is None:
        missing_dependency("esbuild (npm) not installed: `npm ci` in the repo root")
    out = tmp_path / "bundle.js"
    subprocess.run(["bash", str(ROOT / "scripts" / "build_viewer.sh"), str(out)], check=True, cwd=ROOT)
    shipped = ROOT / "toolkit" / "view" / page.BUNDLE
    assert out.read_bytes() == shipped.read_bytes(), \
        "toolkit/view/viewer.bundle.js is stale: run `bash scripts/build_viewer.sh` and commit it"


# -- in the browser -------------------------------------------------------------------------------------
def test_default_head_plays_the_animation(browser, spoken, tmp_path):
    wav, anim_json, anim = spoken
    out = tmp_path / "head.html"
    page.write_page(anim, out, audio_path=wav)
    assert browser.goto(out) == []
    perf = perform(anim, load_model(DEFAULT_HEAD))
    d = anim.duration_s
    times = [0.0, 0.2, 0.3517, 0.5, 0.7777, d / 2 + 0.011, d - 0.02]  # frame times and between frames
    worst = _max_error(browser, perf, times)
    print(f"default head: max |influence - expected| = {worst:.2e} over {len(times)} times")
    assert worst <= TOLERANCE

    # the animation JSON itself: the head's targets carry the ARKit channel names
    names = load_model(DEFAULT_HEAD).meshes[0].target_names
    for t in (0.3517, 0.7777):
        browser.eval("(t) => window.viseme.seek(t)", t)
        got = browser.eval("() => window.viseme.influences()")[0]["values"]
        want = anim.sample(np.array([t]))[0]
        for k in ("jawOpen", "mouthClose", "mouthFunnel", "eyeBlinkLeft"):
            assert abs(got[names.index(k)] - want[anim.channels.index(k)]) <= TOLERANCE, (k, t)

    # the labels show the phoneme and word under the playhead
    word = next(w for w in anim.words if w.label.lower() == "paris")
    browser.eval("(t) => window.viseme.seek(t)", (word.start + word.end) / 2)
    labels = browser.eval("() => window.viseme.labels()")
    assert labels["word"] == word.label
    ph = next(p for p in anim.phonemes if p.start <= (word.start + word.end) / 2 < p.end)
    assert labels["phoneme"] == ph.label

    # the screenshot shows the face: not blank, not one colour, a face-sized patch differs from the backdrop
    browser.eval("(t) => window.viseme.seek(t)", 0.5)
    img = browser.screenshot(tmp_path / "head.png").astype(int)
    stage = img[: int(img.shape[0] * 0.6)]  # above the controls and the curve strip
    backdrop = np.median(stage[:10].reshape(-1, 3), axis=0)
    face = np.abs(stage - backdrop).sum(axis=2) > 30
    h, w = face.shape
    print(f"screenshot: {face.mean():.1%} of the stage is the character, {len(np.unique(img.reshape(-1, 3), axis=0))} colours")
    assert img.std() > 10 and len(np.unique(img.reshape(-1, 3), axis=0)) > 200
    assert 0.03 < face.mean() < 0.9
    assert face[h // 4: 3 * h // 4, w // 4: 3 * w // 4].mean() > 0.1  # centred
    assert browser.errors() == []


def test_playing_keeps_face_and_sound_together(browser, spoken, tmp_path):
    wav, _, anim = spoken
    out = tmp_path / "play.html"
    page.write_page(anim, out, audio_path=wav)
    assert browser.goto(out) == []
    browser.eval("() => window.viseme.play()")
    time.sleep(0.6)
    browser.eval("() => window.viseme.pause()")
    now = browser.eval("() => ({t: window.viseme.time(), m: window.viseme.influences()})")
    assert 0.2 < now["t"] <= anim.duration_s  # the sound really played, and the clock is the sound's
    perf = perform(anim, load_model(DEFAULT_HEAD))
    err = float(np.abs(np.asarray(now["m"][0]["values"]) - _expected(perf, 0, now["t"])).max())
    assert err <= TOLERANCE, err  # the face is where the sound stopped


def test_vrm_page_drives_the_expression_binds(browser, spoken, tmp_path):
    _, _, anim = spoken
    src = vrm1_model(tmp_path, {"aa": [{"node": 2, "index": 0, "weight": 1.0}],
                                "ou": [{"node": 2, "index": 2, "weight": 0.5}],
                                "blink": [{"node": 2, "index": 1, "weight": 1.0}]}, full_humanoid=True)
    out = tmp_path / "vrm.html"
    page.write_page(anim, out, model=src)
    assert browser.goto(out) == []
    perf = perform(anim, load_model(src))
    worst = _max_error(browser, perf, [0.1, 0.4333, 0.61, anim.duration_s - 0.05])
    print(f"VRM 1.0: max |influence - expected| = {worst:.2e}")
    assert worst <= TOLERANCE
    assert float(np.abs(perf.weights[2][:, 0]).max()) > 0.3  # 'aa' really moves: the test can fail
    assert browser.eval("() => document.getElementById('vs-error').textContent") == ""


def test_vrm_three_vrm_refuses_still_plays_as_gltf(browser, spoken, tmp_path):
    """A VRM without the required humanoid bones: three-vrm refuses it, the page says so and plays it as glTF."""
    _, _, anim = spoken
    src = vrm1_model(tmp_path, {"aa": [{"node": 2, "index": 0, "weight": 1.0}]})
    out = tmp_path / "bare.html"
    page.write_page(anim, out, model=src)
    assert browser.goto(out) == []
    assert "humanoid bones are required" in browser.eval("() => document.getElementById('vs-error').textContent")
    assert _max_error(browser, perform(anim, load_model(src)), [0.4333]) <= TOLERANCE
