"""Audio-only lip sync on TIMIT: the neural regressor against its peers, same run, same scoring.

Engines (no transcript anywhere; how each peer is run: `bench.peers`):

* ours: `toolkit.motion.model.NeuralAnimator` with the shipped weights: its
  animation's viseme curves (what users get, `bench.accuracy.audio_only`) and its
  classifier's one-hot decision per 10 ms (how the phone-loop peer is scored);
* PocketSphinx phone-loop recognition (en-us acoustic model + phone bigram, the
  approach of Rhubarb Lip Sync), phones mapped to visemes through the toolkit's
  one viseme table, held between frame-centre boundaries;
* ``pylipsync`` (uLipSync's MFCC vowel matcher, PyPI), each cue held over the hop
  its window is centred on; it runs in its own ``.venv-pylipsync`` because it pins
  numpy < 2.4 (`make bench` makes it); without it the row says not run;
* loudness only: the best single speech viseme when loud, rest otherwise.

Scores come from `bench.metrics.score_visemes` (shared with the pipeline bench), pooled
over the 40 utterances of ``../shared/data/speech/timit_dev`` against TIMIT's own
61 hand labels (closures merged): mid-phone accuracy (top-1/top-2), 10 ms frame
accuracy, coarse-class accuracy, bilabial closure recall, vowels shut and lag.
Then speed on one CPU core, streaming latency and model size.

Run: ``.venv/bin/python -m bench.bench_neural`` (writes bench/results/neural.json).
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from bench import accuracy
from bench.bench_pipeline import VISEME_COLUMNS
from bench.metrics import HELD_FPS, held_weights, score_visemes, stepwise_weights
from bench.peers import loudness_only, pocketsphinx_phone_loop, pylipsync_cues
from bench.report import Column, Table, finish
from bench.timit import load_timit
from toolkit.animation import VISEMES

ROOT = Path(__file__).resolve().parents[1]
OURS = "ours (neural model)"
COLUMNS = VISEME_COLUMNS + [Column("speed_x", "x real time", "{:.0f}"),
                            Column("latency_ms", "latency ms", "{:.0f}", lower_is_better=True)]


def one_hot(track: np.ndarray) -> np.ndarray:
    w = np.zeros((len(track), len(VISEMES)))
    w[np.arange(len(track)), track] = 1.0
    return w


def speed(animator) -> dict:
    from toolkit.motion.model import latency_s

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
    return {
        "offline_x_realtime_1core": 60.0 / off,
        "streaming_x_realtime_1core": 10.0 / stream,
        "streaming_chunk_ms": chunk / 16,
        "streaming_compute_ms_per_chunk_p95": float(np.percentile(per, 95) * 1000),
        "algorithmic_latency_ms_at_30fps": latency_s(30) * 1000,
        "algorithmic_latency_ms_at_100fps": latency_s(100) * 1000,
    }


def tables(argv: list[str] | None = None) -> list[Table]:
    import argparse

    from toolkit.motion.model import DEFAULT_WEIGHTS, NeuralAnimator

    ap = argparse.ArgumentParser(prog="bench.bench_neural")
    ap.add_argument("--weights", default=str(DEFAULT_WEIGHTS), help="model to measure (default: the shipped one)")
    ap.add_argument("--no-peers", action="store_true", help="neural model only (quick)")
    a = ap.parse_args(argv)
    title = "viseme curves from audio alone, TIMIT dev, 61-label reference"
    if not accuracy.TIMIT_DEV.is_dir():
        print(f"skip: {accuracy.TIMIT_DEV} not found (the TIMIT development set is needed for this bench)")
        return [Table("audio only", title, COLUMNS, skipped=f"{accuracy.TIMIT_DEV} not found")]
    utts = load_timit(accuracy.TIMIT_DEV)
    weights = Path(a.weights)
    animator = NeuralAnimator.load(weights)
    runs = {OURS: ("ours", accuracy.audio_only(utts, animator))}
    classifier = accuracy.Scored()
    for u in utts:
        classifier.add(u.speaker, visemes=score_visemes(one_hot(animator.viseme_track(u.samples)), 100, u.phones61))
    runs["ours, classifier one-hot (10 ms)"] = ("ours (variant)", classifier)
    notes = []
    if not a.no_peers:
        loop = accuracy.Scored()
        for u in utts:
            t = time.process_time()
            phones = pocketsphinx_phone_loop(u.samples)
            loop.cpu_s += time.process_time() - t
            loop.audio_s += u.duration_s
            loop.add(u.speaker, visemes=score_visemes(stepwise_weights(phones, u.duration_s), HELD_FPS, u.phones61))
        runs["PocketSphinx phone loop (Rhubarb's approach)"] = ("peer", loop)
        paths = [accuracy.TIMIT_DEV / u.speaker / f"{u.name}.wav" for u in utts]
        cues = pylipsync_cues(paths)
        if cues is None:
            notes.append("pylipsync: not run (make bench creates .venv-pylipsync: python3 -m venv .venv-pylipsync && "
                         ".venv-pylipsync/bin/pip install pylipsync==0.2.1)")
        else:
            lip = accuracy.Scored()  # (no speed: it runs in its own process, librosa start-up included)
            for u, path in zip(utts, paths):
                lip.add(u.speaker, visemes=score_visemes(held_weights(cues[str(path)], u.duration_s), HELD_FPS,
                                                         u.phones61))
            runs["pylipsync 0.2.1 (uLipSync's MFCC matcher)"] = ("peer", lip)
    loud = accuracy.Scored()
    for u in utts:
        loud.add(u.speaker, visemes=score_visemes(loudness_only(u.samples, 100), 100, u.phones61))
    runs["loudness only"] = ("peer", loud)

    sp = speed(animator)
    audio_s = sum(u.duration_s for u in utts)
    table = Table("audio only", title, COLUMNS, notes=notes + [
        f"ours: {sp['offline_x_realtime_1core']:.0f}x real time offline on a 60 s clip, streaming "
        f"{sp['streaming_x_realtime_1core']:.0f}x in 20 ms chunks (p95 {sp['streaming_compute_ms_per_chunk_p95']:.2f} ms "
        f"per chunk); latency at 30 fps; {animator.n_params} parameters, {weights.stat().st_size / 1e6:.2f} MB"])
    results = {}
    for name, (kind, scored) in runs.items():
        figs = scored.figures()
        if name == OURS:
            figs["latency_ms"] = sp["algorithmic_latency_ms_at_30fps"]
        print(f"{name:<46} " + "  ".join(f"{c.header} {c.cell(figs.get(c.key))}" for c in VISEME_COLUMNS))
        table.add(name, kind, **figs)
        results[name] = figs
    print(f"TIMIT dev, {len(utts)} utterances, {audio_s:.0f} s, audio only")
    out = ROOT / "bench" / "results" / ("neural.json" if weights == DEFAULT_WEIGHTS else f"neural-{weights.stem}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps({"engines": results, "speed": sp, "audio_s": audio_s,
                               "size": {"parameters": animator.n_params, "file_mb": weights.stat().st_size / 1e6}},
                              indent=2))
    os.replace(tmp, out)
    return [table]


def main(argv: list[str] | None = None) -> int:
    return finish(tables(argv))


if __name__ == "__main__":
    raise SystemExit(main())
