"""Captions (.srt, .vtt) from the aligned words, read back by subtitle libraries (srt, webvtt-py)."""
from __future__ import annotations

import datetime

import numpy as np
import pytest

from toolkit.animation import Animation, Segment
from toolkit.export import captions

srt = pytest.importorskip("srt")
webvtt = pytest.importorskip("webvtt")

TEXT = ("Well, the quick brown fox jumps over the lazy dog near the riverbank today. "
        "Then it rests. After a long pause, it runs home at 5 o'clock!")


def _anim(text: str = TEXT, pause_after: tuple[int, ...] = (13, 16)) -> Animation:
    """Words of ``text`` (normalized as the aligner gives them), 0.3 s each, 0.05 s apart, with 0.8 s
    pauses after the words at ``pause_after``."""
    from toolkit.phonemes.text import words

    segs, t = [], 0.2
    for i, w in enumerate(words(text)):
        segs.append(Segment(w, round(t, 3), round(t + 0.3, 3)))
        t += 0.35 + (0.8 if i in pause_after else 0)
    n = int((t + 0.5) * 30)
    return Animation(30, ["jawOpen"], np.zeros((n, 1), np.float32), words=segs, meta={"lang": "en"})


def test_srt_is_read_by_the_srt_library(tmp_path):
    anim = _anim()
    out = tmp_path / "a.srt"
    captions.write_srt(anim, out, text=TEXT)
    subs = list(srt.parse(out.read_text(encoding="utf-8"), ignore_errors=False))
    assert [s.index for s in subs] == list(range(1, len(subs) + 1))
    assert " ".join(s.content.replace("\n", " ") for s in subs) == TEXT  # every word once, as typed
    for s in subs:
        lines = s.content.split("\n")
        assert len(lines) <= 2 and all(len(x) <= captions.LINE_CHARS for x in lines), lines
        assert s.start < s.end
    for a, b in zip(subs, subs[1:]):
        assert a.end <= b.start
    # the pause after "today." (0.8 s) and the one after "rests." start new captions
    starts = [s.content.split()[0] for s in subs]
    assert "Then" in starts and "After" in starts
    first = anim.words[0]
    assert subs[0].start == datetime.timedelta(seconds=first.start)


def test_vtt_is_read_by_webvtt(tmp_path):
    anim = _anim()
    out = tmp_path / "a.vtt"
    captions.write_vtt(anim, out, text=TEXT)
    cues = webvtt.read(str(out))
    assert len(cues) == len(captions.phrases(anim, TEXT))
    assert cues[0].start == "00:00:00.200" and "Well," in cues[0].text
    assert all(c.start_in_seconds < c.end_in_seconds for c in cues)


def test_without_the_transcript_the_aligned_words_are_shown(tmp_path):
    anim = _anim()
    cues = captions.phrases(anim)
    assert cues[0].lines[0].startswith("well the quick")
    assert " ".join(" ".join(c.lines) for c in cues).split() == [w.label for w in anim.words]


def test_a_transcript_that_does_not_match_the_words_falls_back():
    anim = _anim()
    cues = captions.phrases(anim, text="Something else entirely.")
    assert " ".join(" ".join(c.lines) for c in cues).split() == [w.label for w in anim.words]


def test_markup_characters_are_escaped_in_vtt():
    anim = Animation(30, ["jawOpen"], np.zeros((30, 1), np.float32),
                     words=[Segment("x", 0.1, 0.3), Segment("y", 0.35, 0.6)], meta={"lang": "en"})
    text = captions.vtt_text(anim, "x>y")
    assert "x&gt;y" in text and "-->" not in text.split("\n", 3)[3]
