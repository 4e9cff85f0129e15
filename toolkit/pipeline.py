"""The main job, readable as the algorithm: speech in, lip-sync curves out.

    audio (+ transcript | text)
      -> audio.load_audio          16 kHz mono float32
      -> phonemes.g2p              words -> IPA phonemes
      -> align                     timed words and phonemes (PocketSphinx, TextGrid, mfa, espeak-ng)
      -> visemes.coarticulation    smooth viseme + ARKit curves
      -> motion                    neural jaw/lip dynamics, head motion, blinks
      -> Animation

Example
-------
>>> anim = animate(text="Hello world", fps=30)          # doctest: +SKIP
>>> anim.channel("jawOpen").max() > 0.2                  # doctest: +SKIP
True
"""
from __future__ import annotations

import logging
import shutil
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from toolkit import audio as audio_io
from toolkit.animation import Animation, Segment
from toolkit.visemes.coarticulation import DEFAULT_PARAMS, CoarticulationParams, animate_phonemes

log = logging.getLogger("toolkit")

ENGINES = ("auto", "align", "neural", "hybrid")
# Below this alignment confidence the neural model (when shipped) replaces the
# aligned mouth: a failed alignment must not leave the character frozen or wrong.
MIN_ALIGN_CONFIDENCE = 0.35


def _load(audio, sample_rate: int | None, raw_rate: int | None, allow_truncated: bool = False,
          source: str | None = None) -> tuple[np.ndarray, str]:
    """Samples at 16 kHz and a name for messages (``source``, else the path, else "<array>")."""
    if isinstance(audio, (str, Path)):
        samples = audio_io.load_audio(audio, raw_rate=raw_rate, allow_truncated=allow_truncated)
        return samples, source or str(audio)
    if sample_rate is None:
        raise ValueError("audio given as an array needs sample_rate")
    samples = audio_io.load_audio(np.asarray(audio), sample_rate=sample_rate)
    return samples, source or "<array>"


def _neural():
    """The shipped neural animator, or None when torch or its weights are missing."""
    try:
        from toolkit.motion.model import NeuralAnimator

        return NeuralAnimator.load()
    except Exception as e:  # torch absent, weights absent: the aligned path still works
        log.debug("neural model unavailable: %s", e)
        return None


def align(audio, text: str | None = None, *, lang: str = "en", sample_rate: int | None = None,
          textgrid: str | Path | None = None, raw_rate: int | None = None, aligner: str = "auto",
          allow_truncated: bool = False, source: str | None = None, ipa: str | None = None):
    """Timed words and phonemes for speech and its transcript.

    Returns a `toolkit.align.Alignment` (phonemes and words as `Segment` lists
    in seconds, a confidence in 0..1, the method used and any warnings).
    ``ipa``: the transcript as IPA instead of ``text`` (words separated by spaces; any language).
    ``aligner``: "auto" (an `mfa` on PATH for English text, else `toolkit.align.auto_method`:
    PocketSphinx for English, the universal aligner otherwise), "pocketsphinx", "universal",
    "mfa" or "even".  ``allow_truncated``: see `toolkit.audio.load_audio`;
    ``source``: the name messages give the audio (e.g. the file an array was read from).
    """
    words = transcript_words(text, ipa, lang) if textgrid is None else None
    if textgrid is not None:
        from toolkit.align.textgrid import read_textgrid

        return read_textgrid(textgrid)
    samples, name = _load(audio, sample_rate, raw_rate, allow_truncated, source)
    audio_io.check_not_silent(samples, name)
    return _align_samples(samples, name, words, lang, aligner)


def transcript_words(text: str | None, ipa: str | None, lang: str):
    """The transcript's words with their IPA phones, checked before any audio is read.

    ``text`` goes through `toolkit.phonemes.g2p.words_to_phonemes` (``word=IPA`` overrides included),
    ``ipa`` through `words_from_ipa`; giving both, an empty ``ipa``, an IPA symbol the toolkit cannot
    place or a language espeak-ng does not know raises ValueError.  None when there is no transcript.
    """
    from toolkit.phonemes.g2p import words_from_ipa, words_to_phonemes

    if ipa is not None:
        if text:
            raise ValueError("give the transcript as text or as IPA, not both")
        if not ipa.strip():
            raise ValueError("the IPA transcription is empty")
        return words_from_ipa(ipa)
    if not text or not text.strip():
        return None
    words = words_to_phonemes(text, lang=lang)
    if not words:
        raise ValueError(f"the transcript has no words to align: {text!r}")
    return words


def _align_samples(samples: np.ndarray, name: str, words, lang: str, aligner: str):
    from toolkit import align as aligners

    if not words:
        raise ValueError(f"{name}: alignment needs a transcript (--text, --transcript or --ipa)")
    ipa_only = all(getattr(w, "source", "") == "ipa" for w in words)
    if aligner == "auto":
        english = str(lang).lower() in aligners.POCKETSPHINX_LANGS and not ipa_only
        aligner = "mfa" if shutil.which("mfa") and english else "auto"
    if aligner == "mfa":
        try:
            return aligners.align(samples, audio_io.TARGET_RATE, words, lang=lang, method="mfa", source=name)
        except Exception as e:  # a broken MFA install must not stop the job: PocketSphinx still aligns
            log.warning("%s: mfa failed (%s); using the toolkit's own aligner", name, e)
            aligner = "auto"
    return aligners.align(samples, audio_io.TARGET_RATE, words, lang=lang, method=aligner, source=name)


def animate(
    audio=None,
    text: str | None = None,
    *,
    sample_rate: int | None = None,
    lang: str = "en",
    fps: float = 30,
    engine: str = "auto",
    textgrid: str | Path | None = None,
    offset_ms: float = 0.0,
    intensity: float = 1.0,
    params: CoarticulationParams | None = None,
    voice: str | None = None,
    seed: int = 0,
    raw_rate: int | None = None,
    blinks: bool = True,
    head_motion: bool = True,
    aligner: str = "auto",
    allow_truncated: bool = False,
    source: str | None = None,
    animator=None,
    ipa: str | None = None,
) -> Animation:
    """Speech (a path or an array) and/or text -> an `Animation`.

    * audio + text: forced alignment, then coarticulation (`engine="align"`),
      refined by the neural model when it is shipped (`"hybrid"`, the default).
    * audio alone: the neural model (`"neural"`).
    * text alone: espeak-ng speaks it; its phoneme events give exact timing.

    The result's ``meta`` says which engine ran, the alignment method and
    confidence, and any warnings; ``meta["samples"]`` is not stored (use
    `load_audio` again), but ``meta["audio"]`` names the source.  A truncated
    WAV file is refused unless ``allow_truncated`` (`toolkit.audio.load_audio`);
    ``source`` names the audio in messages (the file an array was read from);
    ``ipa``: the transcript as IPA instead of ``text`` (words separated by spaces, any language);
    ``animator``: the neural model to use (anything with `NeuralAnimator`'s
    ``predict`` and ``refine``), default the shipped weights when torch is there.
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if fps <= 0 or fps > 240:
        raise ValueError(f"fps must be between 1 and 240, got {fps}")
    p = replace(params or DEFAULT_PARAMS, intensity=intensity)
    t0 = time.perf_counter()
    warnings: list[str] = []
    meta: dict = {"lang": lang, "fps": fps}
    words_in = transcript_words(text, ipa, lang) if textgrid is None and audio is not None else None

    if audio is None:
        if ipa is not None:
            raise ValueError("an IPA transcript needs the audio it transcribes (speech from text: give text)")
        if not text:
            raise ValueError("nothing to animate: give audio, text, or both")
        return say(text, lang=lang, voice=voice, fps=fps, intensity=intensity, params=p, seed=seed,
                   blinks=blinks, head_motion=head_motion, offset_ms=offset_ms)[1]
    samples, name = _load(audio, sample_rate, raw_rate, allow_truncated, source)
    audio_io.check_not_silent(samples, name)
    meta["audio"] = name
    phonemes = words = None
    method, confidence = "none", 0.0
    if engine == "neural" and (words_in or textgrid):
        warnings.append("engine 'neural' ignores the transcript")
    elif words_in or textgrid:
        if textgrid is not None:
            from toolkit.align.textgrid import read_textgrid

            al = read_textgrid(textgrid)
        else:
            al = _align_samples(samples, name, words_in, lang, aligner)
        phonemes, words, method, confidence = al.phonemes, al.words, al.method, al.confidence
        warnings += list(al.warnings)
    duration = len(samples) / audio_io.TARGET_RATE

    model = None if engine == "align" else (animator or _neural())
    if engine in ("neural", "hybrid") and model is None:
        raise RuntimeError("the neural engine needs torch and the shipped weights (assets/model); run `make setup`")
    if phonemes is None and model is None:
        raise ValueError(
            f"{name}: no transcript given and the neural model is unavailable; pass --text or --transcript"
        )

    if phonemes is not None and not (confidence < MIN_ALIGN_CONFIDENCE and model is not None and method != "espeak"):
        anim = animate_phonemes(phonemes, duration, fps, audio=samples, params=p, words=words)
        used = "align"
        if model is not None and engine != "align":
            anim = model.refine(anim, samples, audio_io.TARGET_RATE, seed=seed, head_motion=head_motion)
            used = "hybrid"
    else:
        if phonemes is not None:
            warnings.append(f"{name}: alignment confidence {confidence:.2f} is low (does the transcript match the "
                            "audio?); using the audio-only model")
        # blinks come from _add_life below, as for every engine
        anim = model.predict(samples, audio_io.TARGET_RATE, fps=fps, intensity=intensity, seed=seed,
                             blinks=False, head_motion=head_motion)
        if phonemes is not None:
            anim.phonemes = [s for s in phonemes if s.label not in ("", "sil")]
            anim.words = list(words or [])
        used = "neural"

    anim = _add_life(anim, samples, blinks=blinks, head_motion=head_motion and used == "align", seed=seed)
    if offset_ms:
        anim = shift(anim, offset_ms / 1000.0)
    for w in warnings:
        log.warning(w)
    anim.meta.update(meta)
    anim.meta.update({
        "engine": used,
        "alignment": method,
        "confidence": round(float(confidence), 3),
        "warnings": warnings,
        "duration_audio": round(duration, 4),
        "compute_s": round(time.perf_counter() - t0, 3),
    })
    return anim


def stream(chunks, *, sample_rate: int = 16000, fps: float = 30, intensity: float = 1.0, seed: int = 0,
           blinks: bool = True, head_motion: bool = True):
    """Audio-only lip sync for live audio: an iterable of chunks in, frames out as soon as they are final.

    ``chunks``: 1-D float arrays of 16 kHz mono audio, any length (a microphone
    callback's buffers, say).  Yields arrays of shape (n, len(CHANNELS)), n >= 0,
    at ``fps``; together they equal `NeuralAnimator.predict` on the whole clip.  Latency: at most 60 ms of audio after a frame's time (see
    `toolkit.motion.model.latency_s`).

    >>> for frames in stream(mic_chunks(), fps=60):     # doctest: +SKIP
    ...     send_to_engine(frames)
    """
    if sample_rate != audio_io.TARGET_RATE:
        raise ValueError(f"stream needs {audio_io.TARGET_RATE} Hz chunks, got {sample_rate} Hz "
                         "(resample the source, or use animate() on a whole clip)")
    model = _neural()
    if model is None:
        raise RuntimeError("streaming needs the neural model: torch and assets/model/audio2face.pt (run `make setup`)")
    s = model.streamer(fps=fps, seed=seed, intensity=intensity, blinks=blinks, head_motion=head_motion)
    for chunk in chunks:
        yield s.push(chunk)
    yield s.flush()


def say(text: str, *, lang: str = "en", voice: str | None = None, fps: float = 30, intensity: float = 1.0,
        params: CoarticulationParams | None = None, seed: int = 0, blinks: bool = True, head_motion: bool = True,
        offset_ms: float = 0.0):
    """Speak `text` with espeak-ng and animate it with exact timing (libespeak-ng phoneme events).

    Returns ``(speech, animation)``; ``speech.samples`` is the 16 kHz audio.

    >>> speech, anim = say("Guten Morgen", lang="de")   # doctest: +SKIP
    """
    from toolkit.align.tts import synthesize

    t0 = time.perf_counter()
    p = replace(params or DEFAULT_PARAMS, intensity=intensity)
    speech = synthesize(text, lang=lang, voice=voice)
    duration = len(speech.samples) / speech.sample_rate
    anim = animate_phonemes(speech.phonemes, duration, fps, audio=speech.samples, sample_rate=speech.sample_rate,
                            params=p, words=speech.words)
    anim = _add_life(anim, speech.samples, blinks=blinks, head_motion=head_motion, seed=seed)
    if offset_ms:
        anim = shift(anim, offset_ms / 1000.0)
    anim.meta.update({"engine": "align", "alignment": "espeak", "confidence": 1.0, "lang": lang,
                      "voice": getattr(speech, "voice", voice), "text": text, "audio": "<espeak-ng>",
                      "warnings": [], "duration_audio": round(duration, 4),
                      "compute_s": round(time.perf_counter() - t0, 3)})
    return speech, anim


def _add_life(anim: Animation, samples: np.ndarray, *, blinks: bool, head_motion: bool, seed: int) -> Animation:
    """Blinks and prosody-driven head motion (seeded, so the same input gives the same output)."""
    from toolkit.motion import procedural

    if blinks:
        anim = procedural.add_blinks(anim, audio=samples, seed=seed)
    if head_motion:
        anim = procedural.add_head_motion(anim, samples, audio_io.TARGET_RATE, seed=seed)
    return anim


def shift(anim: Animation, offset_s: float) -> Animation:
    """Move all curves and labels later by `offset_s` (earlier when negative), keeping the length."""
    values = anim.sample(anim.times_s - offset_s)
    move = lambda segs: [Segment(s.label, s.start + offset_s, s.end + offset_s) for s in segs]  # noqa: E731
    return Animation(anim.fps, list(anim.channels), values, move(anim.phonemes), move(anim.words), dict(anim.meta))
