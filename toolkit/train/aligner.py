"""Train the any-language aligner's frame classifier (`toolkit.alignment.universal`) from speech made here.

Data (nothing downloaded; `toolkit.train.speech`, `toolkit.train.voices`):

1. espeak-ng speech in ~70 languages, pseudo-words in each language's own
   script, random voice variants, 110-300 words/min, pitch 15-85;
2. festival's non-English voices built from real speakers (Italian x2,
   Catalan, Finnish, Russian, Hindi, Marathi, Telugu) and its and flite's
   English ones (kal, ked, slt; rms, awb, slt, kal16), with their own phone
   times;
3. real English recordings with alignments found on this machine
   (``../shared/data/speech/transcribed``: Montreal Forced Aligner and
   PocketSphinx references; never TIMIT or the multilingual set, which are
   for measurement);
4. every synthetic clip with a quiet background (35-70 dB below the speech,
   `add_floor_noise`: synthesizers leave digital silence) and phones next to
   pauses fading in or out (`fade_edges`), plus degraded copies
   (`toolkit.train.audio2face.augment`: speed, EQ, reverb, noise, telephone band,
   codecs, level); during training, vocal tract length warping of the mel
   axis and band masks.

Targets per 10 ms frame: the value of each phonological feature
(`toolkit.phonemes.ipa.phone_parts`; a phone of several parts gives each an
equal share of its frames) and whether a phone starts at that frame.

Held out (validation and the sentence-level test of ``bench/bench_multilingual.py``):
the espeak-ng languages `speech.ESPEAK_HELD_OUT`, the voice variants
`train.audio2face.VAL_VARIANTS`, and festival's Czech and second Finnish voice.

Example
-------
``python -m toolkit.train.aligner --minutes 35 -o assets/model/aligner.npz``
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

from toolkit.animation import Segment
from toolkit.files import atomic_write
from toolkit.motion.features import HOP, SAMPLE_RATE, log_mel, n_frames_for
from toolkit.phonemes.inventory import is_silence
from toolkit.phonemes.ipa import FEATURE_VALUES, SILENCE, phone_parts
from toolkit.resources import CHECKOUT

# in a clone, data and weights go into the repository; from an installed package, into the current folder
CACHE = (CHECKOUT or Path.cwd()) / ".cache" / "aligner"
OUT = CHECKOUT / "assets" / "model" / "aligner.npz" if CHECKOUT else Path("aligner.npz")
HEADS = tuple(FEATURE_VALUES)
N_OUT = sum(len(v) for v in FEATURE_VALUES.values()) + 1  # + the boundary logit
N_IN = 80  # `universal.normalize_features`: two views of 40 log-mel bands
DATA_VERSION = 5  # 5: breathy tails (`breathy_tails`) on the training clips; validation as in 4


# -- targets ---------------------------------------------------------------------------------------

def clean_segments(phones: list[Segment]) -> list[Segment]:
    """Phones the IPA table can describe; an unknown label joins the sound before it, pauses merge."""
    out: list[Segment] = []
    for s in phones:
        label = "" if is_silence(s.label) else s.label
        try:
            phone_parts(label)
        except KeyError:
            if out:
                out[-1] = Segment(out[-1].label, out[-1].start, s.end)
                continue
            label = ""
        if out and label == "" and out[-1].label == "":
            out[-1] = Segment("", out[-1].start, s.end)
        elif s.end > s.start:
            out.append(Segment(label, s.start, s.end))
    return out


def frame_targets(phones: list[Segment], n_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """(T, 7) feature value indices and (T,) 1 where a phone (or pause) starts; frame i is at i * 10 ms."""
    h = HOP / SAMPLE_RATE
    t = np.arange(n_frames) * h
    tgt = np.zeros((n_frames, len(HEADS)), np.uint8)
    sil = [FEATURE_VALUES[k].index(getattr(SILENCE, k)) for k in HEADS]
    tgt[:] = sil
    starts = np.zeros(n_frames, np.uint8)
    for i, s in enumerate(clean_segments(phones)):
        a, b = np.searchsorted(t, [s.start, s.end])
        if i > 0 and a < n_frames:
            starts[a] = 1
        if b <= a:
            continue
        parts = phone_parts(s.label)
        cuts = np.linspace(a, b, len(parts) + 1).round().astype(int)
        for f, c0, c1 in zip(parts, cuts[:-1], cuts[1:]):
            tgt[c0:c1] = [FEATURE_VALUES[k].index(getattr(f, k)) for k in HEADS]
    return tgt, starts


# -- augmentation beyond `train.audio2face.augment` ------------------------------------------------------

def fade_edges(x: np.ndarray, phones: list[Segment], rng: np.random.Generator, p: float = 0.5) -> np.ndarray:
    """Let phones next to a pause fade in or out (by 10-35 dB), as real speakers' onsets and tails do.

    Synthesizers start and stop sounds crisply; in recordings a final vowel or
    fricative fades into the background and an initial one rises out of it.
    The labels stay, so the network learns that the faint part belongs to the phone.
    """
    gain_db = np.zeros(len(x))
    segs = [s for s in phones if s.end > s.start]
    for i, s in enumerate(segs):
        if not s.label:
            continue
        a, b = int(s.start * SAMPLE_RATE), min(len(x), int(s.end * SAMPLE_RATE))
        depth = rng.uniform(10, 35)
        if (i + 1 == len(segs) or not segs[i + 1].label) and rng.random() < p and b - a > 80:
            k = a + int((b - a) * rng.uniform(0.2, 0.6))
            gain_db[k:b] = np.minimum(gain_db[k:b], np.linspace(0, -depth, b - k))
        if (i == 0 or not segs[i - 1].label) and rng.random() < p and b - a > 80:
            k = a + int((b - a) * rng.uniform(0.2, 0.5))
            gain_db[a:k] = np.minimum(gain_db[a:k], np.linspace(-depth, 0, k - a))
    return (x * 10 ** (gain_db / 20)).astype(np.float32)


VOICED_SONORANTS = {"vowel", "nasal", "lateral", "rhotic", "glide"}


def breathy_tails(x: np.ndarray, phones: list[Segment], rng: np.random.Generator, p: float = 0.35
                  ) -> tuple[np.ndarray, list[Segment]]:
    """Give some voiced phones before a pause a breathy offset that belongs to them (the labels grow).

    Real speakers often end a word before a pause with breath: the voicing
    stops and aspiration noise, coloured by the same mouth shape, goes on for
    30-150 ms and fades (utterance-final breathy or devoiced offsets, in many
    languages).  Synthesizers stop crisply, so a model trained on them alone
    ends the word where the voicing ends and gives the breath to the pause.
    Here the noise is white noise through the phone's last spectrum, 3-15 dB
    under it, fading by 15-30 dB, inside the pause (which shrinks).
    """
    out = [s for s in phones if s.end > s.start]
    y = np.array(x, np.float32, copy=True)
    for i in range(len(out) - 1):
        s, pause = out[i], out[i + 1]
        if is_silence(s.label) or not is_silence(pause.label) or rng.random() >= p:
            continue
        try:
            last = phone_parts(s.label)[-1]
        except KeyError:
            continue
        if last.manner not in VOICED_SONORANTS or last.voice != "voiced":
            continue
        a, b = int(s.start * SAMPLE_RATE), min(len(y), int(s.end * SAMPLE_RATE))
        room = int((pause.end - pause.start) * SAMPLE_RATE) - int(0.04 * SAMPLE_RATE)
        n = min(int(rng.uniform(0.03, 0.15) * SAMPLE_RATE), room, len(y) - b)
        if b - a < 400 or n < int(0.02 * SAMPLE_RATE):
            continue
        ref = y[b - 400:b].astype(np.float64)  # the phone's last 25 ms
        level = np.sqrt(np.mean(ref ** 2) + 1e-12)
        envelope = np.abs(np.fft.rfft(ref * np.hanning(len(ref)), 2 * n))
        envelope = np.convolve(envelope, np.ones(5) / 5, mode="same")  # the mouth's colour, not its harmonics
        noise = np.fft.irfft(np.fft.rfft(rng.standard_normal(2 * n)) * envelope, 2 * n)[:n]
        gain_db = -rng.uniform(3, 15) - np.linspace(0, rng.uniform(15, 30), n)
        tail = noise / (noise.std() + 1e-12) * level * 10 ** (gain_db / 20)
        ramp = min(80, n)  # 5 ms in, so the join does not click
        tail[:ramp] *= np.linspace(0, 1, ramp)
        y[b:b + n] += tail.astype(np.float32)
        grow = n / SAMPLE_RATE
        out[i] = Segment(s.label, s.start, s.end + grow)
        out[i + 1] = Segment(pause.label, pause.start + grow, pause.end)
    return y, out


def add_floor_noise(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A background 35-70 dB below the speech (white to brown), so no clip has digital silence in its pauses."""
    n = len(x)
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.maximum(np.fft.rfftfreq(n, 1 / SAMPLE_RATE), 20.0)
    noise = np.fft.irfft(spec / f ** (rng.uniform(0, 2) / 2), n)
    loud = np.abs(x) > 0.05 * (np.max(np.abs(x)) + 1e-9)
    speech_rms = np.sqrt(np.mean(x[loud].astype(np.float64) ** 2) + 1e-12)
    snr_db = rng.uniform(35, 70)
    return (x + noise / (noise.std() + 1e-12) * speech_rms * 10 ** (-snr_db / 20)).astype(np.float32)


# -- dataset ---------------------------------------------------------------------------------------

@dataclass
class Clip:
    feats: np.ndarray  # (T, 80) float16 (`universal.normalize_features`)
    targets: np.ndarray  # (T, 7) uint8
    starts: np.ndarray  # (T,) uint8
    group: str
    phones: list[Segment] | None = None  # kept for validation clips (alignment scores)


def clip_from(samples: np.ndarray, phones: list[Segment], group: str, keep_phones: bool = False) -> Clip:
    from toolkit.alignment.universal import normalize_features

    n = n_frames_for(samples.size)
    tgt, starts = frame_targets(phones, n)
    return Clip(normalize_features(log_mel(samples)).astype(np.float16), tgt, starts, group,
                clean_segments(phones) if keep_phones else None)


def _real_english() -> list[tuple[np.ndarray, list[Segment], str]]:
    from toolkit.train.audio2face import REAL_SPEECH, real_aligned_speech

    if not REAL_SPEECH.is_dir():
        return []
    return [(x, p, f"real:{name}") for name, x, p in real_aligned_speech()]


def build_dataset(cache: Path, n_espeak: int, n_festival: int, n_english: int, n_aug: int, real_repeats: int,
                  n_val: int, seed: int, progress: bool = True) -> tuple[list[Clip], list[Clip], dict]:
    """Generate (or load from ``cache``) the training and validation clips."""
    from toolkit.train.audio2face import TRAIN_VARIANTS, VAL_VARIANTS, augment
    from toolkit.train.voices import festival_voices, flite_voices, synth_festival, synth_flite
    from toolkit.train.speech import ESPEAK_HELD_OUT, festival_lang_voices, synth_espeak, synth_festival_langs

    fest_langs, fest_held = festival_lang_voices(), festival_lang_voices(held_out=True)
    english = (festival_voices(), flite_voices())
    key = json.dumps([DATA_VERSION, n_espeak, n_festival, n_english, n_aug, real_repeats, n_val, seed, fest_langs,
                      fest_held, english, HEADS])
    path = cache / f"data-{hashlib.sha1(key.encode()).hexdigest()[:10]}.npz"
    if path.exists():
        return _load(path)
    rng = np.random.default_rng(seed)
    sources = [synth_espeak(n_espeak, seed, variants=TRAIN_VARIANTS, progress=progress)]
    sources.append(synth_festival_langs(n_festival, seed + 1, voices=fest_langs, progress=progress))
    sources.append(synth_festival(n_english // 2, seed + 2, progress=progress))
    sources.append(synth_flite(n_english - n_english // 2, seed + 3, progress=progress))
    train: list[Clip] = []
    real = [(x, p, g, real_repeats) for x, p, g in _real_english()]
    for x, p, g, reps in [(x, p, g, n_aug) for src in sources for x, p, g in src] + real:
        synthetic = not g.startswith("real:")
        for k in range(1 + reps):  # the clean version (with a quiet background), then degraded ones
            y, q = breathy_tails(fade_edges(x, p, rng), p, rng) if synthetic else (x, p)
            if k:
                y, q, _ = augment(y, q, rng)
            train.append(clip_from(add_floor_noise(y, rng) if synthetic else y, q, g))
    val: list[Clip] = []
    val_rng = np.random.default_rng(seed + 100)
    held = [synth_espeak(n_val, seed + 1000, langs=ESPEAK_HELD_OUT, variants=VAL_VARIANTS, progress=progress),
            synth_festival_langs(n_val // 2, seed + 1001, voices=fest_held, progress=progress)]
    for src in held:
        for x, p, g in src:
            y = fade_edges(x, p, val_rng)
            val.append(clip_from(add_floor_noise(y, val_rng), p, g, keep_phones=True))
            y, q, _ = augment(y, p, val_rng)
            val.append(clip_from(add_floor_noise(y, val_rng), q, g + ":aug", keep_phones=True))
    hours = lambda clips, pre: sum(c.starts.size for c in clips if c.group.startswith(pre)) / 100 / 3600  # noqa: E731
    info = {"n_train_clips": len(train), "n_val_clips": len(val), "train_hours": hours(train, ""),
            "hours": {k: round(hours(train, k), 2) for k in ("espeak", "festival", "fest:", "flite", "real")},
            "festival_lang_voices": fest_langs, "festival_held_out": fest_held, "english_voices": english}
    _save(path, train, val, info)
    return train, val, info


def _save(path: Path, train: list[Clip], val: list[Clip], info: dict) -> None:
    arrays = {"info": np.array(json.dumps(info))}
    for name, clips in (("train", train), ("val", val)):
        arrays[f"{name}_feats"] = np.concatenate([c.feats for c in clips])
        arrays[f"{name}_targets"] = np.concatenate([c.targets for c in clips])
        arrays[f"{name}_starts"] = np.concatenate([c.starts for c in clips])
        arrays[f"{name}_lens"] = np.array([c.starts.size for c in clips])
        arrays[f"{name}_groups"] = np.array([c.group for c in clips])
    arrays["val_phones"] = np.array(json.dumps([[[s.label, s.start, s.end] for s in c.phones] for c in val]))
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: np.savez(tmp, **arrays))


def _load(path: Path):
    d = np.load(path)
    out = []
    for name in ("train", "val"):
        ends = np.cumsum(d[f"{name}_lens"])
        starts = ends - d[f"{name}_lens"]
        f, t, s, g = d[f"{name}_feats"], d[f"{name}_targets"], d[f"{name}_starts"], d[f"{name}_groups"]
        out.append([Clip(f[a:b], t[a:b], s[a:b], str(gg)) for a, b, gg in zip(starts, ends, g)])
    for c, ph in zip(out[1], json.loads(str(d["val_phones"]))):
        c.phones = [Segment(lab, a, b) for lab, a, b in ph]
    return out[0], out[1], json.loads(str(d["info"]))


# -- the network (torch, training only) ------------------------------------------------------------

def build_network(channels: int = 160, dilations: tuple[int, ...] = (1, 2, 4, 1, 2, 4, 1, 2), kernel: int = 5):
    """The torch twin of `toolkit.alignment.universal.FrameClassifier` (same layers, exported by `export_arrays`)."""
    import torch

    nn = torch.nn

    class Block(nn.Module):
        def __init__(self, d):
            super().__init__()
            self.dw = nn.Conv1d(channels, channels, kernel, padding=(kernel // 2) * d, dilation=d, groups=channels)
            self.bn = nn.BatchNorm1d(channels)
            self.pw = nn.Conv1d(channels, channels, 1)

        def forward(self, x):
            return x + self.pw(torch.relu(self.bn(self.dw(x))))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("mean", torch.zeros(N_IN))
            self.register_buffer("std", torch.ones(N_IN))
            self.inp = nn.Conv1d(N_IN, channels, 3, padding=1)
            self.blocks = nn.ModuleList([Block(d) for d in dilations])
            self.out = nn.Conv1d(channels, N_OUT, 1)
            self.dilations = dilations

        def forward(self, x):  # (B, T, N_IN) -> (B, T, N_OUT)
            h = self.inp(((x - self.mean) / self.std).transpose(1, 2))
            for b in self.blocks:
                h = b(h)
            return self.out(torch.relu(h)).transpose(1, 2)

    return Net()


def export_arrays(net) -> dict[str, np.ndarray]:
    """Numpy arrays for `FrameClassifier` (batch norm folded into the depthwise convolutions)."""
    g = lambda t: t.detach().cpu().numpy().astype(np.float32)  # noqa: E731
    a = {"mean": g(net.mean), "std": g(net.std), "dilations": np.array(net.dilations, np.int32)}
    w = g(net.inp.weight)  # (C, N_IN, 3) -> (C, 3 * N_IN), frame-major like the numpy input windows
    a["in_w"], a["in_b"] = w.transpose(0, 2, 1).reshape(w.shape[0], -1), g(net.inp.bias)
    for k, b in enumerate(net.blocks):
        scale = g(b.bn.weight) / np.sqrt(g(b.bn.running_var) + b.bn.eps)
        a[f"dw{k}_w"] = g(b.dw.weight)[:, 0, :] * scale[:, None]
        a[f"dw{k}_b"] = (g(b.dw.bias) - g(b.bn.running_mean)) * scale + g(b.bn.bias)
        a[f"pw{k}_w"], a[f"pw{k}_b"] = g(b.pw.weight)[:, :, 0], g(b.pw.bias)
    a["out_w"], a["out_b"] = g(net.out.weight)[:, :, 0], g(net.out.bias)
    return a


def import_arrays(net, arrays: dict[str, np.ndarray]) -> None:
    """Load `export_arrays` output back into the torch network (to continue training; batch norm starts as identity)."""
    import torch

    t = lambda k: torch.from_numpy(np.asarray(arrays[k], np.float32))  # noqa: E731
    with torch.no_grad():
        net.mean.copy_(t("mean"))
        net.std.copy_(t("std"))
        c = net.inp.weight.shape[0]
        net.inp.weight.copy_(t("in_w").reshape(c, 3, -1).permute(0, 2, 1))
        net.inp.bias.copy_(t("in_b"))
        for k, b in enumerate(net.blocks):
            b.dw.weight.copy_(t(f"dw{k}_w")[:, None, :])
            b.dw.bias.copy_(t(f"dw{k}_b"))
            b.bn.running_mean.zero_(), b.bn.running_var.fill_(1.0 - b.bn.eps), b.bn.weight.fill_(1.0), b.bn.bias.zero_()
            b.pw.weight.copy_(t(f"pw{k}_w")[:, :, None])
            b.pw.bias.copy_(t(f"pw{k}_b"))
        net.out.weight.copy_(t("out_w")[:, :, None])
        net.out.bias.copy_(t("out_b"))


def save_weights(arrays: dict[str, np.ndarray], path: Path, meta: dict) -> None:
    """Write the weights as float16 (the dilations as integers) with the recipe in ``meta``."""
    out = {k: (v if k == "dilations" else v.astype(np.float16)) for k, v in arrays.items()}
    out["meta"] = np.array(json.dumps(meta))
    atomic_write(path, lambda tmp: np.savez_compressed(tmp, **out))


def average_weights(paths: list[Path], out: Path) -> None:
    """A weight average ("model soup") of runs of one architecture, e.g. a run and its continuation.

    Each array is averaged in float32 and stored as float16; the feature priors are the last
    file's (the data its run saw last).  ``meta`` keeps every source's recipe.
    """
    runs = []
    for p in paths:
        with np.load(p, allow_pickle=False) as z:
            runs.append({k: z[k] for k in z.files})
    keys = [k for k in runs[0] if k != "meta" and not k.startswith("prior_")]
    if any(set(keys) - set(r) or any(r[k].shape != runs[0][k].shape for k in keys) for r in runs):
        raise ValueError(f"{', '.join(map(str, paths))}: not the same architecture; cannot average")
    arrays = {k: runs[0][k] if k == "dilations" else np.mean([r[k].astype(np.float32) for r in runs], axis=0)
              for k in keys}
    arrays.update({k: v for k, v in runs[-1].items() if k.startswith("prior_")})
    meta = {"average_of": [{"file": p.name, "meta": json.loads(str(r["meta"])) if "meta" in r else {}}
                           for p, r in zip(paths, runs)]}
    save_weights(arrays, out, meta)


# -- evaluation --------------------------------------------------------------------------------------

def pause_words(phones: list[Segment], min_pause_s: float = 0.03) -> list[tuple[str, list[str]]]:
    """A clip's phones as the aligner gets a transcript: words broken where the speech pauses (a pause
    of at least ``min_pause_s``), so the alignment may place a pause there as it does between words."""
    groups: list[list[str]] = [[]]
    for s in phones:
        if s.label:
            groups[-1].append(s.label)
        elif groups[-1] and s.end - s.start >= min_pause_s:
            groups.append([])
    return [("w", g) for g in groups if g]


def alignment_errors(classifier, clips: list[Clip]) -> dict[str, tuple[float, float]]:
    """Per validation group kind: (mean boundary error in ms, share within 20 ms) of forced alignment."""
    from toolkit.alignment.universal import _align_piece

    res: dict[str, list[float]] = {}
    for c in clips:
        ref = [s for s in c.phones if s.label]
        if not ref:
            continue
        out = classifier.infer(c.feats.astype(np.float32))
        words = pause_words(c.phones)
        try:
            piece = _align_piece(out, 0, out.n_frames, words, len(c.starts) * HOP / SAMPLE_RATE)[0]
        except ValueError:
            continue
        if len(piece.phones) != len(ref):
            continue
        kind = c.group.split(":")[0] + (":aug" if c.group.endswith(":aug") else "")
        errs = res.setdefault(kind, [])
        for r, h in zip(ref, piece.phones):
            errs += [abs(h.start - r.start), abs(h.end - r.end)]
    return {k: (1000 * float(np.mean(v)), float(np.mean(np.array(v) <= 0.02))) for k, v in res.items()}


# -- training ----------------------------------------------------------------------------------------

SOURCES = ("espeak", "festival:", "fest:", "flite", "real")


def crop_sampler(clips: list[Clip], mix: dict[str, float], crop: int, rng: np.random.Generator):
    """A function giving crop start frames in the concatenated clips, each source (`SOURCES`) drawn with
    its share in ``mix`` (a source without clips is left out); within a source, uniform over its frames."""
    lens = np.array([c.starts.size for c in clips])
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
    total = int(lens.sum())
    groups = []
    for src in SOURCES:
        idx = np.array([i for i, c in enumerate(clips) if c.group.startswith(src)], int)
        if len(idx) and mix.get(src, 0) > 0:
            groups.append((mix[src], idx, np.cumsum(lens[idx])))
    if not groups:
        return lambda n: rng.integers(0, total - crop, size=n)
    w = np.array([g[0] for g in groups]) / sum(g[0] for g in groups)

    def draw(n: int) -> np.ndarray:
        out = np.empty(n, int)
        for k, gi in enumerate(rng.choice(len(groups), size=n, p=w)):
            _, idx, cum = groups[gi]
            pos = int(rng.integers(0, cum[-1]))
            j = int(np.searchsorted(cum, pos, side="right"))
            out[k] = min(starts[idx[j]] + pos - (cum[j - 1] if j else 0), total - crop - 1)
        return out

    return draw


def train(train_clips: list[Clip], val_clips: list[Clip], *, minutes: float, max_steps: int, seed: int, batch: int,
          crop: int, lr: float, channels: int, warp: float, log=print, progress: bool = True, init=None,
          mix: dict[str, float] | None = None):
    """Fit the network; returns (numpy arrays of the best checkpoint by validation alignment, history).

    ``init``: arrays of earlier weights (`export_arrays`) to continue from instead of starting afresh;
    ``mix``: the share of crops drawn from each source (`crop_sampler`), default in proportion to its frames.
    """
    import torch

    from toolkit.alignment.universal import FrameClassifier
    from toolkit.train.audio2face import warp_bands

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    feats = np.concatenate([c.feats for c in train_clips]).astype(np.float32)
    targets = np.concatenate([c.targets for c in train_clips]).astype(np.int64)
    starts = np.concatenate([c.starts for c in train_clips]).astype(np.float32)
    net = build_network(channels)
    if init is not None:
        import_arrays(net, init)
    else:
        with torch.no_grad():
            net.mean.copy_(torch.from_numpy(feats.mean(0)))
            net.std.copy_(torch.from_numpy(feats.std(0) + 1e-3))
    sizes = [len(FEATURE_VALUES[h]) for h in HEADS]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    pos_weight = torch.tensor(float((1 - starts.mean()) / max(starts.mean(), 1e-3)) ** 0.5)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    # every other clip is a degraded copy: take clean and degraded ones alike
    val_sub = [c for k, c in enumerate(val_clips) if (k // 2) % max(1, len(val_clips) // 120) == 0]
    best, best_arrays, history = -1e9, None, []
    t0 = time.time()
    draw = crop_sampler(train_clips, mix or {}, crop, rng)
    # the class frequencies the network sees (through the mix): the priors `FrameClassifier.infer` divides by
    seen = targets[draw(2000)[:, None] + np.arange(crop)[None]].reshape(-1, len(HEADS))
    priors = {f"prior_{h}": (np.bincount(seen[:, i], minlength=len(FEATURE_VALUES[h])) + 1.0) / (len(seen) + 1.0)
              for i, h in enumerate(HEADS)}
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=max_steps, desc="training", unit="step")
    eval_every = max(100, max_steps // 10)
    for step in range(1, max_steps + 1):
        net.train()
        s0 = draw(batch)
        idx = s0[:, None] + np.arange(crop)[None]
        fb = feats[idx]
        if warp > 0:  # vocal tract length: formants of other speakers sit higher or lower (both views alike)
            f = rng.uniform(1 - warp, 1 + warp, size=batch)
            fb = np.concatenate([warp_bands(fb[..., :40], f), warp_bands(fb[..., 40:], f)], axis=2)
        fb = fb.copy()
        for k in range(batch):  # one band mask of up to 4 mels (in both views), filled with the crop's mean
            w_, f0 = int(rng.integers(1, 5)), int(rng.integers(0, 40 - 4))
            for v in (0, 40):
                fb[k, :, v + f0:v + f0 + w_] = fb[k, :, v + f0:v + f0 + w_].mean()
        fb += rng.normal(0, 0.15, size=(batch, 1, fb.shape[2])).astype(np.float32)  # left-over channel colour
        z = net(torch.from_numpy(fb))
        yt = torch.from_numpy(targets[idx])
        loss = 0.0
        for h, (a, b) in enumerate(zip(offsets[:-1], offsets[1:])):
            loss = loss + torch.nn.functional.cross_entropy(z[..., a:b].reshape(-1, b - a), yt[..., h].reshape(-1),
                                                            label_smoothing=0.05)
        loss = loss + torch.nn.functional.binary_cross_entropy_with_logits(
            z[..., -1], torch.from_numpy(starts[idx]), pos_weight=pos_weight)
        done = max(step / max_steps, (time.time() - t0) / (minutes * 60))
        for g_ in opt.param_groups:
            g_["lr"] = lr * (1.0 if init is not None else min(1.0, step / 200)) * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, done))))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
        timed_out = (time.time() - t0) > minutes * 60
        if step % eval_every == 0 or step == max_steps or timed_out:
            net.eval()
            arrays = {**export_arrays(net), **{k: v.astype(np.float32) for k, v in priors.items()}}
            m = alignment_errors(FrameClassifier(arrays), val_sub)
            score = np.mean([v[1] for v in m.values()])  # share within 20 ms: robust to a few wild clips
            history.append({"step": step, "minutes": round((time.time() - t0) / 60, 1), "loss": loss.item(),
                            **{k: [round(v[0], 1), round(v[1], 3)] for k, v in m.items()}})
            log(f"step {step} loss {loss.item():.3f}: " + "  ".join(f"{k} {v[0]:.1f} ms {100 * v[1]:.0f} %"
                                                                    for k, v in sorted(m.items())))
            if score > best:
                best, best_arrays = score, arrays
        if timed_out:
            log(f"time budget of {minutes} min reached at step {step}")
            break
    if bar is not None:
        bar.close()
    return best_arrays, history


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m toolkit.train.aligner", description=__doc__.split("\n\n")[0])
    ap.add_argument("-o", "--out", default=str(OUT), help="weights file to write (.npz)")
    ap.add_argument("--minutes", type=float, default=35.0, help="training time budget (wall clock)")
    ap.add_argument("--steps", type=int, default=4000, help="maximum optimizer steps (sets the LR schedule)")
    ap.add_argument("--n-espeak", type=int, default=3000, help="espeak-ng utterances (training languages)")
    ap.add_argument("--n-festival", type=int, default=2500, help="festival utterances, non-English voices")
    ap.add_argument("--n-english", type=int, default=1000, help="festival + flite English utterances")
    ap.add_argument("--n-aug", type=int, default=1, help="degraded copies per synthetic utterance (plus the clean one)")
    ap.add_argument("--real-repeats", type=int, default=10, help="degraded copies per real recording")
    ap.add_argument("--n-val", type=int, default=200, help="held-out espeak-ng utterances (half as many festival)")
    ap.add_argument("--batch", type=int, default=24)
    ap.add_argument("--crop", type=int, default=300, help="frames per training crop (10 ms each)")
    ap.add_argument("--channels", type=int, default=160)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--warp", type=float, default=0.12, help="vocal tract length perturbation: mel axis x (1 +- warp)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1,
                    help="CPU threads for torch (1: on a shared machine a second thread mostly waits)")
    ap.add_argument("--init", help="continue from these weights (.npz) instead of starting afresh")
    ap.add_argument("--mix", default="espeak=0.3,festival:=0.4,fest:=0.1,flite=0.1,real=0.1",
                    help="share of training crops per source (espeak, festival: non-English festival, fest: English "
                         "festival, flite, real); empty: in proportion to their frames")
    ap.add_argument("--cache", default=str(CACHE))
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--data-only", action="store_true", help="generate and cache the data, do not train")
    ap.add_argument("--average", nargs="+", metavar="NPZ",
                    help="write the average of these weight files (same architecture) instead of training")
    a = ap.parse_args(argv)
    if a.average:
        average_weights([Path(p) for p in a.average], Path(a.out))
        print(f"wrote {a.out}: the average of {', '.join(a.average)}")
        return 0

    import torch

    torch.set_num_threads(max(1, a.threads))
    random.seed(a.seed)
    t0 = time.time()
    tr, va, info = build_dataset(Path(a.cache), a.n_espeak, a.n_festival, a.n_english, a.n_aug, a.real_repeats,
                                 a.n_val, a.seed, progress=not a.quiet)
    data_min = (time.time() - t0) / 60
    print(f"data: {info['n_train_clips']} training clips ({info['train_hours']:.2f} h: {info['hours']}), "
          f"{info['n_val_clips']} validation clips, {data_min:.1f} min", flush=True)
    if a.data_only:
        return 0
    t1 = time.time()
    init = None
    if a.init:
        with np.load(a.init) as z:
            init = {k: z[k] for k in z.files if k != "meta"}
    arrays, history = train(tr, va, minutes=a.minutes, max_steps=a.steps, seed=a.seed, batch=a.batch, crop=a.crop,
                            lr=a.lr, channels=a.channels, warp=a.warp, log=lambda s: print(s, flush=True),
                            progress=not a.quiet, init=init,
                            mix={k: float(v) for k, v in (x.split("=") for x in a.mix.split(",") if x)})
    from toolkit.alignment.universal import FrameClassifier

    n_params = FrameClassifier(arrays).n_params
    meta = {"data": info, "args": vars(a), "history": history, "n_params": n_params,
            "data_minutes": round(data_min, 1), "train_minutes": round((time.time() - t1) / 60, 1)}
    save_weights(arrays, Path(a.out), meta)
    print(f"wrote {a.out} ({os.path.getsize(a.out) / 1e6:.2f} MB, {n_params} parameters)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
