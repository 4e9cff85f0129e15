"""Speech material for the scale benches: short voice lines and hour-long recordings, with transcripts.

Made from two sources, so no recording is needed beyond what the project already has:

* the English clips of ``../shared/data/speech/transcribed`` (real speakers, their own
  transcripts; clips whose transcript carries markup such as ``<VOCNOISE>`` or ``[adif]``,
  and clips longer than `MAX_CLIP_S`, are left out), and
* espeak-ng speaking the same transcripts in several voices, variants and speaking rates
  (`toolkit.alignment.tts.synthesize`).

`voice_lines` gives N short lines (a studio's dialogue table: one file and one text per
line); `write_long_recording` lays pieces end to end with pauses of 0.3-1.2 s between
them (a lecture or a podcast: one file, one transcript) until the length asked for,
streaming to disk, so even the generator never holds an hour of audio.  Both are
seeded: the same arguments give the same files.

Example
-------
>>> pieces = espeak_pieces(["Bob made a map of Paris."], n=2)          # doctest: +SKIP
>>> write_long_recording(pieces, 60.0, "long.wav", "long.txt")         # doctest: +SKIP
"""
from __future__ import annotations

import csv
import random
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "speech"
TRANSCRIBED = SHARED / "transcribed"
MAX_CLIP_S = 30.0
SAMPLE_RATE = 16000
# espeak-ng voices and variants the lines are spoken in (English: the transcripts are English)
VOICES = ["en-us", "en", "en-gb-x-rp", "en-us+m3", "en-us+f2", "en-gb+m5", "en-us+f4", "en+m7", "en-us+klatt",
          "en-029", "en-gb-scotland", "en-us+f3"]
RATES_WPM = [150, 165, 175, 190, 210]
PAUSE_S = (0.3, 1.2)


@dataclass
class Piece:
    """One utterance: 16 kHz mono samples and what is said."""

    samples: np.ndarray
    text: str
    source: str

    @property
    def duration_s(self) -> float:
        return len(self.samples) / SAMPLE_RATE


def transcribed_clips(root: Path = TRANSCRIBED) -> list[tuple[Path, str]]:
    """(audio path, transcript) of the plain English clips under ``root`` (empty when absent)."""
    out = []
    for tsv in sorted(root.glob("*/transcripts.tsv")):
        with open(tsv, encoding="utf-8") as f:
            for row in csv.DictReader(f, delimiter="\t"):
                text = (row.get("transcript") or "").strip()
                if row.get("lang") != "en" or not text or re.search(r"[<>\[\]]", text):
                    continue
                path = next((q for q in (tsv.parent / row["file"], tsv.parent / "audio" / row["file"]) if q.is_file()),
                            None)
                if path is not None and path.suffix.lower() in (".wav", ".flac", ".mp3"):
                    out.append((path, text))
    return out


def real_pieces(root: Path = TRANSCRIBED) -> list[Piece]:
    """The clips of `transcribed_clips`, loaded (16 kHz mono)."""
    from toolkit.audio import load_audio

    out = []
    for path, text in transcribed_clips(root):
        x = load_audio(path)
        if len(x) / SAMPLE_RATE <= MAX_CLIP_S:
            out.append(Piece(x, text, str(path)))
    return out


def espeak_pieces(texts: list[str], n: int, seed: int = 0, voices: list[str] = VOICES) -> list[Piece]:
    """``n`` utterances of ``texts`` (cycled) in varied espeak-ng ``voices`` and rates."""
    from toolkit.alignment.tts import synthesize

    rng = random.Random(seed)
    out = []
    for i in range(n):
        text = texts[i % len(texts)]
        voice = rng.choice(voices)
        sp = synthesize(text, voice=voice, rate_wpm=rng.choice(RATES_WPM), pitch=rng.randint(35, 65))
        out.append(Piece(sp.samples, text, f"espeak-ng {voice}"))
    return out


# Spanish for the hour in another language (bench_scale): Cervantes, public domain.
SPANISH_SENTENCES = [
    "En un lugar de la Mancha, de cuyo nombre no quiero acordarme, no ha mucho tiempo que vivía un hidalgo.",
    "Una olla de algo más vaca que carnero, salpicón las más noches, duelos y quebrantos los sábados.",
    "Tenía en su casa una ama que pasaba de los cuarenta, y una sobrina que no llegaba a los veinte.",
    "Frisaba la edad de nuestro hidalgo con los cincuenta años; era de complexión recia, seco de carnes.",
    "Es, pues, de saber que este sobredicho hidalgo, los ratos que estaba ocioso, se daba a leer libros.",
    "En resolución, él se enfrascó tanto en su lectura, que se le pasaban las noches leyendo de claro en claro.",
]
SPANISH_VOICES = ["es", "es+m3", "es+f2", "es+f4", "es+m7", "es+klatt"]  # espeak-ng's Spanish, varied


def voice_lines(n: int, seed: int = 0, max_s: float = 6.0) -> list[Piece]:
    """``n`` short lines (about 3 s): the real clips up to ``max_s`` first, then espeak-ng
    speaking their transcripts (or a few built-in sentences when the shared data is absent);
    a short transcript gets a second one after it, so a line says about 40 characters or more."""
    real = [p for p in (real_pieces() if TRANSCRIBED.is_dir() else []) if p.duration_s <= max_s]
    texts = [p.text for p in real] or FALLBACK_SENTENCES
    rng = random.Random(seed)
    lines = real[:n]
    said = []
    for i in range(n - len(lines)):
        text = texts[i % len(texts)].rstrip(".")
        if len(text) < 40:
            text += ". " + rng.choice(texts)
        said.append(text)
    lines += espeak_pieces(said, len(said), seed)
    return lines


def write_long_recording(pieces: list[Piece], duration_s: float, wav: str | Path, txt: str | Path,
                         seed: int = 0, pause_s: tuple[float, float] = PAUSE_S) -> list[tuple[float, Piece]]:
    """Lay ``pieces`` (cycled, in a seeded shuffled order) end to end with pauses until ``duration_s``;
    write the audio (16 kHz PCM_16 WAV, streamed) and the transcript (one piece a line).
    Returns (start_s, piece) of each piece laid.

    The pauses hold quiet noise (about -66 dBFS), as a real room does, so nothing is digital silence."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    order: list[int] = []
    written, laid = 0, []
    target = int(duration_s * SAMPLE_RATE)
    with sf.SoundFile(str(wav), "w", SAMPLE_RATE, 1, "PCM_16") as f:
        while written < target:
            if not order:
                order = list(rng.permutation(len(pieces)))
            p = pieces[order.pop()]
            gap = int(rng.uniform(*pause_s) * SAMPLE_RATE)
            room = (rng.standard_normal(gap) * 5e-4).astype(np.float32)
            f.write(room)
            f.write(np.clip(p.samples, -1, 1))
            laid.append(((written + gap) / SAMPLE_RATE, p))
            written += gap + len(p.samples)
        tail = (rng.standard_normal(int(pause_s[0] * SAMPLE_RATE)) * 5e-4).astype(np.float32)
        f.write(tail)
    Path(txt).write_text("\n".join(p.text for _, p in laid) + "\n", encoding="utf-8")
    return laid


# Used only when ../shared/data is absent (Harvard sentences, public domain).
FALLBACK_SENTENCES = [
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It's easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.",
    "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.",
    "The hogs were fed chopped corn and garbage.",
    "Four hours of steady work faced us.",
    "A large size in stockings is hard to sell.",
]
