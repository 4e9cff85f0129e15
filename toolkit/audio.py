"""Load any speech recording as 16 kHz mono float32, and a few measures on it.

Every later stage works on one format: a float32 numpy array of mono samples
at `TARGET_RATE` (16 kHz), full scale = 1.0.  `load_audio` gets there from
WAV/FLAC/OGG/Opus/MP3/NIST SPHERE (libsndfile), anything else ffmpeg can
decode (m4a, aac, webm, wma ...), headerless PCM (``.raw``/``.pcm``) or an
array, resampling with a polyphase filter and averaging the channels.

Bad input raises `AudioError` (a ValueError) naming the file and the problem.

Example
-------
>>> import numpy as np
>>> x = load_audio(np.zeros(44100, np.int16) + 1000, sample_rate=44100)
>>> x.dtype, x.shape
(dtype('float32'), (16000,))
>>> round(duration_s(x, TARGET_RATE), 3)
1.0
"""
from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import warnings
from contextlib import contextmanager
from math import gcd
from pathlib import Path

import numpy as np

from toolkit.checks import allowed, in_range
from toolkit.files import atomic_write

TARGET_RATE = 16000

# Headerless PCM layouts: numpy dtype and full-scale value.
RAW_FORMATS: dict[str, tuple[str, float]] = {
    "s16le": ("<i2", 32768.0), "s16be": (">i2", 32768.0),
    "s32le": ("<i4", 2147483648.0), "s32be": (">i4", 2147483648.0),
    "s8": ("i1", 128.0), "u8": ("u1", 128.0),
    "f32le": ("<f4", 1.0), "f32be": (">f4", 1.0), "f64le": ("<f8", 1.0),
}
RAW_SUFFIXES = (".raw", ".pcm")
# Sample rates a headerless file may be read at: telephone-band 8 kHz recordings and below down to
# 1 kHz (nothing speech-like lower), up to the 768 kHz of studio converters.
RAW_RATE_LIMITS_HZ = (1000, 768_000)
RATE_LIMITS_HZ = RAW_RATE_LIMITS_HZ  # the same for any audio: a header saying 3 Hz is broken, not slow speech

# Below this peak level a recording counts as silence (16-bit dither is ~-90 dBFS,
# a quiet but real recording peaks well above -40 dBFS).
SILENCE_DBFS = -60.0


class AudioError(ValueError):
    """An audio input that cannot be used; the message names the file and the problem."""


def load_audio(
    path_or_array,
    sample_rate: int | None = None,
    *,
    raw_rate: int | None = None,
    raw_format: str = "s16le",
    raw_channels: int = 1,
    allow_truncated: bool = False,
) -> np.ndarray:
    """Read a recording (path or array) as float32 mono samples at 16 kHz.

    path_or_array: a file path, or an array (samples,) / (samples, channels) /
        (channels, samples) of float or integer PCM; an array needs `sample_rate`.
    raw_rate / raw_format / raw_channels: layout of a headerless ``.raw``/``.pcm``
        file (`raw_rate` is required for those; formats in `RAW_FORMATS`).
    allow_truncated: a WAV file cut short (its header declares more audio than
        it holds) is an `AudioError` unless this is set; then what is there is
        used, with a warning.

    >>> load_audio(np.ones((800, 2), np.float32) * 0.5, sample_rate=8000).shape
    (1600,)
    """
    if isinstance(path_or_array, (str, os.PathLike)):
        samples, sr = _read_file(Path(path_or_array), raw_rate, raw_format, raw_channels, allow_truncated)
        source = str(path_or_array)
    else:
        if sample_rate is None:
            raise AudioError("load_audio: an array needs its sample_rate (e.g. sample_rate=16000)")
        # a whole number of samples a second: 16000.5 was cut to 16000 (16000.0 is whole)
        if not in_range(sample_rate, *RATE_LIMITS_HZ) or not float(sample_rate).is_integer():
            raise AudioError(f"array: sample_rate must be {allowed(*RATE_LIMITS_HZ, whole=True)} (Hz), "
                             f"got {sample_rate!r}")
        samples, sr, source = as_float_samples(np.asarray(path_or_array), "array"), int(sample_rate), "array"
        samples = _to_frames_by_channels(samples)
    if not RATE_LIMITS_HZ[0] <= sr <= RATE_LIMITS_HZ[1]:
        raise AudioError(f"{source}: unsupported sample rate {sr} Hz (speech audio has "
                         f"{RATE_LIMITS_HZ[0]:g} to {RATE_LIMITS_HZ[1]:g} Hz)")
    if samples.shape[0] == 0:
        raise AudioError(f"{source}: the audio has zero length (no samples)")
    if not np.all(np.isfinite(samples)):
        raise AudioError(f"{source}: the audio contains NaN or infinite values")
    mono = samples.mean(axis=1) if samples.shape[1] > 1 else samples[:, 0]
    return resample(mono, sr, TARGET_RATE)


def resample(samples: np.ndarray, sr_in: int, sr_out: int = TARGET_RATE) -> np.ndarray:
    """Polyphase resampling with a Kaiser-windowed (beta 8) sinc filter, to float32.

    The same filter and phase as ``scipy.signal.resample_poly(x, up, down, window=("kaiser", 8.0))``
    (to float precision), in numpy: scipy would triple the size of the core install for this one
    function.  Long inputs are filtered block by block (memory stays flat).

    >>> resample(np.zeros(22050, np.float32), 22050, 16000).shape
    (16000,)
    >>> x = np.sin(2 * np.pi * 440 * np.arange(44100) / 44100)
    >>> y = resample(x, 44100, 16000)
    >>> bool(np.abs(y[1000:-1000] - np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)[1000:-1000]).max() < 1e-3)
    True
    """
    x = np.asarray(samples, np.float32)
    if int(sr_in) == int(sr_out):
        return np.ascontiguousarray(x)
    g = gcd(int(sr_in), int(sr_out))
    up, down = int(sr_out) // g, int(sr_in) // g
    y = _resample_poly(x.astype(np.float64), up, down, beta=8.0)
    n = int(round(len(x) * sr_out / sr_in))  # exact length, whatever the filter padding
    return np.ascontiguousarray(y[:n], dtype=np.float32)


RESAMPLE_BLOCK = 1 << 16  # output samples per run of matrix products: the input they read stays in cache


def _lowpass(up: int, down: int, beta: float) -> tuple[np.ndarray, int]:
    """The anti-aliasing filter of polyphase resampling by up/down (a Kaiser-windowed sinc with
    10 zero crossings per side at the lower Nyquist rate, unit DC gain x ``up``) and its delay in taps."""
    rate = max(up, down)
    half = 10 * rate
    m = np.arange(2 * half + 1) - half
    h = np.sinc(m / rate) / rate * np.kaiser(2 * half + 1, beta)
    return h / h.sum() * up, half


def _resample_poly(x: np.ndarray, up: int, down: int, beta: float, block: int = RESAMPLE_BLOCK) -> np.ndarray:
    """Upsample by ``up`` (zeros), filter, keep every ``down``-th sample; output sample k sits at
    input time k * down / up, so the output starts where the input starts.

    Output samples k, k + up, k + 2 up ... share one filter phase and read the input every
    ``down`` samples: each such run is one matrix-vector product over a strided view."""
    h, delay = _lowpass(up, down, beta)
    n_taps = -(-len(h) // up)                     # input samples under the filter for one output
    phases = np.zeros(n_taps * up)
    phases[:len(h)] = h
    newest_first = phases.reshape(n_taps, up).T[:, ::-1]   # [p, m]: weight of input newest - (n_taps-1) + m
    n_out = -(-len(x) * up // down)
    xp = np.concatenate([np.zeros(n_taps), x, np.zeros(n_taps + 1)])
    windows = np.lib.stride_tricks.sliding_window_view(xp, n_taps)   # windows[s] = xp[s:s + n_taps]
    out = np.empty(n_out)
    step = up * max(1, block // up)
    for start in range(0, n_out, step):
        stop = min(n_out, start + step)
        for k in range(start, min(stop, start + up)):
            newest, phase = divmod(k * down + delay, up)   # the newest input sample under the filter
            count = len(range(k, stop, up))
            rows = windows[newest + 1: newest + 1 + down * (count - 1) + 1: down]
            out[k:stop:up] = rows @ newest_first[phase]
    return out


class StreamResampler:
    """`resample` block by block (a microphone's or a pipe's audio), with the same filter and the
    same output: outputs whose filter has heard its input come out at once (0.6 ms of delay at
    48 or 44.1 kHz), `flush` gives the rest.

    >>> r = StreamResampler(48000)
    >>> x = np.random.default_rng(0).standard_normal(48000)
    >>> y = np.concatenate([r(x[i:i + 480]) for i in range(0, 48000, 480)] + [r.flush()])
    >>> y.shape, bool(np.abs(y - resample(x, 48000, 16000)).max() < 1e-6)
    ((16000,), True)
    """

    def __init__(self, sr_in: int, sr_out: int = TARGET_RATE, beta: float = 8.0) -> None:
        g = gcd(int(sr_in), int(sr_out))
        self.sr_in, self.sr_out = int(sr_in), int(sr_out)
        self.up, self.down = int(sr_out) // g, int(sr_in) // g
        h, self._delay = _lowpass(self.up, self.down, beta)
        self._taps = -(-len(h) // self.up)
        phases = np.zeros(self._taps * self.up)
        phases[:len(h)] = h
        self._weights = phases.reshape(self._taps, self.up).T[:, ::-1]
        self._buf = np.zeros(self._taps)       # input samples from absolute index _start on (zeros before 0)
        self._start = -self._taps
        self._n_in = 0                         # input samples received
        self._k = 0                            # next output sample

    @property
    def passthrough(self) -> bool:
        return self.up == self.down

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """The output samples this block completes (float32)."""
        x = np.asarray(x, np.float64).reshape(-1)
        if self.passthrough:
            return x.astype(np.float32)
        self._buf = np.concatenate([self._buf, x])
        self._n_in += x.size
        # output k needs input up to (k * down + delay) // up
        k_end = (self._n_in * self.up - self._delay + self.down - 1) // self.down if self._n_in else 0
        return self._emit(max(self._k, k_end))

    def flush(self) -> np.ndarray:
        """The last outputs (the input's end padded with silence), as `resample` gives them."""
        if self.passthrough:
            return np.zeros(0, np.float32)
        self._buf = np.concatenate([self._buf, np.zeros(self._taps + 1)])
        return self._emit(int(round(self._n_in * self.sr_out / self.sr_in)))

    def _emit(self, k_end: int) -> np.ndarray:
        ks = range(self._k, k_end)
        out = np.empty(len(ks))
        if len(ks):
            windows = np.lib.stride_tricks.sliding_window_view(self._buf, self._taps)
            # a long block (a file converted block by block) in runs of outputs, as `_resample_poly` does:
            # one product over a whole block's rows reads the input far apart and runs twice as slow
            step = self.up * max(1, RESAMPLE_BLOCK // self.up)
            for start in range(0, len(ks), step):
                stop = min(len(ks), start + step)
                for j in range(start, min(stop, start + self.up)):
                    newest, phase = divmod(ks[j] * self.down + self._delay, self.up)
                    first = newest - self._taps + 1 - self._start
                    count = len(range(j, stop, self.up))
                    rows = windows[first: first + self.down * (count - 1) + 1: self.down]
                    out[j:stop:self.up] = rows @ self._weights[phase]
            self._k = k_end
        # keep what the next output's filter still needs
        keep_from = (self._k * self.down + self._delay) // self.up - self._taps + 1
        drop = max(0, keep_from - self._start)
        self._buf, self._start = self._buf[drop:], self._start + drop
        return out.astype(np.float32)


def check_not_silent(samples: np.ndarray, path: str | os.PathLike | None = None,
                     threshold_dbfs: float = SILENCE_DBFS) -> float:
    """Raise AudioError if the peak level is below `threshold_dbfs`; return the peak in dBFS.

    >>> check_not_silent(np.array([0.0, 0.5, -0.25]))
    -6.02
    """
    x = np.asarray(samples)
    name = str(path) if path is not None else "audio"
    if x.size == 0:
        raise AudioError(f"{name}: the audio has zero length (no samples)")
    peak = float(np.max(np.abs(x)))
    peak_db = 20 * np.log10(peak) if peak > 0 else -np.inf
    if peak_db < threshold_dbfs:
        shown = "-inf" if peak == 0 else f"{peak_db:.1f}"
        raise AudioError(
            f"{name}: the audio is silent (peak {shown} dBFS, below {threshold_dbfs:g} dBFS); "
            "there is no speech to animate"
        )
    return round(float(peak_db), 2)


def duration_s(samples: np.ndarray, sr: int = TARGET_RATE) -> float:
    """Length in seconds.

    >>> duration_s(np.zeros(8000), 16000)
    0.5
    """
    return len(samples) / float(sr)


def rms_envelope(samples: np.ndarray, sr: int, fps: float, n_frames: int | None = None) -> np.ndarray:
    """Loudness per animation frame: RMS over the frame period centred on frame i (time i/fps).

    Frame times match `Animation.times_s`; by default there are ceil(duration * fps) frames.

    >>> env = rms_envelope(np.ones(16000, np.float32) * 0.5, 16000, fps=30)
    >>> env.shape, float(env[10])
    ((30,), 0.5)
    """
    x = np.asarray(samples, np.float64)
    if n_frames is None:
        n_frames = max(1, int(np.ceil(len(x) * fps / sr - 1e-9)))
    # prefix sums give exact windows for a fractional hop (16000/30 = 533.3 samples)
    csum = np.concatenate([[0.0], np.cumsum(x * x)])
    centres = np.arange(n_frames) * (sr / fps)
    lo = np.clip(np.round(centres - 0.5 * sr / fps).astype(np.int64), 0, len(x))
    hi = np.clip(np.round(centres + 0.5 * sr / fps).astype(np.int64), 0, len(x))
    count = hi - lo
    energy = np.where(count > 0, (csum[hi] - csum[lo]) / np.maximum(count, 1), 0.0)
    return np.sqrt(np.maximum(energy, 0.0)).astype(np.float32)


def write_wav(path: str | os.PathLike, samples: np.ndarray, sr: int = TARGET_RATE,
              subtype: str = "PCM_16") -> Path:
    """Write a WAV file atomically (`toolkit.files.atomic_write`).

    >>> import tempfile, os
    >>> p = write_wav(os.path.join(tempfile.mkdtemp(), "a.wav"), np.zeros(160, np.float32), 16000)
    >>> load_audio(p).shape
    (160,)
    """
    import soundfile as sf

    path = Path(path)
    x = np.asarray(samples, np.float32)
    if subtype.startswith("PCM"):
        x = np.clip(x, -1.0, 1.0)  # integer PCM would wrap around
    # encoded in memory: libsndfile writing the file itself reports a full disk as "System error." on
    # stderr and names the temporary file; atomic_write names the user's
    buf = io.BytesIO()
    sf.write(buf, x, int(sr), subtype=subtype, format="WAV")
    atomic_write(path, buf.getvalue())
    return path


# -- reading files --------------------------------------------------------------

def _read_file(path: Path, raw_rate, raw_format, raw_channels, allow_truncated: bool = False) -> tuple[np.ndarray, int]:
    if not path.exists():
        raise AudioError(f"{path}: file not found")
    if path.is_dir():
        raise AudioError(f"{path}: is a folder, not an audio file")
    size = path.stat().st_size
    if size == 0:
        raise AudioError(f"{path}: the file is empty (0 bytes)")
    if path.suffix.lower() in RAW_SUFFIXES or raw_rate is not None:
        return _read_raw(path, raw_rate, raw_format, raw_channels), int(raw_rate)

    import soundfile as sf

    _refuse_text(path)
    try:
        with _quiet_native_stderr():
            data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError, MemoryError) as e:
        sf_error = str(e).replace(f"Error opening {str(path)!r}: ", "").strip()
        if "does not exist" in sf_error or "possibly a pipe" in sf_error:  # what libsndfile says of unknown data
            sf_error = "format not recognised"
        try:
            return _read_ffmpeg(path), TARGET_RATE
        except AudioError as ff:
            raise AudioError(
                f"{path}: not audio, or a truncated, corrupt or unsupported audio file "
                f"(libsndfile: {sf_error}; ffmpeg: {ff.args[0]})"
            ) from None
    if path.suffix.lower() in (".wav", ".wave"):
        _check_wav_truncated(path, size, allow_truncated)
    return data, int(sr)


# Starts of the containers libsndfile and ffmpeg read.  A file that starts with none of them and reads
# as text is a transcript or a note saved under an audio name: refused as text, before decoders that
# print noise about it.  (SPHERE's and AMR's headers are text themselves.)
_AUDIO_MAGIC = (b"RIFF", b"RIFX", b"RF64", b"BW64", b"FORM", b"fLaC", b"OggS", b"ID3", b".snd", b"NIST_1A",
                b"caff", b"wvpk", b"#!AMR", b"MAC ", b"TTA1", b"\x1a\x45\xdf\xa3", b"\x30\x26\xb2\x75")


def _refuse_text(path: Path) -> None:
    with open(path, "rb") as f:
        head = f.read(4096)
    if head.startswith(_AUDIO_MAGIC) or head[4:8] == b"ftyp":
        return
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(head) - 4:  # a multi-byte character cut at the end of the sample is still text
            return
        text = head[: e.start].decode("utf-8")
    printable = sum(c.isprintable() or c in "\t\n\r" for c in text)
    if text.strip() and printable >= 0.97 * len(text):
        first = " ".join(text.split())[:40]
        raise AudioError(f"{path}: not audio: the file holds text ({first!r}{'...' if len(text) > 40 else ''})")


@contextmanager
def _quiet_native_stderr():
    """Native decoders (libsndfile's mpg123) print notes on stderr about data they cannot parse; the
    error message raised afterwards says what matters, so those notes are dropped."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _read_raw(path: Path, raw_rate, raw_format: str, raw_channels: int) -> np.ndarray:
    if raw_rate is None:
        raise AudioError(
            f"{path}: headerless PCM has no sample rate; give it (--raw-rate 16000 on the command line; "
            f"raw_rate=16000, raw_format='s16le' in Python)"
        )
    if not in_range(raw_rate, *RAW_RATE_LIMITS_HZ, whole=True):
        raise AudioError(f"{path}: raw_rate must be {allowed(*RAW_RATE_LIMITS_HZ, whole=True)} (Hz), got {raw_rate!r}")
    if not in_range(raw_channels, 1, 64, whole=True):
        raise AudioError(f"{path}: raw_channels must be {allowed(1, 64, whole=True)}, got {raw_channels!r}")
    if raw_format not in RAW_FORMATS:
        raise AudioError(f"{path}: unknown raw_format {raw_format!r}; use one of {sorted(RAW_FORMATS)}")
    dtype, scale = RAW_FORMATS[raw_format]
    frame_bytes = np.dtype(dtype).itemsize * raw_channels
    data = np.fromfile(path, dtype=np.uint8)
    n = len(data) // frame_bytes
    if n == 0:
        raise AudioError(f"{path}: shorter than one {raw_format} frame; the audio has zero length")
    x = data[: n * frame_bytes].view(dtype).reshape(n, raw_channels).astype(np.float32)
    if raw_format == "u8":
        x -= 128.0
    return x / scale


def ffmpeg_exe() -> str:
    """The ffmpeg program: imageio-ffmpeg's (the ``[render]`` extra installs it), else one on PATH."""
    import shutil

    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:  # noqa: BLE001 - not installed, or no binary for this platform: try PATH
        exe = shutil.which("ffmpeg")
        if exe:
            return exe
    raise AudioError("ffmpeg is not available: install ffmpeg (apt install ffmpeg) or "
                     "pip install 'viseme-toolkit[render]'")


def _read_ffmpeg(path: Path) -> np.ndarray:
    """Decode with ffmpeg (`ffmpeg_exe`) to 16 kHz mono float32."""
    exe = ffmpeg_exe()
    cmd = [exe, "-nostdin", "-v", "error", "-i", str(path), "-vn", "-ac", "1", "-ar", str(TARGET_RATE),
           "-f", "f32le", "-acodec", "pcm_f32le", "-"]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600)
    err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
    msg = err[-1].replace(str(path), "").strip(": ") if err else ""
    if proc.returncode != 0:
        raise AudioError(msg or f"exit status {proc.returncode}")
    x = np.frombuffer(proc.stdout, dtype="<f4")
    if x.size == 0:
        raise AudioError(msg or "no audio stream decoded")
    return x.astype(np.float32).reshape(-1, 1)


def _check_wav_truncated(path: Path, size: int, allow: bool) -> None:
    """libsndfile quietly reads what is there: refuse a cut-short data chunk (or, when allowed, warn)."""
    with open(path, "rb") as f:
        head = f.read(min(size, 1 << 16))
    if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
        return
    fmt = "<I" if head[:4] == b"RIFF" else ">I"
    pos = 12
    while pos + 8 <= len(head):
        cid, csize = head[pos : pos + 4], struct.unpack(fmt, head[pos + 4 : pos + 8])[0]
        if cid == b"data":
            have = size - (pos + 8)
            if csize not in (0, 0xFFFFFFFF) and have < csize:  # 0 / -1: streamed, size unknown
                msg = (f"{path}: truncated WAV file: header declares {csize} bytes of audio, "
                       f"the file holds {have} ({100.0 * have / csize:.0f} %)")
                if not allow:
                    raise AudioError(msg + "; pass --allow-truncated (allow_truncated=True) to use what is there")
                warnings.warn(msg + "; using what is there", stacklevel=4)
            return
        pos += 8 + csize + (csize & 1)


# -- arrays ---------------------------------------------------------------------

# Integer sample formats of real recordings (PCM, as WAV and headerless files hold them), scaled by
# their full range.  Other integer arrays are refused: np.array of Python ints is int64, whose full
# range (2**63) made speech "silent (-293 dBFS)", and its real bit depth cannot be told from the values.
PCM_DTYPES = ("int8", "uint8", "int16", "int32")


def as_float_samples(x: np.ndarray, source: str) -> np.ndarray:
    """Samples as float32 in -1..1: floats as they are, PCM integers (`PCM_DTYPES`) by their full range;
    anything else refused naming ``source``.  `load_audio` and the streaming model take arrays this way.

    >>> as_float_samples(np.array([16384, -32768], np.int16), "chunk").tolist()
    [0.5, -1.0]
    """
    if x.dtype.kind == "f":
        return x.astype(np.float32, copy=False)
    if x.dtype.kind in "iu" and x.dtype.name not in PCM_DTYPES:
        raise AudioError(f"{source}: {x.dtype} samples are not a PCM format ({', '.join(PCM_DTYPES)}); pass "
                         "16-bit sample values as x.astype(np.int16), 32-bit as int32, or floats from -1 to 1")
    if x.dtype.kind == "u":
        half = float(2 ** (8 * x.dtype.itemsize - 1))
        return (x.astype(np.float64) - half).astype(np.float32) / np.float32(half)
    if x.dtype.kind == "i":
        return (x.astype(np.float64) / float(2 ** (8 * x.dtype.itemsize - 1))).astype(np.float32)
    if x.dtype.kind == "b":
        return x.astype(np.float32)
    raise AudioError(f"{source}: cannot use an array of dtype {x.dtype} as audio")


def _to_frames_by_channels(x: np.ndarray) -> np.ndarray:
    if x.ndim == 1:
        return x.reshape(-1, 1)
    if x.ndim != 2:
        raise AudioError(f"array: audio must be 1-D or 2-D (samples x channels), got shape {x.shape}")
    if x.shape[0] <= 8 and x.shape[1] > x.shape[0]:  # (channels, samples), as librosa/torchaudio hold it
        x = x.T
    return x
