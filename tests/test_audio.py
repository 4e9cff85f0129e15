"""toolkit.audio: loading every format to 16 kHz mono float32, and its errors."""
from __future__ import annotations

import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import missing_dependency

from toolkit.audio import (
    TARGET_RATE, AudioError, check_not_silent, duration_s, load_audio, resample, rms_envelope, write_wav,
)

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "speech" / "transcribed"


def _tone(sr: int, seconds: float = 1.0, freq: float = 440.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _dominant_hz(x: np.ndarray, sr: int = TARGET_RATE) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / sr)[np.argmax(spec)])


# -- generated files -------------------------------------------------------------

@pytest.mark.parametrize(
    "name, sr, subtype, fmt",
    [
        ("a16.wav", 16000, "PCM_16", "WAV"),
        ("a8k.wav", 8000, "PCM_16", "WAV"),
        ("a24.wav", 48000, "PCM_24", "WAV"),
        ("a32.wav", 22050, "PCM_32", "WAV"),
        ("af.wav", 44100, "FLOAT", "WAV"),
        ("ad.wav", 11025, "DOUBLE", "WAV"),
        ("au8.wav", 16000, "PCM_U8", "WAV"),
        ("a.flac", 44100, "PCM_16", "FLAC"),
        ("a.ogg", 32000, "VORBIS", "OGG"),
        ("a.opus", 48000, "OPUS", "OGG"),
        ("a.mp3", 24000, "MPEG_LAYER_III", "MP3"),
        ("a.sph", 16000, "PCM_16", "NIST"),
    ],
)
def test_formats_and_rates_come_back_as_16k_mono(tmp_path, name, sr, subtype, fmt):
    x = _tone(sr, 1.0, 440.0)
    path = tmp_path / name
    sf.write(path, x, sr, subtype=subtype, format=fmt)
    y = load_audio(path)
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(duration_s(y) - 1.0) < 0.08  # lossy codecs pad a few ms
    assert abs(_dominant_hz(y) - 440.0) < 3.0
    peak = np.max(np.abs(y[2000:-2000]))
    assert 0.4 < peak < 0.6, f"level changed: peak {peak}"


def test_stereo_is_averaged_and_high_rate_resampled(tmp_path):
    left, right = _tone(48000, 1.0, 300.0, 0.4), _tone(48000, 1.0, 300.0, 0.2)
    path = tmp_path / "st.wav"
    sf.write(path, np.stack([left, right], axis=1), 48000)
    y = load_audio(path)
    assert len(y) == 16000
    ref = _tone(16000, 1.0, 300.0, 0.3)
    assert np.max(np.abs(y[200:-200] - ref[200:-200])) < 2e-3


def test_resample_keeps_band_and_removes_aliases():
    x = _tone(44100, 1.0, 1000.0) + _tone(44100, 1.0, 12000.0)  # 12 kHz must not fold into 0-8 kHz
    y = resample(x, 44100, 16000)
    spec = np.abs(np.fft.rfft(y))
    freqs = np.fft.rfftfreq(len(y), 1 / 16000)
    passband = spec[np.abs(freqs - 1000) < 5].max()
    alias = spec[np.abs(freqs - 4000) < 20].max()  # 16000 - 12000
    assert alias < passband * 1e-3


def test_arrays_int_float_and_channel_layouts():
    x16 = (_tone(16000) * 32767).astype(np.int16)
    assert np.allclose(load_audio(x16, sample_rate=16000), _tone(16000), atol=1e-4)
    stereo_cf = np.stack([_tone(8000), _tone(8000)])  # (channels, samples)
    assert load_audio(stereo_cf, sample_rate=8000).shape == (16000,)
    u8 = np.full(1600, 128, np.uint8)
    assert np.all(load_audio(u8, sample_rate=16000) == 0)
    with pytest.raises(AudioError, match="sample_rate"):
        load_audio(_tone(16000))


def test_integer_arrays_of_no_pcm_format_are_refused_naming_the_dtype():
    """np.array of Python ints is int64: it was read as 64-bit PCM (full scale 2**63) and refused as
    "silent (peak -293 dBFS)".  No recording has 64-bit integer samples; the bit depth cannot be
    guessed from the values, so the message names the dtype and what to pass."""
    ints = np.array([int(v) for v in _tone(16000) * 20000])
    assert ints.dtype == np.int64
    for bad in (ints, ints.astype(np.uint16), ints.astype(np.uint32), ints.astype(np.uint64)):
        with pytest.raises(AudioError, match=rf"^array: {bad.dtype} samples are not a PCM format .*astype\(np\.int16\)"):
            load_audio(bad, sample_rate=16000)
    for ok, scale in ((np.int16, 32768), (np.int32, 2**31), (np.int8, 128)):  # the PCM formats still read
        x = (_tone(16000) * 0.5 * scale).astype(ok)
        assert np.allclose(load_audio(x, sample_rate=16000), _tone(16000) * 0.5, atol=0.01)


def test_raw_needs_rate_and_reads_formats(tmp_path):
    x = _tone(16000, 0.5)
    p = tmp_path / "speech.raw"
    (x * 32767).astype("<i2").tofile(p)
    with pytest.raises(AudioError, match=r"speech\.raw.*raw_rate"):
        load_audio(p)
    y = load_audio(p, raw_rate=16000)
    assert np.allclose(y, x, atol=1e-4)
    p2 = tmp_path / "speech.pcm"
    x.astype("<f4").tofile(p2)
    assert np.allclose(load_audio(p2, raw_rate=8000, raw_format="f32le"), resample(x, 8000, 16000), atol=1e-6)
    with pytest.raises(AudioError, match="raw_format"):
        load_audio(p2, raw_rate=8000, raw_format="mulaw")


# -- errors -------------------------------------------------------------------------

def test_missing_and_empty_files_name_the_file(tmp_path):
    with pytest.raises(AudioError, match=r"nothere\.wav: file not found"):
        load_audio(tmp_path / "nothere.wav")
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(AudioError, match=r"empty\.wav: the file is empty"):
        load_audio(empty)
    with pytest.raises(AudioError, match="folder"):
        load_audio(tmp_path)


def test_corrupt_and_unsupported_files(tmp_path):
    junk = tmp_path / "junk.wav"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    with pytest.raises(AudioError, match=r"junk\.wav: not audio, or a truncated, corrupt or unsupported"):
        load_audio(junk)
    text = tmp_path / "notes.txt"
    text.write_text("this is not audio\n" * 20)
    with pytest.raises(AudioError, match=r"notes\.txt: not audio: the file holds text"):
        load_audio(text)


def test_truncated_files(tmp_path):
    good = tmp_path / "good.wav"
    sf.write(good, _tone(16000, 1.0), 16000)
    data = good.read_bytes()
    header_only = tmp_path / "head.wav"
    header_only.write_bytes(data[:30])  # cut inside the header
    with pytest.raises(AudioError, match=r"head\.wav"):
        load_audio(header_only)
    half = tmp_path / "half.wav"
    half.write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioError, match=r"half\.wav: truncated WAV.*holds \d+ \(50 %\).*--allow-truncated"):
        load_audio(half)
    with pytest.warns(UserWarning, match=r"half\.wav: truncated WAV"):
        y = load_audio(half, allow_truncated=True)
    assert abs(duration_s(y) - 0.5) < 0.01
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an intact file must not warn
        load_audio(good)
    flac = tmp_path / "cut.flac"
    sf.write(flac, _tone(16000, 1.0), 16000, format="FLAC")
    flac.write_bytes(flac.read_bytes()[:200])
    with pytest.raises(AudioError, match=r"cut\.flac"):
        load_audio(flac)


def test_zero_length_and_silence(tmp_path):
    p = tmp_path / "zero.wav"
    sf.write(p, np.zeros(0, np.float32), 16000)
    with pytest.raises(AudioError, match=r"zero\.wav: the audio has zero length"):
        load_audio(p)
    quiet = tmp_path / "quiet.wav"
    sf.write(quiet, np.random.default_rng(1).normal(0, 1e-4, 16000).astype(np.float32), 16000)
    x = load_audio(quiet)
    with pytest.raises(AudioError, match=r"quiet\.wav: the audio is silent"):
        check_not_silent(x, quiet)
    with pytest.raises(AudioError, match="-inf dBFS"):
        check_not_silent(np.zeros(100), "z.wav")
    assert check_not_silent(_tone(16000, 0.1, amp=0.01)) == pytest.approx(-40.0, abs=0.1)
    with pytest.raises(AudioError, match="NaN"):
        load_audio(np.array([0.0, np.nan, 0.1]), sample_rate=16000)


# -- helpers ---------------------------------------------------------------------

def test_rms_envelope_follows_loudness():
    sr, fps = 16000, 30
    x = np.concatenate([np.zeros(sr // 2), _tone(sr, 0.5, amp=0.8), np.zeros(sr // 2)]).astype(np.float32)
    env = rms_envelope(x, sr, fps)
    assert env.shape == (45,) and env.dtype == np.float32
    assert np.all(env[:14] < 1e-6) and np.all(env[-14:] < 1e-6)
    assert np.allclose(env[17:28], 0.8 / np.sqrt(2), atol=0.02)
    assert rms_envelope(x, sr, fps, n_frames=50).shape == (50,)


def test_write_wav_is_atomic_and_roundtrips(tmp_path):
    x = _tone(16000, 0.25, amp=0.3)
    p = write_wav(tmp_path / "out.wav", x, 16000)
    assert np.allclose(load_audio(p), x, atol=1e-4)
    assert sorted(f.name for f in tmp_path.iterdir()) == ["out.wav"]  # no temp file left behind
    with pytest.raises(Exception):
        write_wav(tmp_path / "missing_dir" / "out.wav", x, 16000)
    assert sorted(f.name for f in tmp_path.iterdir()) == ["out.wav"]


def test_ffmpeg_fallback_for_formats_libsndfile_lacks(tmp_path):
    import imageio_ffmpeg

    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    src = tmp_path / "src.wav"
    sf.write(src, _tone(22050, 1.0, 500.0), 22050)
    m4a = tmp_path / "a.m4a"
    r = subprocess.run([ffmpeg, "-v", "error", "-y", "-i", str(src), "-c:a", "aac", str(m4a)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"this ffmpeg cannot encode AAC: {r.stderr[-200:]!r}")
    y = load_audio(m4a)
    assert abs(duration_s(y) - 1.0) < 0.1
    assert abs(_dominant_hz(y) - 500.0) < 3.0


# -- real recordings (skipped without ../shared/data) -----------------------------

def _real(rel: str) -> Path:
    p = DATA / rel
    if not p.exists():
        pytest.skip(f"real test audio not present: {p}")
    return p


@pytest.mark.parametrize(
    "rel, seconds",
    [
        ("mfa_tests/audio/common_voice_en_22058264.mp3", 4.11),  # mp3 48 kHz
        ("mfa_tests/audio/cold_corpus_24bit.wav", 25.72),
        ("mfa_tests/audio/cold_corpus_32bit_float.wav", 25.72),
        ("mfa_tests/audio/michaelandsickmichael.wav", 52.44),  # stereo, two speakers
        ("deepspeech_tests/LDC93S1_pcms16le_1_8000.wav", 2.92),
        ("deepspeech_tests/LDC93S1_pcms16le_2_44100.wav", 2.92),
        ("whisper_tests/jfk.flac", 11.0),  # 44.1 kHz stereo 24-bit FLAC
        ("speechbrain_tests/single-mic/example3.sph", 2.89),  # NIST SPHERE 8-bit
        ("speechbrain_tests/TTS/LJ050-0131.wav", 7.66),  # 22.05 kHz
    ],
)
def test_real_recordings(rel, seconds):
    x = load_audio(_real(rel))
    assert x.dtype == np.float32 and x.ndim == 1
    assert abs(duration_s(x) - seconds) < 0.06
    assert check_not_silent(x, rel) > -30


def test_real_bit_depths_agree():
    a = load_audio(_real("mfa_tests/audio/cold_corpus.wav"))
    b = load_audio(_real("mfa_tests/audio/cold_corpus_24bit.wav"))
    c = load_audio(_real("mfa_tests/audio/cold_corpus_32bit_float.wav"))
    assert np.max(np.abs(a - b)) < 1e-3 and np.max(np.abs(a - c)) < 1e-3


def test_real_rates_agree_after_resampling():
    a = load_audio(_real("deepspeech_tests/LDC93S1_pcms16le_1_8000.wav"))
    b = load_audio(_real("deepspeech_tests/LDC93S1_pcms16le_2_44100.wav"))
    n = min(len(a), len(b))
    assert np.corrcoef(a[:n], b[:n])[0, 1] > 0.95


def test_real_headerless_raw():
    p = _real("pocketsphinx_tests/goforward.raw")
    with pytest.raises(AudioError, match="goforward.raw.*raw_rate"):
        load_audio(p)
    x = load_audio(p, raw_rate=16000, raw_format="s16le")
    assert abs(duration_s(x) - 2.79) < 0.02
    assert check_not_silent(x) > -30
    # speech lies in 0-4 kHz: the wrong byte order would look like white noise
    spec = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / 16000)
    assert spec[freqs < 4000].sum() > 0.9 * spec.sum()


def test_espeak_wav(tmp_path):
    if shutil.which("espeak-ng") is None:
        missing_dependency("the espeak-ng program is not installed (scripts/setup.sh installs it)")
    p = tmp_path / "say.wav"
    subprocess.run(["espeak-ng", "-w", str(p), "hello there"], check=True)
    x = load_audio(p)  # espeak writes 22050 Hz
    assert 0.5 < duration_s(x) < 2.0
    assert check_not_silent(x) > -20
