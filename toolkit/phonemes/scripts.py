"""Which language reads a word written in a script the transcript's language is not written in.

espeak-ng reads a word in a script its voice does not write as the names of its letters: 東京 in an
English line is "Chinese letter Chinese letter", Москва in a German one "kyrillisch em ...", a Latin
word in a Japanese line is spelled out letter by letter.  Lines that mix languages are common (a
streamer's English with Japanese, a name in its own script), so such a word is read in a language
that writes its script (`SCRIPTS`); every other word stays in the line's language.

Example
-------
>>> reading_language("Москва", "de"), reading_language("Köln", "de"), reading_language("game", "ja")
('ru', 'de', 'en')
>>> reading_language("ありがとう", "en"), reading_language("東京", "en"), reading_language("東京", "ja")
('ja', 'cmn', 'ja')
"""
from __future__ import annotations

import unicodedata

# script (the first word of its letters' Unicode names) -> (the language that reads a word in it, the
# espeak-ng languages written in it).  Kana make a word Japanese whatever else it holds (`word_script`).
SCRIPTS: dict[str, tuple[str, frozenset[str]]] = {
    "CYRILLIC": ("ru", frozenset("ru uk be bg mk sr ba cv kk ky tt".split())),
    "GREEK": ("el", frozenset("el grc".split())),
    "ARABIC": ("ar", frozenset("ar fa ur sd ug".split())),
    "HEBREW": ("he", frozenset(["he"])),
    "DEVANAGARI": ("hi", frozenset("hi mr ne kok".split())),
    "BENGALI": ("bn", frozenset("bn as bpy".split())),
    "GURMUKHI": ("pa", frozenset(["pa"])),
    "GUJARATI": ("gu", frozenset(["gu"])),
    "ORIYA": ("or", frozenset(["or"])),
    "TAMIL": ("ta", frozenset(["ta"])),
    "TELUGU": ("te", frozenset(["te"])),
    "KANNADA": ("kn", frozenset(["kn"])),
    "MALAYALAM": ("ml", frozenset(["ml"])),
    "SINHALA": ("si", frozenset(["si"])),
    "THAI": ("th", frozenset(["th"])),
    "MYANMAR": ("my", frozenset(["my"])),
    "GEORGIAN": ("ka", frozenset(["ka"])),
    "ARMENIAN": ("hy", frozenset("hy hyw".split())),
    "ETHIOPIC": ("am", frozenset(["am"])),
    "HANGUL": ("ko", frozenset(["ko"])),
    "KANA": ("ja", frozenset(["ja"])),
    "CJK": ("cmn", frozenset("cmn yue hak ja".split())),
}
# A Latin word in a language not written in Latin letters is read as English (loanwords, names, brands);
# Serbian is written in both alphabets, and its voice reads both.
LATIN_READER = "en"
LATIN_TOO = frozenset(["sr"])
_NOT_LATIN = frozenset().union(*(langs for _, langs in SCRIPTS.values())) - LATIN_TOO


def word_script(word: str) -> str | None:
    """The script of a word's letters ("LATIN", "CYRILLIC", "KANA", "CJK" ...); None when it has no letter.

    >>> word_script("Köln"), word_script("行き"), word_script("42")
    ('LATIN', 'KANA', None)
    """
    names = [unicodedata.name(ch, "") for ch in word if unicodedata.category(ch)[0] == "L"]
    if any(n.startswith(("HIRAGANA", "KATAKANA")) for n in names):
        return "KANA"
    return names[0].split(" ")[0] if names else None


def reading_language(word: str, lang: str) -> str:
    """The language a word is read in: ``lang`` (an espeak-ng code), unless the word is written in a
    script ``lang`` is not written in (see the module)."""
    base = lang.lower().split("-")[0]
    script = word_script(word)
    if script == "LATIN":
        return LATIN_READER if base in _NOT_LATIN else lang
    if script in SCRIPTS and base not in SCRIPTS[script][1]:
        return SCRIPTS[script][0]
    return lang
