"""The one viseme table: IPA -> Oculus viseme, and viseme -> ARKit pose.

The 15 Oculus/Meta visemes (``sil PP FF TH DD kk CH SS nn RR aa E ih oh ou``)
are the canonical mouth set.  Every IPA symbol espeak-ng produces maps to one
of them (diacritics and length are ignored: they change timing, not the lip
shape).  A few glottal sounds map to ``None``: the mouth has no shape of its
own for them and takes the shape of its neighbours (the "transparent" rule in
`toolkit.visemes.coarticulation`).

Example
-------
>>> visemes_for("aɪ")
['aa', 'ih']
>>> visemes_for("tʃ")
['CH']
>>> visemes_for("h")
[None]
>>> VISEME_POSES["PP"]["mouthPressLeft"] > 0
True
"""
from __future__ import annotations

from toolkit.animation import ARKIT_BLENDSHAPES, VISEMES
from toolkit.phonemes.inventory import base_symbol, is_silence
from toolkit.phonemes.ipa import SYMBOLS

_GROUPS: dict[str | None, str] = {
    # lips together: the one shape every viewer checks
    "PP": "p b m ɓ ʙ ʘ",
    # lower lip to upper teeth; bilabial fricatives look the same from outside
    "FF": "f v ɱ ʋ ɸ β pf ⱱ",
    "TH": "θ ð",
    # tongue tip on the ridge: alveolar and retroflex stops and taps (clicks other than ʘ too)
    "DD": "t d ɾ ɽ ʈ ɖ ɗ ʄ c ɟ ǀ ǃ ǂ ǁ",
    # back of the tongue: velar, uvular and pharyngeal consonants
    "kk": "k ɡ g ŋ x ɣ q ɢ ɴ χ ʁ ħ ʕ ɠ ʛ ʟ ɰ",
    # rounded, protruded post-alveolars
    "CH": "ʃ ʒ tʃ dʒ tɕ dʑ ɕ ʑ ʂ ʐ ʈʂ ɖʐ tʂ dʐ ç ʝ ɧ",
    "SS": "s z ts dz ɬ ɮ",
    "nn": "n l ɲ ɳ ɫ ʎ ɭ ɺ",
    "RR": "ɹ r ɻ ʀ ɚ ɝ",
    "aa": "a ɑ æ ʌ ɐ ɶ ä",
    "E": "e ɛ ə ɜ ɘ ɤ ɞ",
    "ih": "i ɪ ɨ j ɯ ᵻ ɩ",
    "oh": "o ɔ ɒ ø œ ɵ",
    "ou": "u ʊ y ʏ ʉ w ʍ ɥ ᵿ ɷ",
    # no lip shape of their own: glottal sounds take the neighbours' shape
    None: "h ɦ ʔ ʡ ʜ ʢ",
}
IPA_TO_VISEME: dict[str, str | None] = {sym: vis for vis, syms in _GROUPS.items() for sym in syms.split()}
# every base symbol the IPA tokenizer knows has a viseme (IPA a user types is refused otherwise)
assert set(SYMBOLS) <= set(IPA_TO_VISEME), sorted(set(SYMBOLS) - set(IPA_TO_VISEME))


def viseme_of_symbol(symbol: str) -> str | None:
    """Viseme of one IPA base symbol; raises KeyError for a symbol not in the table."""
    return IPA_TO_VISEME[symbol]


def visemes_for(phone: str) -> list[str | None]:
    """Viseme sequence for one phoneme label (diphthongs give two, in order).

    ``""`` or ``"sil"`` is silence.  Unknown symbols raise KeyError naming the phone.
    """
    if is_silence(phone):
        return ["sil"]
    b = base_symbol(phone)
    if b in IPA_TO_VISEME:
        return [IPA_TO_VISEME[b]]
    out: list[str | None] = []
    for ch in b:  # diphthongs and clusters: one viseme per part
        if ch not in IPA_TO_VISEME:
            raise KeyError(f"IPA phone {phone!r}: symbol {ch!r} has no viseme")
        v = IPA_TO_VISEME[ch]
        if not out or out[-1] != v:
            out.append(v)
    return out


def main_viseme(phone: str) -> str | None:
    """The viseme a phone is scored by: its first part (the onset of a diphthong)."""
    return visemes_for(phone)[0]


# Viseme -> ARKit blendshape pose at full weight.  Jaw openness of vowels
# follows their height (open vowels wide, close vowels narrow); the lips are
# set by rounding and spreading.  Consonants keep the jaw nearly closed.
VISEME_POSES: dict[str, dict[str, float]] = {
    "sil": {},
    "PP": {"mouthClose": 0.0, "mouthPressLeft": 0.45, "mouthPressRight": 0.45,
           "mouthRollLower": 0.25, "mouthRollUpper": 0.15},
    "FF": {"jawOpen": 0.06, "mouthRollLower": 0.65, "mouthUpperUpLeft": 0.25,
           "mouthUpperUpRight": 0.25, "mouthShrugUpper": 0.1},
    "TH": {"jawOpen": 0.14, "tongueOut": 0.45, "mouthStretchLeft": 0.1, "mouthStretchRight": 0.1},
    "DD": {"jawOpen": 0.13, "mouthStretchLeft": 0.12, "mouthStretchRight": 0.12,
           "mouthLowerDownLeft": 0.1, "mouthLowerDownRight": 0.1},
    "kk": {"jawOpen": 0.2, "mouthStretchLeft": 0.15, "mouthStretchRight": 0.15},
    "CH": {"jawOpen": 0.1, "mouthFunnel": 0.45, "mouthPucker": 0.3, "mouthShrugUpper": 0.2,
           "mouthUpperUpLeft": 0.1, "mouthUpperUpRight": 0.1},
    "SS": {"jawOpen": 0.06, "mouthStretchLeft": 0.3, "mouthStretchRight": 0.3,
           "mouthSmileLeft": 0.15, "mouthSmileRight": 0.15},
    "nn": {"jawOpen": 0.14, "mouthStretchLeft": 0.1, "mouthStretchRight": 0.1},
    "RR": {"jawOpen": 0.12, "mouthFunnel": 0.3, "mouthPucker": 0.35},
    "aa": {"jawOpen": 0.65, "mouthLowerDownLeft": 0.3, "mouthLowerDownRight": 0.3,
           "mouthStretchLeft": 0.1, "mouthStretchRight": 0.1},
    "E": {"jawOpen": 0.38, "mouthStretchLeft": 0.3, "mouthStretchRight": 0.3,
          "mouthLowerDownLeft": 0.2, "mouthLowerDownRight": 0.2},
    "ih": {"jawOpen": 0.2, "mouthSmileLeft": 0.3, "mouthSmileRight": 0.3,
           "mouthStretchLeft": 0.3, "mouthStretchRight": 0.3},
    "oh": {"jawOpen": 0.45, "mouthFunnel": 0.55, "mouthPucker": 0.25},
    "ou": {"jawOpen": 0.15, "mouthPucker": 0.85, "mouthFunnel": 0.35},
}

# How open the mouth is for each viseme (0 closed .. 1 wide): the jaw of its pose.
VISEME_OPENNESS: dict[str, float] = {v: VISEME_POSES[v].get("jawOpen", 0.0) for v in VISEMES}

# Visemes whose lip contact must be reached fully, whatever the neighbours.
CLOSURE_VISEMES = ("PP",)
CONTACT_VISEMES = ("FF",)

# Rhubarb Lip Sync / Preston Blair mouth shapes for 2D tools.
# A closed (P B M), B clenched teeth (most consonants, EE), C open (EH, AE),
# D wide open (AA), E slightly rounded (AO, ER), F puckered (UW, OW, W),
# G upper teeth on lower lip (F V), H tongue up (long L), X idle.
VISEME_TO_RHUBARB: dict[str, str] = {
    "sil": "X", "PP": "A", "FF": "G", "TH": "B", "DD": "B", "kk": "B", "CH": "B", "SS": "B",
    "nn": "H", "RR": "E", "aa": "D", "E": "C", "ih": "B", "oh": "E", "ou": "F",
}

assert set(VISEME_POSES) == set(VISEMES) == set(VISEME_TO_RHUBARB)
assert all(k in ARKIT_BLENDSHAPES for pose in VISEME_POSES.values() for k in pose)
