"""The main job, readable as the algorithm: speech in, lip-sync curves out.

    speech = the audio (16 kHz mono), or espeak-ng speaking the text
    timing = when each word and phoneme is said: forced alignment of the transcript,
             a TextGrid, espeak-ng's own events, or nothing (no transcript)
    mouth  = the engine chosen for that timing draws the visemes, jaw and lips
    life   = blinks and head motion, added once for every engine
    shift  = the user's offset

Example
-------
>>> anim = animate("speech.wav", "Hello world", fps=30)      # doctest: +SKIP
>>> anim.channel("jawOpen").max() > 0.2                       # doctest: +SKIP
True
"""
from __future__ import annotations

import logging
import math
import shutil
import time
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from toolkit import audio as audio_io
from toolkit import engines, progress
from toolkit.animation import FPS_RANGE, Animation, Segment
from toolkit.checks import check_number, in_range
from toolkit.motion.procedural import add_life
from toolkit.recording import Recording, open_recording
from toolkit.visemes.coarticulation import CoarticulationParams

log = logging.getLogger("toolkit")

ENGINES = engines.ENGINES
MIN_ALIGN_CONFIDENCE = engines.MIN_ALIGN_CONFIDENCE

# The allowed range of each numeric option, (low, high, whole number); the command line's argument
# types read the same table.  Beyond +-10 s an offset moves the mouth out of any short clip.
LIMITS = {"fps": (*FPS_RANGE, False), "intensity": (0, 3, False), "offset_ms": (-10_000, 10_000, False),
          "seed": (0, 2**32 - 1, True)}
# Speaking-rate sanity check (`_check_speaking_rate`): conversational English runs 10-15 phonemes a
# second and very fast speech about 20; a transcript that would need more than this to fit the audio
# belongs to other audio (or the audio was cut), and aligning it would only spread words at random.
MAX_PHONEMES_PER_S = 25.0
NORMAL_PHONEMES_PER_S = 12.0
# A TextGrid whose labels run further than this past the audio's end (`_check_textgrid_fits`) was made
# for other audio: an encoder's padding or rounding moves an end by tens of milliseconds, not more.
TEXTGRID_SLACK_S = 0.25


@dataclass(frozen=True)
class Options:
    """How to animate (every keyword of `animate` besides the input), checked when made.

    fps: frames per second (1-240); lang: espeak-ng language code; engine: "auto", "align",
    "neural" or "hybrid"; intensity: mouth motion (1 natural, 0-3); offset_ms: shift later
    (negative: earlier); params: `CoarticulationParams` (timing rules); voice: espeak-ng voice
    for text alone; seed: blinks and head motion (>= 0); blinks, head_motion: on/off;
    aligner: "auto", "pocketsphinx", "universal", "mfa" or "even" ("auto": `toolkit.alignment.auto_method`).
    """

    fps: float = 30
    lang: str = "en"
    engine: str = "auto"
    intensity: float = 1.0
    offset_ms: float = 0.0
    params: CoarticulationParams | None = None
    voice: str | None = None
    seed: int = 0
    blinks: bool = True
    head_motion: bool = True
    aligner: str = "auto"

    def __post_init__(self) -> None:
        from toolkit.alignment import METHODS

        for name, (lo, hi, whole) in LIMITS.items():
            check_number(name, getattr(self, name), lo, hi, whole)
        if not isinstance(self.lang, str) or not self.lang.strip():
            raise ValueError(f"lang must be a language code such as 'en' or 'de', got {self.lang!r}")
        if self.voice is not None and not isinstance(self.voice, str):
            raise ValueError(f"voice must be an espeak-ng voice name or None, got {self.voice!r}")
        if self.params is not None and not isinstance(self.params, CoarticulationParams):
            raise ValueError(f"params must be a CoarticulationParams, got {type(self.params).__name__}")
        for name in ("blinks", "head_motion"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {self.engine!r}")
        if self.aligner not in METHODS:
            raise ValueError(f"aligner must be one of {', '.join(METHODS)}, got {self.aligner!r}")

    @classmethod
    def of(cls, kwargs: dict) -> "Options":
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(kwargs) - names)
        if unknown:
            raise TypeError(f"unknown argument(s) {', '.join(unknown)}; animate() takes {', '.join(sorted(names))}")
        return cls(**kwargs)


# -- the algorithm -----------------------------------------------------------------------------------
def animate(audio=None, text: str | None = None, *, ipa: str | None = None, sample_rate: int | None = None,
            textgrid: str | Path | None = None, raw_rate: int | None = None, allow_truncated: bool = False,
            source: str | None = None, animator=None, **options) -> Animation:
    """Speech (a path, an array, or what `say` spoke) and/or text -> an `Animation`.

    * audio + text: forced alignment, then coarticulation, refined by the neural model (`"hybrid"`).
    * audio alone: the neural model (`"neural"`).
    * text alone: espeak-ng speaks it; its phoneme events give exact timing.

    ``options`` are the fields of `Options` (fps, lang, engine, intensity, offset_ms, params,
    voice, seed, blinks, head_motion, aligner); a bad value raises ValueError naming it.
    ``ipa``: the transcript in IPA instead of ``text`` (words separated by spaces, any language,
    even one espeak-ng does not speak); ``textgrid``: take the timing from a Praat/MFA TextGrid;
    ``sample_rate``: the rate of an array (only: a file has its own); ``raw_rate``: the rate of a
    headerless .raw/.pcm file; ``allow_truncated`` (a bool): animate what a cut-off WAV holds (else it
    is refused); ``source``: the audio's name in messages;
    ``animator``: the neural model to use (default: the shipped one).  The result's ``meta``
    says which engine ran (and why, among its warnings), the alignment and its confidence.
    """
    opts = Options.of(options)
    t0 = time.perf_counter()
    text, notes = _transcript_text(text, audio)
    words = _transcript_words(text, ipa, audio, textgrid, opts)
    speech = _speech(audio, text, sample_rate, raw_rate, allow_truncated, source, opts)
    _check_offset(opts.offset_ms, speech)
    timing, timing_notes = _timing(speech, words, textgrid, opts)
    notes += timing_notes
    params = engines.coarticulation_params(opts.params, opts.intensity)
    engine, why = engines.choose(opts.engine, timing, lambda: animator or _neural(), params=params,
                                 seed=opts.seed, source=speech.name)
    mouth = engine.mouth(speech.samples, timing, opts.fps)
    anim = add_life(mouth, speech.samples, seed=opts.seed, blinks=opts.blinks, head_motion=opts.head_motion,
                    in_place=True)  # the engine's animation is ours: no hour-long copies
    anim = shift(anim, opts.offset_ms / 1000.0)
    return _with_meta(anim, speech, timing, engine.name, notes + why, opts, t0)


def say(text: str, **options):
    """Speak ``text`` with espeak-ng and animate it with exact timing (libespeak-ng phoneme events).

    Returns ``(speech, animation)``; ``speech.samples`` is the 16 kHz audio, ``speech.phonemes``
    its timing.  ``options`` as for `animate` (lang, voice, fps, intensity, seed...).

    >>> speech, anim = say("Guten Morgen", lang="de")   # doctest: +SKIP
    """
    opts = Options.of(options)
    spoken = _spoken(text, opts)
    return spoken, animate(spoken, text, **options)


def align(audio, text: str | None = None, *, ipa: str | None = None, lang: str = "en",
          sample_rate: int | None = None, textgrid: str | Path | None = None, raw_rate: int | None = None,
          aligner: str = "auto", allow_truncated: bool = False, source: str | None = None):
    """Timed words and phonemes for speech and its transcript.

    Returns a `toolkit.alignment.Alignment` (phonemes and words as `Segment` lists
    in seconds, a confidence in 0..1, the method used and any warnings).
    ``ipa``: the transcript in IPA instead of ``text`` (words separated by spaces, any language).
    ``aligner``: "auto" (`toolkit.alignment.auto_method`: PocketSphinx for English text, or an
    `mfa` on PATH; the universal aligner for other languages and IPA), "pocketsphinx",
    "universal", "mfa" or "even".  ``allow_truncated``: see `toolkit.audio.load_audio`;
    ``source``: the name messages give the audio (e.g. the file an array was read from).
    """
    if textgrid is not None:
        return _read_textgrid(textgrid)
    from toolkit.phonemes.g2p import transcript_words

    opts = Options(lang=lang, aligner=aligner)
    words = transcript_words(text, ipa, lang)  # bad transcripts fail before the audio is read
    speech = _speech(audio, text, sample_rate, raw_rate, allow_truncated, source, opts)
    return _align_transcript(speech, words, opts)


def stream(chunks, *, sample_rate: int = 16000, fps: float = 30, intensity: float = 1.0, seed: int = 0,
           blinks: bool = True, head_motion: bool = True):
    """Audio-only lip sync for live audio: an iterable of chunks in, frames out as soon as they are final.

    ``chunks``: 1-D float arrays of 16 kHz mono audio, any length (a microphone
    callback's buffers, say).  Yields arrays of shape (n, len(CHANNELS)), n >= 0,
    at ``fps``; together they equal `NeuralAnimator.predict` on the whole clip.  Latency: at most
    60 ms of audio after a frame's time (see `toolkit.motion.model.latency_s`).

    >>> for frames in stream(mic_chunks(), fps=60):     # doctest: +SKIP
    ...     send_to_engine(frames)
    """
    Options(fps=fps, intensity=intensity, seed=seed, blinks=blinks, head_motion=head_motion)  # animate's checks
    if sample_rate != audio_io.TARGET_RATE:
        raise ValueError(f"stream needs {audio_io.TARGET_RATE} Hz chunks, got {sample_rate!r} Hz "
                         "(resample the source, or use animate() on a whole clip)")
    model = _neural()
    if model is None:
        raise RuntimeError("streaming needs the neural model's weights (assets/model/audio2face.npz)")
    s = model.streamer(fps=fps, seed=seed, intensity=intensity, blinks=blinks, head_motion=head_motion)
    for chunk in chunks:
        yield s.push(chunk)
    yield s.flush()


def shift(anim: Animation, offset_s: float) -> Animation:
    """Move all curves and labels later by `offset_s` (earlier when negative), keeping the length."""
    if not in_range(offset_s, -math.inf, math.inf):  # NaN made every curve NaN
        raise ValueError(f"offset_s must be a finite number of seconds, got {offset_s!r}")
    if not offset_s:
        return anim
    values = anim.sample(anim.times_s - offset_s)
    move = lambda segs: [Segment(s.label, s.start + offset_s, s.end + offset_s) for s in segs]  # noqa: E731
    return Animation(anim.fps, list(anim.channels), values, move(anim.phonemes), move(anim.words), dict(anim.meta))


# -- the steps ----------------------------------------------------------------------------------------
def _transcript_text(text, audio) -> tuple[str | None, list[str]]:
    """The transcript, or None; an empty one with audio means audio only, and the user is told."""
    if text is not None and not isinstance(text, str):
        raise ValueError(f"text must be a string (the transcript) or None, got {type(text).__name__}")
    if text is not None and not text.strip():
        if audio is None:
            raise ValueError("nothing to animate: the text is empty and there is no audio")
        return None, ["the transcript is empty: animated from the audio alone (neural engine)"]
    return text, []


def _transcript_words(text, ipa, audio, textgrid, opts: Options):
    """The words to align with their phones (None when nothing is aligned: no transcript, a
    TextGrid, or text alone that espeak-ng will speak), worked out before the audio is read so
    that a bad transcript (`toolkit.phonemes.g2p.transcript_words`) fails first."""
    from toolkit.alignment.tts import Speech as Spoken
    from toolkit.phonemes.g2p import transcript_words

    if ipa is not None and audio is None:
        raise ValueError("an IPA transcript needs the audio it transcribes; to hear text spoken, give it as text")
    if audio is None or textgrid is not None or isinstance(audio, Spoken):  # espeak-ng's own timing, or a TextGrid's
        return None
    return transcript_words(text, ipa, opts.lang)


def _check_offset(offset_ms: float, speech: "_Speech") -> None:
    """An offset as long as the audio shifts every movement out of the clip: refused, naming both."""
    duration_s = len(speech.samples) / audio_io.TARGET_RATE
    if abs(offset_ms) / 1000.0 >= duration_s:
        raise ValueError(f"{speech.name}: an offset of {offset_ms:g} ms (--offset-ms; offset_ms in Python) shifts "
                         f"the whole animation out of the audio, which lasts {duration_s:.2f} s; use an offset "
                         "shorter than the audio")


@dataclass
class _Speech:
    """The audio being animated: 16 kHz mono, read block by block (a `toolkit.recording.Recording`:
    an hour-long file never sits in memory whole), its name in messages, and the exact timing
    that came with it when espeak-ng spoke the text (else None)."""

    samples: Recording
    name: str
    spoken: object | None = None


def _speech(audio, text, sample_rate, raw_rate, allow_truncated, source, opts: Options) -> _Speech:
    """Open the audio (a path, a `Recording`, an array at ``sample_rate``, or speech `say` made); with
    no audio, espeak-ng speaks the text.  Refuses silence with a message naming the source."""
    from toolkit.alignment.tts import Speech as Spoken

    _check_audio_arguments(audio, sample_rate, allow_truncated, source)
    if audio is None:
        if not text or not text.strip():
            raise ValueError("nothing to animate: give audio, text, or both")
        audio = _spoken(text, opts)
    if isinstance(audio, Spoken):
        samples = audio_io.load_audio(audio.samples, sample_rate=audio.sample_rate)
        speech = _Speech(Recording.from_array(samples, source or "<espeak-ng>"), source or "<espeak-ng>", audio)
    elif isinstance(audio, (str, Path)):  # read block by block; checked (empty, corrupt, silent...) first
        name = source or str(audio)
        speech = _Speech(open_recording(audio, raw_rate=raw_rate, allow_truncated=allow_truncated), name)
    elif isinstance(audio, Recording):
        speech = _Speech(audio, source or audio.name)
    else:
        if sample_rate is None:
            raise ValueError("audio given as an array needs sample_rate")
        samples = audio_io.load_audio(np.asarray(audio), sample_rate=sample_rate)
        name = source or "<array>"
        audio_io.check_not_silent(samples, name)
        speech = _Speech(Recording.from_array(samples, name), name)
    return speech


def _check_audio_arguments(audio, sample_rate, allow_truncated, source) -> None:
    """Refuse what `_speech` would otherwise ignore or bend: a ``sample_rate`` for audio that has its own
    rate (a file's header, a `Recording`, speech `say` made, or no audio: espeak-ng's), and an
    ``allow_truncated`` that is not a bool (``"no"`` is true)."""
    from toolkit.alignment.tts import Speech as Spoken

    if not isinstance(allow_truncated, (bool, np.bool_)):
        raise ValueError(f"allow_truncated must be True or False, got {allow_truncated!r}")
    if sample_rate is None or not (audio is None or isinstance(audio, (str, Path, Recording, Spoken))):
        return
    if isinstance(audio, (str, Path)):
        raise ValueError(f"sample_rate is for audio given as an array; {source or audio} has its own rate "
                         "(a headerless .raw/.pcm file takes raw_rate)")
    what = source or getattr(audio, "name", None) or "espeak-ng's speech"
    raise ValueError(f"sample_rate is for audio given as an array; {what} has its own rate")


def _stages(speech: _Speech, words, textgrid, opts: Options) -> list[str]:
    """The stages a job goes through, for the progress bar (`toolkit.progress`); ``words``: the transcript's."""
    timed = opts.engine != "neural" and (speech.spoken is not None or textgrid is not None or bool(words))
    aligns = timed and speech.spoken is None and textgrid is None
    mouth = {"align": ["coarticulation"], "neural": ["neural"]}.get(opts.engine, ["coarticulation", "neural"])
    return (["align"] if aligns else []) + (mouth if timed else ["neural"]) + ["life", "write"]


def _spoken(text: str, opts: Options):
    from toolkit.alignment.tts import synthesize

    return synthesize(text, lang=opts.lang, voice=opts.voice)


def _timing(speech: _Speech, words, textgrid, opts: Options):
    """When each word and phoneme is said, and notes for the user: espeak-ng's own events, a
    TextGrid, or the transcript aligned to the audio; None without a transcript (or for the
    neural engine, which does not read one)."""
    progress.plan(speech.samples.duration_s, _stages(speech, words, textgrid, opts))
    if speech.spoken is not None:
        from toolkit.alignment import Alignment

        s = speech.spoken
        return Alignment(s.phonemes, s.words, 1.0, "espeak"), []
    if opts.engine == "neural" and (words or textgrid):
        return None, ["engine 'neural' ignores the transcript"]
    if textgrid is not None:
        al = _read_textgrid(textgrid)
        _check_textgrid_fits(al, textgrid, speech)
        return al, list(al.warnings)
    if words:
        al = _align_transcript(speech, words, opts)
        return al, list(al.warnings)
    return None, []


def _read_textgrid(textgrid: str | Path):
    """A TextGrid's timing; a phone label that is no phone (an annotator's note) is an error naming the file."""
    from toolkit.alignment.textgrid import read_textgrid
    from toolkit.visemes.tables import visemes_for

    al = read_textgrid(textgrid)
    for p in al.phonemes:
        try:
            visemes_for(p.label)
        except KeyError:
            raise ValueError(f"{textgrid}: phone {p.label!r} at {p.start:.3f} s is not a phone (IPA, ARPAbet or "
                             "TIMIT label expected)") from None
    return al


def _check_textgrid_fits(al, textgrid, speech: _Speech) -> None:
    """Refuse a TextGrid whose words or phones end well after the audio (`TEXTGRID_SLACK_S`), naming both
    durations: its timing belongs to another recording, and its last phonemes would fall after the last frame."""
    duration_s = len(speech.samples) / audio_io.TARGET_RATE
    end_s = max([s.end for s in al.words + al.phonemes if s.label] or [0.0])
    if end_s > duration_s + TEXTGRID_SLACK_S:
        raise ValueError(f"{textgrid}: the TextGrid labels speech until {end_s:.2f} s, but {speech.name} lasts "
                         f"{duration_s:.2f} s; is it the TextGrid of this recording?")


def _align_transcript(speech: _Speech, words, opts: Options):
    """Forced alignment of the transcript's words: the aligner `toolkit.alignment.auto_method`
    picks (an `mfa` on PATH instead of PocketSphinx for English), or the one asked for."""
    from toolkit import alignment

    if not words:
        raise ValueError(f"{speech.name}: alignment needs a transcript (--text, --transcript or --ipa)")
    _check_speaking_rate(sum(len(w.phones) for w in words), speech)
    method = opts.aligner
    if method == "auto":
        method = alignment.auto_method(opts.lang, words)
        if method == "pocketsphinx" and shutil.which("mfa"):  # an installed MFA knows English as well
            method = "mfa"
    if method == "mfa":
        try:
            return alignment.align(speech.samples, audio_io.TARGET_RATE, words, lang=opts.lang, method="mfa",
                                   source=speech.name)
        except Exception as e:  # a broken MFA install must not stop the job: PocketSphinx still aligns
            log.warning("%s: mfa failed (%s); using PocketSphinx", speech.name, e)
            method = "pocketsphinx"
    return alignment.align(speech.samples, audio_io.TARGET_RATE, words, lang=opts.lang, method=method,
                           source=speech.name)


def _check_speaking_rate(n_phonemes: int, speech: _Speech) -> None:
    """Refuse a transcript the audio cannot hold even spoken very fast (`MAX_PHONEMES_PER_S`), naming
    both durations; a few phonemes of slack keep very short clips (one word) out of it."""
    duration_s = len(speech.samples) / audio_io.TARGET_RATE
    if n_phonemes > MAX_PHONEMES_PER_S * duration_s + 4:
        raise ValueError(
            f"{speech.name}: the transcript is far longer than the audio: its {n_phonemes} phonemes take about "
            f"{n_phonemes / NORMAL_PHONEMES_PER_S:.1f} s at a normal speaking rate and at least "
            f"{n_phonemes / MAX_PHONEMES_PER_S:.1f} s spoken very fast, but the audio lasts {duration_s:.2f} s; "
            "is it the transcript of this recording?")


def _neural():
    """The shipped neural animator, or None when its weights are missing."""
    try:
        from toolkit.motion.model import NeuralAnimator

        return NeuralAnimator.load()
    except (OSError, ValueError) as e:  # weights absent or unreadable: the aligned path still works
        log.debug("neural model unavailable: %s", e)
        return None


def _with_meta(anim: Animation, speech: _Speech, timing, engine: str, warnings: list[str], opts: Options,
               t0: float) -> Animation:
    for w in warnings:
        log.warning(w)
    anim.meta.update({
        "lang": opts.lang, "fps": opts.fps, "audio": speech.name,
        "engine": engine,
        "alignment": timing.method if timing is not None else "none",
        "confidence": round(float(timing.confidence), 3) if timing is not None else 0.0,
        "warnings": warnings,
        "duration_audio": round(len(speech.samples) / audio_io.TARGET_RATE, 4),
        "compute_s": round(time.perf_counter() - t0, 3),
    })
    if speech.spoken is not None:
        anim.meta.update({"voice": speech.spoken.voice, "text": speech.spoken.text})
    return anim
