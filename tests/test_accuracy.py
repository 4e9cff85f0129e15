"""Accuracy gates on real speech: our figures on the hand-labelled recordings must not fall below their floors.

The figures are computed exactly as `make bench` computes them (`bench.accuracy`), on
``../shared/data/speech``: the 40 TIMIT dev utterances with and without their
transcript, and a fixed half of the 701 multilingual dev words (which, and why: the
floors file).  The floors, how they were measured and
how to move them live in one place: ``bench/floors.toml``.  Deterministic (no timing,
no randomness); without ``../shared/data`` (a fresh clone) these tests skip and say so.
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the bench package (not installed: it measures the toolkit, it is not part of it)

from bench import accuracy  # noqa: E402
from bench.report import FLOORS_FILE, load_toml  # noqa: E402

FLOORS = load_toml(FLOORS_FILE)


def _check(suite: str, figures: dict) -> None:
    bad = accuracy.check_floors({suite: figures}, {suite: FLOORS[suite]})
    shown = ", ".join(f"{k} {figures[k]:.4g}" for k in FLOORS[suite] if k in figures)
    assert not bad, f"{suite} fell below its floor (bench/floors.toml):\n  " + "\n  ".join(bad) + f"\n  now: {shown}"


def test_floors_file_is_consistent():
    """Every floor names a bound and sits on the right side of the figure it was set from."""
    assert {"timit_transcript", "timit_audio_only", "multilingual", "neural_unseen_voices"} <= set(FLOORS)
    for suite, metrics in FLOORS.items():
        if suite.endswith("_set"):  # which items a suite uses, not floors
            continue
        for metric, rule in metrics.items():
            assert ("min" in rule) != ("max" in rule), (suite, metric)
            got = rule["measured"]
            assert rule.get("min", -math.inf) <= got <= rule.get("max", math.inf), (suite, metric, rule)


def test_floor_check_flags_a_drop():
    """The gate itself: a figure past its floor is reported with its name, a figure at it is not."""
    floors = {"s": {"top1": {"min": 0.7, "measured": 0.73}, "mae_ms": {"max": 15.0, "measured": 13.8}}}
    assert accuracy.check_floors({"s": {"top1": 0.7, "mae_ms": 15.0}}, floors) == []
    bad = accuracy.check_floors({"s": {"top1": 0.69, "mae_ms": 15.2}}, floors)
    assert len(bad) == 2 and bad[0].startswith("s.top1 = 0.69") and "mae_ms" in bad[1]
    assert accuracy.check_floors({"s": {"mae_ms": 14.0}}, floors)  # a figure that was not measured fails too


@pytest.fixture(scope="module")
def timit():
    if not accuracy.TIMIT_DEV.is_dir():
        pytest.skip(f"{accuracy.TIMIT_DEV} absent: the TIMIT dev set (hand-aligned phones) lives in ../shared/data")
    from bench.timit import load_timit

    return load_timit(accuracy.TIMIT_DEV)


def test_timit_with_transcript_boundaries_and_visemes(timit):
    """Phone boundaries and viseme curves of the aligned job on the 40 TIMIT dev utterances."""
    scored = accuracy.with_transcript(timit)
    figures = scored.figures()
    assert figures["failures"] == 0 and figures["items"] == 40
    _check("timit_transcript", figures)


def test_timit_audio_only_visemes(timit):
    """The neural model alone (no transcript) on the same 40 utterances."""
    _check("timit_audio_only", accuracy.audio_only(timit).figures())


def test_multilingual_dev_words():
    """Boundaries and visemes on the multilingual dev words (15 languages, IPA transcripts)."""
    from bench.voxangeles import MULTILINGUAL_DEV, load_words

    if not MULTILINGUAL_DEV.is_dir():
        pytest.skip(f"{MULTILINGUAL_DEV} absent: the multilingual dev words live in ../shared/data")
    subset = FLOORS["multilingual_set"]
    words = load_words(MULTILINGUAL_DEV, every=subset["every"]["value"])
    assert len(words) == subset["words"]["value"], "the data set changed: re-measure the floors"
    figures = accuracy.multilingual(words).figures()
    _check("multilingual", figures)
