"""Train the audio-to-face regressor from data this script makes itself.

Data recipe (nothing is downloaded):

1. **Synthetic speech** from espeak-ng (`toolkit.alignment.tts.synthesize`) with
   exact phoneme times from libespeak-ng's phoneme events: English sentences
   of CMU-dictionary words and pseudo-word sentences in ~20 Latin-script
   languages, each in a random voice variant (m1..m7, f1..f5, klatt, croak,
   whisper, named variants), speed 110-300 wpm and pitch 15-85.
   Validation holds out whole voice variants and whole languages.
   When festival and flite are installed (`make train` installs them), also
   English from voices made from real speakers (`toolkit.train.voices`:
   festival's kal and ked diphones and slt HTS voice, flite's rms, awb, slt and
   kal16), with the engines' own phone times, rate 0.75-1.35x.
2. **Real speech** with phone alignments found on this machine
   (``../shared/data/speech/transcribed``: the Montreal Forced Aligner test
   corpus TextGrids and PocketSphinx's LibriVox alignments; never TIMIT or its
   LDC93S1 sample, which are for measurement).
3. **Augmentation** of every clip, several times: speed change (resampling,
   phone times scaled), EQ (random shelves/peaks), room reverberation
   (synthetic exponential-decay responses, RT60 0.1-0.9 s), additive noise
   (white/pink/brown/babble, 0-40 dB SNR), band limits and codecs (8 kHz
   telephone band, mu-law, 4-7 kHz low-pass, clipping), gain -35..-3 dBFS.
4. **Targets**: per 10 ms frame the viseme class of the sounding phone
   (`toolkit.visemes.tables.main_viseme`, glottal sounds take their
   neighbour's), and the coarticulated viseme weights and ARKit jaw/lip curves
   of `toolkit.visemes.coarticulation.animate_phonemes` (with the audio, so the
   jaw follows loudness).

Training: AdamW, cross-entropy (classes) + L1 (curves), random 4 s crops,
fixed seeds; CPU by default (2 threads), ``--device cuda`` if present.

Example
-------
``python -m toolkit.train.audio2face --minutes 40 -o assets/model/audio2face.npz``
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toolkit.animation import ARKIT_BLENDSHAPES, VISEME_CHANNELS, VISEMES, Segment
from toolkit.audio import resample
from toolkit.files import atomic_write
from toolkit.motion.features import HOP, SAMPLE_RATE, log_mel, n_frames_for
from toolkit.resources import CHECKOUT
from toolkit.train.sentences import english_words, make_sentence
from toolkit.train.voices import festival_voices, flite_voices, synth_festival, synth_flite
from toolkit.visemes.tables import VISEME_POSES, visemes_for

ROOT = Path(__file__).resolve().parents[2]
# in a clone, data and weights go into the repository; from an installed package, into the current folder
CACHE = (CHECKOUT or Path.cwd()) / ".cache" / "motion"
DEFAULT_OUT = CHECKOUT / "assets" / "model" / "audio2face.npz" if CHECKOUT else Path("audio2face.npz")
REAL_SPEECH = ROOT.parent / "shared" / "data" / "speech" / "transcribed"

# Channels the network regresses: visemes + every ARKit channel a viseme pose moves.
MOUTH_CHANNELS = [c for c in ARKIT_BLENDSHAPES
                  if c in ("jawOpen", "mouthClose") or any(c in p for p in VISEME_POSES.values())]
CURVE_CHANNELS = VISEME_CHANNELS + MOUTH_CHANNELS

# Voices and languages.  Held-out ones are only ever in validation.
TRAIN_VARIANTS = ["m1", "m2", "m3", "m5", "m6", "f1", "f2", "f4", "klatt", "klatt3", "croak", "whisper",
                  "Andy", "Annie", "Belinda", "Gene", "Michael", "Linda", "Mr_Serious", "Storm", None]
VAL_VARIANTS = ["m7", "f3", "klatt2", "Alicia", "Jacky"]
TRAIN_LANGS = ["en-us", "en-us", "en-us", "en-gb", "en-gb-scotland", "en-029", "de", "fr-fr", "es", "it", "pt",
               "sv", "da", "fi", "hu", "ro", "id", "cs", "sk", "hr", "tr", "sw", "ms", "eo"]
VAL_LANGS = ["en-us", "nl", "pl"]  # English with unseen voices + two unseen languages

# -- small readers ---------------------------------------------------------------------------------


def _arpabet_segments_to_ipa(segs: list[Segment]) -> list[Segment]:
    from toolkit.phonemes.inventory import arpabet_to_ipa

    out = []
    for s in segs:
        try:
            out.append(Segment(arpabet_to_ipa(s.label.strip())[0], s.start, s.end))
        except (KeyError, IndexError):  # SIL, +NSN+ and other fillers are silence for the mouth
            out.append(Segment("", s.start, s.end))
    return out


# Real recordings never used for training: TIMIT's LDC93S1 sample (TIMIT is for measurement),
# copies of the validation recording, and languages the English aligner cannot place.
_REAL_EXCLUDE = ("LDC93S1", "cold_corpus3", "cold_corpus_24bit", "cold_corpus_32bit", "example3.sph")


def real_aligned_speech(root: Path = REAL_SPEECH, cache: Path = CACHE) -> list[tuple[str, np.ndarray, list[Segment]]]:
    """Real recordings with phone alignments on this machine: (name, 16 kHz samples, IPA phones).

    Reference alignments where the corpus has them (Montreal Forced Aligner
    TextGrids, PocketSphinx LibriVox alignments); the other English
    recordings with transcripts are aligned here with `toolkit.align` (cached).
    """
    import csv

    from toolkit.alignment.textgrid import read_textgrid
    from toolkit.audio import load_audio

    items, done = [], set()
    mfa = root / "mfa_tests"
    for tg in sorted((mfa / "textgrid").glob("*.TextGrid")):
        audio = next(iter(sorted((mfa / "audio").glob(tg.stem + ".*"))), None)
        phones = read_textgrid(tg).phonemes
        if phones and audio is not None:
            items.append((tg.stem, load_audio(audio), phones))
            done.add(audio.name)
    for pj in sorted((root / "pocketsphinx_tests" / "librivox").glob("*.phone.json")):
        d = json.loads(pj.read_text())
        segs = [Segment(ph["t"], ph["b"], ph["b"] + ph["d"]) for w in d["w"] for ph in w.get("w", [])]
        wav = pj.with_name(pj.name.replace(".phone.json", ".wav"))
        if segs and wav.exists():
            items.append((wav.stem, load_audio(wav), _arpabet_segments_to_ipa(segs)))
            done.add(wav.name)
    cache.mkdir(parents=True, exist_ok=True)
    cache_file = cache / "real_alignments.json"
    aligned = json.loads(cache_file.read_text()) if cache_file.exists() else {}
    for tsv in sorted(root.glob("*/transcripts.tsv")):
        with open(tsv, encoding="utf-8") as f:
            rows = list(csv.DictReader(f, delimiter="\t"))
        for r in rows:
            rel, text = r.get("file", ""), (r.get("transcript") or "").strip()
            path = tsv.parent / rel
            if not path.exists():
                path = tsv.parent / "audio" / rel
            if (r.get("lang") != "en" or not text or Path(rel).name in done or not path.exists()
                    or any(x in rel for x in _REAL_EXCLUDE) or path.suffix == ".raw"):
                continue
            key = str(path.relative_to(root))
            try:
                x = load_audio(path)
                if key not in aligned:
                    from toolkit.alignment import align
                    from toolkit.phonemes.g2p import words_to_phonemes

                    al = align(x, SAMPLE_RATE, words_to_phonemes(text, lang="en"), lang="en", method="pocketsphinx",
                               source=key)
                    aligned[key] = {"confidence": al.confidence,
                                    "phones": [[p.label, p.start, p.end] for p in al.phonemes]}
            except Exception as e:  # noqa: BLE001 - one unreadable/unalignable file: leave it out
                aligned[key] = {"confidence": 0.0, "phones": [], "error": str(e)}
            a = aligned[key]
            if a["confidence"] >= 0.5 and a["phones"]:
                items.append((Path(rel).stem, x, [Segment(l, s, e) for l, s, e in a["phones"]]))
    atomic_write(cache_file, json.dumps(aligned))
    return items


# -- targets ---------------------------------------------------------------------------------------


def frame_labels(phonemes: list[Segment], n_frames: int) -> np.ndarray:
    """Viseme class (index into VISEMES) per 10 ms frame; glottal sounds take the next sound's viseme."""
    labels = np.zeros(n_frames, np.int64)  # sil
    vis = []
    for s in phonemes:
        try:
            v = visemes_for(s.label)[0]
        except KeyError:
            v = "sil"
        vis.append(v)
    for i in range(len(vis)):  # transparent (None): the following sound, else the previous one
        if vis[i] is None:
            nxt = next((v for v in vis[i + 1:] if v is not None), None)
            prv = next((v for v in reversed(vis[:i]) if v is not None), "sil")
            vis[i] = nxt if nxt not in (None, "sil") else prv
    t = np.arange(n_frames) * HOP / SAMPLE_RATE
    for s, v in zip(phonemes, vis):
        a, b = np.searchsorted(t, [s.start, s.end])
        labels[a:b] = VISEMES.index(v)
    return labels


def frame_curves(phonemes: list[Segment], n_frames: int, samples: np.ndarray) -> np.ndarray:
    """Target curves (n_frames x CURVE_CHANNELS) from the core coarticulation model at 100 fps."""
    from toolkit.visemes.coarticulation import animate_phonemes

    dur = n_frames * HOP / SAMPLE_RATE
    anim = animate_phonemes(phonemes, dur, fps=100, audio=samples, sample_rate=SAMPLE_RATE)
    vals = anim.select(CURVE_CHANNELS).values
    if vals.shape[0] < n_frames:
        vals = np.concatenate([vals, np.repeat(vals[-1:], n_frames - vals.shape[0], axis=0)])
    return vals[:n_frames]


# -- augmentation ----------------------------------------------------------------------------------


def _colored_noise(n: int, kind: str, rng: np.random.Generator) -> np.ndarray:
    white = rng.standard_normal(n)
    if kind == "white":
        return white
    spec = np.fft.rfft(white)
    f = np.maximum(np.fft.rfftfreq(n, 1 / SAMPLE_RATE), 20.0)
    spec /= np.sqrt(f) if kind == "pink" else f
    x = np.fft.irfft(spec, n)
    return x / (x.std() + 1e-9)


def _biquad(kind: str, f0: float, gain_db: float, q: float = 0.9):
    a_ = 10 ** (gain_db / 40)
    w = 2 * np.pi * f0 / SAMPLE_RATE
    alpha = np.sin(w) / (2 * q)
    cw = np.cos(w)
    if kind == "peak":
        b = [1 + alpha * a_, -2 * cw, 1 - alpha * a_]
        a = [1 + alpha / a_, -2 * cw, 1 - alpha / a_]
    elif kind == "low":
        sa = 2 * np.sqrt(a_) * alpha
        b = [a_ * ((a_ + 1) - (a_ - 1) * cw + sa), 2 * a_ * ((a_ - 1) - (a_ + 1) * cw), a_ * ((a_ + 1) - (a_ - 1) * cw - sa)]
        a = [(a_ + 1) + (a_ - 1) * cw + sa, -2 * ((a_ - 1) + (a_ + 1) * cw), (a_ + 1) + (a_ - 1) * cw - sa]
    else:  # high shelf
        sa = 2 * np.sqrt(a_) * alpha
        b = [a_ * ((a_ + 1) + (a_ - 1) * cw + sa), -2 * a_ * ((a_ - 1) + (a_ + 1) * cw), a_ * ((a_ + 1) + (a_ - 1) * cw - sa)]
        a = [(a_ + 1) - (a_ - 1) * cw + sa, 2 * ((a_ - 1) - (a_ + 1) * cw), (a_ + 1) - (a_ - 1) * cw - sa]
    return np.array(b) / a[0], np.array(a) / a[0]


def augment(x: np.ndarray, phonemes: list[Segment], rng: np.random.Generator,
            babble: np.ndarray | None = None, strength: float = 1.0) -> tuple[np.ndarray, list[Segment], str]:
    """One random degradation of a clean clip; returns (audio, rescaled phones, recipe string)."""
    from scipy.signal import butter, fftconvolve, lfilter, sosfilt

    recipe = []
    x = np.asarray(x, np.float64)
    # speed (tempo + pitch together, like tape): phone times scale
    if rng.random() < 0.5 * strength:
        factor = float(rng.uniform(0.88, 1.12))
        sr_virtual = int(round(SAMPLE_RATE * factor / 100)) * 100
        x = resample(x, sr_virtual, SAMPLE_RATE).astype(np.float64)
        k = SAMPLE_RATE / sr_virtual
        phonemes = [Segment(s.label, s.start * k, s.end * k) for s in phonemes]
        recipe.append(f"speed{1 / k:.2f}")
    # EQ: a tilt and one or two peaks
    if rng.random() < 0.8 * strength:
        for _ in range(rng.integers(1, 4)):
            kind = rng.choice(["peak", "low", "high"])
            f0 = float(np.exp(rng.uniform(np.log(80), np.log(6000))))
            b, a = _biquad(kind, f0, float(rng.uniform(-12, 12)), float(rng.uniform(0.5, 2.0)))
            x = lfilter(b, a, x)
        recipe.append("eq")
    # reverberation: exponentially decaying noise tail after a direct path
    if rng.random() < 0.5 * strength:
        rt60 = float(rng.uniform(0.1, 0.9))
        n = int(rt60 * SAMPLE_RATE)
        t = np.arange(n) / SAMPLE_RATE
        rir = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
        rir[: int(0.003 * SAMPLE_RATE)] = 0
        rir *= float(rng.uniform(0.1, 0.6)) / (np.sqrt(np.sum(rir ** 2)) + 1e-9)
        rir[0] = 1.0
        x = fftconvolve(x, rir)[: x.size]
        recipe.append(f"rev{rt60:.1f}")
    # band limits and codecs
    r = rng.random()
    if r < 0.15 * strength:
        x = resample(resample(x, SAMPLE_RATE, 8000), 8000, SAMPLE_RATE).astype(np.float64)
        recipe.append("8k")
    elif r < 0.3 * strength:
        sos = butter(6, float(rng.uniform(3500, 7000)), fs=SAMPLE_RATE, output="sos")
        x = sosfilt(sos, x)
        recipe.append("lp")
    elif r < 0.4 * strength:
        sos = butter(2, float(rng.uniform(100, 300)), btype="high", fs=SAMPLE_RATE, output="sos")
        x = sosfilt(sos, x)
        recipe.append("hp")
    # level
    peak = np.max(np.abs(x)) + 1e-9
    x = x / peak * 10 ** (rng.uniform(-30, -1) / 20)
    # noise
    if rng.random() < 0.7 * strength:
        snr = float(rng.uniform(0, 40)) if rng.random() < 0.8 else float(rng.uniform(40, 60))
        kind = str(rng.choice(["white", "pink", "brown", "babble"]))
        if kind == "babble" and babble is not None and babble.size > x.size:
            k = int(rng.integers(0, babble.size - x.size))
            noise = babble[k: k + x.size].astype(np.float64)
            noise = noise / (noise.std() + 1e-9)
        else:
            noise = _colored_noise(x.size, kind if kind != "babble" else "pink", rng)
        speech_rms = np.sqrt(np.mean(x[np.abs(x) > 0.05 * np.max(np.abs(x))] ** 2) + 1e-12)
        x = x + noise * speech_rms * 10 ** (-snr / 20)
        recipe.append(f"{kind}{snr:.0f}dB")
    if rng.random() < 0.1 * strength:  # mu-law 8 bit
        mu = 255.0
        y = np.sign(x) * np.log1p(mu * np.minimum(np.abs(x), 1)) / np.log1p(mu)
        y = np.round(y * 127) / 127
        x = np.sign(y) * ((1 + mu) ** np.abs(y) - 1) / mu
        recipe.append("mulaw")
    if rng.random() < 0.05 * strength:
        lim = np.max(np.abs(x)) * float(rng.uniform(0.3, 0.7))
        x = np.clip(x, -lim, lim)
        recipe.append("clip")
    return x.astype(np.float32), phonemes, "+".join(recipe) or "clean"


# -- dataset ---------------------------------------------------------------------------------------


@dataclass
class Clip:
    feats: np.ndarray  # (T, 40) float16
    labels: np.ndarray  # (T,) uint8
    curves: np.ndarray  # (T, K) float16
    group: str  # "syn:<lang>:<variant>" or "real:<name>"


def clean_phones(phonemes: list[Segment]) -> list[Segment]:
    """Merge labels the viseme table does not know (stray marks from some voices) into the previous sound."""
    out: list[Segment] = []
    for s in phonemes:
        try:
            visemes_for(s.label)
            out.append(Segment(s.label, s.start, s.end))
        except KeyError:
            if out:
                out[-1] = Segment(out[-1].label, out[-1].start, s.end)
            else:
                out.append(Segment("", s.start, s.end))
    return out


def clip_from(samples: np.ndarray, phonemes: list[Segment], group: str) -> Clip:
    n = n_frames_for(samples.size)
    phonemes = clean_phones(phonemes)
    return Clip(log_mel(samples).astype(np.float16), frame_labels(phonemes, n).astype(np.uint8),
                frame_curves(phonemes, n, samples).astype(np.float16), group)


def synth_clean(n_utts: int, seed: int, held_out: bool, progress: bool = True):
    """Yield (samples, phonemes, group) of espeak-ng speech; held_out picks the validation voices/languages."""
    from toolkit.alignment.tts import synthesize

    rng = random.Random(seed)
    words = english_words(random.Random(1))
    langs = VAL_LANGS if held_out else TRAIN_LANGS
    variants = VAL_VARIANTS if held_out else TRAIN_VARIANTS
    it = range(n_utts)
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc="espeak-ng " + ("validation" if held_out else "training"), unit="utt", leave=False)
    for _ in it:
        lang, variant = rng.choice(langs), rng.choice(variants)
        text = make_sentence(lang, rng, words)
        try:
            sp = synthesize(text, lang=lang, rate_wpm=rng.randint(110, 300), pitch=rng.randint(15, 85), variant=variant)
        except Exception:  # noqa: BLE001 - a voice/language the local espeak-ng lacks: skip it
            continue
        if sp.samples.size < SAMPLE_RATE // 4 or not sp.phonemes:
            continue
        x = resample(sp.samples, sp.sample_rate, SAMPLE_RATE) if sp.sample_rate != SAMPLE_RATE else sp.samples
        # a little leading/trailing silence of random length, as in recordings
        pre, post = rng.uniform(0.0, 0.4), rng.uniform(0.0, 0.4)
        x = np.concatenate([np.zeros(int(pre * SAMPLE_RATE), np.float32), x, np.zeros(int(post * SAMPLE_RATE), np.float32)])
        phones = [Segment(s.label, s.start + pre, s.end + pre) for s in sp.phonemes]
        yield x, phones, f"syn:{lang}:{variant}"


def build_dataset(out_dir: Path, n_train: int, n_val: int, n_aug: int, real_repeats: int, seed: int,
                  progress: bool = True, use_real: bool = True, n_festival: int = 0,
                  n_flite: int = 0) -> tuple[list[Clip], list[Clip], dict]:
    """Generate (or load from ``out_dir``) the training and validation clips."""
    fest = festival_voices() if n_festival else []
    flite = flite_voices() if n_flite else []
    key_parts = [n_train, n_val, n_aug, real_repeats if use_real else -1, seed, CURVE_CHANNELS, 4]
    if fest:  # (keeps the keys of caches made before festival was used)
        key_parts.append([n_festival, fest])
    if flite:
        key_parts.append([n_flite, flite])
    key = hashlib.sha1(json.dumps(key_parts).encode()).hexdigest()[:10]
    path = out_dir / f"data-{key}.npz"
    if path.exists():
        return _load_clips(path)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    train, val = [], []
    babble_parts: list[np.ndarray] = []
    clean_train = list(synth_clean(n_train, seed, held_out=False, progress=progress))
    for x, _, _ in clean_train[:60]:
        babble_parts.append(x)
    babble = _make_babble(babble_parts, rng)
    real = real_aligned_speech() if use_real and REAL_SPEECH.is_dir() else []
    real_val_names = {"cold_corpus3"}  # one real recording kept out for validation
    todo = [(x, p, g, n_aug) for x, p, g in clean_train]
    todo += [(x, p, g, n_aug) for x, p, g in synth_festival(n_festival, seed + 7, progress=progress)] if fest else []
    todo += [(x, p, g, n_aug) for x, p, g in synth_flite(n_flite, seed + 11, progress=progress)] if flite else []
    todo += [(x, p, f"real:{name}", real_repeats) for name, x, p in real if name not in real_val_names]
    it = todo
    if progress:
        from tqdm import tqdm

        it = tqdm(todo, desc="augment + targets", unit="clip", leave=False)
    for x, p, g, reps in it:
        train.append(clip_from(x, p, g))  # the clean version
        for _ in range(reps):
            y, q, _ = augment(x, p, rng, babble)
            train.append(clip_from(y, q, g))
    val_rng = np.random.default_rng(seed + 1)
    for x, p, g in synth_clean(n_val, seed + 1000, held_out=True, progress=progress):
        val.append(clip_from(x, p, g))
        y, q, _ = augment(x, p, val_rng, babble)
        val.append(clip_from(y, q, g + ":aug"))
    for name, x, p in real:
        if name in real_val_names:
            val.append(clip_from(x, p, f"real:{name}"))
    info = {"n_train_clips": len(train), "n_val_clips": len(val),
            "train_hours": sum(c.labels.size for c in train) / 100 / 3600,
            "real_files": [n for n, _, _ in real], "festival_voices": fest, "flite_voices": flite,
            "festival_hours": sum(c.labels.size for c in train if c.group.startswith("fest:")) / 100 / 3600,
            "flite_hours": sum(c.labels.size for c in train if c.group.startswith("flite:")) / 100 / 3600}
    _save_clips(path, train, val, info)
    return train, val, info


def _make_babble(parts: list[np.ndarray], rng: np.random.Generator) -> np.ndarray | None:
    if len(parts) < 4:
        return None
    n = 30 * SAMPLE_RATE
    out = np.zeros(n, np.float32)
    for _ in range(6):  # six talkers at once
        pos = 0
        while pos < n:
            x = parts[int(rng.integers(len(parts)))]
            k = min(x.size, n - pos)
            out[pos: pos + k] += x[:k] / (np.std(x) + 1e-9)
            pos += k
    return out


def _save_clips(path: Path, train: list[Clip], val: list[Clip], info: dict) -> None:
    arrays = {"info": np.array(json.dumps(info))}
    for name, clips in (("train", train), ("val", val)):
        arrays[f"{name}_feats"] = np.concatenate([c.feats for c in clips])
        arrays[f"{name}_labels"] = np.concatenate([c.labels for c in clips])
        arrays[f"{name}_curves"] = np.concatenate([c.curves for c in clips])
        arrays[f"{name}_lens"] = np.array([c.labels.size for c in clips])
        arrays[f"{name}_groups"] = np.array([c.group for c in clips])
    atomic_write(path, lambda tmp: np.savez(tmp, **arrays))


def _load_clips(path: Path):
    d = np.load(path)
    out = []
    for name in ("train", "val"):
        ends = np.cumsum(d[f"{name}_lens"])
        starts = ends - d[f"{name}_lens"]
        f, l, c, g = d[f"{name}_feats"], d[f"{name}_labels"], d[f"{name}_curves"], d[f"{name}_groups"]
        out.append([Clip(f[a:b], l[a:b], c[a:b], str(gg)) for a, b, gg in zip(starts, ends, g)])
    return out[0], out[1], json.loads(str(d["info"]))


# -- training --------------------------------------------------------------------------------------


def _stream(clips: list[Clip]):
    """All clips end to end (training crops may span a clip change, like a new scene)."""
    feats = np.concatenate([c.feats for c in clips]).astype(np.float32)
    labels = np.concatenate([c.labels for c in clips]).astype(np.int64)
    curves = np.concatenate([c.curves for c in clips]).astype(np.float32)
    return feats, labels, curves


def evaluate(animator, clips: list[Clip]) -> dict:
    """Frame accuracy, bilabial (PP) recall/precision per validation group kind."""
    res: dict[str, list] = {}
    for c in clips:
        probs, curves = animator.infer_features(c.feats.astype(np.float32))
        pred = probs.argmax(1)
        kind = c.group.split(":")[0] + (":aug" if c.group.endswith(":aug") else "")
        r = res.setdefault(kind, [0, 0, 0, 0, 0, 0.0, 0])
        r[0] += int((pred == c.labels).sum())
        r[1] += c.labels.size
        pp = VISEMES.index("PP")
        r[2] += int(((pred == pp) & (c.labels == pp)).sum())
        r[3] += int((c.labels == pp).sum())
        r[4] += int((pred == pp).sum())
        r[5] += float(np.abs(curves - c.curves.astype(np.float32)).sum())
        r[6] += c.curves.size
    return {k: {"frame_acc": r[0] / max(r[1], 1), "pp_recall": r[2] / max(r[3], 1),
                "pp_precision": r[2] / max(r[4], 1), "curve_l1": r[5] / max(r[6], 1)} for k, r in res.items()}


def _runs(labels: np.ndarray, k: int) -> list[tuple[int, int]]:
    """(start, end) frame spans where ``labels == k``."""
    m = np.concatenate([[0], (labels == k).astype(np.int8), [0]])
    d = np.diff(m)
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)))


def calibrate_pp_bias(animator, clips: list[Clip], target_recall: float = 0.9, max_extra_shut: float = 0.01) -> float:
    """Smallest bias on the PP logit that finds ``target_recall`` of the bilabials in ``clips``.

    Held-out validation data only.  A bilabial counts as found when PP wins at
    some frame from 60 ms before it to its end (the bench's rule); the bias
    stops growing before PP shows at more than ``max_extra_shut`` more vowel middles than without it.
    """
    pp = VISEMES.index("PP")
    vowels = [VISEMES.index(v) for v in ("aa", "E", "ih", "oh", "ou")]
    logits = []
    for c in clips:
        probs, _ = animator.infer_features(c.feats.astype(np.float32))
        logits.append(np.log(np.maximum(probs, 1e-9)))
    best, base_shut = 0.0, None
    for bias in np.arange(0.0, 3.01, 0.1):
        found = total = shut = n_vowels = 0
        for lg, c in zip(logits, clips):
            lg = lg.copy()
            lg[:, pp] += bias
            top = lg.argmax(axis=1)
            for a, b in _runs(c.labels, pp):
                total += 1
                found += int((top[max(0, a - 6): b] == pp).any())
            for k in vowels:
                for a, b in _runs(c.labels, k):
                    n_vowels += 1
                    shut += int(top[(a + b) // 2] == pp)
        shut_rate = shut / max(n_vowels, 1)
        base_shut = shut_rate if base_shut is None else base_shut
        if shut_rate > base_shut + max_extra_shut:
            break
        best = float(bias)
        if found >= target_recall * max(total, 1):
            break
    return best


def warp_bands(feats: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Vocal tract length perturbation on log-mel crops (B, T, bands): band j takes the value at j * factor.

    A longer or shorter vocal tract moves every formant by about the same
    factor, which on the mel axis is close to a stretch; values past the top
    band repeat it.

    >>> x = np.arange(4, dtype=np.float32)[None, None, :]
    >>> warp_bands(x, np.array([0.5]))[0, 0].tolist()
    [0.0, 0.5, 1.0, 1.5]
    """
    n = feats.shape[-1]
    pos = np.clip(np.arange(n)[None, :] * np.asarray(factors, np.float64)[:, None], 0, n - 1)  # (B, bands)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, n - 1)
    w = (pos - lo).astype(np.float32)[:, None, :]
    take = lambda idx: np.take_along_axis(feats, np.broadcast_to(idx[:, None, :], feats.shape), axis=2)  # noqa: E731
    return take(lo) * (1 - w) + take(hi) * w


def train(train_clips: list[Clip], val_clips: list[Clip], *, minutes: float, max_steps: int, seed: int,
          device: str = "cpu", batch: int = 32, crop: int = 400, lr: float = 2e-3, hidden: int = 128,
          progress: bool = True, log=print, on_best=None, init=None, specaug: bool = False,
          real_share: float = 0.0, warp: float = 0.0):
    """Fit the network; returns the `NeuralAnimator` with the best validation accuracy and its metrics.

    ``on_best(animator)`` is called whenever validation improves (e.g. to save a checkpoint);
    ``init`` (a torch network, `toolkit.train.network.load`) continues training from its weights instead of from scratch.
    ``specaug`` masks random mel bands and time spans (SpecAugment); ``real_share`` > 0 draws
    that share of the crops from real recordings (they are few, and closest to real use);
    ``warp`` > 0 stretches each crop's mel axis by a random factor in 1 +- warp (`warp_bands`).
    """
    import torch

    from toolkit.motion.model import DELAY
    from toolkit.train.network import TorchAnimator, build_network

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    feats, labels, curves = _stream(train_clips)
    if init is not None:
        net = init.train()
    else:
        net = build_network(hidden=hidden, n_curves=len(CURVE_CHANNELS))
        net.mean.copy_(torch.from_numpy(feats.mean(0)))
        net.std.copy_(torch.from_numpy(feats.std(0) + 1e-3))
    net.to(device)
    # class weights: inverse square root of frequency, so rare lip shapes (PP, FF) count
    freq = np.bincount(labels, minlength=len(VISEMES)).astype(np.float64) + 1.0
    w = (freq.sum() / freq) ** 0.5
    w /= w.mean()
    w[VISEMES.index("PP")] *= 2.0  # bilabial closures are what viewers check first
    ce = torch.nn.CrossEntropyLoss(weight=torch.tensor(w, dtype=torch.float32, device=device), label_smoothing=0.05)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    est_steps = max_steps

    def lr_at(step: int) -> float:
        # warm-up, then cosine decay over whichever runs out first: steps or the time budget
        done = max(step / est_steps, (time.time() - t0) / (minutes * 60))
        warm = min(1.0, (step + 1) / 100) if init is None else 1.0
        return lr * warm * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, done))))

    animator = TorchAnimator(net, CURVE_CHANNELS)
    best, best_state, history = -1.0, None, []
    t0 = time.time()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=est_steps, desc="training", unit="step")
    n = feats.shape[0]
    # where the real recordings lie in the training stream (for real_share)
    bounds = np.cumsum([0] + [c.labels.size for c in train_clips])
    real_spans = [(a, b) for (a, b), c in zip(zip(bounds[:-1], bounds[1:]), train_clips)
                  if c.group.startswith("real:") and b - a > crop + DELAY]
    eval_every = max(50, est_steps // 12)
    step = 0
    while step < est_steps:
        net.train()
        starts = rng.integers(0, n - crop - DELAY, size=batch)
        if real_share > 0 and real_spans:
            for k in np.flatnonzero(rng.random(batch) < real_share):
                a_, b_ = real_spans[int(rng.integers(len(real_spans)))]
                starts[k] = rng.integers(a_, b_ - crop - DELAY)
        idx = starts[:, None] + np.arange(crop)[None]
        fb = feats[idx]
        if warp > 0:  # vocal tract length: formants of other speakers sit higher or lower
            fb = warp_bands(fb, rng.uniform(1 - warp, 1 + warp, size=batch))
        if specaug:
            fb = fb.copy()
            for k in range(batch):
                for _ in range(2):  # two band masks of up to 5 mels, filled with the crop's mean
                    w, f0 = int(rng.integers(1, 6)), int(rng.integers(0, fb.shape[2] - 5))
                    fb[k, :, f0:f0 + w] = fb[k, :, f0:f0 + w].mean()
                for _ in range(2):  # two time masks of up to 60 ms
                    w, t0_ = int(rng.integers(1, 7)), int(rng.integers(0, crop - 6))
                    fb[k, t0_:t0_ + w] = fb[k, t0_:t0_ + w].mean(axis=0)
        xb = torch.from_numpy(fb).to(device)
        # random gain (log-mel shifts by a constant): level must not matter
        xb = xb + torch.from_numpy(rng.uniform(-1.2, 0.6, size=(batch, 1, 1)).astype(np.float32)).to(device)
        xb = torch.maximum(xb, torch.tensor(-7.0, device=device))
        yb = torch.from_numpy(labels[idx]).to(device)
        cb = torch.from_numpy(curves[idx]).to(device)
        logits, pred_curves = net(xb)
        # output at t describes frame t - DELAY
        loss = ce(logits[:, DELAY:].reshape(-1, logits.shape[-1]), yb[:, :-DELAY].reshape(-1))
        loss = loss + 4.0 * torch.nn.functional.l1_loss(pred_curves[:, DELAY:], cb[:, :-DELAY])
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        step += 1
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
        timed_out = (time.time() - t0) > minutes * 60
        if step % eval_every == 0 or step == est_steps or timed_out:
            net.eval()
            net.to("cpu")
            m = evaluate(animator, val_clips)
            net.to(device)
            score = np.mean([v["frame_acc"] + 0.5 * v["pp_recall"] for v in m.values()])
            history.append({"step": step, "minutes": (time.time() - t0) / 60, **{k: v for k, v in m.items()}})
            log(f"step {step}: " + "  ".join(f"{k} acc {v['frame_acc']:.3f} PP-rec {v['pp_recall']:.3f} "
                                               f"PP-prec {v['pp_precision']:.3f} L1 {v['curve_l1']:.4f}" for k, v in m.items()))
            if score > best:
                best = score
                best_state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
                if on_best is not None:
                    net.to("cpu")
                    on_best(TorchAnimator(net.eval(), CURVE_CHANNELS, {"history": history}))
                    net.to(device)
        if timed_out:
            log(f"time budget of {minutes} min reached at step {step}")
            break
    if bar is not None:
        bar.close()
    net.to("cpu")
    if best_state is not None:
        net.load_state_dict(best_state)
    animator = TorchAnimator(net.eval(), CURVE_CHANNELS)
    return animator, history


def main(argv: list[str] | None = None) -> int:
    """`viseme train`: generate data, train, write the weights (and a metrics JSON next to them)."""
    ap = argparse.ArgumentParser(prog="viseme train", description=__doc__.split("\n\n")[0])
    ap.add_argument("-o", "--out", default=str(DEFAULT_OUT), help="weights file to write")
    ap.add_argument("--minutes", type=float, default=45.0, help="training time budget (wall clock)")
    ap.add_argument("--steps", type=int, default=6500, help="maximum optimizer steps (sets the LR schedule)")
    ap.add_argument("--n-train", type=int, default=2500, help="espeak-ng training utterances")
    ap.add_argument("--n-val", type=int, default=150, help="espeak-ng validation utterances (held-out voices/languages)")
    ap.add_argument("--n-aug", type=int, default=2, help="augmented copies per synthetic utterance")
    ap.add_argument("--real-repeats", type=int, default=25, help="augmented copies per real recording")
    ap.add_argument("--n-festival", type=int, default=1500,
                    help="festival utterances (real-speaker English voices; 0 or festival absent: none)")
    ap.add_argument("--n-flite", type=int, default=2000,
                    help="flite utterances (real-speaker English voices; 0 or flite absent: none)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--hidden", type=int, default=160)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2, help="CPU threads for torch")
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    ap.add_argument("--cache", default=str(CACHE), help="where generated data is cached")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    ap.add_argument("--data-only", action="store_true", help="generate and cache the data, do not train")
    ap.add_argument("--init", help="continue from these weights (a longer run in several sittings)")
    ap.add_argument("--specaug", action=argparse.BooleanOptionalAction, default=True,
                    help="SpecAugment band/time masks (--no-specaug: none)")
    ap.add_argument("--warp", type=float, default=0.1, help="vocal tract length perturbation: mel axis x (1 +- warp)")
    ap.add_argument("--real-share", type=float, default=0.0, help="share of crops drawn from real recordings")
    a = ap.parse_args(argv)
    try:
        import torch
    except ImportError:  # a core install has no torch: name the extra, exit 2 as every missing extra does
        print("viseme: error: viseme train needs torch: pip install 'viseme-toolkit[train]'", file=sys.stderr)
        return 2

    torch.set_num_threads(max(1, a.threads))
    random.seed(a.seed)
    np.random.seed(a.seed)
    t0 = time.time()
    tr, va, info = build_dataset(Path(a.cache), a.n_train, a.n_val, a.n_aug, a.real_repeats, a.seed,
                                 progress=not a.quiet, n_festival=a.n_festival, n_flite=a.n_flite)
    print(f"data: {info['n_train_clips']} training clips ({info['train_hours']:.2f} h), {info['n_val_clips']} validation "
          f"clips, {time.time() - t0:.0f} s", flush=True)
    if a.data_only:
        return 0
    from toolkit.train import network

    init = network.load(a.init)[0] if a.init else None
    animator, history = train(tr, va, init=init, specaug=a.specaug, real_share=a.real_share, warp=a.warp, minutes=a.minutes, max_steps=a.steps, seed=a.seed, device=a.device,
                              batch=a.batch, hidden=a.hidden, lr=a.lr, progress=not a.quiet,
                              log=lambda s: print(s, flush=True),
                              on_best=lambda an: network.save(an.torch_net, CURVE_CHANNELS, an.meta, a.out))
    # calibrated where it matters: real and degraded held-out speech (clean espeak is easy)
    bias = calibrate_pp_bias(animator, [c for c in va if c.group.startswith("real:") or c.group.endswith(":aug")])
    print(f"PP logit bias from validation: {bias:.1f}", flush=True)
    animator.meta = {"data": info, "args": vars(a), "history": history, "n_params": animator.n_params,
                     "train_minutes": (time.time() - t0) / 60, "pp_logit_bias": bias}
    network.save(animator.torch_net, CURVE_CHANNELS, animator.meta, a.out)
    print(f"wrote {a.out} ({os.path.getsize(a.out) / 1e6:.2f} MB, {animator.n_params} parameters)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
