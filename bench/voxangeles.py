"""The multilingual development words (VoxAngeles, 15 languages): loading and boundary scoring.

``../shared/data/speech/multilingual_dev/<iso>/<name>.wav|.TextGrid``: one word per
recording (~1 s, 16 kHz), its IPA in the ``words`` tier (the transcript: many of
these languages have no espeak-ng voice) and hand-corrected phones in the
``phones`` tier (MFA boundaries audited by hand; about half left where MFA put
them).  For measurement only: nothing in the toolkit is fitted on them.

The transcript handed to an aligner is the ``words`` tier cut into phones
(`toolkit.phonemes.inventory.split_ipa`); the reference is the ``phones`` tier as
written.  The two may differ slightly (a diphthong in one, two vowels in the
other); phones are paired by edit distance on their base symbols
(`bench.boundaries`), so a boundary is scored wherever the two agree on a phone.

Example
-------
>>> words = load_words("../shared/data/speech/multilingual_dev")        # doctest: +SKIP
>>> w = words[0]; w.lang, w.transcript, [p.label for p in w.phones]     # doctest: +SKIP
('ajp', [('ʔɒnɒ', ['ʔ', 'ɒ', 'n', 'ɒ'])], ['ʔ', 'ɒ', 'n', 'ɒ'])
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from bench.boundaries import BoundaryScore, boundary_errors
from toolkit.alignment.textgrid import read_tiers
from toolkit.animation import Segment
from toolkit.phonemes.inventory import base_symbol, is_silence, split_ipa

SAMPLE_RATE = 16000
_NOTE = re.compile(r"[A-Z?]")  # IPA has no capital letters or question marks
MULTILINGUAL_DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "speech" / "multilingual_dev"


@dataclass
class Word:
    lang: str  # ISO 639-3
    name: str
    samples: np.ndarray  # float32, 16 kHz mono
    transcript: list[tuple[str, list[str]]]  # (IPA word, its phones) for each word of the words tier
    phones: list[Segment]  # reference phones (IPA as written), speech only

    @property
    def duration_s(self) -> float:
        return len(self.samples) / SAMPLE_RATE


def _speech(segs: list[Segment]) -> list[Segment]:
    """Labelled intervals, NFC; annotators' notes in the words tier ("Exhalation?") are not words."""
    return [Segment(unicodedata.normalize("NFC", s.label.strip()), s.start, s.end) for s in segs
            if s.label.strip() and not _NOTE.search(s.label)]


def _tier(tiers: dict[str, list[Segment]], kind: str) -> list[Segment]:
    """The ``words``/``phones`` tier (one file names them ``word``/``phone``)."""
    return tiers.get(kind + "s", tiers.get(kind, []))


def load_words(root: str | Path = MULTILINGUAL_DEV, every: int = 1) -> list[Word]:
    """The recordings under ``root``, sorted by language and name; ``every`` > 1 keeps every n-th of each language."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: multilingual development set not found")
    out = []
    for lang_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for k, wav in enumerate(sorted(lang_dir.glob("*.wav"))):
            if k % every:
                continue
            samples, sr = sf.read(wav, dtype="float32", always_2d=False)
            if sr != SAMPLE_RATE or samples.ndim != 1:
                raise ValueError(f"{wav}: expected 16 kHz mono, got {sr} Hz, shape {samples.shape}")
            _, _, tiers = read_tiers(wav.with_suffix(".TextGrid"))
            words = _speech(_tier(tiers, "word"))
            out.append(Word(lang_dir.name, wav.stem, samples, [(w.label, split_ipa(w.label)) for w in words],
                            _speech(_tier(tiers, "phone"))))
    return out


def _label(phone: str) -> str:
    """How phones compare when pairing: base symbol, first letter of a cluster (``"tʃ"`` ~ ``"t"``)."""
    b = base_symbol(phone)
    return b[:1] if b else phone


def score_boundaries(ref: list[Segment], hyp: list[Segment]) -> BoundaryScore:
    """Boundary errors of hypothesis phones (IPA; silences "" dropped) against a word's reference phones."""
    h = [s for s in hyp if not is_silence(s.label)]
    return boundary_errors(ref, [_label(s.label) for s in ref], h, [_label(s.label) for s in h])
