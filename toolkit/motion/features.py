"""Log-mel features at 100 Hz, offline or chunk by chunk with identical results.

Frame ``i`` describes time ``i / FRAME_RATE`` seconds: its 20 ms Hann window is
centred there, so each frame needs 10 ms of audio after its time (the feature
look-ahead, part of the streaming latency).  Before time 0 the signal is taken
as silence, so `log_mel` of a whole clip and `MelStreamer` fed the same clip in
any chunk sizes give the same frames.

Example
-------
>>> import numpy as np
>>> x = np.zeros(16000, np.float32)
>>> log_mel(x).shape
(100, 40)
>>> s = MelStreamer()
>>> a = s.push(x[:7000]); b = s.push(x[7000:]); c = s.flush()
>>> np.allclose(np.concatenate([a, b, c]), log_mel(x))
True
"""
from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16000
HOP = 160  # 10 ms
WIN = 320  # 20 ms
N_FFT = 512
N_MELS = 40
FRAME_RATE = SAMPLE_RATE / HOP  # 100 Hz
LOOKAHEAD_S = (WIN // 2) / SAMPLE_RATE  # 10 ms of audio after each frame's time
FMIN_HZ, FMAX_HZ = 60.0, 7800.0
FLOOR = 1e-7  # about -70 dB below a full-scale sine: quieter is silence


def _hz_to_mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f, np.float64) / 700.0)


def _mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, np.float64) / 2595.0) - 1.0)


def mel_filterbank(n_mels: int = N_MELS, n_fft: int = N_FFT, sample_rate: int = SAMPLE_RATE,
                   fmin_hz: float = FMIN_HZ, fmax_hz: float = FMAX_HZ) -> np.ndarray:
    """Triangular HTK-style mel filters, (n_mels, n_fft // 2 + 1), each with unit area."""
    edges = _mel_to_hz(np.linspace(_hz_to_mel(fmin_hz), _hz_to_mel(fmax_hz), n_mels + 2))
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    fb = np.zeros((n_mels, freqs.size))
    for m in range(n_mels):
        lo, mid, hi = edges[m], edges[m + 1], edges[m + 2]
        up = (freqs - lo) / (mid - lo)
        down = (hi - freqs) / (hi - mid)
        fb[m] = np.maximum(0.0, np.minimum(up, down))
        fb[m] /= max(fb[m].sum(), 1e-9)
    return fb.astype(np.float32)


_FB = mel_filterbank()
_WINDOW = np.hanning(WIN + 2)[1:-1].astype(np.float32)


def n_frames_for(n_samples: int) -> int:
    """Number of 100 Hz frames of a clip of ``n_samples`` (frame times 0, 10 ms, ... < duration)."""
    return int(np.ceil(n_samples / HOP))


def _frames_from_padded(padded: np.ndarray, n: int) -> np.ndarray:
    """Log-mel of ``n`` frames from a signal already padded with WIN//2 samples of history."""
    if n <= 0:
        return np.zeros((0, N_MELS), np.float32)
    idx = np.arange(WIN)[None, :] + HOP * np.arange(n)[:, None]
    frames = padded[idx] * _WINDOW
    power = np.abs(np.fft.rfft(frames, N_FFT, axis=1)) ** 2
    mel = power.astype(np.float32) @ _FB.T
    return np.log10(mel + FLOOR).astype(np.float32)


def log_mel(samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Log10 mel energies, (frames, 40), one frame per 10 ms.

    ``samples``: float mono at 16 kHz (other rates raise ValueError: resample first
    with `toolkit.audio.load_audio` or `toolkit.audio.resample`).
    """
    if sample_rate != SAMPLE_RATE:
        raise ValueError(f"log_mel needs {SAMPLE_RATE} Hz audio, got {sample_rate} Hz (resample first)")
    x = np.asarray(samples, np.float32).reshape(-1)
    n = n_frames_for(x.size)
    padded = np.concatenate([np.zeros(WIN // 2, np.float32), x, np.zeros(WIN, np.float32)])
    return _frames_from_padded(padded, n)


class MelStreamer:
    """Chunked `log_mel`: `push` returns the frames that became complete, `flush` the rest."""

    def __init__(self) -> None:
        self._buf = np.zeros(WIN // 2, np.float32)  # history before time 0 is silence
        self._n_in = 0  # samples received
        self._n_out = 0  # frames emitted

    def push(self, chunk: np.ndarray) -> np.ndarray:
        chunk = np.asarray(chunk, np.float32).reshape(-1)
        self._buf = np.concatenate([self._buf, chunk])
        self._n_in += chunk.size
        # frame k (relative to the buffer start) needs samples [k*HOP, k*HOP + WIN)
        n_ready = max(0, (self._buf.size - WIN) // HOP + 1)
        n_ready = min(n_ready, n_frames_for(self._n_in) - self._n_out)
        out = _frames_from_padded(self._buf, n_ready)
        self._buf = self._buf[n_ready * HOP:]
        self._n_out += n_ready
        return out

    def flush(self) -> np.ndarray:
        """The last frames, with silence after the end of the signal (as `log_mel` pads)."""
        n = n_frames_for(self._n_in) - self._n_out
        padded = np.concatenate([self._buf, np.zeros(WIN + n * HOP, np.float32)])
        out = _frames_from_padded(padded, n)
        self._n_out += n
        self._buf = np.zeros(0, np.float32)
        return out
