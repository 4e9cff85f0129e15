"""Viseme-driven 3D avatar animation toolkit: speech in, smooth lip-sync curves out.

The public API is a handful of plain functions returning plain values:

>>> import toolkit                                                    # doctest: +SKIP
>>> anim = toolkit.animate("speech.wav", "Bob made a map of Paris.")  # doctest: +SKIP
>>> anim.fps, anim.channels[:2], anim.values.shape                    # doctest: +SKIP
(30, ['viseme_sil', 'viseme_PP'], (75, 70))
>>> al = toolkit.align("speech.wav", "Bob made a map of Paris.")      # doctest: +SKIP
>>> [(p.label, round(p.start, 2)) for p in al.phonemes if p.label][:2]  # "" = silence  # doctest: +SKIP
[('b', 0.21), ('ɑ', 0.27)]
>>> speech, anim = toolkit.say("Guten Morgen", lang="de")             # doctest: +SKIP
>>> for frames in toolkit.stream(chunks_16khz, fps=30): ...           # doctest: +SKIP

Names are imported on first use, so ``import toolkit`` stays quick.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "animate": "toolkit.pipeline",
    "align": "toolkit.pipeline",
    "say": "toolkit.pipeline",
    "stream": "toolkit.pipeline",
    "shift": "toolkit.pipeline",
    "load_audio": "toolkit.audio",
    "Animation": "toolkit.animation",
    "Segment": "toolkit.animation",
    "CHANNELS": "toolkit.animation",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'toolkit' has no attribute {name!r}")
