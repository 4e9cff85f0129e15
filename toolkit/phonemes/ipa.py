"""IPA strings cut into phones, and what each phone is made of (phonological features).

The one IPA tokenizer of the toolkit.  A phone label is one IPA segment: a
base symbol, or several joined by a tie bar (``t͡ʃ`` -> ``"tʃ"``, ``k͡p`` ->
``"kp"``) or written as one of the usual affricates and diphthongs without a
tie bar (``tʃ ts aɪ au`` ..., `MULTI`), plus the marks that belong to it:
length (``ː ˑ``, ASCII ``:``), aspiration and secondary articulations
(``ʰ ʷ ʲ ˠ ˤ``), ejective ``ʼ`` (ASCII ``'`` after a consonant), and
diacritics (nasal ``̃``, syllabic ``̩``, voiceless ``̥``, dental ``̪`` ...).
A non-syllabic vowel (``i̯``) joins the vowel before it into a diphthong; a
superscript nasal before a stop (``ⁿd``, ``ᵐb``) makes a prenasalized stop.

Stress marks (``ˈ ˌ``), tones (tone letters ``˥˩``, tone diacritics ``á à
â ǎ ā``, Chao tone digits ``ma⁵⁵`` / ``ma55``) and syllable breaks never
become phones: stress and tone are kept as features of the phones they
belong to (`IpaPhone.stress`, `IpaPhone.tone`).

Two modes: `parse_ipa` (strict, for IPA a user typed) refuses a symbol it
cannot place with a message naming it; `split_ipa` (lenient, for espeak-ng's
output) keeps anything unknown as a phone of its own.

Every base symbol has a row in `SYMBOLS`: its manner, place, voicing and,
for vowels and glides, height, backness and rounding.  `phone_parts` turns
a phone into the sequence of articulatory targets it is made of (``"tsʰ"``
-> t, s, h), which is what the any-language aligner matches against the
sound (`toolkit.alignment.universal`).

Example
-------
>>> split_ipa("ˈhɛloʊ wˈɜːld")
['h', 'ɛ', 'l', 'oʊ', 'w', 'ɜː', 'l', 'd']
>>> [p.label for p in parse_ipa("t͡ʃʼaːⁿda")[0].phones]
['tʃʼ', 'aː', 'ⁿd', 'a']
>>> [(p.label, p.tone) for p in parse_ipa("ma˨˩ má")[1].phones]
[('m', ''), ('a', '˦˥')]
>>> parse_ipa("kaX")
Traceback (most recent call last):
...
ValueError: IPA 'kaX': unknown symbol 'X' (U+0058) in 'kaX'
>>> [f.manner for f in phone_parts("tsʰ")]
['stop', 'fricative', 'fricative']
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import NamedTuple

__all__ = ["IpaPhone", "IpaWord", "Features", "FEATURE_VALUES", "SILENCE", "SYMBOLS", "MULTI", "parse_ipa", "split_ipa", "base_symbol",
           "is_vowel", "starts_with_stop", "phone_parts", "VOWELS", "STOPS"]


class Features(NamedTuple):
    """Articulatory description of one target: the classes the aligner's network predicts.

    manner: sil stop fricative nasal lateral rhotic glide vowel;
    place: none bilabial labiodental alveolar postalveolar retroflex palatal velar uvular glottal;
    voice: none voiced voiceless; height: none close closemid openmid open;
    back: none front central back; rounded: none unrounded rounded; nasal: oral nasal.
    """

    manner: str
    place: str = "none"
    voice: str = "voiced"
    height: str = "none"
    back: str = "none"
    rounded: str = "unrounded"
    nasal: str = "oral"


SILENCE = Features("sil", "none", "none", "none", "none", "none", "oral")
# The values each feature takes, in a fixed order (the aligner's network predicts one class per feature).
FEATURE_VALUES: dict[str, tuple[str, ...]] = {
    "manner": ("sil", "stop", "fricative", "nasal", "lateral", "rhotic", "glide", "vowel"),
    "place": ("none", "bilabial", "labiodental", "alveolar", "postalveolar", "retroflex", "palatal", "velar", "uvular",
              "glottal"),
    "voice": ("none", "voiced", "voiceless"),
    "height": ("none", "close", "closemid", "openmid", "open"),
    "back": ("none", "front", "central", "back"),
    "rounded": ("none", "unrounded", "rounded"),
    "nasal": ("oral", "nasal"),
}
assert tuple(FEATURE_VALUES) == Features._fields

# -- the symbol table: base symbol -> features ---------------------------------------------------------

_C = {  # consonants: symbol -> (manner, place, voice)
    # stops (implosives and clicks too: to the ear and the mouth a closure and its release)
    "p": ("stop", "bilabial", "voiceless"), "b": ("stop", "bilabial", "voiced"),
    "t": ("stop", "alveolar", "voiceless"), "d": ("stop", "alveolar", "voiced"),
    "ʈ": ("stop", "retroflex", "voiceless"), "ɖ": ("stop", "retroflex", "voiced"),
    "c": ("stop", "palatal", "voiceless"), "ɟ": ("stop", "palatal", "voiced"),
    "k": ("stop", "velar", "voiceless"), "ɡ": ("stop", "velar", "voiced"), "g": ("stop", "velar", "voiced"),
    "q": ("stop", "uvular", "voiceless"), "ɢ": ("stop", "uvular", "voiced"),
    "ʡ": ("stop", "glottal", "voiceless"), "ʔ": ("stop", "glottal", "voiceless"),
    "ɓ": ("stop", "bilabial", "voiced"), "ɗ": ("stop", "alveolar", "voiced"), "ʄ": ("stop", "palatal", "voiced"),
    "ɠ": ("stop", "velar", "voiced"), "ʛ": ("stop", "uvular", "voiced"),
    "ʘ": ("stop", "bilabial", "voiceless"), "ǀ": ("stop", "alveolar", "voiceless"),
    "ǃ": ("stop", "postalveolar", "voiceless"), "ǂ": ("stop", "palatal", "voiceless"),
    "ǁ": ("stop", "alveolar", "voiceless"),
    # nasals
    "m": ("nasal", "bilabial", "voiced"), "ɱ": ("nasal", "labiodental", "voiced"), "n": ("nasal", "alveolar", "voiced"),
    "ɳ": ("nasal", "retroflex", "voiced"), "ɲ": ("nasal", "palatal", "voiced"), "ŋ": ("nasal", "velar", "voiced"),
    "ɴ": ("nasal", "uvular", "voiced"),
    # trills, taps and r-sounds
    "ʙ": ("rhotic", "bilabial", "voiced"), "ⱱ": ("rhotic", "labiodental", "voiced"), "r": ("rhotic", "alveolar", "voiced"),
    "ɾ": ("rhotic", "alveolar", "voiced"), "ɽ": ("rhotic", "retroflex", "voiced"), "ʀ": ("rhotic", "uvular", "voiced"),
    "ɹ": ("rhotic", "alveolar", "voiced"), "ɻ": ("rhotic", "retroflex", "voiced"),
    # fricatives
    "ɸ": ("fricative", "bilabial", "voiceless"), "β": ("fricative", "bilabial", "voiced"),
    "f": ("fricative", "labiodental", "voiceless"), "v": ("fricative", "labiodental", "voiced"),
    "θ": ("fricative", "alveolar", "voiceless"), "ð": ("fricative", "alveolar", "voiced"),
    "s": ("fricative", "alveolar", "voiceless"), "z": ("fricative", "alveolar", "voiced"),
    "ɬ": ("fricative", "alveolar", "voiceless"), "ɮ": ("fricative", "alveolar", "voiced"),
    "ʃ": ("fricative", "postalveolar", "voiceless"), "ʒ": ("fricative", "postalveolar", "voiced"),
    "ɕ": ("fricative", "postalveolar", "voiceless"), "ʑ": ("fricative", "postalveolar", "voiced"),
    "ɧ": ("fricative", "postalveolar", "voiceless"),
    "ʂ": ("fricative", "retroflex", "voiceless"), "ʐ": ("fricative", "retroflex", "voiced"),
    "ç": ("fricative", "palatal", "voiceless"), "ʝ": ("fricative", "palatal", "voiced"),
    "x": ("fricative", "velar", "voiceless"), "ɣ": ("fricative", "velar", "voiced"),
    "χ": ("fricative", "uvular", "voiceless"), "ʁ": ("fricative", "uvular", "voiced"),
    "ħ": ("fricative", "glottal", "voiceless"), "ʕ": ("fricative", "glottal", "voiced"),
    "ʜ": ("fricative", "glottal", "voiceless"), "ʢ": ("fricative", "glottal", "voiced"),
    "h": ("fricative", "glottal", "voiceless"), "ɦ": ("fricative", "glottal", "voiced"),
    # laterals
    "l": ("lateral", "alveolar", "voiced"), "ɫ": ("lateral", "alveolar", "voiced"), "ɭ": ("lateral", "retroflex", "voiced"),
    "ʎ": ("lateral", "palatal", "voiced"), "ʟ": ("lateral", "velar", "voiced"), "ɺ": ("lateral", "alveolar", "voiced"),
}
_GLIDES = {  # approximants with a vowel's tongue and lips: symbol -> (place, voice, height, back, rounded)
    "j": ("palatal", "voiced", "close", "front", "unrounded"), "ɥ": ("palatal", "voiced", "close", "front", "rounded"),
    "w": ("velar", "voiced", "close", "back", "rounded"), "ʍ": ("velar", "voiceless", "close", "back", "rounded"),
    "ɰ": ("velar", "voiced", "close", "back", "unrounded"), "ʋ": ("labiodental", "voiced", "none", "none", "unrounded"),
}
_V = {  # vowels: symbol -> (height, back, rounded)
    "i": ("close", "front", "unrounded"), "y": ("close", "front", "rounded"), "ɨ": ("close", "central", "unrounded"),
    "ʉ": ("close", "central", "rounded"), "ɯ": ("close", "back", "unrounded"), "u": ("close", "back", "rounded"),
    "ɪ": ("close", "front", "unrounded"), "ʏ": ("close", "front", "rounded"), "ʊ": ("close", "back", "rounded"),
    "ᵻ": ("close", "central", "unrounded"), "ᵿ": ("close", "central", "rounded"), "ɩ": ("close", "front", "unrounded"),
    "e": ("closemid", "front", "unrounded"), "ø": ("closemid", "front", "rounded"), "ɘ": ("closemid", "central", "unrounded"),
    "ɵ": ("closemid", "central", "rounded"), "ɤ": ("closemid", "back", "unrounded"), "o": ("closemid", "back", "rounded"),
    "ə": ("closemid", "central", "unrounded"), "ɚ": ("closemid", "central", "unrounded"),
    "ɛ": ("openmid", "front", "unrounded"), "œ": ("openmid", "front", "rounded"), "ɜ": ("openmid", "central", "unrounded"),
    "ɞ": ("openmid", "central", "rounded"), "ʌ": ("openmid", "back", "unrounded"), "ɔ": ("openmid", "back", "rounded"),
    "ɝ": ("openmid", "central", "unrounded"), "ɷ": ("close", "back", "rounded"),
    "æ": ("open", "front", "unrounded"), "ɐ": ("open", "central", "unrounded"), "a": ("open", "front", "unrounded"),
    "ɶ": ("open", "front", "rounded"), "ɑ": ("open", "back", "unrounded"), "ɒ": ("open", "back", "rounded"),
}
SYMBOLS: dict[str, Features] = {
    **{s: Features(m, p, v) for s, (m, p, v) in _C.items()},
    **{s: Features("glide", p, v, h, b, r) for s, (p, v, h, b, r) in _GLIDES.items()},
    **{s: Features("vowel", "none", "voiced", h, b, r) for s, (h, b, r) in _V.items()},
}
assert all(getattr(f, k) in v for f in SYMBOLS.values() for k, v in FEATURE_VALUES.items())
VOWELS = frozenset(s for s, f in SYMBOLS.items() if f.manner == "vowel")
# Oral stops (affricates start with one): their closure is silent.
STOPS = frozenset(s for s, f in SYMBOLS.items() if f.manner == "stop" and f.place != "none")

# Sequences that are one phone without a tie bar, longest match first: affricates, and diphthongs
# written the usual way, a vowel gliding to a lax one (aɪ oʊ ɔʏ ɪə).  Two full vowels (ai, ou) are two
# phones in IPA a user writes (Hawaiian "nou" is n-o-u) unless tied (a͡i) or marked non-syllabic (ai̯);
# espeak-ng writes some diphthongs that way, so its output (`split_ipa`) joins those too.
MULTI = sorted(
    [
        "tʃ", "dʒ", "ts", "dz", "tɕ", "dʑ", "ʈʂ", "ɖʐ", "pf", "tʂ", "dʐ", "tɬ", "dɮ",
        "aɪ", "aʊ", "eɪ", "oʊ", "ɔɪ", "əʊ", "eə", "ɪə", "ʊə", "ɔʏ", "ɛɪ", "ɑɪ", "ɑʊ", "ɒʊ", "ɐʊ", "ɐɪ",
        "ɜʊ", "oɪ", "ʌɪ", "ɛʊ", "ɪʊ",
    ],
    key=len,
    reverse=True,
)
ESPEAK_DIPHTHONGS = ("ai", "au", "ei", "oi", "ou", "aɛ", "ɔø", "œy", "ɛi")
# Legacy ligatures for affricates, and look-alikes people type for IPA letters.
_REWRITE = {"ʦ": "ts", "ʣ": "dz", "ʧ": "tʃ", "ʤ": "dʒ", "ʨ": "tɕ", "ʥ": "dʑ", "ɡ": "ɡ", "g": "ɡ",
            "ε": "ɛ", "ℇ": "ɛ", "ɩ": "ɪ", "ǝ": "ə"}

TIE_BARS = {"\u0361", "\u035c"}
NON_SYLLABIC = {"\u032f", "\u0311"}  # i̯: joins the vowel before it into a diphthong
# Marks after a base symbol that belong to it (length, aspiration, secondary articulations, release).
MODIFIERS = set("ːˑʰʲʷˠˤ̚ⁿˡ˞ʼᵝᶣˀʱ")  # ᵝ: compressed lips (espeak-ng ja "ɯᵝ")
PRENASAL = set("ⁿᵐᵑᶮᶯ")  # before a stop: a prenasalized stop (ⁿd)
STRESS = {"ˈ": 1, "ˌ": 2}
BREAKS = set(".‿|‖-_")  # syllable and group boundaries: no phone
TONE_LETTERS = set("˥˦˧˨˩꜒꜓꜔꜕꜖ꜜꜛ↗↘") | set("¹²³⁴⁵⁰")
TONE_DIACRITICS = {"\u0300", "\u0301", "\u0302", "\u030c", "\u0304", "\u030b", "\u030f", "\u1dc4", "\u1dc5",
                   "\u1dc6", "\u1dc7", "\u1dc8", "\u1dc9"}
_LENIENT_DROP = set("'’") | set("0123456789")  # espeak-ng tone numbers and quotes
_SUPERSCRIPT_DIGITS = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


@dataclass
class IpaPhone:
    """One phone: its label (base symbols and the marks kept), stress (0, 1 primary, 2 secondary), tone."""

    label: str
    stress: int = 0
    tone: str = ""


@dataclass
class IpaWord:
    """One word of an IPA transcription: the text as written and its phones."""

    text: str
    phones: list[IpaPhone] = field(default_factory=list)

    @property
    def labels(self) -> list[str]:
        return [p.label for p in self.phones]


def base_symbol(phone: str) -> str:
    """The phone with diacritics, length, marks and tie bars removed (``"ãː"`` -> ``"a"``)."""
    out = []
    for ch in unicodedata.normalize("NFD", phone):
        if unicodedata.combining(ch) or ch in MODIFIERS or ch in PRENASAL or ch in STRESS or ch in BREAKS \
                or ch in TONE_LETTERS or ch in _LENIENT_DROP or ch.isspace():
            continue
        out.append(ch)
    return "".join(out)


def is_vowel(phone: str) -> bool:
    b = base_symbol(phone)
    return bool(b) and b[0] in VOWELS


def starts_with_stop(phone: str) -> bool:
    """True for stops and affricates (``"p"``, ``"tʃ"``): sounds that begin with a silent closure."""
    b = base_symbol(phone)
    return bool(b) and b[0] in STOPS


def _is_base(ch: str) -> bool:
    return ch in SYMBOLS


def _name(ch: str) -> str:
    return f"{ch!r} (U+{ord(ch):04X})"


def _tokenize_word(word: str, strict: bool, whole: str) -> list[IpaPhone]:
    """Phones of one whitespace-free IPA word (NFD)."""
    s = "".join(_REWRITE.get(c, c) for c in word)
    phones: list[IpaPhone] = []
    stress, tie, prefix = 0, False, ""
    i = 0

    def fail(msg: str):
        raise ValueError(f"IPA {whole!r}: {msg}")

    while i < len(s):
        ch = s[i]
        nxt = s[i + 1] if i + 1 < len(s) else ""
        if ch in STRESS:
            stress = STRESS[ch]
        elif ch in BREAKS:
            stress = 0
        elif ch in TONE_LETTERS or (strict and ch.isdigit() and ch.isascii()):
            tone = ch.translate(_SUPERSCRIPT_DIGITS)
            if phones:  # tone letters follow their syllable: its vowel (or the last phone)
                carrier = next((p for p in reversed(phones) if is_vowel(p.label) or "\u0329" in p.label), phones[-1])
                carrier.tone += tone
            elif strict:  # a tone written apart from its syllable ("ma 55"): the word would vanish unseen
                fail(f"tone {_name(ch)} with no sound before it in {unicodedata.normalize('NFC', word)!r}")
        elif ch in TONE_DIACRITICS and phones:
            phones[-1].tone += {"\u0301": "˦˥", "\u0300": "˨˩", "\u0302": "˥˩", "\u030c": "˩˥", "\u0304": "˧",
                                "\u030b": "˥", "\u030f": "˩"}.get(ch, ch)
        elif ch in TIE_BARS:
            tie = True
        elif ch in NON_SYLLABIC and phones:
            phones[-1].label += ch
            # a non-syllabic vowel after a vowel makes one diphthong with it
            if len(phones) > 1 and is_vowel(phones[-1].label) and is_vowel(phones[-2].label) \
                    and base_symbol(phones[-2].label)[-1:] in VOWELS:
                last = phones.pop()
                phones[-1].label += last.label
        elif ch in PRENASAL and nxt and base_symbol(nxt)[:1] in STOPS and not tie:
            prefix += ch
        elif ch == "'" and strict:
            # ASCII apostrophe: an ejective/glottalized consonant after a consonant, else a stress mark
            if phones and not is_vowel(phones[-1].label) and not tie:
                phones[-1].label += "ʼ"
            else:
                stress = 1
        elif ch == ":" and strict and phones:
            phones[-1].label += "ː"
        elif (unicodedata.combining(ch) or ch in MODIFIERS) and phones and not (strict and tie):
            phones[-1].label += ch
        elif ch in _LENIENT_DROP and not strict:
            pass
        elif _is_base(ch) or (not strict and not unicodedata.combining(ch) and ch not in MODIFIERS):
            if tie and phones:
                phones[-1].label += ch
                tie = False
            else:
                m = next((m for m in (MULTI if strict else MULTI + list(ESPEAK_DIPHTHONGS)) if s.startswith(m, i)), None)
                label = m or ch
                phones.append(IpaPhone(prefix + label, stress))
                prefix = ""
                i += len(label)
                continue
        elif strict:
            if unicodedata.combining(ch) or ch in MODIFIERS:
                fail(f"mark {_name(ch)} with no sound before it in {word!r}")
            fail(f"unknown symbol {_name(ch)} in {unicodedata.normalize('NFC', word)!r}")
        i += 1
    if strict and (tie or prefix):
        fail(f"a tie bar or prenasal mark with no sound after it in {word!r}")
    out = []
    for p in phones:
        p.label = unicodedata.normalize("NFC", p.label)
        if base_symbol(p.label):
            out.append(p)
    return out


def parse_ipa(text: str, *, strict: bool = True) -> list[IpaWord]:
    """Words (split at spaces) of an IPA transcription, each cut into `IpaPhone` s.

    ``strict``: refuse (ValueError naming it) any symbol with no place in
    `SYMBOLS` and any mark with nothing to attach to.  An empty transcription
    is refused too.

    >>> [w.labels for w in parse_ipa("ˈʔa.loː ʃa.lom")]
    [['ʔ', 'a', 'l', 'oː'], ['ʃ', 'a', 'l', 'o', 'm']]
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError("IPA transcription is empty")
    words = []
    for w in unicodedata.normalize("NFD", text).split():
        phones = _tokenize_word(w, strict, text)
        if phones:
            words.append(IpaWord(unicodedata.normalize("NFC", w), phones))
    if strict and not words:
        raise ValueError(f"IPA {text!r}: no sounds in it (only stress, tone or break marks)")
    return words


def split_ipa(ipa: str) -> list[str]:
    """Cut an IPA string (espeak-ng's output, lenient) into phone labels, dropping stress, spaces and tones."""
    if not ipa or not ipa.strip():
        return []
    return [p.label for w in parse_ipa(ipa, strict=False) for p in w.phones]


# -- phones -> articulatory targets ---------------------------------------------------------------------

_ASPIRATION = Features("fricative", "glottal", "voiceless")


def phone_parts(phone: str) -> list[Features]:
    """The articulatory targets a phone is made of, in time order (``""`` is silence).

    A base symbol is one target; affricates, diphthongs and tied symbols one
    per symbol; a prenasalized stop starts with its nasal; aspiration (``ʰ``)
    adds a breathy release.  Diacritics adjust a target: ``̥`` voiceless,
    ``̬`` voiced, ``̃`` nasal, ``ʷ`` rounded.  Raises KeyError for a symbol
    not in `SYMBOLS`.

    >>> [(f.manner, f.place) for f in phone_parts("ⁿd")]
    [('nasal', 'alveolar'), ('stop', 'alveolar')]
    """
    if phone == "":  # the toolkit's pause (other tools' pause labels: `inventory.is_silence`, asked by the caller)
        return [SILENCE]
    s = unicodedata.normalize("NFD", phone)
    parts: list[Features] = []
    prenasal = False
    for k, ch in enumerate(s):
        ch = _REWRITE.get(ch, ch)
        if len(ch) > 1:  # a ligature: its two symbols
            parts += [SYMBOLS[c] for c in ch]
        elif ch in SYMBOLS:
            f = SYMBOLS[ch]
            if prenasal and f.manner == "stop":
                parts.append(f._replace(manner="nasal", voice="voiced"))
            parts.append(f)
            prenasal = False
        elif ch in PRENASAL and not parts:
            prenasal = True
        elif not (unicodedata.combining(ch) or ch in MODIFIERS or ch in PRENASAL):
            raise KeyError(f"IPA phone {phone!r}: symbol {ch!r} is not in the IPA table")
        elif not parts:
            continue
        elif ch in ("\u0325", "\u030a"):
            parts[-1] = parts[-1]._replace(voice="voiceless")
        elif ch == "\u032c":
            parts[-1] = parts[-1]._replace(voice="voiced")
        elif ch == "\u0303":
            parts[-1] = parts[-1]._replace(nasal="nasal")
        elif ch in "ʷᶣ":
            parts[-1] = parts[-1]._replace(rounded="rounded")
        elif ch in "ʰʱ" and parts[0].manner == "stop":
            parts.append(_ASPIRATION if ch == "ʰ" else _ASPIRATION._replace(voice="voiced"))
        elif ch == "ⁿ" and parts[-1].manner == "vowel":
            parts[-1] = parts[-1]._replace(nasal="nasal")
    if not parts:
        raise KeyError(f"IPA phone {phone!r} has no symbol the toolkit knows")
    return [p._replace(nasal="nasal") if p.manner == "nasal" else p for p in parts]
