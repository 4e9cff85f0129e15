"""Japanese text as words and their pronunciations in kana.

Japanese is written without spaces, and mostly in kanji, whose reading depends on the word:
espeak-ng's Japanese voice reads kana only and says "Chinese letter" for every kanji.  Janome
(a pure-Python morphological analyser with its dictionary, IPADIC; Apache-2.0; the ``ja`` extra)
cuts the text into words and gives each its pronunciation in katakana (発音形: the particle は
as ワ, long vowels as ー), which espeak-ng then turns into phones.

Example
-------
>>> japanese_words("今日は東京に行きます")           # doctest: +SKIP
['今日', 'は', '東京', 'に', '行き', 'ます']
>>> read_japanese("3時に")                           # doctest: +SKIP
[('3', '3'), ('時', 'ジ'), ('に', 'ニ')]
"""
from __future__ import annotations

import functools
import unicodedata

JANOME_MISSING = ("Japanese text needs the janome package (its words and kanji readings): "
                  "pip install 'viseme-toolkit[ja]'")
# Janome's part of speech for punctuation and symbols: not words anyone says
SYMBOL_POS = "記号"
# The volitional う (助動詞) after a verb (ましょう, だろう, 行こう) lengthens the vowel before it; the dictionary
# gives it as a word of its own read ウ, which would add a vowel nobody says
VOLITIONAL_POS = "助動詞"


def is_japanese(lang: str) -> bool:
    """Whether a language code or name is Japanese ("ja", "jpn", "Japanese").

    >>> is_japanese("ja"), is_japanese("JA-jp"), is_japanese("jv")
    (True, True, False)
    """
    return lang.lower().replace("_", "-").split("-")[0] in ("ja", "jpn", "japanese")


def has_japanese_script(text: str) -> bool:
    """Whether the text holds kanji or kana (what needs Janome; romaji and digits do not).

    >>> has_japanese_script("東京"), has_japanese_script("ありがとう"), has_japanese_script("tokyo 3")
    (True, True, False)
    """
    return any(unicodedata.name(ch, "").startswith(("CJK UNIFIED", "HIRAGANA", "KATAKANA")) for ch in text)


@functools.lru_cache(maxsize=1)
def _tokenizer():
    try:
        from janome.tokenizer import Tokenizer
    except ImportError:
        raise ValueError(JANOME_MISSING) from None
    return Tokenizer()


def _tokens(text: str):
    return [t for t in _tokenizer().tokenize(text) if not t.part_of_speech.startswith(SYMBOL_POS)]


def japanese_words(text: str) -> list[str]:
    """The words of a Japanese text (no spaces needed), punctuation left out."""
    return [w for w, _ in read_japanese(text)]


def read_japanese(text: str) -> list[tuple[str, str]]:
    """(word, its pronunciation in katakana) for each word of a Japanese text, each read in its context
    (時 is ジ in 3時, トキ alone).  A part the dictionary does not know (a digit, romaji, a rare name) is
    kept as written, for espeak-ng to read."""
    out: list[tuple[str, str]] = []
    for t in _tokens(text):
        said = t.phonetic if t.phonetic not in ("", "*") else t.surface
        if t.surface == "う" and t.part_of_speech.startswith(VOLITIONAL_POS) and out:
            out[-1] = (out[-1][0] + t.surface, out[-1][1] + "ー")  # ましょう: one word, マショー
        else:
            out.append((t.surface, said))
    return out
