"""The result of alignment: timed phonemes and words, and how sure we are of them.

Example
-------
>>> from toolkit.animation import Segment
>>> al = Alignment([Segment("b", 0.1, 0.2)], [Segment("bob", 0.1, 0.4)], 0.9, "pocketsphinx")
>>> al.duration_s
0.4
"""
from __future__ import annotations

from dataclasses import dataclass, field

from toolkit.animation import Segment
from toolkit.phonemes.inventory import is_silence

# Confidence given to an alignment that only spreads words evenly over speech.
EVEN_CONFIDENCE = 0.15


@dataclass
class Alignment:
    """Timed phonemes (IPA labels, "" = silence) and words, with how sure we are of them.

    ``confidence`` is 0..1: 1 = every word aligned acoustically with plausible
    durations; below ~0.5 the timing is partly guessed (see ``warnings``).
    ``method`` names what produced it: "pocketsphinx", "textgrid", "mfa",
    "espeak", "even".
    """

    phonemes: list[Segment]
    words: list[Segment]
    confidence: float
    method: str
    warnings: list[str] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        ends = [s.end for s in self.phonemes] + [s.end for s in self.words]
        return max(ends) if ends else 0.0

    def speech_phonemes(self) -> list[Segment]:
        """The phonemes without silences."""
        return [p for p in self.phonemes if not is_silence(p.label)]


def _word_parts(word) -> tuple[str, list[str]]:
    """(text, IPA phones) of a `toolkit.phonemes.g2p.Word`, a (text, phones) pair or a plain string."""
    if isinstance(word, str):
        return word, []
    if isinstance(word, tuple):
        return str(word[0]), list(word[1])
    return str(word.text), list(getattr(word, "phones", []) or [])
