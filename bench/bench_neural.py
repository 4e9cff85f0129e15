"""Audio-only lip sync on TIMIT: the neural regressor against its peers, same run, same scoring.

Engines (no transcript anywhere):

* ``neural``       `toolkit.motion.model.NeuralAnimator` with the shipped weights,
* ``pocketsphinx`` PocketSphinx phone-loop recognition (en-us acoustic model +
                   phone bigram, the approach of Rhubarb Lip Sync), phones
                   mapped to visemes through the toolkit's one viseme table,
* ``pylipsync``    the `pylipsync` PyPI package (uLipSync's MFCC vowel matcher),
                   run in its own virtual environment ``.venv-pylipsync`` because it
                   pins numpy < 2.4 (`make -C . bench-neural-peers` / see README);
                   skipped with a note when that environment is missing,
* ``loudness``     jaw-from-loudness only: the best single speech viseme when
                   loud, silence otherwise (threshold chosen in hindsight, so
                   it is an upper bound for that baseline).

Scores come from `bench.metrics.score_visemes` (shared with the pipeline bench), pooled
over the 40 utterances of ``../shared/data/speech/timit_dev`` against TIMIT's own
61 hand labels (closures merged): mid-phone accuracy (top-1/top-2), 10 ms frame
accuracy, coarse-class accuracy (closed / lip-to-teeth / open / rounded / other),
bilabial closure recall (PP >= 0.8 during /p b m/), vowel shut (lips closed
mid-vowel, must be ~0) and lag.  The neural model is scored twice: its
animation's viseme curves (what users get) and its classifier's one-hot
decision per 10 ms (how the phone-loop peer is scored).

Then speed on one CPU core, streaming latency and model size.

Run: ``.venv/bin/python -m bench.bench_neural`` (writes bench/results/neural.json).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bench.bench_pipeline import loudness_only
from bench.metrics import pool, score_visemes, stepwise_weights, viseme_matrix
from bench.timit import load_timit
from toolkit.animation import VISEMES, Segment
from toolkit.phonemes.inventory import ARPABET_TO_IPA

ROOT = Path(__file__).resolve().parents[1]
TIMIT = ROOT.parent / "shared" / "data" / "speech" / "timit_dev"
PYLIPSYNC_VENV = ROOT / ".venv-pylipsync"
HOP_S = 0.01

ULIPSYNC_TO_VISEME = {"aa": "aa", "ee": "E", "ih": "ih", "oh": "oh", "ou": "ou", "silence": "sil"}


def arpabet_to_ipa_segments(segs: list[tuple[str, float, float]]) -> list[Segment]:
    out = []
    for lab, a, b in segs:
        core = lab.upper().rstrip("012")
        out.append(Segment(ARPABET_TO_IPA.get(core, ""), a, b))
    return out


# -- engines -------------------------------------------------------------------------------------


def neural_track(animator, samples: np.ndarray) -> np.ndarray:
    return animator.viseme_track(samples, 16000)


def pocketsphinx_phone_loop(samples: np.ndarray) -> list[tuple[str, float, float]]:
    """Phone-loop recognition like Rhubarb Lip Sync: en-us acoustic model + phone bigram LM."""
    from pocketsphinx import Decoder, get_model_path

    global _PS_DEC
    if "_PS_DEC" not in globals():
        p = get_model_path()
        _PS_DEC = Decoder(hmm=os.path.join(p, "en-us", "en-us"), allphone=os.path.join(p, "en-us", "en-us-phone.lm.bin"),
                          lw=2.0, beam=1e-20, pbeam=1e-20, logfn=os.devnull)
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
    _PS_DEC.start_utt()
    _PS_DEC.process_raw(pcm, full_utt=True)
    _PS_DEC.end_utt()
    return [(s.word, s.start_frame * HOP_S, (s.end_frame + 1) * HOP_S) for s in _PS_DEC.seg()]


_PYLIPSYNC_SCRIPT = r"""
import json, sys, numpy as np, soundfile as sf
from pylipsync import PhonemeAnalyzer
an = PhonemeAnalyzer()
out = {}
for path in sys.argv[1:]:
    x, sr = sf.read(path, dtype="float32")
    segs = an.extract_phoneme_segments(x, sr, fps=100)
    out[path] = [s.dominant_phoneme.name for s in segs]
print(json.dumps(out))
"""


def pylipsync_tracks(paths: list[Path]) -> dict[str, list[str]] | None:
    """Dominant uLipSync phoneme per 10 ms frame for each file, via the package in its own venv."""
    py = PYLIPSYNC_VENV / "bin" / "python"
    if not py.exists():
        return None
    r = subprocess.run([str(py), "-c", _PYLIPSYNC_SCRIPT, *map(str, paths)], capture_output=True, text=True)
    if r.returncode != 0:
        print(f"pylipsync failed: {r.stderr[-500:]}", file=sys.stderr)
        return None
    return json.loads(r.stdout.strip().splitlines()[-1])


# -- scoring ---------------------------------------------------------------------------------------


def one_hot(track: np.ndarray) -> np.ndarray:
    w = np.zeros((len(track), len(VISEMES)))
    w[np.arange(len(track)), track] = 1.0
    return w


# -- speed ------------------------------------------------------------------------------------------


def speed(animator) -> dict:
    import torch

    from toolkit.motion.model import latency_s

    torch.set_num_threads(1)
    x = (np.random.default_rng(0).standard_normal(16000 * 60) * 0.05).astype(np.float32)
    animator.predict(x[:16000], 16000)
    t = time.perf_counter()
    animator.predict(x, 16000, fps=30)
    off = time.perf_counter() - t
    st = animator.streamer(fps=30)
    chunk = 160 * 2  # 20 ms chunks
    t = time.perf_counter()
    per = []
    for i in range(0, 16000 * 10, chunk):
        t1 = time.perf_counter()
        st.push(x[i:i + chunk])
        per.append(time.perf_counter() - t1)
    st.flush()
    stream = time.perf_counter() - t
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    return {
        "offline_x_realtime_1core": 60.0 / off,
        "streaming_x_realtime_1core": 10.0 / stream,
        "streaming_chunk_ms": chunk / 16,
        "streaming_compute_ms_per_chunk_p95": float(np.percentile(per, 95) * 1000),
        "algorithmic_latency_ms_at_30fps": latency_s(30) * 1000,
        "algorithmic_latency_ms_at_100fps": latency_s(100) * 1000,
    }


def main(argv: list[str] | None = None) -> int:
    from toolkit.motion.model import DEFAULT_WEIGHTS, NeuralAnimator

    import argparse

    ap = argparse.ArgumentParser(prog="bench.bench_neural")
    ap.add_argument("--weights", default=str(DEFAULT_WEIGHTS), help="model to measure (default: the shipped one)")
    ap.add_argument("--no-peers", action="store_true", help="neural model only (quick)")
    a = ap.parse_args(argv)
    if not TIMIT.is_dir():
        print(f"skip: {TIMIT} not found (the TIMIT development set is needed for this bench)")
        return 0
    utts = load_timit(TIMIT)
    weights = Path(a.weights)
    animator = NeuralAnimator.load(weights)
    scores: dict[str, list] = {"neural": [], "neural (classifier)": []}
    if not a.no_peers:
        scores["pocketsphinx"] = []
    lip = None if a.no_peers else pylipsync_tracks([TIMIT / u.speaker / f"{u.name}.wav" for u in utts])
    if lip is not None:
        scores["pylipsync"] = []
    scores["loudness"] = []
    t_ps = t_nn = 0.0
    for u in utts:
        ref = u.phones61
        dur = u.samples.size / 16000
        t = time.perf_counter()
        anim = animator.predict(u.samples, 16000, fps=100, blinks=False, head_motion=False)
        t_nn += time.perf_counter() - t
        scores["neural"].append(score_visemes(viseme_matrix(anim), 100, ref))
        scores["neural (classifier)"].append(score_visemes(one_hot(animator.viseme_track(u.samples)), 100, ref))
        if "pocketsphinx" in scores:
            t = time.perf_counter()
            ps = arpabet_to_ipa_segments(pocketsphinx_phone_loop(u.samples))
            t_ps += time.perf_counter() - t
            scores["pocketsphinx"].append(score_visemes(stepwise_weights(ps, dur, 100), 100, ref))
        if lip is not None:
            names = lip[str(TIMIT / u.speaker / f"{u.name}.wav")]
            track = np.array([VISEMES.index(ULIPSYNC_TO_VISEME.get(v, "sil")) for v in names])
            scores["pylipsync"].append(score_visemes(one_hot(track), 100, ref))
        scores["loudness"].append(score_visemes(loudness_only(u.samples, 100), 100, ref))
    results = {k: vars(pool(v)) for k, v in scores.items()}
    results["neural"]["seconds"] = t_nn
    if "pocketsphinx" in results:
        results["pocketsphinx"]["seconds"] = t_ps
    audio_s = sum(u.duration_s for u in utts)
    sp = speed(animator)
    size = {"parameters": animator.n_params, "file_mb": weights.stat().st_size / 1e6}

    keys = ["mid_top1", "mid_top2", "frame_acc", "coarse_acc", "bilabial_recall", "vowel_shut", "lag_ms"]
    print(f"TIMIT dev, {len(utts)} utterances, {audio_s:.0f} s, audio only (no transcript), 61-label reference")
    print(f"{'engine':22s}" + "".join(f"{k:>16s}" for k in keys))
    for name, r in results.items():
        print(f"{name:22s}" + "".join(f"{r[k]:16.3f}" if k != "lag_ms" else f"{r[k]:16.0f}" for k in keys))
    nn = results["neural"]
    for peer in [p for p in ("pocketsphinx", "pylipsync", "loudness") if p in results]:
        r = results[peer]
        print(f"neural vs {peer}: mid-phone {nn['mid_top1'] - r['mid_top1']:+.3f} "
              f"({nn['mid_top1'] / max(r['mid_top1'], 1e-9):.2f}x), frame {nn['frame_acc'] - r['frame_acc']:+.3f}, "
              f"bilabial recall {nn['bilabial_recall'] - r['bilabial_recall']:+.3f}")
    if "pylipsync" not in results:
        print("pylipsync: not run (create .venv-pylipsync: python3 -m venv .venv-pylipsync && "
              ".venv-pylipsync/bin/pip install pylipsync==0.2.1)")
    print(f"speed: offline {sp['offline_x_realtime_1core']:.0f}x real time on 1 core, streaming "
          f"{sp['streaming_x_realtime_1core']:.0f}x ({sp['streaming_chunk_ms']:.0f} ms chunks, p95 "
          f"{sp['streaming_compute_ms_per_chunk_p95']:.2f} ms compute per chunk)"
          + (f"; PocketSphinx phone loop {audio_s / t_ps:.0f}x real time" if t_ps else ""))
    print(f"latency: {sp['algorithmic_latency_ms_at_30fps']:.0f} ms algorithmic at 30 fps "
          f"({sp['algorithmic_latency_ms_at_100fps']:.0f} ms at 100 fps)")
    print(f"size: {size['parameters']} parameters, {size['file_mb']:.2f} MB")
    out = ROOT / "bench" / "results" / ("neural.json" if weights == DEFAULT_WEIGHTS else f"neural-{weights.stem}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps({"engines": results, "speed": sp, "size": size, "audio_s": audio_s}, indent=2))
    os.replace(tmp, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
