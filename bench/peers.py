"""How each peer is run: one function per peer, each given the corrections it is due.

A peer is run the way a careful user would run it, so that the gap the benches
print is ours and not a handicap of theirs:

* **PocketSphinx forced alignment** (`pocketsphinx_forced`): the usual two passes
  (word grammar, then phone alignment), wide beams, the dictionary's own
  pronunciations, and the **frame-centre correction** our aligner also makes:
  frame k is the analysis window that *starts* at k / frate, so a boundary
  between frames k-1 and k lies between their centres, at
  k / frate + `frame_offset_s` (7.8 ms at 100 frames/s, 10.3 ms at 200).
  `PS_CONFIGS` names the settings measured: its default 100 frames/s; 200
  frames/s with every frame scored (its best rate of 100/125/160/200, see
  ``python -m bench.bench_align --sweep``); and our own decoder's settings
  (5 ms frames, Gaussians scored every second frame, top 5), so the last row
  differs from ours only by what `toolkit.alignment` adds around the decoder.
* **PocketSphinx phone loop** (`pocketsphinx_phone_loop`, Rhubarb Lip Sync's
  approach): phone recognition with the en-us phone bigram; same frame-centre
  correction.
* **pylipsync** (uLipSync's MFCC matcher, `pylipsync_cues`): one cue per 10 ms hop,
  its 64 ms window centred on the middle of the hop, so the cue is held over that
  hop (centre (k + 1/2) x hop), not sampled at its start k x hop.
* **openfacefx** (`openfacefx_naive`): its offline path spreads the text's visemes
  over the duration; it has no timing of its own to correct.
* **loudness only** (`loudness_only`): the mouth opens with loudness, as many
  add-ons do.

Example
-------
>>> from pocketsphinx import Decoder                                   # doctest: +SKIP
>>> dec = Decoder(**PS_CONFIGS["PocketSphinx 100 frames/s"])            # doctest: +SKIP
>>> phones = pocketsphinx_forced(dec, samples, ["she", "had", "your"])  # doctest: +SKIP
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

# _decode: one utterance from fresh noise statistics, the same call ours makes (results never
# depend on what was decoded before)
from toolkit.alignment.pocketsphinx import DECODER_SETTINGS, _decode, frame_offset_s
from toolkit.animation import VISEMES, Segment
from toolkit.phonemes.inventory import ARPABET_TO_IPA

ROOT = Path(__file__).resolve().parents[1]
PYLIPSYNC_VENV = ROOT / ".venv-pylipsync"


def pocketsphinx_build() -> str:
    """Which PocketSphinx this environment runs: scripts/setup.sh builds 5.1.1 with one CPU-saving fix
    (scripts/patches/) and stamps the venv; PyPI's wheel gives the same boundaries, more slowly on long files."""
    stamp = Path(sys.prefix) / "pocketsphinx-patch"
    state = stamp.read_text().split()[0] if stamp.exists() else "unpatched"
    return ("PocketSphinx 5.1.1 with scripts/patches/ (ours and the peers alike)" if state == "patched"
            else "PocketSphinx 5.1.1 from PyPI, unpatched (ours and the peers alike)")


_WIDE_BEAMS = dict(lm=None, beam=1e-120, wbeam=1e-100, pbeam=1e-120, bestpath=False, loglevel="FATAL")
PS_CONFIGS = {
    "PocketSphinx 100 frames/s": dict(_WIDE_BEAMS, frate=100),
    "PocketSphinx 200 frames/s": dict(_WIDE_BEAMS, frate=200),
    "PocketSphinx, our 5 ms decoder": dict(DECODER_SETTINGS),
}


def _pcm(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


def _arpabet_ipa(name: str) -> str:
    return ARPABET_TO_IPA.get(name.upper().rstrip("012"), "")


def pocketsphinx_forced(decoder, samples: np.ndarray, words: list[str] | list[tuple[str, list[str]]]
                        ) -> list[Segment] | None:
    """Two-pass PocketSphinx phone alignment, boundaries at frame-centre midpoints; None when it fails.

    ``words``: dictionary words, or (name, ARPAbet phones) pairs that are added to the
    decoder's dictionary first (for transcripts given as phones)."""
    names = []
    for w in words:
        if isinstance(w, tuple):
            name, arpa = w
            if decoder.lookup_word(name) is None:
                decoder.add_word(name, " ".join(arpa), True)
            w = name
        names.append(w)
    frate = int(decoder.config["frate"])
    t = lambda f: f / frate + frame_offset_s(frate)  # noqa: E731
    pcm = _pcm(samples)
    try:
        decoder.set_align_text(" ".join(names))
        _decode(decoder, pcm)
        decoder.set_alignment()
        _decode(decoder, pcm)
        phones = [(p.name, p.start, p.duration) for p in decoder.get_alignment().phones()]
    except RuntimeError:
        return None
    return [Segment("" if n == "SIL" else _arpabet_ipa(n), t(s), t(s + d)) for n, s, d in phones
            if n == "SIL" or n.rstrip("012").isalpha()]


_PHONE_LOOP = None


def pocketsphinx_phone_loop(samples: np.ndarray) -> list[Segment]:
    """Phone-loop recognition like Rhubarb Lip Sync (en-us model + phone bigram), IPA labels, centred times."""
    from pocketsphinx import Decoder, get_model_path

    global _PHONE_LOOP
    if _PHONE_LOOP is None:
        p = get_model_path()
        _PHONE_LOOP = Decoder(hmm=os.path.join(p, "en-us", "en-us"), allphone=os.path.join(p, "en-us", "en-us-phone.lm.bin"),
                              lw=2.0, beam=1e-20, pbeam=1e-20, logfn=os.devnull)
    frate = int(_PHONE_LOOP.config["frate"])
    off = frame_offset_s(frate)
    _decode(_PHONE_LOOP, _pcm(samples))
    return [Segment(_arpabet_ipa(s.word), s.start_frame / frate + off, (s.end_frame + 1) / frate + off)
            for s in _PHONE_LOOP.seg()]


_PYLIPSYNC_SCRIPT = r"""
import json, sys, numpy as np, soundfile as sf
from pylipsync import PhonemeAnalyzer
an = PhonemeAnalyzer()
out = {}
for path in sys.argv[2:]:
    x, sr = sf.read(path, dtype="float32")
    segs = an.extract_phoneme_segments(x, sr, fps=int(sys.argv[1]), return_seconds=True)
    out[path] = [(s.dominant_phoneme.name, s.start, s.end) for s in segs]
print(json.dumps(out))
"""
ULIPSYNC_TO_VISEME = {"aa": "aa", "ee": "E", "ih": "ih", "oh": "oh", "ou": "ou", "silence": "sil"}


def pylipsync_cues(paths: list[Path], fps: int = 100) -> dict[str, list[tuple[str, float, float]]] | None:
    """uLipSync's dominant phoneme per hop for each file as (viseme, start_s, end_s) spans: the hop
    its MFCC window is centred on (pylipsync pads the audio so that it is).  None without
    ``.venv-pylipsync`` (pylipsync pins numpy < 2.4, so it has its own environment)."""
    py = PYLIPSYNC_VENV / "bin" / "python"
    if not py.exists():
        return None
    r = subprocess.run([str(py), "-c", _PYLIPSYNC_SCRIPT, str(fps), *map(str, paths)], capture_output=True, text=True)
    if r.returncode != 0:
        print(f"pylipsync failed: {r.stderr[-500:]}", file=sys.stderr)
        return None
    return {path: [(ULIPSYNC_TO_VISEME.get(name, "sil"), a, b) for name, a, b in cues]
            for path, cues in json.loads(r.stdout.strip().splitlines()[-1]).items()}


def loudness_only(samples: np.ndarray, fps: float) -> np.ndarray:
    """Peer: mouth open (aa) in proportion to loudness, rest otherwise (frames x 15 visemes)."""
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
    """Peer: openfacefx's offline path (G2P + even timing over the duration); None when not installed."""
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


def add_noise_bursts(samples: np.ndarray, seed: int, n: int = 3, burst_s: float = 0.15) -> np.ndarray:
    """Bursts of full-scale digital noise at random places (the corruption seen in badly copied files)."""
    rng = np.random.default_rng(seed)
    x = samples.copy()
    m = int(burst_s * 16000)
    for _ in range(n):
        a = int(rng.integers(0, max(1, len(x) - m)))
        x[a: a + m] = rng.uniform(-1, 1, min(m, len(x) - a)).astype(np.float32)
    return x
