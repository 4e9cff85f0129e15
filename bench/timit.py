"""TIMIT loading and phone-boundary scoring, shared by the alignment benches.

TIMIT's hand-aligned phones are the yardstick for phone timing.  They are for
measurement only: nothing in the toolkit is fitted on them.

Reference phones are folded the standard way (Lee & Hon 1989, 61 -> 39 labels,
`TIMIT_FOLD_39`), a stop closure is merged with its burst (``bcl b``
-> one ``b``; a closure before an affricate belongs to it: ``tcl ch`` -> one
``ch``, ``dcl jh`` -> one ``jh``, as the hypothesis's /tʃ dʒ/ span their closure
too; a closure without its burst, as in unreleased stops, stands for the stop
itself), the glottal stop ``q`` is merged into the following phone
and pauses (``h# pau epi``) are silence.  Hypothesis phones (IPA) are mapped to
the same 39 labels through ARPAbet and paired with the reference by
`bench.boundaries` (edit distance; each boundary counted once).

Example
-------
>>> utts = load_timit("../shared/data/speech/timit_dev")     # doctest: +SKIP
>>> ref = utts[0].phones                                      # doctest: +SKIP
>>> score_boundaries(ref, ref).mean_abs_error_s               # doctest: +SKIP
0.0
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from bench.boundaries import BoundaryScore, boundary_errors
from toolkit.animation import Segment
from toolkit.phonemes.inventory import ipa_to_arpabet, is_silence

TIMIT_SAMPLE_RATE = 16000
# Scoring only (not the toolkit's business): the standard 61 -> 39 folding (Lee & Hon 1989), used when scoring against TIMIT.
TIMIT_FOLD_39: dict[str, str] = {
    "ao": "aa", "ax": "ah", "ax-h": "ah", "axr": "er", "hv": "hh", "ix": "ih", "el": "l",
    "em": "m", "en": "n", "nx": "n", "eng": "ng", "zh": "sh", "ux": "uw",
    "pcl": "sil", "tcl": "sil", "kcl": "sil", "bcl": "sil", "dcl": "sil", "gcl": "sil",
    "h#": "sil", "pau": "sil", "epi": "sil",
}

_CLOSURES = {"bcl": "b", "dcl": "d", "gcl": "g", "pcl": "p", "tcl": "t", "kcl": "k"}
_AFFRICATES = ("ch", "jh")  # TIMIT labels them as a closure (tcl, dcl) then the release
_SILENCE_39 = "sil"


@dataclass
class TimitUtterance:
    speaker: str
    name: str
    samples: np.ndarray  # float32, 16 kHz mono
    text: str
    phones: list[Segment]  # folded 39-set labels, "sil" for pauses
    words: list[Segment] = field(default_factory=list)
    # The same segments with TIMIT's own 61 labels (closures merged, not folded):
    # viseme scores use these, because folding merges sounds the lips tell apart
    # (ao -> aa merges a rounded vowel into an open one, ax -> ah a schwa into /ʌ/).
    phones61: list[Segment] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        return len(self.samples) / TIMIT_SAMPLE_RATE


def fold_timit(labels: list[tuple[int, int, str]], n_samples: int, fold: bool = True) -> list[Segment]:
    """TIMIT ``.phn`` rows -> folded 39-label segments in seconds (closures merged).

    With ``fold=False`` the labels stay TIMIT's 61 (only closures and ``q`` merge).

    >>> [s.label for s in fold_timit([(0, 800, "tcl"), (800, 1600, "ch"), (1600, 3200, "iy")], 3200)]
    ['ch', 'iy']
    >>> [s.label for s in fold_timit([(0, 800, "kcl"), (800, 1600, "k"), (1600, 2400, "tcl")], 2400)]
    ['k', 't']
    """
    rows = [(max(0, min(a, n_samples)), max(0, min(b, n_samples)), lab) for a, b, lab in labels]
    out: list[list] = []  # [label, start, end]
    i = 0
    while i < len(rows):
        a, b, lab = rows[i]
        if lab in _CLOSURES:
            stop = _CLOSURES[lab]
            nxt = rows[i + 1][2] if i + 1 < len(rows) else None
            if nxt in _AFFRICATES:  # the affricate starts with this closure (no extra /t/ or /d/)
                rows[i + 1] = (a, rows[i + 1][1], nxt)
                i += 1
                continue
            if nxt == stop:
                b = rows[i + 1][1]
                i += 1
            out.append([stop, a, b])
        elif lab == "q":
            # the glottal onset belongs to the next phone (usually a vowel)
            if i + 1 < len(rows) and rows[i + 1][2] not in ("h#", "pau", "epi"):
                rows[i + 1] = (a, rows[i + 1][1], rows[i + 1][2])
            elif out:
                out[-1][2] = b
        else:
            out.append([TIMIT_FOLD_39.get(lab, lab) if fold else lab, a, b])
        i += 1
    return [Segment(lab, a / TIMIT_SAMPLE_RATE, b / TIMIT_SAMPLE_RATE) for lab, a, b in out if b > a]


def _read_rows(path: Path) -> list[tuple[int, int, str]]:
    rows = []
    for line in path.read_text(encoding="latin-1").splitlines():
        parts = line.split()
        if len(parts) >= 3:
            rows.append((int(parts[0]), int(parts[1]), " ".join(parts[2:])))
    return rows


def load_timit(root: str | Path) -> list[TimitUtterance]:
    """All utterances under ``root`` (speaker folders with .wav/.phn/.txt/.wrd), sorted."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: TIMIT folder not found")
    utts = []
    for wav in sorted(root.glob("*/*.wav")):
        samples, sr = sf.read(wav, dtype="float32", always_2d=False)
        if sr != TIMIT_SAMPLE_RATE:
            raise ValueError(f"{wav}: expected 16 kHz, got {sr} Hz")
        n = len(samples)
        txt = wav.with_suffix(".txt").read_text(encoding="latin-1").split(maxsplit=2)[2].strip()
        rows = _read_rows(wav.with_suffix(".phn"))
        phones = fold_timit(rows, n)
        words = []
        wrd = wav.with_suffix(".wrd")
        if wrd.exists():
            words = [Segment(w, a / TIMIT_SAMPLE_RATE, min(b, n) / TIMIT_SAMPLE_RATE) for a, b, w in _read_rows(wrd)]
        utts.append(TimitUtterance(wav.parent.name, wav.stem, samples, txt, phones, words, fold_timit(rows, n, fold=False)))
    return utts


def transcript_words(text: str) -> list[str]:
    """TIMIT sentence -> lower-case words (punctuation dropped, apostrophes kept)."""
    return re.findall(r"[a-z0-9']+", text.lower().replace("-", " "))


def ipa_to_timit39(label: str) -> str:
    """A hypothesis IPA phone -> the folded TIMIT label ("sil" for silence)."""
    if is_silence(label):
        return _SILENCE_39
    if label == "ɾ":
        return "dx"
    if label == "ʔ":
        return _SILENCE_39
    try:
        arpa = ipa_to_arpabet(label).lower()
    except KeyError:
        return label
    return TIMIT_FOLD_39.get(arpa, arpa)


def score_boundaries(ref: list[Segment], hyp_ipa: list[Segment], hyp_is_timit: bool = False) -> BoundaryScore:
    """Boundary errors of hypothesis phones (IPA labels) against folded TIMIT phones."""
    r = [s for s in ref if s.label != _SILENCE_39]
    if hyp_is_timit:
        h = [s for s in hyp_ipa if s.label != _SILENCE_39]
        h_lab = [s.label for s in h]
    else:
        h = [s for s in hyp_ipa if ipa_to_timit39(s.label) != _SILENCE_39]
        h_lab = [ipa_to_timit39(s.label) for s in h]
    return boundary_errors(r, [s.label for s in r], h, h_lab)
