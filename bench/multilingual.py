"""The multilingual words (VoxAngeles dev set): loading, and boundary scoring for any IPA phone split.

``../shared/data/speech/multilingual_dev/<lang>/<name>.wav|.TextGrid``: one
word per recording, the word's IPA in the ``words`` tier and hand-corrected
phone intervals in the ``phones`` tier.  Measurement only: nothing is fitted
on it.

Scoring must not depend on how a transcription is cut into phones: the
reference writes ``a i`` where the toolkit's tokenizer makes the diphthong
``ai``, and ``tɬ`` where another aligner may give ``t ɬ``.  So both phone
sequences are spelled out as base symbols (`toolkit.phonemes.ipa.base_symbol`),
the two spellings are matched by edit distance, and a reference boundary
(a phone's start or end, between two symbols) is scored when the hypothesis
has a boundary at the matching place; the others count as missed.  A
boundary shared by two touching phones counts once.

Example
-------
>>> from toolkit.animation import Segment
>>> ref = [Segment("p", 0.10, 0.15), Segment("a", 0.15, 0.30), Segment("i", 0.30, 0.40)]
>>> hyp = [Segment("p", 0.11, 0.16), Segment("ai", 0.16, 0.41)]
>>> sc = score_ipa_boundaries(ref, hyp)
>>> sc.n_ref_phones, sc.n_matched, [round(e * 1000) for e in sc.errors_s]
(4, 3, [10, 10, 10])
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from bench.timit import BoundaryScore, _match, pooled  # noqa: F401 (pooled: for the benches)
from toolkit.animation import Segment
from toolkit.phonemes.ipa import base_symbol

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DIR = ROOT.parent / "shared" / "data" / "speech" / "multilingual_dev"


@dataclass
class WordRecording:
    lang: str
    name: str
    samples: np.ndarray  # float32, 16 kHz mono
    ipa: str  # the words tier: the transcription handed to the aligners
    phones: list[Segment]  # reference phones (IPA), silence left out

    @property
    def duration_s(self) -> float:
        return len(self.samples) / 16000


def load_multilingual(root: str | Path = DEFAULT_DIR) -> list[WordRecording]:
    """Every recording under ``root`` (language folders of .wav + .TextGrid), sorted."""
    from toolkit.align.textgrid import read_tiers

    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: multilingual folder not found")
    out = []
    for wav in sorted(root.glob("*/*.wav")):
        tg = wav.with_suffix(".TextGrid")
        if not tg.exists():
            continue
        x, sr = sf.read(wav, dtype="float32", always_2d=False)
        if sr != 16000 or x.ndim != 1:
            raise ValueError(f"{wav}: expected 16 kHz mono")
        _, _, tiers = read_tiers(tg)
        words = " ".join(s.label.strip() for s in tiers.get("words", []) if s.label.strip())
        phones = [Segment(s.label.strip(), s.start, s.end) for s in tiers.get("phones", []) if s.label.strip()]
        if words and phones:
            out.append(WordRecording(wav.parent.name, wav.stem, x, words, phones))
    return out


def _spell(phones: list[Segment]) -> tuple[list[str], dict[int, dict[str, float]]]:
    """Base symbols in order, and the boundaries at symbol positions: {position: {"start"|"end": time}}."""
    chars: list[str] = []
    marks: dict[int, dict[str, float]] = {}
    for s in phones:
        b = base_symbol(s.label) or "?"
        marks.setdefault(len(chars), {})["start"] = s.start
        chars += list(b)
        marks.setdefault(len(chars), {})["end"] = s.end
    return chars, marks


def _char_map(ref: list[str], hyp: list[str]) -> dict[int, int]:
    """Reference symbol position -> hypothesis position, from the edit-distance alignment of `bench.timit`."""
    return {**dict(_match(ref, hyp)), len(ref): len(hyp)}


def score_ipa_boundaries(ref: list[Segment], hyp: list[Segment]) -> BoundaryScore:
    """Boundary errors of hypothesis phones against reference phones (both IPA; "" = silence, ignored).

    In the `bench.timit.BoundaryScore` it returns, ``n_ref_phones`` counts the reference
    *boundaries* and ``n_matched`` those scored.
    """
    ref = [s for s in ref if base_symbol(s.label)]
    hyp = [s for s in hyp if base_symbol(s.label)]
    rc, rm = _spell(ref)
    hc, hm = _spell(hyp)
    pos = _char_map(rc, hc)
    errs, n_ref = [], 0
    for k, marks in rm.items():
        # a shared boundary (one phone ends where the next starts) counts once
        kinds = ["start", "end"] if len(marks) == 2 and abs(marks["start"] - marks["end"]) > 1e-6 else [next(iter(marks))]
        for kind in kinds:
            n_ref += 1
            h = hm.get(pos.get(k, -1))
            if not h:
                continue
            t = h.get(kind, h.get("start" if kind == "end" else "end"))
            errs.append(t - marks[kind])
    return BoundaryScore(np.array(errs, np.float64), n_ref, len(errs))
