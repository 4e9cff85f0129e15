"""Captions (.srt SubRip, .vtt WebVTT) from the aligned words.

Phrases follow the speech: a pause starts a new caption, so does the end of a sentence once a
caption has a few words, and a caption holds at most two lines of about 42 characters (the
common broadcast and streaming limit).  Times are the words' own.  With the transcript as
typed (``text``), captions keep its capitals and punctuation; without it they show the
aligned (normalized) words.

Example
-------
>>> from toolkit.animation import Animation, Segment
>>> import numpy as np
>>> words = [Segment("hello", 0.1, 0.4), Segment("world", 0.45, 0.8), Segment("again", 1.5, 1.9)]
>>> anim = Animation(30, ["jawOpen"], np.zeros((60, 1), np.float32), words=words)
>>> [(c.start_s, c.end_s, c.lines) for c in phrases(anim, text="Hello, world! Again.")]
[(0.1, 0.8, ['Hello, world!']), (1.5, 1.9, ['Again.'])]
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from toolkit.animation import Animation
from toolkit.files import atomic_write
from toolkit.phonemes.text import words as spoken_words

# PAUSE_S: a silence this long between words is where a speaker's phrase ends (shorter gaps are
# the stops and breaths inside a phrase).
PAUSE_S = 0.3
# LINE_CHARS / MAX_LINES: at most two lines of 42 characters, the usual subtitle limit (readable
# at normal reading speed, fits any screen).
LINE_CHARS = 42
MAX_LINES = 2
# SENTENCE_MIN_WORDS: a caption ends after a sentence's last word once it has this many words;
# a short sentence ("Yes.") stays with what follows rather than flashing by alone.
SENTENCE_MIN_WORDS = 3
# MIN_GAP_S: captions never touch: players need a frame or two to swap them.
MIN_GAP_S = 0.04


@dataclass
class Caption:
    start_s: float
    end_s: float
    lines: list[str]


def _tokens(anim: Animation, text: str | None) -> list[tuple[str, float, float]]:
    """(display text, start, end) per spoken token: the transcript's own tokens when they account
    for exactly the aligned words, else the aligned words themselves."""
    words = anim.words
    if text:
        lang = anim.meta.get("lang", "en")
        spans, i = [], 0
        for tok in text.split():
            n = len(spoken_words(tok, lang))
            if n == 0:  # punctuation alone ("—"): joins the previous token
                if spans:
                    spans[-1] = (spans[-1][0] + " " + tok, spans[-1][1], spans[-1][2])
                continue
            spans.append((tok, i, i + n))
            i += n
        if i == len(words):
            return [(t, words[a].start, words[b - 1].end) for t, a, b in spans]
    return [(w.label, w.start, w.end) for w in words]


def _wrap(words: list[str]) -> list[str]:
    """One line, or two balanced lines (the break nearest the middle that fits both)."""
    line = " ".join(words)
    if len(line) <= LINE_CHARS or len(words) < 2:
        return [line]
    best = min(range(1, len(words)), key=lambda k: max(len(" ".join(words[:k])), len(" ".join(words[k:]))))
    return [" ".join(words[:best]), " ".join(words[best:])]


def _fits(words: list[str]) -> bool:
    return all(len(line) <= LINE_CHARS for line in _wrap(words)) and len(_wrap(words)) <= MAX_LINES


def phrases(anim: Animation, text: str | None = None) -> list[Caption]:
    """The captions: words grouped into phrases (see the module's rules), with their times."""
    if text is not None and not isinstance(text, str):  # 5 failed deep inside as "'int' has no attribute 'split'"
        raise TypeError(f"text must be a string (the transcript as typed) or None, got {type(text).__name__}")
    out: list[Caption] = []
    cur: list[tuple[str, float, float]] = []

    def close():
        if cur:
            out.append(Caption(round(cur[0][1], 3), round(cur[-1][2], 3), _wrap([t for t, _, _ in cur])))
            cur.clear()

    for tok in _tokens(anim, text):
        if cur and (tok[1] - cur[-1][2] >= PAUSE_S or not _fits([t for t, _, _ in cur] + [tok[0]])):
            close()
        cur.append(tok)
        if tok[0][-1:] in ".?!" and len(cur) >= SENTENCE_MIN_WORDS:
            close()
    close()
    for a, b in zip(out, out[1:]):
        a.end_s = round(max(a.start_s, min(a.end_s, b.start_s - MIN_GAP_S)), 3)
    return out


def _stamp(t: float, sep: str) -> str:
    ms = int(round(t * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def srt_text(anim: Animation, text: str | None = None) -> str:
    """SubRip: numbered cues, ``HH:MM:SS,mmm --> HH:MM:SS,mmm``, the lines, a blank line."""
    cues = [f"{i}\n{_stamp(c.start_s, ',')} --> {_stamp(c.end_s, ',')}\n" + "\n".join(c.lines) + "\n"
            for i, c in enumerate(phrases(anim, text), 1)]
    return "\n".join(cues)


def vtt_text(anim: Animation, text: str | None = None) -> str:
    """WebVTT: the ``WEBVTT`` header, then ``HH:MM:SS.mmm --> HH:MM:SS.mmm`` cues."""
    cues = [f"{_stamp(c.start_s, '.')} --> {_stamp(c.end_s, '.')}\n" + "\n".join(_vtt_escape(x) for x in c.lines) + "\n"
            for c in phrases(anim, text)]
    return "WEBVTT\n\n" + "\n".join(cues)


def _vtt_escape(line: str) -> str:
    """Cue text: '&' and '<' are markup in WebVTT; '-->' would end the cue."""
    return line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def write_srt(anim: Animation, path: str | Path, text: str | None = None) -> None:
    atomic_write(path, srt_text(anim, text))


def write_vtt(anim: Animation, path: str | Path, text: str | None = None) -> None:
    atomic_write(path, vtt_text(anim, text))
