"""Phone-boundary accuracy and speed of the aligner on TIMIT's hand-aligned phones.

Prints, per speaker and pooled, the mean absolute boundary error, the share of
boundaries within 20 ms, fallbacks and the real-time factor (CPU time, one
core) for: raw PocketSphinx (100 frames/s, good beams, dictionary
pronunciations, frame-start times: the usual way it is used), ours
(`toolkit.align.align`), and ours on the same audio with bursts of digital
noise added (no utterance may end up without an alignment; a fallback is an
utterance with words spread evenly, a masked noise burst only warns).

Target (issue): MAE <= 16 ms and >= 78 % within 20 ms, >= 30x real time.  TIMIT is a yardstick
only: nothing is fitted on it.

    .venv/bin/python bench/bench_align.py [--timit ../shared/data/speech/timit_dev]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core: speed is CPU time of this process

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.timit import BoundaryScore, load_timit, pooled, score_boundaries, transcript_words  # noqa: E402
from toolkit.animation import Segment  # noqa: E402
from toolkit.phonemes.inventory import arpabet_to_ipa  # noqa: E402

RAW_SETTINGS = dict(lm=None, beam=1e-120, wbeam=1e-100, pbeam=1e-120, bestpath=False, loglevel="FATAL")


def raw_pocketsphinx(decoder, samples: np.ndarray, words: list[str]) -> list[Segment] | None:
    """Plain two-pass PocketSphinx phone alignment (frame k at k/100 s)."""
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
    frate = decoder.config["frate"]
    try:
        decoder.set_align_text(" ".join(words))
        decoder.start_utt(); decoder.process_raw(pcm, full_utt=True); decoder.end_utt()  # noqa: E702
        decoder.set_alignment()
        decoder.start_utt(); decoder.process_raw(pcm, full_utt=True); decoder.end_utt()  # noqa: E702
        phones = [(p.name, p.start, p.duration) for p in decoder.get_alignment().phones()]
    except RuntimeError:
        return None
    return [Segment("" if n == "SIL" else arpabet_to_ipa(n)[0], s / frate, (s + d) / frate) for n, s, d in phones
            if n in ("SIL",) or n.rstrip("012").isalpha()]


def add_noise_bursts(samples: np.ndarray, seed: int, n: int = 3, burst_s: float = 0.15) -> np.ndarray:
    """Bursts of full-scale digital noise at random places (the corruption seen in badly copied files)."""
    rng = np.random.default_rng(seed)
    x = samples.copy()
    m = int(burst_s * 16000)
    for _ in range(n):
        a = int(rng.integers(0, max(1, len(x) - m)))
        x[a: a + m] = rng.uniform(-1, 1, min(m, len(x) - a)).astype(np.float32)
    return x


def _row(name: str, s: BoundaryScore, fails: int, n: int, rtf: float) -> str:
    return (f"{name:<24} MAE {s.mean_abs_error_s * 1000:5.1f} ms   within 20 ms {s.share_within() * 100:5.1f} %   "
            f"matched {s.n_matched}/{s.n_ref_phones}   fallbacks {fails}/{n}   speed {rtf:5.0f}x real time")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--timit", default=str(ROOT.parent / "shared" / "data" / "speech" / "timit_dev"))
    args = ap.parse_args(argv)
    if not Path(args.timit).is_dir():
        print(f"skip: {args.timit} not found")
        return 0
    from pocketsphinx import Decoder

    from toolkit.alignment import align
    from toolkit.phonemes.g2p import words_to_phonemes

    utts = load_timit(args.timit)
    raw_dec = Decoder(**RAW_SETTINGS)
    align(np.zeros(16000, np.float32), 16000, "warm up")  # load the model outside the timing
    res = {k: defaultdict(list) for k in ("raw", "ours", "noisy")}
    fails = {k: defaultdict(int) for k in res}
    cpu = {k: 0.0 for k in res}
    masked = {k: 0 for k in res}
    audio_s = 0.0
    for u in utts:
        words = transcript_words(u.text)
        audio_s += u.duration_s
        t = time.process_time()
        hyp = raw_pocketsphinx(raw_dec, u.samples, words)
        cpu["raw"] += time.process_time() - t
        if hyp is None:
            fails["raw"][u.speaker] += 1
            hyp = []
        res["raw"][u.speaker].append(score_boundaries(u.phones, hyp))

        g2p_words = words_to_phonemes(u.text, "en")
        for key, x in (("ours", u.samples), ("noisy", add_noise_bursts(u.samples, seed=len(words)))):
            t = time.process_time()
            al = align(x, 16000, g2p_words, source=f"{u.speaker}/{u.name}")
            cpu[key] += time.process_time() - t
            # a fallback = words spread evenly somewhere (a masked noise burst only warns)
            if al.method != "pocketsphinx" or any("spread evenly" in w for w in al.warnings):
                fails[key][u.speaker] += 1
            masked[key] += sum("burst(s) of noise" in w for w in al.warnings)
            if not al.words or not al.speech_phonemes():
                raise SystemExit(f"{u.speaker}/{u.name}: no alignment at all ({key})")
            res[key][u.speaker].append(score_boundaries(u.phones, al.phonemes))

    print(f"TIMIT dev: {len(utts)} utterances, {audio_s:.0f} s; speed = audio s / CPU s")
    for key, title in (("raw", "raw PocketSphinx"), ("ours", "toolkit.align"), ("noisy", "toolkit.align + noise")):
        print(f"\n== {title}")
        for spk in sorted(res[key]):
            n = len(res[key][spk])
            print(_row("  " + spk, pooled(res[key][spk]), fails[key][spk], n, float("nan")).rsplit("speed", 1)[0])
        allsc = [s for v in res[key].values() for s in v]
        print(_row("  pooled", pooled(allsc), sum(fails[key].values()), len(utts), audio_s / max(1e-9, cpu[key])))
        if key != "raw":
            print(f"  utterances with noise bursts masked: {masked[key]}/{len(utts)}")
    ours = pooled([s for v in res["ours"].values() for s in v])
    speed = audio_s / max(1e-9, cpu["ours"])
    for what, ok in ((f"MAE {ours.mean_abs_error_s * 1000:.1f} <= 16 ms", ours.mean_abs_error_s <= 0.016),
                     (f"{ours.share_within() * 100:.1f} >= 78 % within 20 ms", ours.share_within() >= 0.78),
                     (f"speed {speed:.0f}x >= 30x real time", speed >= 30)):
        print(f"target {what}: {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
