"""Forced alignment: timed words and IPA phonemes for speech and its transcript.

`align` picks the method (`auto_method`: the one place that chooses, with its
reasons): PocketSphinx's US-English acoustic model
(`toolkit.alignment.pocketsphinx`) for English, the any-language aligner
(`toolkit.alignment.universal`: a frame classifier of phonological features and
Viterbi over the transcript's IPA phones) for every other language and for IPA
transcripts, an external Montreal Forced Aligner (`toolkit.alignment.mfa`,
``method="mfa"``), or, when all else fails, `even_alignment`, which spreads the
words over the detected speech.  Praat
TextGrids are read and written by `toolkit.alignment.textgrid`;
`toolkit.alignment.refine` masks noise bursts before decoding and moves phone
boundaries to nearby spectral changes after it.

An `Alignment` never hides trouble: ``confidence`` (0..1) drops and
``warnings`` say why when words had to be squeezed, guessed or spread evenly.

    result.py        `Alignment`: timed phonemes and words, a confidence, the method, warnings
    even.py          loudness-based speech regions and the even spread (the fallback)
    pocketsphinx.py  PocketSphinx forced alignment, chunked at pauses
    universal.py     any language: phonological-feature frame classifier + Viterbi over IPA phones
    refine.py        boundaries moved to loudness crossings and spectral change
    textgrid.py      Praat / Montreal Forced Aligner TextGrids in and out
    mfa.py           an external `mfa` on PATH
    tts.py           espeak-ng speech with its exact phoneme events
"""
from __future__ import annotations

import numpy as np

from toolkit.alignment.even import even_alignment, phone_weight, speech_regions
from toolkit.alignment.result import EVEN_CONFIDENCE, Alignment, _word_parts

__all__ = ["Alignment", "align", "auto_method", "even_alignment", "speech_regions", "phone_weight", "METHODS",
           "EVEN_CONFIDENCE"]

METHODS = ("auto", "pocketsphinx", "universal", "mfa", "even")

# The choice of ``method="auto"``, and why (both measured in the same run by bench/bench_multilingual.py,
# which also scores both on TIMIT; figures in README "Languages and IPA"):
# * English text: PocketSphinx.  Its US-English acoustic model with the CMU dictionary's pronunciation
#   variants, 200 frames/s and boundary refinement places TIMIT's boundaries better than the universal
#   aligner does.
# * Every other language, and IPA transcripts (any language, fictional ones too): the universal aligner.
#   On hand-corrected words in 15 languages it never heard it places boundaries better than PocketSphinx
#   with each phone mapped to its nearest English one.
POCKETSPHINX_LANGS = ("en", "en-us", "english", "en_us")


def auto_method(lang: str, words) -> str:
    """The aligner ``method="auto"`` uses: "pocketsphinx" or "universal" (reasons above).

    >>> from toolkit.phonemes.g2p import Word
    >>> auto_method("en", [Word("hello", ["h", "ə", "l", "oʊ"], "cmudict")]), auto_method("de", [])
    ('pocketsphinx', 'universal')
    >>> auto_method("en", [Word("hɛlo", ["h", "ɛ", "l", "o"], "ipa")])
    'universal'
    """
    if words and all(getattr(w, "source", "") == "ipa" for w in words):  # an IPA transcript: any language
        return "universal"
    return "pocketsphinx" if str(lang).strip().lower() in POCKETSPHINX_LANGS else "universal"


def align(samples: np.ndarray, sample_rate: int, words, lang: str = "en", *, method: str = "auto",
          source: str = "audio") -> Alignment:
    """Align a transcript to speech.

    samples: mono float32 audio, or a `toolkit.recording.Recording` of any length (PocketSphinx and the
    universal aligner read it block by block; the others read it whole); sample_rate: its rate (resampled to 16 kHz
    when different); words: a transcript string, or the `Word` list of
    `toolkit.phonemes.g2p.words_to_phonemes` / `words_from_ipa` (or (text, IPA
    phones) pairs); source: the file name used in warnings.  ``method="auto"``:
    `auto_method` (either aligner falls back to `even_alignment`, with warnings,
    where it cannot decode).

    >>> import numpy as np
    >>> al = align(np.zeros(16000, np.float32), 16000, "hello")  # doctest: +SKIP
    """
    if method not in METHODS:
        raise ValueError(f"unknown alignment method {method!r}; choose one of {', '.join(METHODS)}")
    from toolkit.recording import Recording

    if isinstance(samples, Recording):
        if isinstance(words, str):
            from toolkit.phonemes.g2p import words_to_phonemes

            words = words_to_phonemes(words, lang=lang)
        if method == "pocketsphinx" or (method == "auto" and auto_method(lang, list(words)) == "pocketsphinx"):
            from toolkit.alignment.pocketsphinx import align_pocketsphinx  # any length: read chunk by chunk

            return align_pocketsphinx(samples, 16000, words, lang=lang, source=source)
        if method in ("auto", "universal"):  # any length: read block by block, only its scores kept
            from toolkit.alignment.universal import align_universal

            return align_universal(samples, 16000, list(words), source=source)
        samples = samples.samples()
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
    if method == "auto":
        method = auto_method(lang, words)
    if method == "universal":
        from toolkit.alignment.universal import align_universal

        return align_universal(samples, sample_rate, words, source=source)
    from toolkit.alignment.pocketsphinx import align_pocketsphinx

    return align_pocketsphinx(samples, sample_rate, words, lang=lang, source=source)
