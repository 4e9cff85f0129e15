"""The one phoneme inventory: IPA inside, ARPAbet and TIMIT tables at the edge.

Every stage speaks IPA.  A phoneme label is one IPA segment as `split_ipa`
(`toolkit.phonemes.ipa`) cuts it: a base symbol plus its diacritics and length marks (``"aː"``,
``"tʃ"``, ``"aɪ"``).  ARPAbet (CMU dictionary, PocketSphinx) and TIMIT labels
are converted here and nowhere else.

Example
-------
>>> split_ipa("ˈhɛloʊ wˈɜːld")
['h', 'ɛ', 'l', 'oʊ', 'w', 'ɜː', 'l', 'd']
>>> arpabet_to_ipa("HH AH0 L OW1")
['h', 'ə', 'l', 'oʊ']
>>> base_symbol("ãː")
'a'
"""
from __future__ import annotations

# The IPA tokenizer and symbol table live in `toolkit.phonemes.ipa`; these names are re-exported here.
from toolkit.phonemes.ipa import STOPS, VOWELS, base_symbol, is_vowel, split_ipa, starts_with_stop  # noqa: F401

# CMU / ARPAbet (stress digits stripped first) -> IPA.  AH0 and ER0 are the
# unstressed schwas; everything else ignores stress.
ARPABET_TO_IPA: dict[str, str] = {
    "AA": "ɑ", "AE": "æ", "AH": "ʌ", "AO": "ɔ", "AW": "aʊ", "AY": "aɪ", "B": "b", "CH": "tʃ",
    "D": "d", "DH": "ð", "EH": "ɛ", "ER": "ɝ", "EY": "eɪ", "F": "f", "G": "ɡ", "HH": "h",
    "IH": "ɪ", "IY": "i", "JH": "dʒ", "K": "k", "L": "l", "M": "m", "N": "n", "NG": "ŋ",
    "OW": "oʊ", "OY": "ɔɪ", "P": "p", "R": "ɹ", "S": "s", "SH": "ʃ", "T": "t", "TH": "θ",
    "UH": "ʊ", "UW": "u", "V": "v", "W": "w", "Y": "j", "Z": "z", "ZH": "ʒ",
    "AH0": "ə", "ER0": "ɚ",
}
IPA_TO_ARPABET: dict[str, str] = {ipa: arpa for arpa, ipa in ARPABET_TO_IPA.items() if not arpa[-1].isdigit()}
IPA_TO_ARPABET.update({"ə": "AH", "ɚ": "ER"})

# Labels that mean "no speech sound here", whatever wrote them: our own "" (and "sil"), aligners'
# short pauses and noise (sp, spn, <eps>, <sil>, sil_b/e, <unk>), TIMIT's h# / pau / epi.  The one
# table every stage asks through `is_silence`.
SILENCE_LABELS = frozenset({"", "sil", "sp", "spn", "<eps>", "<sil>", "sil_b", "sil_e", "h#", "pau", "epi", "<unk>"})


def is_silence(label: str | None) -> bool:
    """Whether a phone label means silence (or a non-speech pause/noise mark).

    >>> is_silence(""), is_silence("SIL"), is_silence("sp"), is_silence("a")
    (True, True, True, False)
    """
    return label is None or label.strip().lower() in SILENCE_LABELS


# TIMIT's 61 labels (lower-case ARPAbet plus extras) -> IPA.  Closures, pauses
# and h# map to "" (silence); `fold_timit` merges a closure with its burst.
TIMIT_TO_IPA: dict[str, str] = {
    **{k.lower(): v for k, v in ARPABET_TO_IPA.items() if not k[-1].isdigit()},
    "ax": "ə", "ix": "ɪ", "axr": "ɚ", "ax-h": "ə", "ux": "u", "dx": "ɾ", "nx": "n",
    "em": "m", "en": "n", "eng": "ŋ", "el": "l", "hv": "h", "q": "ʔ",
    "bcl": "", "dcl": "", "gcl": "", "pcl": "", "tcl": "", "kcl": "", "pau": "", "epi": "", "h#": "",
}


def arpabet_to_ipa(arpabet: str | list[str]) -> list[str]:
    """ARPAbet phones (with or without stress digits) -> IPA labels."""
    phones = arpabet.split() if isinstance(arpabet, str) else list(arpabet)
    out = []
    for p in phones:
        p = p.upper()
        if p in ("AH0", "ER0"):
            out.append(ARPABET_TO_IPA[p])
            continue
        core = p.rstrip("012")
        if core not in ARPABET_TO_IPA:
            raise KeyError(f"unknown ARPAbet phone {p!r}")
        out.append(ARPABET_TO_IPA[core])
    return out


def ipa_to_arpabet(phone: str) -> str:
    """Nearest ARPAbet phone for an IPA label (for PocketSphinx's English models)."""
    if phone in IPA_TO_ARPABET:
        return IPA_TO_ARPABET[phone]
    b = base_symbol(phone)
    if b in IPA_TO_ARPABET:
        return IPA_TO_ARPABET[b]
    if b in _NEAREST_ENGLISH:
        return IPA_TO_ARPABET[_NEAREST_ENGLISH[b]]
    if b and b[0] in IPA_TO_ARPABET:  # a diphthong or cluster we do not list: its first part
        return IPA_TO_ARPABET[b[0]]
    if b and b[0] in _NEAREST_ENGLISH:
        return IPA_TO_ARPABET[_NEAREST_ENGLISH[b[0]]]
    raise KeyError(f"no English counterpart for IPA phone {phone!r}")


# Non-English sounds -> the closest English phoneme, so the English acoustic
# model can still place them in time (alignment of other languages).
_NEAREST_ENGLISH: dict[str, str] = {
    "a": "ɑ", "e": "eɪ", "o": "oʊ", "y": "u", "ø": "ʊ", "œ": "ʌ", "ɐ": "ʌ", "ɒ": "ɑ", "ɨ": "ɪ",
    "ɯ": "u", "ɵ": "ʊ", "ɘ": "ə", "ɜ": "ɝ", "ɞ": "ʌ", "ɤ": "ʌ", "ʉ": "u", "ʏ": "ʊ", "ɶ": "ɑ",
    "ɾ": "d", "r": "ɹ", "ʀ": "ɹ", "ʁ": "ɡ", "ɻ": "ɹ", "ɽ": "d", "x": "h", "ɣ": "ɡ", "χ": "h",
    "ħ": "h", "ʕ": "h", "ɦ": "h", "ʔ": "t", "ç": "ʃ", "ʝ": "j", "ɕ": "ʃ", "ʑ": "ʒ", "ʂ": "ʃ",
    "ʐ": "ʒ", "ɸ": "f", "β": "v", "ʋ": "v", "ɲ": "n", "ɳ": "n", "ɴ": "ŋ", "ɱ": "m", "ʎ": "l",
    "ɫ": "l", "ɭ": "l", "ʟ": "l", "ɬ": "s", "ɮ": "z", "ʈ": "t", "ɖ": "d", "c": "k", "ɟ": "ɡ",
    "q": "k", "ɢ": "ɡ", "ɓ": "b", "ɗ": "d", "ʄ": "ɡ", "ɠ": "ɡ", "ʍ": "w", "ɥ": "w", "ɰ": "w",
    "ɹ": "ɹ", "ʃ": "ʃ", "ʒ": "ʒ", "ɡ": "ɡ", "ɐ̯": "ʌ", "ts": "s", "dz": "z", "pf": "f",
    "tɕ": "tʃ", "dʑ": "dʒ", "ʈʂ": "tʃ", "ɖʐ": "dʒ", "tʂ": "tʃ", "dʐ": "dʒ", "ɚ": "ɚ",
}
