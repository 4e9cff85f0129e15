"""TIMIT loading and phone-boundary scoring, shared by the alignment benches.

TIMIT's hand-aligned phones are the yardstick for phone timing.  They are for
measurement only: nothing in the toolkit is fitted on them.

Reference phones are folded the standard way (Lee & Hon 1989, 61 -> 39 labels,
`TIMIT_FOLD_39`), a stop closure is merged with its burst (``bcl b``
-> one ``b``; a closure without its burst, as in unreleased stops, stands for
the stop itself), the glottal stop ``q`` is merged into the following phone
and pauses (``h# pau epi``) are silence.  Hypothesis phones (IPA) are mapped to
the same 39 labels through ARPAbet.  The two label sequences are matched by
edit distance; every matched pair (substitutions included) contributes its
start and end boundary, and a boundary shared by two neighbouring phones
counts once.

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
    """
    rows = [(max(0, min(a, n_samples)), max(0, min(b, n_samples)), lab) for a, b, lab in labels]
    out: list[list] = []  # [label, start, end]
    i = 0
    while i < len(rows):
        a, b, lab = rows[i]
        if lab in _CLOSURES:
            stop = _CLOSURES[lab]
            if i + 1 < len(rows) and rows[i + 1][2] == stop:
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


def _match(ref: list[str], hyp: list[str]) -> list[tuple[int, int]]:
    """Edit-distance alignment of two label lists; pairs of matched or substituted indices."""
    n, m = len(ref), len(hyp)
    cost = np.zeros((n + 1, m + 1))
    cost[:, 0] = np.arange(n + 1)
    cost[0, :] = np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            sub = 0.0 if ref[i - 1] == hyp[j - 1] else 1.0
            cost[i, j] = min(cost[i - 1, j - 1] + sub, cost[i - 1, j] + 1, cost[i, j - 1] + 1)
    pairs = []
    i, j = n, m
    while i > 0 and j > 0:
        sub = 0.0 if ref[i - 1] == hyp[j - 1] else 1.0
        if cost[i, j] == cost[i - 1, j - 1] + sub:
            pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif cost[i, j] == cost[i - 1, j] + 1:
            i -= 1
        else:
            j -= 1
    return pairs[::-1]


@dataclass
class BoundaryScore:
    errors_s: np.ndarray  # signed hyp - ref, one per matched boundary
    n_ref_phones: int
    n_matched: int

    @property
    def mean_abs_error_s(self) -> float:
        return float(np.mean(np.abs(self.errors_s))) if self.errors_s.size else float("nan")

    def share_within(self, tol_s: float = 0.020) -> float:
        return float(np.mean(np.abs(self.errors_s) <= tol_s)) if self.errors_s.size else float("nan")


def score_boundaries(ref: list[Segment], hyp_ipa: list[Segment], hyp_is_timit: bool = False) -> BoundaryScore:
    """Boundary errors of hypothesis phones (IPA labels) against folded TIMIT phones."""
    r = [s for s in ref if s.label != _SILENCE_39]
    if hyp_is_timit:
        h = [s for s in hyp_ipa if s.label != _SILENCE_39]
        h_lab = [s.label for s in h]
    else:
        h = [s for s in hyp_ipa if ipa_to_timit39(s.label) != _SILENCE_39]
        h_lab = [ipa_to_timit39(s.label) for s in h]
    pairs = _match([s.label for s in r], h_lab)
    seen: dict[float, float] = {}
    for i, j in pairs:
        for rt, ht in ((r[i].start, h[j].start), (r[i].end, h[j].end)):
            seen.setdefault(round(rt, 6), ht - rt)
    errs = np.array(list(seen.values()), dtype=np.float64)
    return BoundaryScore(errs, len(r), len(pairs))


def pooled(scores: list[BoundaryScore]) -> BoundaryScore:
    errs = np.concatenate([s.errors_s for s in scores]) if scores else np.zeros(0)
    return BoundaryScore(errs, sum(s.n_ref_phones for s in scores), sum(s.n_matched for s in scores))
