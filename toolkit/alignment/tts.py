"""Speech from text with exact phoneme times: espeak-ng through libespeak-ng.

espeak-ng reports, for every phoneme it speaks, the sample where it starts
(phoneme events, as IPA), and for every word its place in the text.  So a
synthesized sentence comes with a perfect alignment: the "say" command of the
CLI, test material for the aligners, and a text-only path to an animation.

One correction is made from the waveform: espeak-ng marks a voiceless stop at
its burst, but the lips are already closed during the silent closure before
it; that closure is given to the stop (so ``p`` in "map" starts when the
sound stops, as a viewer sees it).

Example
-------
>>> sp = synthesize("Bob made a map.", lang="en")
>>> sp.sample_rate, sp.samples.dtype
(16000, dtype('float32'))
>>> [w.label for w in sp.words]
['Bob', 'made', 'a', 'map']
>>> [p.label for p in sp.phonemes if p.label][:3]
['b', 'ɑː', 'b']
>>> abs(sp.phonemes[-1].end - sp.duration_s) < 1e-6
True
"""
from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field

import numpy as np

from toolkit.animation import Segment
from toolkit.audio import TARGET_RATE, resample
from toolkit.phonemes import espeak
from toolkit.phonemes.inventory import split_ipa, starts_with_stop

_MAX_CLOSURE_S = 0.15
_MIN_CLOSURE_S = 0.01


@dataclass
class Speech:
    """Synthesized speech and its alignment; times in seconds from the first sample."""

    samples: np.ndarray  # float32, mono, `sample_rate` Hz
    sample_rate: int
    phonemes: list[Segment]  # IPA labels, "" = silence; contiguous from 0 to the end of the audio
    words: list[Segment]  # the words of the text as written
    lang: str
    voice: str  # espeak-ng voice, with "+variant" when one was asked for
    text: str = ""
    meta: dict = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return len(self.samples) / float(self.sample_rate)


def list_languages() -> list[str]:
    """Language codes espeak-ng can speak (``["af", "am", ..., "en-us", ..., "zh", ...]``)."""
    return sorted(espeak.voices())


def list_variants() -> list[str]:
    """Voice variants that can be added to any language (``"f3"``, ``"m2"``, ``"klatt"`` ...)."""
    import os

    folder = os.path.join(espeak.data_path(), "voices", "!v")
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def synthesize(
    text: str,
    lang: str = "en",
    voice: str | None = None,
    rate_wpm: int = 175,
    pitch: int = 50,
    variant: str | None = None,
) -> Speech:
    """Speak `text` with espeak-ng and return 16 kHz audio with phoneme and word times.

    lang: language code or name ("en" = American English, "de", "fr", "cmn" ...).
    voice: an espeak-ng voice code overriding `lang` ("en-gb-x-rp"), optionally
        with a variant ("en-us+f3").  variant: "f1".."f5", "m1".."m7", "klatt", ...
    rate_wpm: 80..450 words per minute; pitch: 0..100.
    Raises ValueError for empty text, an unknown language/voice or bad settings.

    >>> sp = synthesize("Hallo Welt", lang="de", variant="f2")
    >>> sp.voice, [w.label for w in sp.words]
    ('de+f2', ['Hallo', 'Welt'])
    """
    if not isinstance(text, str):  # say(5) is not "empty"
        raise ValueError(f"synthesize: text must be a string, got {type(text).__name__}")
    if not text.strip():
        raise ValueError("synthesize: the text is empty; there is nothing to say")
    if not 80 <= int(rate_wpm) <= 450:
        raise ValueError(f"synthesize: rate_wpm must be 80..450 words per minute, got {rate_wpm}")
    if not 0 <= int(pitch) <= 100:
        raise ValueError(f"synthesize: pitch must be 0..100, got {pitch}")
    spec = voice if voice else lang
    if "+" in spec:
        spec, _, spec_variant = spec.partition("+")
        variant = variant or spec_variant
    try:
        code = espeak.espeak_voice(spec)
    except ValueError as e:  # say which option was wrong: a voice is not a language
        if not voice:
            raise
        raise ValueError(f"unknown voice {voice!r}: espeak-ng has no such voice (a voice is a language code or "
                         f"voice name, optionally +variant: en-gb-x-rp, de+f2; `espeak-ng --voices` lists them)") from e
    if variant is not None and variant not in list_variants():
        raise ValueError(f"synthesize: unknown voice variant {variant!r}; try one of f1..f5, m1..m7 "
                         "(`espeak-ng --voices=variant` lists them)")

    said, written = _as_espeak_reads_it(text, code)
    raw, events, sr = _speak(said, code, variant, int(rate_wpm), int(pitch))
    samples = resample(raw.astype(np.float32) / 32768.0, sr, TARGET_RATE)
    total = len(raw)
    phonemes, word_of_phone = _phoneme_segments(events, total, sr, code)
    phonemes, word_of_phone = _give_closures_to_stops(phonemes, word_of_phone, samples, TARGET_RATE)
    phonemes[-1].end = len(samples) / TARGET_RATE  # the resampled length, to the sample
    words = _word_segments(events, said, phonemes, word_of_phone, written)
    if not any(p.label for p in phonemes):
        raise ValueError(f"synthesize: espeak-ng found nothing to say in {text!r}")
    return Speech(samples, TARGET_RATE, phonemes, words, lang, code + (f"+{variant}" if variant else ""), text,
                  {"engine": "espeak-ng", "rate_wpm": int(rate_wpm), "pitch": int(pitch)})


def _as_espeak_reads_it(text: str, code: str) -> tuple[str, dict[int, str] | None]:
    """The text espeak-ng is given, and the written word at each spoken word's first character (None: the
    text as written).  Japanese kanji are given as their kana pronunciation (`toolkit.phonemes.japanese`):
    espeak-ng would say "Chinese letter" for each; the words keep their written form."""
    from toolkit.phonemes.g2p import espeak_words
    from toolkit.phonemes.japanese import has_japanese_script, is_japanese

    if not (is_japanese(code) and has_japanese_script(text)):
        return text, None
    said, written = "", {}
    for piece, stop in re.findall(r"([^。、！？!?,.;:\n]*)([。、！？!?,.;:\n]*)", text):
        for w, s in espeak_words(piece, code):
            written[len(said)] = w
            said += s + " "
        if stop.strip():  # the pauses of the written sentence stay (as ASCII: espeak-ng's Japanese reads those)
            said = said.rstrip() + stop.strip().translate(_JAPANESE_STOPS)[:1] + " "
    return said.strip(), written


_JAPANESE_STOPS = str.maketrans("。、！？", ".,!?")


# -- talking to libespeak-ng ---------------------------------------------------------

def _speak(text: str, code: str, variant, rate_wpm: int, pitch: int):
    lib, sr = espeak.library()
    chunks: list[np.ndarray] = []
    events: list[tuple[int, int, int, int, str]] = []  # (type, sample, text_position, length, ipa)

    def on_audio(wav, n, ev):
        if wav and n > 0:
            chunks.append(np.ctypeslib.as_array(wav, (n,)).copy())
        i = 0
        while ev[i].type != espeak.EVENT_LIST_TERMINATED:
            e = ev[i]
            if e.type in (espeak.EVENT_PHONEME, espeak.EVENT_WORD, espeak.EVENT_END):
                label = e.id.string.decode("utf-8", "replace") if e.type == espeak.EVENT_PHONEME else ""
                events.append((e.type, e.sample, e.text_position, e.length, label))
            i += 1
        return 0

    callback = espeak.SYNTH_CALLBACK(on_audio)  # kept alive until espeak_Synchronize returns
    data = text.encode("utf-8")
    with espeak.LOCK:
        espeak.set_voice(code, variant)
        lib.espeak_SetParameter(espeak.PARAM_RATE, rate_wpm, 0)
        lib.espeak_SetParameter(espeak.PARAM_PITCH, pitch, 0)
        lib.espeak_SetSynthCallback(callback)
        err = lib.espeak_Synth(data, len(data) + 1, 0, espeak.POS_CHARACTER, 0, espeak.CHARS_UTF8, None, None)
        lib.espeak_Synchronize()
    if err != espeak.EE_OK:
        raise RuntimeError(f"espeak-ng failed to synthesize (error {err})")
    raw = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
    return raw, events, sr


def _phoneme_segments(events, total: int, sr: int, code: str):
    """Contiguous segments from phoneme onsets; "" for pauses and the lead-in."""
    onsets = [(smp, lab, pos) for typ, smp, pos, _, lab in events if typ == espeak.EVENT_PHONEME]
    segs: list[Segment] = []
    owner: list[int] = []  # text position of the word each segment belongs to (0: none)
    for k, (smp, lab, pos) in enumerate(onsets):
        end = onsets[k + 1][0] if k + 1 < len(onsets) else total
        smp, end = min(smp, total), min(end, total)
        if end <= smp:
            continue  # a zero-length event (several at one sample): the last one is the one heard
        t0, t1 = smp / sr, end / sr
        phones = split_ipa(espeak.clean_ipa(lab, code)) if lab else []
        if lab and not phones:  # only stress/tone marks: time belongs to the phone before
            if segs and segs[-1].label:
                segs[-1].end = t1
                continue
        if not phones:
            phones = [""]
        step = (t1 - t0) / len(phones)  # a diphthong split in two shares its time
        for j, p in enumerate(phones):
            segs.append(Segment(p, t0 + j * step, t0 + (j + 1) * step))
            owner.append(pos if p else 0)
    if not segs or segs[0].start > 0:
        segs.insert(0, Segment("", 0.0, segs[0].start if segs else total / sr))
        owner.insert(0, 0)
    segs[-1].end = total / sr
    return _merge_silences(segs, owner)


def _merge_silences(segs: list[Segment], owner: list[int]):
    out, own = [], []
    for s, o in zip(segs, owner):
        if s.end - s.start <= 0:
            continue
        if out and s.label == "" and out[-1].label == "":
            out[-1].end = s.end
            continue
        out.append(Segment(s.label, s.start, s.end))
        own.append(o)
    return out, own


def _give_closures_to_stops(segs: list[Segment], owner: list[int], samples: np.ndarray, sr: int):
    """Move a stop's start back over the silent closure espeak-ng puts before its burst."""
    hop = max(1, sr // 400)  # 2.5 ms
    n = len(samples) // hop
    if n < 4:
        return segs, owner
    frame_rms = np.sqrt(np.mean(samples[: n * hop].reshape(n, hop).astype(np.float64) ** 2, axis=1))
    loud = np.percentile(frame_rms, 90)
    quiet = frame_rms < max(loud * 0.03, 1e-5)  # 30 dB below the loud part
    for i in range(1, len(segs)):
        s, prev = segs[i], segs[i - 1]
        if not starts_with_stop(s.label):  # stops and affricates: the closure before the burst is theirs
            continue
        k = int(s.start * sr) // hop  # frame holding the burst
        j = k
        while j - 1 >= 0 and quiet[j - 1] and (k - j + 1) * hop / sr <= _MAX_CLOSURE_S:
            j -= 1
        closure_start = j * hop / sr
        if s.start - closure_start < _MIN_CLOSURE_S:
            continue
        # a sounding neighbour keeps at least 20 ms; a pause may be taken whole
        floor = prev.start if prev.label == "" else prev.start + min(0.02, 0.5 * (prev.end - prev.start))
        new_start = max(closure_start, floor)
        if new_start < s.start:
            s.start = prev.end = new_start
    return _merge_silences(segs, owner)


def _word_segments(events, text: str, phonemes: list[Segment], owner: list[int],
                   written: dict[int, str] | None = None) -> list[Segment]:
    """Words as written, timed by their phonemes; number words espeak-ng splits ("21") are joined.
    A word event on no written character (espeak-ng gives 'while' in "a while" at the space before it,
    "city—" no length) goes to the written word after it: those words were lost.
    ``written``: the label of the word starting at a character of ``text`` (the spoken text differs)."""
    tokens = [(m.start(), m.end()) for m in _WRITTEN_WORD.finditer(text)]
    spans: list[list] = []  # [first char, end char, text positions]
    for typ, _, pos, length, _ in events:
        if typ != espeak.EVENT_WORD or length < 0:
            continue
        start, end = pos - 1, pos - 1 + length
        if not text[start:end].strip():  # on a space, or nothing: the written word at or after it
            k = bisect.bisect_right([b for _, b in tokens], start)
            if k == len(tokens):
                continue
            start, end = tokens[k]
        if spans and start < spans[-1][1]:  # overlaps the previous word: the same written word
            spans[-1][1] = max(spans[-1][1], end)
            spans[-1][2].add(pos)
        else:
            spans.append([start, end, {pos}])
    out = []
    for start, end, positions in spans:
        times = [(p.start, p.end) for p, o in zip(phonemes, owner) if o in positions and p.label]
        label = (written or {}).get(start) or text[start:end].strip().strip(".,;:!?\"'()[]{}«»“”‘’")
        if times and label:
            out.append(Segment(label, min(t[0] for t in times), max(t[1] for t in times)))
    return out


# a written word, for the events on no character: between spaces and dashes
_WRITTEN_WORD = re.compile(r"[^\s–—]+")
