"""Skips are for missing set-up dependencies only, and CI (CI=true) turns them into failures.

Runs small pytest sessions of this suite in a subprocess with a dependency hidden: the test
is skipped with the reason on a developer's machine and fails in CI, where scripts/setup.sh
always installs it; and an error of our own code is never a skip.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _pytest(args: list[str], **env) -> subprocess.CompletedProcess:
    e = {k: v for k, v in os.environ.items() if k != "CI"}
    e.update(env)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *args],
                          capture_output=True, text=True, cwd=ROOT, env=e, timeout=300)


def test_a_missing_validator_skips_locally_and_fails_in_ci():
    path = str(Path(sys.executable).parent)  # a PATH without node: the validator cannot run
    test = "tests/test_head_asset.py::test_asset_passes_the_khronos_validator"
    local = _pytest([test], PATH=path)
    assert local.returncode == 0 and "1 skipped" in local.stdout, local.stdout[-2000:]
    assert "Khronos glTF validator not installed" in local.stdout
    ci = _pytest([test], PATH=path, CI="true")  # fails when the test is set up, before any work
    assert ci.returncode == 1 and "1 error" in ci.stdout and "skipped" not in ci.stdout, ci.stdout[-2000:]
    assert "CI=true: scripts/setup.sh must install it" in ci.stdout


def test_an_error_in_our_speech_code_is_a_failure_not_a_skip(tmp_path):
    """A RuntimeError from toolkit.alignment.tts (a bug of ours, espeak-ng installed) errors the tests using it."""
    (tmp_path / "break_tts.py").write_text(
        "import toolkit.alignment.tts as tts\n"
        "def _broken(*a, **k):\n"
        "    raise RuntimeError('espeak-ng failed to synthesize (error 1)')\n"
        "tts.synthesize = _broken\n")
    r = _pytest(["-p", "break_tts", "tests/test_tts.py::test_fixture_speech_timeline"],
                PYTHONPATH=str(tmp_path))
    assert r.returncode == 1 and "1 error" in r.stdout and "skipped" not in r.stdout, r.stdout[-2000:]
    assert "espeak-ng failed to synthesize" in r.stdout
