"""The toolkit as users of `pip install` get it: a wheel, installed into a fresh virtual environment,
run from a folder outside the repository, with no torch.

The core install's dependencies come from ``build/wheelhouse`` (made by ``make setup``), offline: the
test proves the wheel needs nothing else (no torch, no renderer, no repository files)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from gltf_helpers import Builder

REPO = Path(__file__).resolve().parents[1]
WHEELHOUSE = REPO / "build" / "wheelhouse"
ARKIT5 = ["jawOpen", "mouthClose", "mouthFunnel", "eyeBlinkLeft", "eyeBlinkRight"]


def _run(cmd, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=600, **kw)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))}\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    return r


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    # hatchling from the test extra: the build needs no network
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", out, REPO])
    (whl,) = out.glob("viseme_toolkit-*.whl")
    return whl


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A fresh venv with the wheel and the core dependencies only (offline, from the wheelhouse)."""
    if not (WHEELHOUSE / ".complete").exists():
        msg = f"{WHEELHOUSE} is missing: `make setup` downloads the core install's wheels there"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    venv = tmp_path_factory.mktemp("venv") / "env"
    _run([sys.executable, "-m", "venv", venv])
    _run([venv / "bin" / "pip", "install", "-q", "--no-index", "--find-links", WHEELHOUSE, wheel])
    return venv


def test_wheel_carries_the_rigs_the_head_and_the_weights(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for need in ("toolkit/_data/rigs/arkit52.json", "toolkit/_data/rigs/vrm1.json",
                 "toolkit/_data/assets/head/head.glb", "toolkit/_data/assets/model/audio2face.npz",
                 "toolkit/blender/export_scene.py", "toolkit/cli.py"):
        assert need in names, need
    assert not any(n.startswith(("tests/", "bench/", "blender_addon/")) for n in names)
    meta = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    core = [ln for ln in meta.splitlines() if ln.startswith("Requires-Dist:") and "extra ==" not in ln]
    assert core and not any("torch" in ln or "pyrender" in ln or "bpy" in ln for ln in core), core


def test_installed_wheel_animates_a_model_from_outside_the_repo(installed, tmp_path):
    """`viseme animate` with a generated clip and a generated glTF model, in a folder far from the repo."""
    from toolkit.alignment.tts import synthesize
    from toolkit.audio import write_wav

    work = tmp_path / "job"
    work.mkdir()
    speech = synthesize("Bob made a map of Paris.", lang="en-us")
    write_wav(work / "line.wav", speech.samples, speech.sample_rate)
    b = Builder()
    b.node(name="Face", mesh=b.mesh("Face", ARKIT5))
    b.save(work / "face.glb")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    viseme = installed / "bin" / "viseme"
    r = _run([viseme, "animate", "line.wav", "--text", "Bob made a map of Paris.", "--model", "face.glb",
              "-o", "talk.glb", "-o", "talk.json"], cwd=work, env=env)
    assert "engine hybrid" in r.stdout  # the neural model runs (numpy) in the hybrid engine
    anim = json.loads((work / "talk.json").read_text())
    jaw = np.array(anim["values"])[:, anim["channels"].index("jawOpen")]
    assert jaw.max() > 0.2
    glb = (work / "talk.glb").read_bytes()
    assert glb[:4] == b"glTF" and b'"viseme-talk"' in glb
    # audio only: the neural engine, numpy only
    r = _run([viseme, "animate", "line.wav", "-o", "solo.json"], cwd=work, env=env)
    assert "engine neural" in r.stdout
    # an IPA transcript: the universal aligner, its weights from the wheel
    r = _run([viseme, "align", "line.wav", "--ipa", "bɑb meɪd ə mæp ʌv pɛɹɪs", "-o", "ipa.json"], cwd=work, env=env)
    assert json.loads((work / "ipa.json").read_text())["method"] == "universal"
    # the installed package, not the repo: its data comes from the wheel, and torch is nowhere
    code = ("import sys, toolkit, toolkit.pipeline, toolkit.resources as r; import importlib.util as u; "
            "print(toolkit.__file__); print(r.RIGS_DIR); print(u.find_spec('torch') is None); print(r.ALIGNER_WEIGHTS)")
    out = _run([installed / "bin" / "python", "-c", code], cwd=work, env=env).stdout.split()
    assert str(REPO) not in out[0] and out[1].endswith("toolkit/_data/rigs") and out[2] == "True", out
    assert out[3].endswith("toolkit/_data/assets/model/aligner.npz"), out


def test_installed_wheel_refuses_what_needs_an_extra_before_any_work(installed, tmp_path):
    """A video needs the [render] extra: said up front, naming the extra, nothing written."""
    from toolkit.audio import write_wav

    write_wav(tmp_path / "a.wav", 0.3 * np.sin(np.arange(16000) / 5.0).astype(np.float32), 16000)
    r = subprocess.run([installed / "bin" / "viseme", "animate", "a.wav", "-o", "a.json", "-o", "a.mp4"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "viseme-toolkit[render]" in r.stderr, r.stderr
    assert not (tmp_path / "a.json").exists()
    # no bpy: the [blender] extra, not the checkout's `make setup` (it named site-packages/.venv-blender)
    env = {k: v for k, v in os.environ.items() if k != "VISEME_BLENDER_PYTHON"}
    r = subprocess.run([installed / "bin" / "viseme", "animate", "a.wav", "-o", "a.json", "-o", "a.blend"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 2 and "pip install 'viseme-toolkit[blender]'" in r.stderr, r.stderr
    assert ".venv-blender" not in r.stderr and "make setup" not in r.stderr, r.stderr


def test_sdist_holds_the_package_and_its_data_only_and_builds_the_same_wheel(wheel, tmp_path):
    """The sdist: the package, its data and the head's and models' cards, nothing of tests/ or bench/
    (a bare "README.md" include pattern matched tests/*/README.md too); a wheel built from it is the
    checkout's wheel, file for file."""
    pytest.importorskip("hatchling", reason="hatchling (the test extra) builds the sdist offline")
    _run([sys.executable, "-m", "hatchling", "build", "-t", "sdist", "-d", tmp_path / "sdist"], cwd=REPO)
    (sdist,) = (tmp_path / "sdist").glob("viseme_toolkit-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = [n.split("/", 1)[1] for n in tar.getnames() if "/" in n]
        tar.extractall(tmp_path / "src", filter="data")
    tops = {n.split("/")[0] for n in names}
    assert tops <= {"toolkit", "rigs", "assets", "README.md", "pyproject.toml", "PKG-INFO", ".gitignore"}, tops
    assert "assets/head/README.md" in names and not any("__pycache__" in n for n in names)
    (src,) = (tmp_path / "src").iterdir()
    _run([sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", tmp_path / "whl"], cwd=src)
    (rebuilt,) = (tmp_path / "whl").glob("*.whl")
    listing = lambda w: sorted(n for n in zipfile.ZipFile(w).namelist() if ".dist-info/" not in n)  # noqa: E731
    assert listing(rebuilt) == listing(wheel)


def test_installed_trainers_write_to_the_current_folder_not_site_packages(installed, tmp_path):
    """`python -m toolkit.train.aligner` from an install put its cache and weights under site-packages
    (ROOT is site-packages there); like audio2face's trainer, it uses the current folder."""
    code = ("import toolkit.train.aligner as a, toolkit.train.audio2face as f; "
            "print(a.CACHE); print(a.OUT); print(f.CACHE); print(f.DEFAULT_OUT)")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    out = _run([installed / "bin" / "python", "-c", code], cwd=tmp_path, env=env).stdout.split()
    assert not any("site-packages" in p for p in out), out
    assert out[0] == str(tmp_path / ".cache" / "aligner") and out[1] == "aligner.npz", out
