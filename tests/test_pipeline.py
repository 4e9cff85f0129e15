"""The main job end to end: speech + transcript (or text alone) -> Animation, and its failure paths."""
from pathlib import Path

import numpy as np
import pytest

from toolkit import pipeline
from toolkit.animation import CHANNELS
from toolkit.audio import AudioError, write_wav
from toolkit.visemes.tables import main_viseme

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def _frames_of(anim, seg):
    t = anim.times_s
    return (t >= seg.start - 0.06) & (t <= seg.end)


def _check_mouth(anim, reference_phonemes):
    """Lips close on every /p b m/ of the reference and open on its long vowels."""
    closed = anim.channel("viseme_PP")
    jaw = anim.channel("jawOpen")
    n_bil = n_open = 0
    for s in reference_phonemes:
        v = main_viseme(s.label) if s.label else None
        sel = _frames_of(anim, s)
        if v == "PP" and sel.any():
            n_bil += 1
            assert closed[sel].max() > 0.8, f"lips not closed during /{s.label}/ at {s.start:.2f}s"
        if v in ("aa", "E", "oh") and s.end - s.start > 0.07:
            n_open += 1
            mid = int(round((s.start + s.end) / 2 * anim.fps))
            assert jaw[max(mid - 2, 0):mid + 3].max() > 0.15, f"jaw shut on /{s.label}/ at {s.start:.2f}s"
    return n_bil, n_open


def test_aligned_speech_closes_lips_on_bilabials(espeak_speech, espeak_wav):
    anim = pipeline.animate(str(espeak_wav), espeak_speech.text, fps=30, engine="align")
    assert anim.channels == CHANNELS
    assert anim.meta["alignment"] == "pocketsphinx" and anim.meta["confidence"] > 0.5
    assert abs(anim.duration_s - espeak_speech.duration_s) <= 1 / 30 + 1e-6
    assert [w.label for w in anim.words] == ["bob", "made", "a", "map", "of", "paris"]
    n_bil, n_open = _check_mouth(anim, espeak_speech.phonemes)
    assert n_bil >= 4 and n_open >= 3


@pytest.mark.parametrize("lang,text", [("de", "Guten Morgen, wir bauen ein Boot."),
                                       ("fr", "Bonjour, mon ami Paul."),
                                       ("es", "Mi mama bebe mucha agua.")])
def test_say_gives_exact_timing_in_other_languages(lang, text):
    speech, anim = pipeline.say(text, lang=lang, fps=25)
    assert anim.meta["alignment"] == "espeak" and anim.fps == 25
    n_bil, n_open = _check_mouth(anim, speech.phonemes)
    assert n_bil >= 2 and n_open >= 2
    # the same timings as espeak-ng's phoneme events (no aligner in between)
    assert [p.label for p in anim.phonemes] == [p.label for p in speech.phonemes if p.label]


def test_text_only_animate_uses_espeak():
    anim = pipeline.animate(text="Maybe tomorrow", fps=30)
    assert anim.meta["alignment"] == "espeak" and anim.n_frames > 20


def test_aligning_other_languages_with_a_transcript(tmp_path):
    speech, _ = pipeline.say("Guten Morgen, wir bauen ein Boot.", lang="de")
    wav = write_wav(tmp_path / "de.wav", speech.samples, speech.sample_rate)
    anim = pipeline.animate(str(wav), "Guten Morgen, wir bauen ein Boot.", lang="de", engine="align")
    assert len(anim.words) == 6
    _check_mouth(anim, speech.phonemes)


def test_offset_and_fps(espeak_speech, espeak_wav):
    a = pipeline.animate(str(espeak_wav), espeak_speech.text, fps=60, engine="align", blinks=False, head_motion=False)
    b = pipeline.animate(str(espeak_wav), espeak_speech.text, fps=60, engine="align", offset_ms=100, blinks=False,
                         head_motion=False)
    assert a.fps == 60 and a.n_frames == b.n_frames
    pp_a, pp_b = a.channel("viseme_PP"), b.channel("viseme_PP")
    lag = np.argmax(np.correlate(pp_b - pp_b.mean(), pp_a - pp_a.mean(), "full")) - (len(pp_a) - 1)
    assert lag == 6  # 100 ms at 60 fps
    assert b.words[0].start == pytest.approx(a.words[0].start + 0.1, abs=1e-6)


def test_deterministic(espeak_speech, espeak_wav):
    a = pipeline.animate(str(espeak_wav), espeak_speech.text, engine="align", seed=3)
    b = pipeline.animate(str(espeak_wav), espeak_speech.text, engine="align", seed=3)
    assert np.array_equal(a.values, b.values)


def test_mismatched_transcript_warns_and_still_animates(espeak_wav):
    text = "Completely different words today"  # (as long as the speech: far longer is refused, see test_hardening)
    anim = pipeline.animate(str(espeak_wav), text, engine="align")
    assert anim.meta["warnings"], "a transcript that does not match must warn"
    assert anim.meta["confidence"] < 0.5
    assert anim.channel("jawOpen").max() > 0.1  # still an animation


def test_noise_bursts_still_give_an_animation(espeak_speech):
    x = espeak_speech.samples.copy()
    rng = np.random.default_rng(1)
    for a in (2000, 12000):
        x[a:a + 1600] = rng.uniform(-0.9, 0.9, 1600)
    anim = pipeline.animate(x, espeak_speech.text, sample_rate=16000, engine="align")
    assert anim.n_frames > 0 and anim.channel("viseme_PP").max() > 0.8


def test_bad_audio_errors_name_the_file(tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(AudioError, match="empty.wav"):
        pipeline.animate(str(empty), "hello")
    silent = write_wav(tmp_path / "silent.wav", np.zeros(16000, np.float32), 16000)
    with pytest.raises(AudioError, match="silent.wav.*silen"):
        pipeline.animate(str(silent), "hello")
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt garbage" + bytes(100))
    with pytest.raises(AudioError, match="corrupt.wav"):
        pipeline.animate(str(corrupt), "hello")
    with pytest.raises(AudioError, match="missing.wav"):
        pipeline.animate(str(tmp_path / "missing.wav"), "hello")


def test_unknown_language_is_a_clear_error():
    with pytest.raises(ValueError, match="xx"):
        pipeline.say("hello", lang="xx")


@pytest.mark.skipif(not (SHARED / "speech" / "transcribed").is_dir(), reason="../shared/data not present")
def test_real_speech_with_transcript():
    wav = SHARED / "speech" / "transcribed" / "whisper_tests" / "jfk.flac"
    text = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country."
    anim = pipeline.animate(str(wav), text, fps=30, engine="align")
    assert anim.meta["confidence"] > 0.5, anim.meta
    assert len(anim.words) == 22
    starts = [w.start for w in anim.words]
    assert starts == sorted(starts)
    # "my" and "fellow": lips close for /m/ and touch the teeth for /f/ around the word onsets
    my = next(w for w in anim.words if w.label == "my")
    fellow = next(w for w in anim.words if w.label == "fellow")
    t = anim.times_s
    assert anim.channel("viseme_PP")[(t >= my.start - 0.1) & (t <= my.start + 0.1)].max() > 0.8
    assert anim.channel("viseme_FF")[(t >= fellow.start - 0.1) & (t <= fellow.start + 0.1)].max() > 0.8


def test_public_api_names():
    """`toolkit.animate(...)` and `toolkit.align(...)` work whatever was imported before."""
    import toolkit
    import toolkit.alignment.pocketsphinx  # noqa: F401 - the package being imported first must not hide the API

    assert callable(toolkit.animate) and callable(toolkit.say) and callable(toolkit.stream)
    with pytest.raises(ValueError, match="sample_rate"):
        toolkit.align(np.zeros(100, np.float32), "hello")  # routed to pipeline.align: an array needs its rate
    from toolkit.alignment import Alignment

    assert toolkit.align.__module__ == "toolkit.pipeline" and Alignment is not None  # a function, not a package
