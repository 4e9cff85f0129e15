"""Our figures on the hand-labelled recordings, computed one way for the benches and the floors.

`make bench` prints these beside the peers'; ``tests/test_accuracy.py`` checks the
same figures against the floors in ``bench/floors.toml``.  Three jobs:

* `with_transcript`: TIMIT dev with its transcript, the whole aligned job as a user
  runs it (`toolkit.pipeline.animate`, engine "align", no blinks or head motion):
  phone boundaries against TIMIT's hand labels, and the viseme curves at 30 fps;
* `audio_only`: TIMIT dev without a transcript (the neural model), viseme curves
  at 100 fps;
* `multilingual`: the VoxAngeles dev words with their IPA transcript
  (`toolkit.alignment.align`: the universal aligner, as ``--ipa`` gets it, or the
  method named; then the coarticulation as the pipeline does it):
  boundaries and viseme curves at 30 fps.

Every figure is pooled over all items (`Scored.figures`): boundary error over all
boundaries, viseme accuracy phone-weighted (`bench.metrics.pool`).  Speed is
audio seconds per CPU second of this process.

Example
-------
>>> from bench.timit import load_timit                             # doctest: +SKIP
>>> with_transcript(load_timit(TIMIT_DEV)).figures()["mae_ms"]      # doctest: +SKIP
13.8
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.boundaries import BoundaryScore, pooled
from bench.metrics import VisemeScore, pool, score_visemes, viseme_matrix

TIMIT_DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "speech" / "timit_dev"


@dataclass
class Scored:
    """One system on one corpus: per-item scores (with the item's group: speaker or language)."""

    groups: list[str] = field(default_factory=list)
    boundaries: list[BoundaryScore | None] = field(default_factory=list)
    visemes: list[VisemeScore | None] = field(default_factory=list)
    audio_s: float = 0.0
    cpu_s: float = 0.0
    fallbacks: int = 0
    failures: int = 0

    def add(self, group: str, boundaries=None, visemes=None) -> None:
        self.groups.append(group)
        self.boundaries.append(boundaries)
        self.visemes.append(visemes)

    def figures(self, group: str | None = None) -> dict[str, float]:
        """Pooled figures (all items, or one group's): mae_ms, within_20ms, matched, top1, top2,
        frame, coarse, bilabial, vowel_shut, lag_ms, speed_x, fallbacks, failures, items."""
        keep = [group is None or g == group for g in self.groups]
        out: dict[str, float] = {"items": float(sum(keep))}
        b = [s for s, k in zip(self.boundaries, keep) if k and s is not None]
        if b:
            p = pooled(b)
            out.update(mae_ms=p.mean_abs_error_s * 1000, within_20ms=p.share_within(0.020),
                       matched=p.n_matched / max(1, p.n_ref_phones))
        v = [s for s, k in zip(self.visemes, keep) if k and s is not None]
        if v:
            p = pool(v)
            out.update(top1=p.mid_top1, top2=p.mid_top2, frame=p.frame_acc, coarse=p.coarse_acc,
                       bilabial=p.bilabial_recall, vowel_shut=p.vowel_shut, lag_ms=p.lag_ms)
        if group is None:
            if self.cpu_s > 0:
                out["speed_x"] = self.audio_s / self.cpu_s
            out.update(fallbacks=float(self.fallbacks), failures=float(self.failures))
        return out


def _is_fallback(meta_or_alignment) -> bool:
    """An item whose timing was (partly) guessed: not aligned acoustically, or words spread evenly."""
    if isinstance(meta_or_alignment, dict):
        method, warnings = meta_or_alignment.get("alignment"), meta_or_alignment.get("warnings", [])
    else:
        method, warnings = meta_or_alignment.method, meta_or_alignment.warnings
    return method not in ("pocketsphinx", "universal") or any("spread evenly" in w for w in warnings)


def with_transcript(utts, fps: float = 30, noise: bool = False) -> Scored:
    """TIMIT utterances through `toolkit.pipeline.animate` with their transcripts (engine "align").

    ``noise``: bursts of full-scale digital noise added first (`bench.peers.add_noise_bursts`)."""
    from bench.peers import add_noise_bursts
    from bench.timit import score_boundaries
    from toolkit import pipeline

    pipeline.animate(utts[0].samples, utts[0].text, sample_rate=16000, engine="align")  # load models off the clock
    out = Scored()
    for k, u in enumerate(utts):
        x = add_noise_bursts(u.samples, seed=k) if noise else u.samples
        t = time.process_time()
        try:
            anim = pipeline.animate(x, u.text, sample_rate=16000, fps=fps, engine="align", blinks=False,
                                    head_motion=False, source=f"{u.speaker}/{u.name}")
        except Exception as e:  # counted and shown, never hidden
            print(f"  {u.speaker}/{u.name}: FAILED {type(e).__name__}: {e}")
            out.failures += 1
            continue
        out.cpu_s += time.process_time() - t
        out.audio_s += u.duration_s
        out.fallbacks += _is_fallback(anim.meta)
        out.add(u.speaker, score_boundaries(u.phones, anim.phonemes),
                score_visemes(viseme_matrix(anim), anim.fps, u.phones61))
    return out


def audio_only(utts, animator=None) -> Scored:
    """TIMIT utterances through the neural model alone (no transcript), viseme curves at 100 fps."""
    if animator is None:
        from toolkit.motion.model import NeuralAnimator

        animator = NeuralAnimator.load()
    animator.predict(utts[0].samples[:16000], 16000)  # warm up off the clock
    out = Scored()
    for u in utts:
        t = time.process_time()
        anim = animator.predict(u.samples, 16000, fps=100, blinks=False, head_motion=False)
        out.cpu_s += time.process_time() - t
        out.audio_s += u.duration_s
        out.add(u.speaker, visemes=score_visemes(viseme_matrix(anim), 100, u.phones61))
    return out


def multilingual(words, fps: float = 30, method: str = "auto") -> Scored:
    """VoxAngeles words aligned with their IPA as ``--ipa`` gives it (`words_from_ipa`; "auto": the
    universal aligner), then animated as the pipeline does (engine "align").  ``method``: another
    aligner on the same words ("pocketsphinx": each phone as its nearest English one, with the word's
    language code)."""
    from bench.voxangeles import score_boundaries
    from toolkit.alignment import align
    from toolkit.phonemes.g2p import words_from_ipa
    from toolkit.visemes.coarticulation import animate_phonemes

    out = Scored()
    for w in words:
        ipa = words_from_ipa(" ".join(text for text, _ in w.transcript))
        t = time.process_time()
        al = align(w.samples, 16000, ipa, lang=w.lang, method=method, source=f"{w.lang}/{w.name}")
        anim = animate_phonemes(al.phonemes, w.duration_s, fps, audio=w.samples, words=al.words)
        out.cpu_s += time.process_time() - t
        out.audio_s += w.duration_s
        out.fallbacks += _is_fallback(al)
        out.add(w.lang, score_boundaries(w.phones, al.phonemes), score_visemes(viseme_matrix(anim), fps, w.phones))
    return out


def check_floors(figures: dict[str, dict[str, float]], floors: dict) -> list[str]:
    """Every figure that crossed its floor, as a line naming it; ``floors`` as read from floors.toml."""
    bad = []
    for suite, metrics in floors.items():
        if not isinstance(metrics, dict) or suite not in figures:
            continue
        for metric, rule in metrics.items():
            got = figures[suite].get(metric, float("nan"))
            lo, hi = rule.get("min", -np.inf), rule.get("max", np.inf)
            if not (lo <= got <= hi):
                bound = f">= {lo}" if "min" in rule else f"<= {hi}"
                bad.append(f"{suite}.{metric} = {got:.4g}, floor {bound} (measured {rule.get('measured')} "
                           f"when the floor was set)")
    return bad
