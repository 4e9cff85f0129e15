"""The main job with a transcript, on TIMIT's hand-aligned phones, beside its peers.

Prints, per speaker and pooled: phone boundary error (mean, % within 20 ms),
mid-phone viseme accuracy (top-1 and top-2), 10 ms frame accuracy, bilabial
closure recall, vowels shut, the mouth's lag, failures/fallbacks and seconds of
compute per second of audio.  Peers in the same run:

* raw PocketSphinx: its forced alignment (good settings) scored as held shapes,
* openfacefx (PyPI) in its offline mode: text spread over the audio (no aligner),
* loudness only: mouth opens with loudness (what many add-ons do),
* and a noise-burst variant of our pipeline (bursts of digital noise added).

    python -m bench.bench_pipeline [--fps 30] [--limit N]
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from bench.metrics import VisemeScore, pool, score_visemes, stepwise_weights, viseme_matrix
from bench.timit import load_timit, pooled, score_boundaries
from toolkit.animation import VISEMES

TIMIT = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "speech" / "timit_dev"


def add_noise_bursts(samples: np.ndarray, seed: int = 0, n_bursts: int = 3, burst_s: float = 0.15) -> np.ndarray:
    """Digital noise bursts (full-scale white noise) at random places, like dropouts in a bad recording."""
    rng = np.random.default_rng(seed)
    x = samples.copy()
    n = int(burst_s * 16000)
    for _ in range(n_bursts):
        a = int(rng.integers(0, max(1, len(x) - n)))
        x[a:a + n] = rng.uniform(-0.9, 0.9, n).astype(np.float32)
    return x


def loudness_only(samples: np.ndarray, fps: float) -> np.ndarray:
    """Peer: mouth open (aa) in proportion to loudness, rest otherwise."""
    hop = int(16000 / fps)
    n = max(1, int(round(len(samples) / 16000 * fps)))
    db = np.array([10 * np.log10(np.mean(samples[i * hop:(i + 1) * hop] ** 2) + 1e-10) for i in range(n)])
    lo, hi = np.percentile(db, 20), np.percentile(db, 98)
    a = np.clip((db - lo) / max(hi - lo, 1e-3), 0, 1)
    w = np.zeros((n, len(VISEMES)))
    w[:, VISEMES.index("aa")] = a
    w[:, 0] = 1 - a
    return w


def openfacefx_naive(text: str, duration_s: float, fps: float) -> np.ndarray | None:
    """Peer: openfacefx's offline path (G2P + naive even timing over the duration)."""
    try:
        from openfacefx.pipeline import generate_naive
    except ImportError:
        return None
    track = generate_naive(text, duration_s, fps=fps)
    n = max(1, int(round(duration_s * fps)))
    t = np.arange(n) / fps
    w = np.zeros((n, len(VISEMES)))
    for ch in track.channels:
        if ch.name in VISEMES and ch.keys:
            w[:, VISEMES.index(ch.name)] = np.interp(t, [k.time for k in ch.keys], [k.value for k in ch.keys])
    return w


def _row(name: str, s: VisemeScore, extra: str = "") -> str:
    return (f"{name:<26} top1 {s.mid_top1:5.3f}  top2 {s.mid_top2:5.3f}  frame {s.frame_acc:5.3f}  "
            f"coarse {s.coarse_acc:5.3f}  bilabial {s.bilabial_recall:5.3f}  vowel-shut {s.vowel_shut:5.3f}  "
            f"lag {s.lag_ms:+6.1f} ms {extra}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--fps", type=float, default=30)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--root", default=str(TIMIT))
    args = ap.parse_args(argv)
    if not Path(args.root).is_dir():
        print(f"skipped: {args.root} not found (the hand-aligned TIMIT recordings live in ../shared/data)")
        return 0
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    from pocketsphinx import Decoder

    from bench.bench_align import RAW_SETTINGS, raw_pocketsphinx
    from bench.timit import transcript_words
    from toolkit import pipeline

    raw_decoder = Decoder(**RAW_SETTINGS)

    utts = load_timit(args.root)
    if args.limit:
        utts = utts[: args.limit]
    pipeline.animate(utts[0].samples, utts[0].text, sample_rate=16000, engine="align")  # load models once

    rows: dict[str, dict[str, list]] = {}

    def add(system, speaker, vis=None, bnd=None, compute=None, fallback=False, failed=False):
        r = rows.setdefault(system, {}).setdefault(speaker, {"vis": [], "bnd": [], "compute": [], "audio": [],
                                                                "fallback": 0, "failed": 0})
        if vis is not None:
            r["vis"].append(vis)
        if bnd is not None:
            r["bnd"].append(bnd)
        if compute is not None:
            r["compute"].append(compute)
        r["fallback"] += int(fallback)
        r["failed"] += int(failed)

    for k, u in enumerate(utts):
        dur = u.duration_s
        for system, audio in (("viseme-toolkit", u.samples), ("viseme-toolkit +noise", add_noise_bursts(u.samples, k))):
            t0 = time.perf_counter()
            try:
                anim = pipeline.animate(audio, u.text, sample_rate=16000, fps=args.fps, engine="align",
                                        blinks=False, head_motion=False)
            except Exception as e:  # counted, never hidden
                print(f"  {u.speaker}/{u.name} {system}: FAILED {e}")
                add(system, u.speaker, failed=True)
                continue
            el = time.perf_counter() - t0
            fb = anim.meta.get("alignment") not in ("pocketsphinx",)
            add(system, u.speaker, vis=score_visemes(viseme_matrix(anim), anim.fps, u.phones61),
                bnd=score_boundaries(u.phones, anim.phonemes), compute=el / dur, fallback=fb)
        # raw PocketSphinx with good settings, held shapes
        t0 = time.perf_counter()
        try:
            raw = raw_pocketsphinx(raw_decoder, u.samples, transcript_words(u.text))
            el = time.perf_counter() - t0
            if raw is None:
                raise RuntimeError("no alignment")
            add("raw PocketSphinx", u.speaker, vis=score_visemes(stepwise_weights(raw, dur, 100), 100, u.phones61),
                bnd=score_boundaries(u.phones, raw), compute=el / dur)
        except Exception as e:
            print(f"  {u.speaker}/{u.name} raw PocketSphinx: FAILED {e}")
            add("raw PocketSphinx", u.speaker, failed=True)
        w = openfacefx_naive(u.text, dur, args.fps)
        if w is not None:
            add("openfacefx (offline)", u.speaker, vis=score_visemes(w, args.fps, u.phones61))
        add("loudness only", u.speaker, vis=score_visemes(loudness_only(u.samples, args.fps), args.fps, u.phones61))

    print(f"\nTIMIT dev: {len(utts)} utterances, {len({u.speaker for u in utts})} speakers, scored at {args.fps:g} fps")
    pooled_vis = {}
    for system, by_spk in rows.items():
        print(f"\n{system}")
        all_vis, all_bnd, all_cmp, fb, fl = [], [], [], 0, 0
        for spk, r in sorted(by_spk.items()):
            all_vis += r["vis"]; all_bnd += r["bnd"]; all_cmp += r["compute"]; fb += r["fallback"]; fl += r["failed"]
            b = pooled(r["bnd"]) if r["bnd"] else None
            bs = f"boundary {b.mean_abs_error_s * 1000:5.1f} ms, {b.share_within(0.02) * 100:4.1f}% <20ms" if b else ""
            print("  " + _row(spk, pool(r["vis"]), bs))
        p = pool(all_vis)
        pooled_vis[system] = p
        b = pooled(all_bnd) if all_bnd else None
        bs = f"boundary {b.mean_abs_error_s * 1000:5.1f} ms, {b.share_within(0.02) * 100:4.1f}% <20ms" if b else ""
        print("  " + _row("POOLED", p, bs))
        if all_cmp:
            rtf = float(np.mean(all_cmp))
            print(f"  compute {rtf:.4f} s per s of audio ({1 / max(rtf, 1e-9):.0f}x real time); "
                  f"fallbacks {fb}, failures {fl} of {len(all_vis) + fl}")
    ours = pooled_vis.get("viseme-toolkit")
    if ours:
        print("\nratios (viseme-toolkit / peer):")
        for system, p in pooled_vis.items():
            if system.startswith("viseme-toolkit"):
                continue
            ratio = lambda a, b: f"{a / b:.2f}x" if b > 0 else "n/a (peer 0)"  # noqa: E731
            print(f"  vs {system:<22} top2 {ratio(ours.mid_top2, p.mid_top2)}, "
                  f"bilabial {ratio(ours.bilabial_recall, p.bilabial_recall)}, "
                  f"frame {ratio(ours.frame_acc, p.frame_acc)}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    raise SystemExit(main())
