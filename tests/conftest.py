"""Shared pytest fixtures, and the one rule for set-up dependencies that are missing.

A test may skip only because something `scripts/setup.sh` installs is absent (espeak-ng, the
Khronos validator), never because our own code raised; and in CI (``CI=true``), where setup
always runs, a missing set-up dependency fails the test instead of skipping it.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def missing_dependency(why: str) -> None:
    """Skip the calling test (with ``why``), or fail it in CI, where scripts/setup.sh always installs it."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{why} (CI=true: scripts/setup.sh must install it)", pytrace=False)
    pytest.skip(why)


def require_espeak() -> None:
    """espeak-ng itself (its library) must be installed; errors of our own TTS code are never skips."""
    import ctypes.util

    if not (os.environ.get("ESPEAK_NG_LIBRARY") or ctypes.util.find_library("espeak-ng")):
        missing_dependency("libespeak-ng is not installed (Debian espeak-ng libespeak-ng1; scripts/setup.sh)")


# -- espeak-ng speech (helper core-io) ------------------------------------------------
@pytest.fixture(scope="session")
def espeak_speech():
    """`toolkit.alignment.tts.Speech` for "Bob made a map of Paris." (en-us, 16 kHz, exact phoneme times)."""
    require_espeak()
    from toolkit.alignment.tts import synthesize

    return synthesize("Bob made a map of Paris.", lang="en")


@pytest.fixture(scope="session")
def espeak_wav(espeak_speech, tmp_path_factory):
    """Path of `espeak_speech` written as a 16 kHz PCM_16 WAV (its text: espeak_speech.text)."""
    from toolkit.audio import write_wav

    return write_wav(tmp_path_factory.mktemp("espeak") / "bob.wav", espeak_speech.samples, espeak_speech.sample_rate)


# -- Khronos glTF validator (shared by the glTF export and head asset tests) --------------------------
def require_gltf_validator() -> str:
    """node, once the Khronos validator (npm package gltf-validator, installed by scripts/setup.sh) is there."""
    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / "gltf-validator").is_dir():
        missing_dependency("Khronos glTF validator not installed (needs node and `npm install` in the repo root; "
                           "scripts/setup.sh does both)")
    return node


def validate_gltf(path) -> dict:
    """The Khronos validator's JSON report of a .gltf/.glb/.vrm/.vrma (every issue, no limit)."""
    import json
    import subprocess

    node = require_gltf_validator()
    r = subprocess.run([node, str(ROOT / "scripts" / "validate_gltf.mjs"), str(path), "--max-issues", "0"],
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
    """`assert_valid_gltf` as a fixture: ``gltf_validator(path)`` -> report, failing on any error.

    The validator is checked when the test is set up, so a test that needs it skips (or, in CI,
    fails) before doing any work, never half-way through its checks."""
    require_gltf_validator()
    return assert_valid_gltf


# -- a real browser (Debian chromium through playwright-core), one per session ------------------------
@pytest.fixture(scope="session")
def browser():
    """`tests.browser_helpers.Browser`: skips when chromium/node/playwright-core are missing (fails under CI=true)."""
    from browser_helpers import browser_or_skip

    b = browser_or_skip()
    yield b
    b.close()
