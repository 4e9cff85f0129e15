"""The mouth engines, and the one place that chooses between them.

An engine turns speech (16 kHz samples) and its timing (an `Alignment`, or None
without a transcript) into the mouth's curves: visemes and the ARKit jaw/lip
channels.  Blinks and head motion are not an engine's business
(`toolkit.motion.procedural.add_life` adds them, once, for every engine).

* `Aligned`  timed phonemes -> coarticulated curves (`toolkit.visemes.coarticulation`);
  the timing comes from the transcript, so the visemes are the right ones.
* `Neural`   the audio alone -> curves (`toolkit.motion.model`); no transcript needed.
* `Hybrid`   the aligned visemes, with the jaw and lips mixed with what the audio shows.

Example
-------
>>> from toolkit.alignment import Alignment
>>> from toolkit.animation import Segment
>>> timing = Alignment([Segment("m", 0.1, 0.2)], [Segment("m", 0.1, 0.2)], 0.9, "pocketsphinx")
>>> choose("auto", timing, neural=lambda: None)[0].name      # no neural model: the aligned engine
'align'
>>> choose("auto", None, neural=lambda: "model")[0].name      # no transcript: the audio alone
'neural'
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from toolkit.animation import Animation
from toolkit.audio import TARGET_RATE
from toolkit.phonemes.inventory import is_silence
from toolkit.visemes.coarticulation import DEFAULT_PARAMS, CoarticulationParams, animate_phonemes

ENGINES = ("auto", "align", "neural", "hybrid")
# Below this alignment confidence the neural engine replaces the aligned mouth: a failed
# alignment (a transcript that does not match the audio, say) must not leave the character
# frozen or saying the wrong sounds, and the audio alone still shows when the mouth opens.
MIN_ALIGN_CONFIDENCE = 0.35
# Timing that is exact by construction (espeak-ng's own phoneme events) needs no help from the audio.
EXACT_TIMING = ("espeak",)


@dataclass(frozen=True)
class Aligned:
    """Timed phonemes -> smooth viseme + ARKit curves (coarticulation rules)."""

    params: CoarticulationParams = DEFAULT_PARAMS
    name: str = "align"

    def mouth(self, samples: np.ndarray, timing, fps: float) -> Animation:
        duration_s = len(samples) / TARGET_RATE
        return animate_phonemes(timing.phonemes, duration_s, fps, audio=samples, params=self.params,
                                words=timing.words)


@dataclass(frozen=True)
class Neural:
    """The audio alone -> curves (the neural model); a transcript, when there is one, only labels the result."""

    model: object
    intensity: float = 1.0
    seed: int = 0
    name: str = "neural"

    def mouth(self, samples: np.ndarray, timing, fps: float) -> Animation:
        anim = self.model.predict(samples, TARGET_RATE, fps=fps, intensity=self.intensity, seed=self.seed,
                                  blinks=False, head_motion=False)
        if timing is not None:
            anim.phonemes = [s for s in timing.phonemes if not is_silence(s.label)]
            anim.words = list(timing.words)
        return anim


@dataclass(frozen=True)
class Hybrid:
    """The aligned visemes (their timing comes from the transcript), with the jaw and lip curves
    mixed with the neural model's (they follow how the speaker really opens the mouth)."""

    model: object
    params: CoarticulationParams = DEFAULT_PARAMS
    seed: int = 0
    name: str = "hybrid"

    def mouth(self, samples: np.ndarray, timing, fps: float) -> Animation:
        aligned = Aligned(self.params).mouth(samples, timing, fps)
        return self.model.refine(aligned, samples, TARGET_RATE, seed=self.seed, in_place=True)  # our own copy


def choose(requested: str, timing, neural: Callable[[], object | None], *,
           params: CoarticulationParams = DEFAULT_PARAMS, seed: int = 0, source: str = "audio"):
    """The engine for this job, and the notes (warnings) that explain a choice the user did not ask for.

    ``requested``: "auto", "align", "neural" or "hybrid"; ``timing``: the `Alignment` of the
    transcript (None without one); ``neural``: returns the neural model, or None when it is
    not available.  "auto" is hybrid with a transcript, neural without; exact timing (espeak-ng
    speaking the text itself) is aligned only.  The one fallback: an alignment whose
    confidence is below `MIN_ALIGN_CONFIDENCE` gives way to the neural engine.
    """
    if requested not in ENGINES:
        raise ValueError(f"unknown engine {requested!r}; choose one of {', '.join(ENGINES)}")
    intensity = params.intensity
    if requested == "align" or (timing is not None and timing.method in EXACT_TIMING and requested == "auto"):
        if timing is None:
            raise ValueError(f"{source}: the aligned engine needs a transcript (--text or --transcript)")
        return Aligned(params), []
    model = neural()
    if model is None:
        if requested in ("neural", "hybrid"):
            raise RuntimeError(f"the {requested} engine needs the neural model's weights (assets/model); "
                               "reinstall the toolkit or run `viseme train`")
        if timing is None:
            raise ValueError(f"{source}: no transcript given and the neural model is unavailable; "
                             "pass --text or --transcript")
        return Aligned(params), []
    if requested == "neural" or timing is None:
        # hybrid mixes the audio into aligned visemes: with nothing to align, only the audio's part is left
        why = [f"{source}: engine 'hybrid' needs a transcript; using the audio-only model"]
        return Neural(model, intensity, seed), why if requested == "hybrid" else []
    if timing.confidence < MIN_ALIGN_CONFIDENCE and timing.method not in EXACT_TIMING:
        return Neural(model, intensity, seed), [
            f"{source}: alignment confidence {timing.confidence:.2f} is low (does the transcript match the audio?); "
            "using the audio-only model"]
    return Hybrid(model, params, seed), []


def coarticulation_params(params: CoarticulationParams | None, intensity: float) -> CoarticulationParams:
    """The coarticulation settings with the requested mouth ``intensity``."""
    return replace(params or DEFAULT_PARAMS, intensity=intensity)
