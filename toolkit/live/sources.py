"""Live audio in: a microphone, a file played at real-time pace, or raw PCM on stdin.

Every source yields `Chunk` s: 16 kHz mono float32 samples and ``arrival_s``, the moment
(``time.perf_counter()``, the system's monotonic clock) the audio reached us: a microphone
block when PortAudio hands it over, stdin bytes when ``read`` returns them, a file block when
the real-time pacer releases it.  The session measures its latency from that moment.

    MicSource("USB")                 the default microphone, or the input device whose name holds "USB"
    FileSource("line.wav", realtime=True)   a recording at the pace it would be spoken
    StdinSource(rate_hz=22050, realtime=True)  s16le mono PCM piped from a text-to-speech engine

Each source's ``chunks(stop)`` generator ends at the end of its input or soon (<= 0.1 s) after
the ``threading.Event`` ``stop`` is set.  Bad input is a `LiveError` with a one-line message
(a missing microphone names the input devices there are).

Example
-------
>>> import threading, numpy as np
>>> src = FileSource(np.zeros(1600, np.float32), chunk_s=0.01)
>>> [len(c.samples) for c in src.chunks(threading.Event())][:3]
[160, 160, 160]
"""
from __future__ import annotations

import os
import queue
import sys
import threading
import time
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from toolkit.audio import RAW_SUFFIXES, TARGET_RATE, StreamResampler, load_audio

CHUNK_S = 0.01  # block length: 10 ms keeps a microphone's buffering well below the model's own look-ahead
POLL_S = 0.1  # how often a waiting source looks at the stop flag
MIC_STALL_S = 1.0  # a microphone silent (no blocks at all) this long has been unplugged or has failed
GAP_WAIT_S = 0.03  # real-time stdin: how late data may be before the gap is filled with silence


class LiveError(RuntimeError):
    """A live input or output that cannot be used (the message says what there is instead)."""


@dataclass
class Chunk:
    samples: np.ndarray  # float32, 16 kHz mono
    arrival_s: float  # time.perf_counter() when the audio reached the input


# -- a recording ------------------------------------------------------------------------------------

class FileSource:
    """A recording (any format `toolkit.audio.load_audio` reads, or a 16 kHz array), in blocks.

    ``realtime``: each block is released when its last sample would have been spoken (for
    testing a receiver and for pre-recorded lines); otherwise as fast as the session takes them.
    """

    def __init__(self, path_or_samples, *, realtime: bool = False, chunk_s: float = CHUNK_S,
                 raw_rate: int | None = None) -> None:
        if isinstance(path_or_samples, (str, os.PathLike)):
            if not os.path.isfile(path_or_samples):
                raise LiveError(f"{path_or_samples}: no such audio file (use mic, mic:NAME, - or a file)")
            self.name = str(path_or_samples)
            self.samples = load_audio(path_or_samples, raw_rate=raw_rate)
        else:
            self.name = "array"
            self.samples = np.asarray(path_or_samples, np.float32).reshape(-1)
        self.realtime = realtime
        self.live = realtime  # the audio arrives at the pace it is spoken
        self.block = max(1, int(round(chunk_s * TARGET_RATE)))

    def describe(self) -> str:
        pace = "at real-time pace" if self.realtime else "as fast as it goes"
        return f"{self.name} ({len(self.samples) / TARGET_RATE:.1f} s, {pace})"

    def chunks(self, stop: threading.Event) -> Iterator[Chunk]:
        t0 = time.perf_counter()
        for start in range(0, len(self.samples), self.block):
            block = self.samples[start: start + self.block]
            if self.realtime:
                due = t0 + (start + len(block)) / TARGET_RATE
                if stop.wait(max(0.0, due - time.perf_counter())):
                    return
            elif stop.is_set():
                return
            yield Chunk(block, time.perf_counter())

    def close(self) -> None:
        pass


# -- raw PCM on stdin -------------------------------------------------------------------------------

class StdinSource:
    """Raw s16le mono PCM from a pipe (``tts ... | viseme live --input -``), at ``rate_hz``.

    Blocks are handed on as they arrive.  With ``realtime`` they are released at the pace the
    audio plays (a TTS engine writes faster than that), and a pause in the pipe (between two
    lines) is filled with silence, so the mouth closes and blinks and head motion go on.
    """

    def __init__(self, *, rate_hz: int = TARGET_RATE, realtime: bool = False, chunk_s: float = CHUNK_S,
                 stream=None) -> None:
        if not 4000 <= int(rate_hz) <= 192000:
            raise LiveError(f"--rate must be 4000..192000 Hz, got {rate_hz}")
        self.rate_hz = int(rate_hz)
        self.realtime = realtime
        self.live = True
        self.block = max(1, int(round(chunk_s * TARGET_RATE)))
        self._stream = stream if stream is not None else sys.stdin.buffer
        self._resample = StreamResampler(self.rate_hz)
        self._q: queue.Queue = queue.Queue()

    def describe(self) -> str:
        pace = ", paced to real time, pauses filled with silence" if self.realtime else ""
        return f"stdin (s16le mono {self.rate_hz} Hz{pace})"

    def _reader(self) -> None:
        """Thread: read whatever the pipe has (os.read returns as soon as any bytes are there)."""
        fd = self._stream.fileno()
        odd = b""
        try:
            while True:
                data = os.read(fd, 8192)
                t = time.perf_counter()
                if not data:
                    tail = self._resample.flush()
                    if tail.size:
                        self._q.put((tail, t))
                    break
                data = odd + data
                cut = len(data) - len(data) % 2
                odd = data[cut:]
                if cut:
                    pcm = np.frombuffer(data[:cut], "<i2").astype(np.float32) / 32768.0
                    self._q.put((self._resample(pcm), t))
        except OSError as e:
            self._q.put((None, LiveError(f"stdin: cannot read ({e})")))
            return
        self._q.put((None, None))

    def chunks(self, stop: threading.Event) -> Iterator[Chunk]:
        threading.Thread(target=self._reader, name="viseme-stdin", daemon=True).start()
        yield from (self._paced(stop) if self.realtime else self._as_they_come(stop))

    def _get(self, timeout: float):
        try:
            return self._q.get(timeout=timeout)
        except queue.Empty:
            return "empty", None

    def _as_they_come(self, stop: threading.Event) -> Iterator[Chunk]:
        while not stop.is_set():
            x, t = self._get(POLL_S)
            if isinstance(x, str):
                continue
            if x is None:
                if t is not None:
                    raise t
                return
            if x.size:
                yield Chunk(x, t)

    def _paced(self, stop: threading.Event) -> Iterator[Chunk]:
        pending = np.zeros(0, np.float32)
        ended = False
        t0 = None
        played = 0  # samples released so far
        while not stop.is_set():
            if t0 is None:  # the clock starts with the first audio
                x, t = self._get(POLL_S)
                if isinstance(x, str):
                    continue
                if x is None:
                    if t is not None:
                        raise t
                    return
                pending, t0 = x, time.perf_counter()
                continue
            due = t0 + (played + self.block) / TARGET_RATE
            while not ended and pending.size < self.block:
                x, t = self._get(max(0.0, due + GAP_WAIT_S - time.perf_counter()))
                if isinstance(x, str):
                    break
                if x is None:
                    if t is not None:
                        raise t
                    ended = True
                else:
                    pending = np.concatenate([pending, x])
            if ended and not pending.size:
                return
            if stop.wait(max(0.0, due - time.perf_counter())):
                return
            if pending.size:
                block, pending = pending[: self.block], pending[self.block:]
            else:  # a pause in the pipe: silence keeps the clock (and the face) going
                block = np.zeros(self.block, np.float32)
            played += len(block)
            yield Chunk(block, time.perf_counter())

    def close(self) -> None:
        pass


# -- a microphone -----------------------------------------------------------------------------------

def _sounddevice():
    """The sounddevice module, or a `LiveError` saying what to install."""
    try:
        import sounddevice
    except ImportError:
        raise LiveError("microphone input needs the sounddevice package: pip install 'viseme-toolkit[live]'") from None
    except OSError as e:  # sounddevice imports, PortAudio itself is missing
        raise LiveError(f"microphone input needs the PortAudio library ({e}): apt-get install libportaudio2") from None
    return sounddevice


def input_devices(sd=None) -> list[dict]:
    """The input devices PortAudio sees: index, name, host API, channels, default rate, default flag."""
    sd = sd or _sounddevice()
    try:
        devices = list(sd.query_devices())
        apis = list(sd.query_hostapis())
        default_in = sd.default.device[0]
    except Exception as e:  # noqa: BLE001 - PortAudio errors have their own type
        raise LiveError(f"cannot list audio devices ({e})") from None
    out = []
    for i, d in enumerate(devices):
        if d.get("max_input_channels", 0) > 0:
            api = apis[d["hostapi"]]["name"] if 0 <= d.get("hostapi", -1) < len(apis) else ""
            out.append({"index": d.get("index", i), "name": d["name"], "hostapi": api,
                        "channels": int(d["max_input_channels"]), "rate_hz": float(d["default_samplerate"]),
                        "default": d.get("index", i) == default_in})
    return out


def describe_devices(devices: list[dict]) -> str:
    """One line per device, for `--list-devices` and error messages."""
    if not devices:
        return "no audio input devices (PortAudio finds none: is a microphone plugged in and allowed?)"
    return "\n".join(f"{'*' if d['default'] else ' '} {d['index']:>3}  {d['name']}  ({d['hostapi']}, "
                     f"{d['channels']} ch, {d['rate_hz']:g} Hz)" for d in devices)


def _device_names(devices: list[dict]) -> str:
    return ", ".join(f"{d['index']}: {d['name']!r}" for d in devices) or "none"


def find_input_device(spec: str | None, sd=None) -> dict:
    """The input device ``spec`` names: None/"" = the default one, a number = that index,
    otherwise the one whose name contains ``spec`` (case-insensitive)."""
    devices = input_devices(sd)
    if not devices:
        raise LiveError("no microphone: PortAudio finds no audio input device")
    if not spec:
        default = [d for d in devices if d["default"]]
        return default[0] if default else devices[0]
    if spec.strip().isdigit():
        hits = [d for d in devices if d["index"] == int(spec)]
    else:
        exact = [d for d in devices if d["name"].lower() == spec.lower()]
        hits = exact or [d for d in devices if spec.lower() in d["name"].lower()]
    if not hits:
        raise LiveError(f"no input device {spec!r}; input devices: {_device_names(devices)}")
    if len(hits) > 1:
        raise LiveError(f"input device {spec!r} is ambiguous: {_device_names(hits)}; give its number")
    return hits[0]


class MicSource:
    """A microphone through PortAudio (sounddevice), 10 ms blocks, resampled to 16 kHz if the
    device cannot record at 16 kHz itself.  A device that stops delivering (unplugged) ends
    the stream with a `LiveError` naming the devices there are."""

    def __init__(self, device: str | None = None, *, chunk_s: float = CHUNK_S, sd=None) -> None:
        self._sd = sd or _sounddevice()
        self.device = find_input_device(device, self._sd)
        self.rate_hz, self.channels = self._settings()
        self.chunk_s = chunk_s
        self._resample = StreamResampler(self.rate_hz)
        self._q: queue.Queue = queue.Queue()
        self._stream = None
        self.overflows = 0
        self.live = True

    def _settings(self) -> tuple[float, int]:
        """16 kHz mono if the device takes it, else its own rate (resampled here), else its channels."""
        d = self.device
        tries = [(TARGET_RATE, 1), (d["rate_hz"], 1), (d["rate_hz"], d["channels"])]
        errors = []
        for rate, ch in tries:
            try:
                self._sd.check_input_settings(device=d["index"], samplerate=rate, channels=ch, dtype="float32")
                return float(rate), int(ch)
            except Exception as e:  # noqa: BLE001 - PortAudio's own error type
                errors.append(str(e))
        raise LiveError(f"input device {d['index']}: {d['name']!r} cannot record ({errors[-1]})")

    def describe(self) -> str:
        d = self.device
        conv = "" if self.rate_hz == TARGET_RATE else " -> 16 kHz"
        return f"microphone {d['index']}: {d['name']!r} ({self.rate_hz:g} Hz{conv})"

    def _callback(self, indata, frames, time_info, status) -> None:
        # PortAudio's thread: copy and hand over, nothing else
        if status:
            self.overflows += 1
        self._q.put((np.array(indata, np.float32, copy=True), time.perf_counter()))

    def _finished(self) -> None:
        self._q.put((None, None))

    def _lost(self, what: str) -> LiveError:
        try:
            now = _device_names(input_devices(self._sd))
        except LiveError:
            now = "unknown"
        d = self.device
        return LiveError(f"microphone {d['index']}: {d['name']!r} {what} (unplugged?); input devices: {now}")

    def chunks(self, stop: threading.Event) -> Iterator[Chunk]:
        d = self.device
        try:
            self._stream = self._sd.InputStream(
                device=d["index"], samplerate=self.rate_hz, channels=self.channels, dtype="float32",
                blocksize=max(1, int(round(self.rate_hz * self.chunk_s))), latency="low",
                callback=self._callback, finished_callback=self._finished)
            self._stream.start()
        except Exception as e:  # noqa: BLE001
            raise LiveError(f"cannot open microphone {d['index']}: {d['name']!r} ({e})") from None
        last = time.perf_counter()
        while not stop.is_set():
            try:
                block, t = self._q.get(timeout=POLL_S)
            except queue.Empty:
                if time.perf_counter() - last > MIC_STALL_S:
                    raise self._lost(f"delivered no audio for {MIC_STALL_S:g} s") from None
                continue
            if block is None:
                raise self._lost("stopped")
            last = t
            mono = block.mean(axis=1) if block.ndim == 2 and block.shape[1] > 1 else block.reshape(-1)
            x = self._resample(mono)
            if x.size:
                yield Chunk(x, t)

    def close(self) -> None:
        if self._stream is not None:
            try:
                self._stream.stop(ignore_errors=True)
                self._stream.close(ignore_errors=True)
            except Exception:  # noqa: BLE001 - closing a stream whose device is gone
                pass
            self._stream = None


def open_source(spec: str, *, realtime: bool = False, rate_hz: int = TARGET_RATE, chunk_s: float = CHUNK_S):
    """``mic``, ``mic:NAME`` (or ``mic:INDEX``), ``-`` (stdin) or a file path -> a source.
    ``rate_hz`` is the rate of headerless PCM: stdin, or a .raw/.pcm file (other files carry their own)."""
    if spec == "mic" or spec.startswith("mic:"):
        return MicSource(spec[4:] or None, chunk_s=chunk_s)
    if spec == "-":
        return StdinSource(rate_hz=rate_hz, realtime=realtime, chunk_s=chunk_s)
    headerless = os.path.splitext(spec)[1].lower() in RAW_SUFFIXES  # given a rate, load_audio reads ANY file as raw
    return FileSource(spec, realtime=realtime, chunk_s=chunk_s, raw_rate=rate_hz if headerless else None)
