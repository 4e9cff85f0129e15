"""Phone-boundary error of a hypothesis against hand-placed boundaries, whatever the label set.

The two label sequences are paired by edit distance; every paired phone
(substitutions included) contributes its start and end boundary, and a
boundary shared by two neighbouring reference phones counts once.  The
corpus modules say how labels compare (`bench.timit`: TIMIT's folded 39
labels; `bench.voxangeles`: IPA base symbols).

Example
-------
>>> from toolkit.animation import Segment
>>> ref = [Segment("b", 0.10, 0.20), Segment("a", 0.20, 0.40)]
>>> hyp = [Segment("b", 0.11, 0.20), Segment("a", 0.20, 0.43)]
>>> s = boundary_errors(ref, [x.label for x in ref], hyp, [x.label for x in hyp])
>>> round(s.mean_abs_error_s * 1000, 1), s.share_within(0.02)
(13.3, 0.6666666666666666)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from toolkit.animation import Segment


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


def match_labels(ref: list[str], hyp: list[str]) -> list[tuple[int, int]]:
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


def boundary_errors(ref: list[Segment], ref_labels: list[str], hyp: list[Segment],
                    hyp_labels: list[str]) -> BoundaryScore:
    """Signed boundary errors of ``hyp`` against ``ref`` (speech phones only; labels as compared)."""
    seen: dict[float, float] = {}
    pairs = match_labels(ref_labels, hyp_labels)
    for i, j in pairs:
        for rt, ht in ((ref[i].start, hyp[j].start), (ref[i].end, hyp[j].end)):
            seen.setdefault(round(rt, 6), ht - rt)
    return BoundaryScore(np.array(list(seen.values()), dtype=np.float64), len(ref), len(pairs))


def pooled(scores: list[BoundaryScore]) -> BoundaryScore:
    errs = np.concatenate([s.errors_s for s in scores]) if scores else np.zeros(0)
    return BoundaryScore(errs, sum(s.n_ref_phones for s in scores), sum(s.n_matched for s in scores))
