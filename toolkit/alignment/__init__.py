"""Forced alignment: timed words and IPA phonemes for speech and its transcript.

`align` picks the method: PocketSphinx's US-English acoustic model
(`toolkit.alignment.pocketsphinx`, every language: non-English phones are mapped
to their nearest English phone for timing), an external Montreal Forced
Aligner (`toolkit.alignment.mfa`, ``method="mfa"``), or, when all else fails,
`even_alignment`, which spreads the words over the detected speech.  Praat
TextGrids are read and written by `toolkit.alignment.textgrid`;
`toolkit.alignment.refine` masks noise bursts before decoding and moves phone
boundaries to nearby spectral changes after it.

An `Alignment` never hides trouble: ``confidence`` (0..1) drops and
``warnings`` say why when words had to be squeezed, guessed or spread evenly.

    result.py        `Alignment`: timed phonemes and words, a confidence, the method, warnings
    even.py          loudness-based speech regions and the even spread (the fallback)
    pocketsphinx.py  PocketSphinx forced alignment, chunked at pauses
    refine.py        boundaries moved to loudness crossings and spectral change
    textgrid.py      Praat / Montreal Forced Aligner TextGrids in and out
    mfa.py           an external `mfa` on PATH
    tts.py           espeak-ng speech with its exact phoneme events
"""
from __future__ import annotations

import numpy as np

from toolkit.alignment.even import even_alignment, phone_weight, speech_regions
from toolkit.alignment.result import EVEN_CONFIDENCE, Alignment, _word_parts

__all__ = ["Alignment", "align", "even_alignment", "speech_regions", "phone_weight", "METHODS", "EVEN_CONFIDENCE"]

METHODS = ("auto", "pocketsphinx", "mfa", "even")


def align(samples: np.ndarray, sample_rate: int, words, lang: str = "en", *, method: str = "auto",
          source: str = "audio") -> Alignment:
    """Align a transcript to speech.

    samples: mono float32 audio; sample_rate: its rate (resampled to 16 kHz
    when different); words: a transcript string, or the `Word` list of
    `toolkit.phonemes.g2p.words_to_phonemes`; source: the file name used in
    warnings.  ``method="auto"`` uses PocketSphinx (which itself falls back to
    `even_alignment` per chunk, with warnings, when decoding fails).

    >>> import numpy as np
    >>> al = align(np.zeros(16000, np.float32), 16000, "hello")  # doctest: +SKIP
    """
    if method not in METHODS:
        raise ValueError(f"unknown alignment method {method!r}; choose one of {', '.join(METHODS)}")
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim != 1:
        raise ValueError(f"{source}: expected mono samples, got shape {samples.shape}")
    if sample_rate != 16000:
        from toolkit.audio import resample

        samples = resample(samples, sample_rate, 16000)
        sample_rate = 16000
    if isinstance(words, str):
        from toolkit.phonemes.g2p import words_to_phonemes

        words = words_to_phonemes(words, lang=lang)
    words = list(words)
    if method == "even":
        return even_alignment(words, len(samples) / sample_rate, samples=samples, sample_rate=sample_rate)
    if method == "mfa":
        from toolkit.alignment.mfa import align_mfa

        return align_mfa(samples, sample_rate, [_word_parts(w)[0] for w in words])
    from toolkit.alignment.pocketsphinx import align_pocketsphinx

    return align_pocketsphinx(samples, sample_rate, words, lang=lang, source=source)
