"""Words to phonemes: CMU dictionary and g2p-en for English, espeak-ng for ~100 other languages.

English words are looked up in the CMU Pronouncing Dictionary (first
pronunciation); unknown words go through the g2p-en neural model (its shipped
GRU weights, run here in numpy: importing `g2p_en` itself would try to download
NLTK data).  Other languages use espeak-ng's rules and dictionaries.
All phones are IPA labels as `inventory.split_ipa` cuts them.

Example
-------
>>> [(w.text, w.phones, w.source) for w in words_to_phonemes("Bob made a map")]  # doctest: +NORMALIZE_WHITESPACE
[('bob', ['b', 'ɑ', 'b'], 'cmudict'), ('made', ['m', 'eɪ', 'd'], 'cmudict'),
 ('a', ['ə'], 'cmudict'), ('map', ['m', 'æ', 'p'], 'cmudict')]
>>> english_arpabet("zorblaxing")
['Z', 'AO', 'R', 'B', 'AH', 'L', 'K', 'AE', 'S', 'IH', 'NG']
>>> ipa_for_text("Guten Tag", "de")
['ɡ', 'uː', 't', 'ə', 'n', 't', 'ɑː', 'k']
"""
from __future__ import annotations

import functools
import importlib.util
import os
import re
import unicodedata
from dataclasses import dataclass, field

import numpy as np

from toolkit.phonemes import cmu, espeak
from toolkit.phonemes.inventory import arpabet_to_ipa, split_ipa
from toolkit.phonemes.japanese import has_japanese_script, is_japanese, read_japanese
from toolkit.phonemes.scripts import reading_language
from toolkit.phonemes.text import tokens as text_tokens
from toolkit.phonemes.text import words as text_words

ENGLISH = ("en", "en-us", "english", "en_us", "en-US")


@dataclass
class Word:
    """One spoken word: its text, IPA phones, where they came from, and ARPAbet for English."""

    text: str
    phones: list[str]
    source: str  # "cmudict" | "g2p" | "espeak" | "ipa"
    arpabet: list[str] = field(default_factory=list)  # no stress digits (PocketSphinx's phone set)


def words_to_phonemes(text: str, lang: str = "en") -> list[Word]:
    """Normalize a transcript and give each word its phonemes.

    lang: "en" (American English: CMU dictionary + g2p-en) or any espeak-ng
    language code/name ("de", "fr", "cmn", "pt-br", "Japanese" ...).
    A word written ``word=IPA`` (no spaces) gets that pronunciation
    (`words_from_ipa`) instead of the dictionary's.
    Raises ValueError for a language espeak-ng does not know or an override
    whose IPA has a symbol the toolkit cannot place.

    >>> [(w.text, w.phones) for w in words_to_phonemes("hello Tbilisi=tʰbilisi")]
    [('hello', ['h', 'ə', 'l', 'oʊ']), ('Tbilisi', ['tʰ', 'b', 'i', 'l', 'i', 's', 'i'])]
    """
    half = HALF_OVERRIDE.search(text)
    if half:  # 'Tbilisi=' or '=tbilisi': meant as an override, it would be spoken as "Tbilisi equals"
        raise ValueError(f"{half.group(0)!r}: a word=IPA override needs the word before '=' and its IPA after it, "
                         "with no spaces (e.g. Tbilisi=tʰbilisi)")
    if OVERRIDE.search(text):
        out: list[Word] = []
        pos = 0
        for m in OVERRIDE.finditer(text):
            out += words_to_phonemes(text[pos:m.start()], lang) if text[pos:m.start()].strip() else []
            out.append(Word(m.group(1), words_from_ipa(m.group(2))[0].phones, "ipa"))
            pos = m.end()
        return out + (words_to_phonemes(text[pos:], lang) if text[pos:].strip() else [])
    if _is_english(lang):
        return [x for w in text_words(text, "en")
                for x in ([_english_word(w)] if reading_language(w, "en") == "en" else _foreign_words(w, "en"))]
    code = espeak.espeak_voice(lang)  # ValueError for an unknown language
    out = []
    for w, said in espeak_words(text, code):
        if reading_language(w, code) != code:
            out += _foreign_words(w, code)
            continue
        phones = _espeak_phones(said, code)
        if phones:
            out.append(Word(w, phones, "espeak"))
    return out


def _foreign_words(word: str, lang: str) -> list[Word]:
    """A word in a script ``lang`` is not written in, read in a language that writes it
    (`toolkit.phonemes.scripts`), with English phone names for PocketSphinx when the line is English."""
    words = words_to_phonemes(word, reading_language(word, lang))
    if not _is_english(lang):
        return words
    return [Word(w.text, w.phones, w.source, w.arpabet or [_to_arpabet(p) for p in w.phones]) for w in words]


# ``word=IPA`` in a transcript: the word as written, and its pronunciation (no spaces in either)
OVERRIDE = re.compile(r"(?<!\S)([^\s=]+)=(\S+)")
HALF_OVERRIDE = re.compile(r"(?<!\S)(?:[^\s=]+=|=[^\s=]+)(?!\S)")  # one side missing ('a = b' is text)


def words_from_ipa(ipa: str) -> list[Word]:
    """An IPA transcription (words separated by spaces) as `Word` s; the IPA text is each word's text.

    Raises ValueError naming a symbol the toolkit cannot place (`toolkit.phonemes.ipa.parse_ipa`).

    >>> [(w.text, w.phones) for w in words_from_ipa("ˈt͡ʃao ˈbɛl.la")]
    [('t͡ʃao', ['tʃ', 'a', 'o']), ('bɛl.la', ['b', 'ɛ', 'l', 'l', 'a'])]
    """
    from toolkit.phonemes.ipa import parse_ipa

    return [Word(w.text.replace("ˈ", "").replace("ˌ", ""), w.labels, "ipa") for w in parse_ipa(ipa)]


def transcript_words(text: str | None, ipa: str | None, lang: str = "en") -> list[Word] | None:
    """The transcript's words with their IPA phones, from text (`words_to_phonemes`, ``word=IPA``
    overrides included) or from IPA (`words_from_ipa`); None when there is no transcript.

    What the pipeline aligns, worked out before any audio is read so that bad input fails first:
    text and IPA together, an empty IPA string, an IPA symbol the toolkit cannot place, a language
    espeak-ng does not know, a transcript with no words: ValueError in one line.

    >>> [w.phones for w in transcript_words(None, "ʃa.lom")]
    [['ʃ', 'a', 'l', 'o', 'm']]
    >>> transcript_words("hello", "hɛlo")
    Traceback (most recent call last):
    ...
    ValueError: give the transcript as text or as IPA, not both
    """
    for name, value in (("text", text), ("ipa", ipa)):  # align() reaches here unchecked: 5 is no transcript
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{name} must be a string (the transcript) or None, got {type(value).__name__}")
    if ipa is not None:
        if text is not None:
            raise ValueError("give the transcript as text or as IPA, not both")
        if not ipa.strip():
            raise ValueError("the IPA transcription is empty; give the IPA of the words spoken")
        return words_from_ipa(ipa)
    if text is None or not text.strip():
        return None
    words = words_to_phonemes(text, lang=lang)
    if not words:
        raise ValueError(f"the transcript has no words to align: {text!r}")
    return words


def ipa_for_text(text: str, lang: str = "en") -> list[str]:
    """All IPA phones of a text, in order.

    >>> ipa_for_text("ship", "en")
    ['ʃ', 'ɪ', 'p']
    """
    return [p for w in words_to_phonemes(text, lang) for p in w.phones]


def english_arpabet(word: str) -> list[str]:
    """ARPAbet phones (no stress digits) of one English word: CMU dictionary first, then g2p-en.

    >>> english_arpabet("Hello")
    ['HH', 'AH', 'L', 'OW']
    """
    return [p.rstrip("012") for p in _english_arpabet_stressed(word.lower())[0]]


# -- English ------------------------------------------------------------------------

def _is_english(lang: str) -> bool:
    return isinstance(lang, str) and lang.strip().lower().replace("_", "-") in ("en", "en-us", "english")


@functools.lru_cache(maxsize=65536)
def _english_arpabet_stressed(word: str) -> tuple[tuple[str, ...], str]:
    found = cmu.first(word)
    if found:
        return found, "cmudict"
    ascii_word = "".join(c for c in unicodedata.normalize("NFD", word) if not unicodedata.combining(c))
    found = cmu.first(ascii_word) if ascii_word != word else None
    if found:  # café -> cafe
        return found, "cmudict"
    for suffix, ending in (("'s", ("Z",)), ("s'", ("Z",)), ("'d", ("D",)), ("'ll", ("AH0", "L"))):
        stem = ascii_word[: -len(suffix)]
        found = cmu.first(stem) if ascii_word.endswith(suffix) else None
        if found:  # possessives and clitics CMU lacks
            last = found[-1].rstrip("012")
            if ending == ("Z",) and last in ("P", "T", "K", "F", "TH"):
                ending = ("S",)
            elif ending == ("Z",) and last in ("S", "Z", "SH", "ZH", "CH", "JH"):
                ending = ("IH0", "Z")
            return found + ending, "cmudict"
    letters = "".join(c for c in ascii_word.lower() if "a" <= c <= "z")
    if not letters:
        return (), "g2p"
    return tuple(_neural_g2p(letters)), "g2p"


def _english_word(w: str) -> Word:
    arpa, source = _english_arpabet_stressed(w)
    if not arpa:  # no Latin letters at all (a word in another script): let espeak-ng read it
        phones = _espeak_phones(w, "en-us")
        return Word(w, phones, "espeak", [_to_arpabet(p) for p in phones])
    return Word(w, arpabet_to_ipa(list(arpa)), source, [p.rstrip("012") for p in arpa])


def _to_arpabet(phone: str) -> str:
    from toolkit.phonemes.inventory import ipa_to_arpabet

    try:
        return ipa_to_arpabet(phone)
    except KeyError:
        return "AH"


# -- g2p-en's neural model (numpy GRU encoder-decoder) -------------------------------

_GRAPHEMES = ["<pad>", "<unk>", "</s>"] + list("abcdefghijklmnopqrstuvwxyz")
_PHONEMES = ["<pad>", "<unk>", "<s>", "</s>"] + [
    "AA0", "AA1", "AA2", "AE0", "AE1", "AE2", "AH0", "AH1", "AH2", "AO0", "AO1", "AO2", "AW0", "AW1", "AW2",
    "AY0", "AY1", "AY2", "B", "CH", "D", "DH", "EH0", "EH1", "EH2", "ER0", "ER1", "ER2", "EY0", "EY1", "EY2",
    "F", "G", "HH", "IH0", "IH1", "IH2", "IY0", "IY1", "IY2", "JH", "K", "L", "M", "N", "NG", "OW0", "OW1",
    "OW2", "OY0", "OY1", "OY2", "P", "R", "S", "SH", "T", "TH", "UH0", "UH1", "UH2", "UW", "UW0", "UW1", "UW2",
    "V", "W", "Y", "Z", "ZH",
]


@functools.lru_cache(maxsize=1)
def _g2p_weights() -> dict[str, np.ndarray]:
    """g2p-en's checkpoint20.npz, found without importing g2p_en (its import downloads NLTK data)."""
    spec = importlib.util.find_spec("g2p_en")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the g2p-en package is not installed (pip install g2p-en)")
    path = os.path.join(list(spec.submodule_search_locations)[0], "checkpoint20.npz")
    with np.load(path) as z:
        return {k: z[k].astype(np.float32) for k in z.files}


def _gru_step(x, h, w_ih, w_hh, b_ih, b_hh):
    gi = x @ w_ih.T + b_ih
    gh = h @ w_hh.T + b_hh
    n = gi.shape[-1] // 3
    r = 1.0 / (1.0 + np.exp(-(gi[:n] + gh[:n])))
    z = 1.0 / (1.0 + np.exp(-(gi[n : 2 * n] + gh[n : 2 * n])))
    cand = np.tanh(gi[2 * n :] + r * gh[2 * n :])
    return (1.0 - z) * cand + z * h


@functools.lru_cache(maxsize=16384)
def _neural_g2p(word: str) -> tuple[str, ...]:
    """ARPAbet (with stress) for a lowercase a-z word from g2p-en's GRU, greedy decoding."""
    w = _g2p_weights()
    g2i = {g: i for i, g in enumerate(_GRAPHEMES)}
    h = np.zeros(w["enc_w_hh"].shape[1], np.float32)
    for ch in list(word) + ["</s>"]:
        x = w["enc_emb"][g2i.get(ch, 1)]
        h = _gru_step(x, h, w["enc_w_ih"], w["enc_w_hh"], w["enc_b_ih"], w["enc_b_hh"])
    out: list[str] = []
    prev = 2  # <s>
    for _ in range(max(20, 2 * len(word))):
        h = _gru_step(w["dec_emb"][prev], h, w["dec_w_ih"], w["dec_w_hh"], w["dec_b_ih"], w["dec_b_hh"])
        prev = int(np.argmax(w["fc_w"] @ h + w["fc_b"]))
        if prev == 3:  # </s>
            break
        if prev >= 4:
            out.append(_PHONEMES[prev])
    return tuple(out)


# -- espeak-ng ----------------------------------------------------------------------

@functools.lru_cache(maxsize=65536)
def _espeak_phones_cached(word: str, code: str) -> tuple[str, ...]:
    return tuple(split_ipa(espeak.text_to_ipa(word, code)))


def espeak_words(text: str, code: str) -> list[tuple[str, str]]:
    """(word as written, the text espeak-ng reads for it): a Japanese word's kana pronunciation, read in
    its sentence (espeak-ng says "Chinese letter" for a kanji), every other word itself."""
    if not is_japanese(code):
        return [(w, w) for w in text_words(text, code)]
    return [pair for t in text_tokens(text, code)
            for pair in (read_japanese(t) if has_japanese_script(t) else [(t, t)])]


def _espeak_phones(word: str, code: str) -> list[str]:
    return list(_espeak_phones_cached(word, code))
