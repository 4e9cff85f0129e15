"""Shared pytest fixtures."""
from __future__ import annotations

import pytest


# -- espeak-ng speech (helper core-io) ------------------------------------------------
@pytest.fixture(scope="session")
def espeak_speech():
    """`toolkit.alignment.tts.Speech` for "Bob made a map of Paris." (en-us, 16 kHz, exact phoneme times)."""
    from toolkit.alignment.tts import synthesize

    try:
        return synthesize("Bob made a map of Paris.", lang="en")
    except RuntimeError as e:  # libespeak-ng missing
        pytest.skip(f"espeak-ng unavailable: {e}")


@pytest.fixture(scope="session")
def espeak_wav(espeak_speech, tmp_path_factory):
    """Path of `espeak_speech` written as a 16 kHz PCM_16 WAV (its text: espeak_speech.text)."""
    from toolkit.audio import write_wav

    return write_wav(tmp_path_factory.mktemp("espeak") / "bob.wav", espeak_speech.samples, espeak_speech.sample_rate)


# -- Khronos glTF validator (shared by the glTF export and head asset tests) --------------------------
def validate_gltf(path) -> dict:
    """The Khronos validator's JSON report of a .gltf/.glb/.vrm/.vrma (every issue, no limit).

    Skips the calling test when node or the npm package (`npm install` in the repo root) is missing.
    """
    import json
    import shutil
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    node = shutil.which("node")
    if node is None or not (root / "node_modules" / "gltf-validator").is_dir():
        pytest.skip("Khronos glTF validator not installed (needs node and `npm install` in the repo root)")
    r = subprocess.run([node, str(root / "scripts" / "validate_gltf.mjs"), str(path), "--max-issues", "0"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def gltf_errors(report: dict) -> set[tuple[str, str]]:
    """(code, JSON pointer) of every error (severity 0) in a validator report."""
    return {(m["code"], m.get("pointer", "")) for m in report["issues"]["messages"] if m["severity"] == 0}


def assert_valid_gltf(path, inherited_from=None) -> dict:
    """Zero validator errors, apart from ones the input model already had (given as inherited_from)."""
    rep = validate_gltf(path)
    errs = gltf_errors(rep)
    if inherited_from is not None:
        errs -= gltf_errors(validate_gltf(inherited_from))
    assert not errs, f"{path}: validator errors {sorted(errs)[:10]}"
    assert rep["issues"]["truncated"] is False or not errs
    return rep


@pytest.fixture
def gltf_validator():
    """`assert_valid_gltf` as a fixture: ``gltf_validator(path)`` -> report, failing on any error."""
    return assert_valid_gltf


# -- a real browser (Debian chromium through playwright-core), one per session ------------------------
@pytest.fixture(scope="session")
def browser():
    """`tests.browser_helpers.Browser`: skips when chromium/node/playwright-core are missing (fails under CI=true)."""
    from browser_helpers import browser_or_skip

    b = browser_or_skip()
    yield b
    b.close()
