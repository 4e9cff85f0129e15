"""Recordings of any length, read block by block: an hour of speech never sits in memory whole.

Every stage reads its audio through a `Recording`: 16 kHz mono float32 samples, its length
and ``read(start, stop)`` (sample indices at 16 kHz).  `open_recording` makes one from a file:

* a 16 kHz mono WAV/FLAC/AIFF is read in place (each ``read`` seeks);
* any other file libsndfile decodes (another rate, several channels, MP3, OGG/Opus) or headerless
  PCM is converted once, block by block, to a temporary 16 kHz float32 file that is removed
  when the recording is closed (or garbage collected).  The block-by-block resampler gives the
  samples `toolkit.audio.resample` gives on the whole file: every block carries enough
  neighbouring input for the filter (`toolkit.audio.StreamResampler`);
* files only ffmpeg decodes (m4a, aac, webm...) are decoded by `toolkit.audio.load_audio` in
  memory (ffmpeg streams them at 16 kHz; a long one costs its 64 MB per 17 minutes).

`Recording.from_array` wraps samples already in memory, so every stage reads one way.  The
checks of `toolkit.audio.load_audio` (missing, empty, truncated, NaN, silent) happen here too,
block by block, before any work.

Example
-------
>>> import numpy as np
>>> rec = Recording.from_array(np.zeros(32000, np.float32), name="two seconds")
>>> rec.n_samples, rec.duration_s, rec.read(100, 103).shape
(32000, 2.0, (3,))
>>> [(a, b) for a, b, _ in rec.blocks(block_s=0.75)]
[(0, 12000), (12000, 24000), (24000, 32000)]
"""
from __future__ import annotations

import os
import weakref
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from toolkit import audio as audio_io
from toolkit.audio import TARGET_RATE, AudioError, StreamResampler

BLOCK_S = 30.0  # how much audio the block-by-block passes hold at once
# libsndfile formats that seek exactly to a sample: read in place when they are 16 kHz mono
_SEEKABLE = {"WAV", "WAVEX", "AIFF", "FLAC", "RF64", "W64", "CAF", "AU", "NIST"}


class Recording:
    """16 kHz mono float32 audio of known length, read on demand.

    ``reader(start, stop)`` returns the samples [start, stop) (0 <= start <= stop <= n_samples);
    ``name`` is how messages refer to it; ``close()`` removes a temporary copy.
    """

    def __init__(self, n_samples: int, reader: Callable[[int, int], np.ndarray], name: str = "audio",
                 cleanup: Callable[[], None] | None = None):
        self.n_samples = int(n_samples)
        self.name = name
        self._reader = reader
        self._finalizer = weakref.finalize(self, cleanup) if cleanup else None
        self.array: np.ndarray | None = None  # set when the samples are in memory anyway

    @classmethod
    def from_array(cls, samples: np.ndarray, name: str = "<array>") -> "Recording":
        """Samples already at 16 kHz mono in memory."""
        x = np.ascontiguousarray(samples, dtype=np.float32).reshape(-1)
        rec = cls(len(x), lambda a, b: x[a:b], name)
        rec.array = x
        return rec

    @property
    def duration_s(self) -> float:
        return self.n_samples / TARGET_RATE

    def __len__(self) -> int:
        return self.n_samples

    def read(self, start: int, stop: int) -> np.ndarray:
        """Samples [start, stop), clipped to the recording (a range past either end is shorter)."""
        a, b = max(0, int(start)), min(self.n_samples, int(stop))
        if b <= a:
            return np.zeros(0, np.float32)
        return np.asarray(self._reader(a, b), np.float32)

    def read_padded(self, start: int, stop: int) -> np.ndarray:
        """Samples [start, stop) with zeros where the range lies outside the recording."""
        x = self.read(start, stop)
        left = max(0, -int(start))
        right = int(stop) - int(start) - left - len(x)
        return np.pad(x, (left, max(0, right))) if left or right > 0 else x

    def blocks(self, block_s: float = BLOCK_S) -> Iterator[tuple[int, int, np.ndarray]]:
        """(start, stop, samples) of consecutive blocks covering the recording."""
        step = max(1, int(round(block_s * TARGET_RATE)))
        for a in range(0, self.n_samples, step):
            b = min(self.n_samples, a + step)
            yield a, b, self.read(a, b)

    def samples(self) -> np.ndarray:
        """Every sample as one array (for short recordings and writers that need them all)."""
        return self.array if self.array is not None else self.read(0, self.n_samples)

    def close(self) -> None:
        if self._finalizer is not None:
            self._finalizer()

    def __enter__(self) -> "Recording":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def as_recording(audio, name: str = "<array>") -> Recording:
    """``audio`` as a `Recording` (a 16 kHz array is wrapped; a Recording is returned as is)."""
    return audio if isinstance(audio, Recording) else Recording.from_array(audio, name)


def open_recording(path: str | os.PathLike, *, raw_rate: int | None = None, raw_format: str = "s16le",
                   raw_channels: int = 1, allow_truncated: bool = False) -> Recording:
    """A recording file as a `Recording` (see the module notes); the checks of `toolkit.audio.load_audio`.

    Raises `AudioError` naming the file for a missing, empty, corrupt, truncated (unless
    ``allow_truncated``), non-finite or silent recording.
    """
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0 or raw_rate is not None \
            or path.suffix.lower() in audio_io.RAW_SUFFIXES:
        if path.is_file() and path.stat().st_size > 0 and raw_rate is not None:
            rec = _open_raw(path, raw_rate, raw_format, raw_channels)
        else:  # load_audio says what is wrong (missing, a folder, empty, raw without a rate)
            rec = Recording.from_array(audio_io.load_audio(path, raw_rate=raw_rate, raw_format=raw_format,
                                                            raw_channels=raw_channels), str(path))
    else:
        rec = _open_soundfile(path, allow_truncated)
    _check(rec)
    return rec


def _open_soundfile(path: Path, allow_truncated: bool) -> Recording:
    import soundfile as sf

    try:
        with audio_io._quiet_native_stderr():  # mpg123's notes on data it cannot parse: load_audio says what matters
            info = sf.info(str(path))
        if info.frames <= 0:
            raise RuntimeError("no frames")
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError):
        # not for libsndfile (m4a, webm...): load_audio decodes it with ffmpeg, or says why it cannot
        return Recording.from_array(audio_io.load_audio(path, allow_truncated=allow_truncated), str(path))
    if path.suffix.lower() in (".wav", ".wave"):
        audio_io._check_wav_truncated(path, path.stat().st_size, allow_truncated)
    if info.samplerate == TARGET_RATE and info.channels == 1 and info.format in _SEEKABLE:
        sf_file = sf.SoundFile(str(path))

        def read(a: int, b: int) -> np.ndarray:
            sf_file.seek(a)
            return sf_file.read(b - a, dtype="float32", always_2d=True)[:, 0]

        n = sf_file.frames
        return Recording(n, read, str(path), cleanup=sf_file.close)

    def source() -> Iterator[np.ndarray]:
        with sf.SoundFile(str(path)) as f:
            while True:  # (not f.blocks: it trusts the header's frame count, which MP3 only estimates)
                block = f.read(int(info.samplerate * BLOCK_S), dtype="float32", always_2d=True)
                if not len(block):
                    break
                yield block.mean(axis=1) if block.shape[1] > 1 else block[:, 0]

    return _converted(source(), info.samplerate, str(path))


def _open_raw(path: Path, raw_rate: int, raw_format: str, raw_channels: int) -> Recording:
    if raw_format not in audio_io.RAW_FORMATS:
        raise AudioError(f"{path}: unknown raw_format {raw_format!r}; use one of {sorted(audio_io.RAW_FORMATS)}")
    if int(raw_rate) <= 0 or int(raw_channels) <= 0:
        raise AudioError(f"{path}: raw_rate and raw_channels must be positive, got {raw_rate} and {raw_channels}")
    dtype, scale = audio_io.RAW_FORMATS[raw_format]
    frame_bytes = np.dtype(dtype).itemsize * raw_channels
    n_frames = path.stat().st_size // frame_bytes
    if n_frames == 0:
        raise AudioError(f"{path}: shorter than one {raw_format} frame; the audio has zero length")
    step = int(raw_rate * BLOCK_S)

    def source() -> Iterator[np.ndarray]:
        with open(path, "rb") as f:
            for a in range(0, n_frames, step):
                n = min(step, n_frames - a)
                x = np.frombuffer(f.read(n * frame_bytes), dtype=dtype).reshape(n, raw_channels).astype(np.float32)
                if raw_format == "u8":
                    x -= 128.0
                x /= scale
                yield x.mean(axis=1) if raw_channels > 1 else x[:, 0]

    return _converted(source(), int(raw_rate), str(path))


def _converted(blocks: Iterator[np.ndarray], sample_rate: int, name: str) -> Recording:
    """Resample mono blocks to 16 kHz into a temporary float32 file; a Recording reading it (the file
    goes when the recording is closed or collected, or the command is interrupted: `toolkit.cleanup`)."""
    from contextlib import ExitStack

    from toolkit.cleanup import temp_file

    stack = ExitStack()
    tmp = str(stack.enter_context(temp_file(prefix="viseme-rec-", suffix=".f32")))
    n = 0
    try:
        with open(tmp, "wb") as out:
            rs = StreamResampler(sample_rate)
            for block in blocks:
                y = rs(block)
                out.write(y.astype("<f4").tobytes())
                n += len(y)
            y = rs.flush()
            out.write(y.astype("<f4").tobytes())
            n += len(y)
    except OSError as e:  # a full temporary folder: said about the audio, not as a bare errno
        stack.close()
        raise AudioError(f"{name}: converting it to 16 kHz in {Path(tmp).parent} failed ({e.strerror or e})") from e
    except BaseException:
        stack.close()
        raise
    if n == 0:
        stack.close()
        raise AudioError(f"{name}: the audio has zero length (no samples)")

    def read(a: int, b: int) -> np.ndarray:
        return np.fromfile(tmp, dtype="<f4", count=b - a, offset=4 * a)

    return Recording(n, read, name, cleanup=stack.close)


def _check(rec: Recording) -> None:
    """load_audio's and check_not_silent's refusals, block by block."""
    if rec.n_samples == 0:
        raise AudioError(f"{rec.name}: the audio has zero length (no samples)")
    peak = 0.0
    for _, _, x in rec.blocks():
        if not np.all(np.isfinite(x)):
            raise AudioError(f"{rec.name}: the audio contains NaN or infinite values")
        peak = max(peak, float(np.max(np.abs(x))) if len(x) else 0.0)
    audio_io.check_not_silent(np.array([peak], np.float32), rec.name)
