"""Training speech from voices made of real speakers: festival and flite, with exact phone times.

espeak-ng's formant synthesis is far from a human voice; festival's diphone
voices (kal, ked) are cut from recordings of real speakers, its HTS voice
(slt) and flite's clustergen voices (rms, awb, slt) are statistical models
trained on CMU ARCTIC recordings of real speakers.  Both engines know exactly
when each phone starts and ends, so their speech comes with perfect labels.
They speak US English only (awb with a Scottish accent).

Debian packages: ``festival festvox-kallpc16k festvox-kdlpc16k
festvox-us-slt-hts flite`` (`make train` installs them).  Without them
these sources yield nothing and training uses espeak-ng and real recordings.

Example
-------
>>> clips = list(synth_flite(2, seed=0, progress=False))   # doctest: +SKIP
>>> samples, phones, group = clips[0]                        # doctest: +SKIP
>>> group                                                    # doctest: +SKIP
'flite:rms'
"""
from __future__ import annotations

import ctypes
import functools
import random
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from toolkit.animation import Segment

SAMPLE_RATE = 16000

# Festival's and flite's US phone set (radio) beyond the CMU dictionary's ARPAbet
_RADIO_EXTRA = {"ax": "AH0", "axr": "ER0", "dx": "T", "nx": "N", "hv": "HH", "el": "L", "em": "M", "en": "N"}


def radio_to_ipa(phone: str) -> str:
    """A festival/flite phone name -> IPA ("" for pauses, breaths and anything not a speech sound)."""
    from toolkit.phonemes.inventory import arpabet_to_ipa

    try:
        return arpabet_to_ipa(_RADIO_EXTRA.get(phone, phone))[0]
    except (KeyError, IndexError):  # pau, h#, brth
        return ""


def segments_from_ends(ends: list[tuple[float, str]], to_ipa=radio_to_ipa) -> list[Segment]:
    """(end time, phone name) rows -> contiguous IPA segments from time 0 (``to_ipa``: the voice's phone set)."""
    out, t0 = [], 0.0
    for end, ph in ends:
        if end > t0:
            out.append(Segment(to_ipa(ph), t0, end))
        t0 = max(t0, end)
    return out


def _sentences(n_utts: int, rng: random.Random, words_seed: int) -> list[str]:
    from toolkit.train.sentences import english_words, make_sentence

    words = english_words(random.Random(words_seed))
    return [make_sentence("en-us", rng, words) for _ in range(n_utts)]


def _bar(n: int, desc: str, progress: bool):
    if not progress:
        return None
    from tqdm import tqdm

    return tqdm(total=n, desc=desc, unit="utt", leave=False)


# -- festival -----------------------------------------------------------------------------------------

FESTIVAL_VOICES = ["kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts"]


def installed_festival_voices() -> set[str]:
    """The names of the voices this machine's festival has (none without festival)."""
    if shutil.which("festival") is None:
        return set()
    roots = [Path("/usr/share/festival/voices"), Path("/usr/lib/festival/voices")]
    return {d.name for r in roots if r.is_dir() for d in r.glob("*/*") if d.is_dir()}


def festival_voices() -> list[str]:
    """The voices of FESTIVAL_VOICES that this machine's festival has (none without festival)."""
    have = installed_festival_voices()
    return [v for v in FESTIVAL_VOICES if v in have]


def read_segs(path: Path, encoding: str = "utf-8") -> list[tuple[float, str]]:
    """Festival's ``utt.save.segs`` / ``utt.save.words``: (end time, name) rows."""
    rows, body = [], False
    for line in path.read_text(encoding=encoding).splitlines():
        if line.strip() == "#":
            body = True
            continue
        parts = line.split()
        if body and len(parts) >= 3:
            rows.append((float(parts[0]), parts[2]))
    return rows


def festival_phones(segs_path: Path) -> list[Segment]:
    """Festival's ``utt.save.segs`` (end time, phone per line) -> IPA segments ("" for pauses)."""
    return segments_from_ends(read_segs(segs_path))


def synth_festival(n_utts: int, seed: int, progress: bool = True, batch: int = 40):
    """Yield (samples, phonemes, group) of festival speech with its own exact phone times."""
    from toolkit.audio import load_audio

    voices = festival_voices()
    if not voices or n_utts <= 0:
        return
    rng = random.Random(seed)
    texts = _sentences(n_utts, rng, 2)
    bar = _bar(n_utts, "festival", progress)
    with tempfile.TemporaryDirectory(prefix="viseme-festival-") as tmp:
        for b0 in range(0, n_utts, batch):
            jobs, lines = [], []
            for k in range(b0, min(n_utts, b0 + batch)):
                voice, stretch = rng.choice(voices), rng.uniform(0.75, 1.35)
                wav, segs = Path(tmp) / f"{k}.wav", Path(tmp) / f"{k}.segs"
                lines += [f"(voice_{voice})", f"(Parameter.set 'Duration_Stretch {stretch:.2f})",
                          f'(set! utt (Utterance Text "{texts[k]}"))', "(utt.synth utt)",
                          f'(utt.save.wave utt "{wav}" \'riff)', f'(utt.save.segs utt "{segs}")']
                jobs.append((voice, wav, segs))
            script = Path(tmp) / "batch.scm"
            script.write_text("\n".join(lines) + "\n")
            subprocess.run(["festival", "-b", str(script)], capture_output=True, timeout=600)
            for voice, wav, segs in jobs:
                if bar is not None:
                    bar.update(1)
                if not (wav.exists() and segs.exists()):
                    continue  # a sentence festival could not say: skip it
                x, phones = load_audio(wav), festival_phones(segs)
                if x.size >= SAMPLE_RATE // 4 and any(p.label for p in phones):
                    yield x, phones, f"fest:{voice}"
    if bar is not None:
        bar.close()


# -- flite (through libflite, ctypes) -----------------------------------------------------------------

# cmu_us_kal (8 kHz) is left out: kal16 is the same speaker at 16 kHz
FLITE_VOICES = ["rms", "awb", "slt", "kal16"]


class _Wave(ctypes.Structure):
    _fields_ = [("type", ctypes.c_char_p), ("sample_rate", ctypes.c_int), ("num_samples", ctypes.c_int),
                ("num_channels", ctypes.c_int), ("samples", ctypes.POINTER(ctypes.c_short))]


@functools.lru_cache(maxsize=1)
def _libflite():
    """libflite with the prototypes used here, or None when flite is not installed."""
    try:
        for dep in ("libflite.so.1", "libflite_usenglish.so.1", "libflite_cmulex.so.1"):
            ctypes.CDLL(dep, mode=ctypes.RTLD_GLOBAL)
        lib = ctypes.CDLL("libflite.so.1")
    except OSError:
        return None
    p, s, f = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_float
    for name, res, args in [("flite_init", ctypes.c_int, []), ("flite_synth_text", p, [s, p]),
                            ("utt_wave", ctypes.POINTER(_Wave), [p]), ("utt_relation", p, [p, s]),
                            ("relation_head", p, [p]), ("item_next", p, [p]),
                            ("ffeature_string", s, [p, s]), ("ffeature_float", f, [p, s]),
                            ("delete_utterance", None, [p]), ("feat_set_float", None, [p, s, f])]:
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, args
    lib.flite_init()
    return lib


@functools.lru_cache(maxsize=None)
def _flite_voice(name: str):
    """(the cst_voice pointer, its feature set) of an installed flite voice, or None."""
    try:
        vlib = ctypes.CDLL(f"libflite_cmu_us_{name}.so.1")
    except OSError:
        return None
    reg = getattr(vlib, f"register_cmu_us_{name}")
    reg.restype, reg.argtypes = ctypes.c_void_p, [ctypes.c_char_p]
    voice = reg(None)
    # struct cst_voice_struct { const char *name; cst_features *features; ... }
    feats = ctypes.cast(voice, ctypes.POINTER(ctypes.c_void_p))[1]
    return voice, feats


def flite_voices() -> list[str]:
    """The voices of FLITE_VOICES this machine's libflite has (none without flite)."""
    if _libflite() is None:
        return []
    return [v for v in FLITE_VOICES if _flite_voice(v) is not None]


def flite_synthesize(text: str, voice: str = "rms", stretch: float = 1.0, f0_shift: float = 1.0
                     ) -> tuple[np.ndarray, list[Segment]]:
    """Speak ``text`` with a flite voice: (16 kHz float32 samples, IPA phones with exact times).

    ``stretch`` scales durations (>1 slower); ``f0_shift`` scales the pitch.
    """
    lib, v = _libflite(), _flite_voice(voice)
    if lib is None or v is None:
        raise RuntimeError(f"flite voice {voice!r} is not installed (Debian package flite)")
    voice_p, feats = v
    lib.feat_set_float(feats, b"duration_stretch", float(stretch))
    # mean pitch: the diphone voice (kal16) follows it, the clustergen ones keep their own
    lib.feat_set_float(feats, b"int_f0_target_mean", 100.0 * float(f0_shift))
    utt = lib.flite_synth_text(text.encode("utf-8"), voice_p)
    if not utt:
        raise RuntimeError(f"flite could not say {text!r}")
    try:  # everything is copied out before the utterance (which owns the wave and the items) is freed
        w = lib.utt_wave(utt).contents
        channels, rate = int(w.num_channels), int(w.sample_rate)
        x = np.ctypeslib.as_array(w.samples, (w.num_samples * channels,)).astype(np.float32) / 32768.0
        rows = []
        it = lib.relation_head(lib.utt_relation(utt, b"Segment"))
        while it:
            rows.append((float(lib.ffeature_float(it, b"end")), lib.ffeature_string(it, b"name").decode()))
            it = lib.item_next(it)
    finally:
        lib.delete_utterance(utt)
    if channels > 1:
        x = x.reshape(-1, channels).mean(axis=1)
    if rate != SAMPLE_RATE:
        from toolkit.audio import resample

        x = resample(x, rate, SAMPLE_RATE)
    return x, segments_from_ends(rows)


def synth_flite(n_utts: int, seed: int, progress: bool = True):
    """Yield (samples, phonemes, group) of flite speech (random voice, rate 0.75-1.35x)."""
    voices = flite_voices()
    if not voices or n_utts <= 0:
        return
    rng = random.Random(seed)
    texts = _sentences(n_utts, rng, 3)
    bar = _bar(n_utts, "flite", progress)
    for text in texts:
        voice = rng.choice(voices)
        try:
            x, phones = flite_synthesize(text, voice, stretch=rng.uniform(0.75, 1.35), f0_shift=rng.uniform(0.8, 1.25))
        except RuntimeError:
            x, phones = np.zeros(0, np.float32), []
        if bar is not None:
            bar.update(1)
        if x.size >= SAMPLE_RATE // 4 and any(p.label for p in phones):
            yield x, phones, f"flite:{voice}"
    if bar is not None:
        bar.close()
