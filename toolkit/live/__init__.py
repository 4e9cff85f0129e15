"""Live lip sync: a microphone, a file or piped audio in; VMC, Live Link Face or WebSocket frames out.

    viseme live --vmc                                   # default microphone -> VSeeFace / Warudo / VNyan (127.0.0.1:39539)
    viseme live --input mic:USB --livelink 192.168.1.20 --subject Face    # -> Unreal Live Link (port 11111)
    piper --output-raw ... | viseme live --input - --rate 22050 --realtime --ws 8765 --names arkit

Modules: `sources` (microphone, file, stdin), `names` (which names, through the rig profiles),
`transports` (VMC, Live Link Face, WebSocket; their wire formats and sources), `session`
(the loop and its timing).  `run_live` is what the ``viseme live`` command calls.
"""
from __future__ import annotations

import signal
import sys
import threading

from toolkit.live.sources import LiveError, describe_devices, input_devices

__all__ = ["LiveError", "list_devices", "run_live"]


def list_devices() -> str:
    """The input devices PortAudio sees (``*`` marks the default), one line each."""
    return describe_devices(input_devices())


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_live(input: str = "mic", *, realtime: bool = False, fps: float = 60, vmc: str | None = None,
             livelink: str | None = None, ws: str | None = None, names: str = "vrm0", subject: str = "viseme",
             vmc_head: bool = False, rate_hz: int = 16000, seed: int = 0, intensity: float = 1.0,
             blinks: bool = True, head_motion: bool = True, show_devices: bool = False) -> int:
    """Everything ``viseme live`` does; returns the exit code.  Every option is checked, and
    every output opened, before the model is loaded or audio is read."""
    from toolkit.live.names import NameMap
    from toolkit.live.session import StopFlag, run_session
    from toolkit.live.sources import open_source
    from toolkit.live.transports import LiveLinkSender, VmcSender, WebSocketServer
    from toolkit.motion.model import NeuralAnimator, latency_s

    if show_devices:
        print(list_devices())
        return 0
    if not (vmc or livelink or ws):
        raise LiveError("no output: give --vmc [HOST:PORT], --livelink [HOST:PORT] and/or --ws [PORT]")
    if not 1 <= fps <= 240:
        raise LiveError(f"--fps must be 1..240, got {fps:g}")
    name_map = NameMap(names)
    transports = []
    try:
        if vmc:
            transports.append(VmcSender(vmc, name_map.vmc_names, head=vmc_head))
        if livelink:
            transports.append(LiveLinkSender(livelink, subject=subject, fps=fps))
        if ws:
            transports.append(WebSocketServer(ws, name_map.names))
        source = open_source(input, realtime=realtime, rate_hz=rate_hz)
        animator = NeuralAnimator.load()  # before the first audio is read: no backlog at the start
    except BaseException:
        for t in transports:
            t.close()
        raise

    stop = StopFlag()

    def on_signal(signum, _frame):
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: leave now
        stop.stop(signal.Signals(signum).name)

    old = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            old[sig] = signal.signal(sig, on_signal)
    try:
        _log(f"live: {source.describe()} -> " + "; ".join(t.describe() for t in transports)
             + f"; names {name_map.profile.name} ({len(name_map.names)}); {fps:g} fps; "
             f"model look-ahead {latency_s(fps) * 1000:.0f} ms. Ctrl-C stops.")
        stats = run_session(source, transports, name_map, fps=fps, seed=seed, intensity=intensity,
                            blinks=blinks, head_motion=head_motion, stop=stop, animator=animator)
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
    how = f"stopped by {stats.stopped_by}" if stats.stopped_by else "end of input"
    sent = ", ".join(f"{t.label} {getattr(t, 'sent', 0)} sent" + (f" {t.dropped} dropped" if getattr(t, "dropped", 0)
                                                                   else "") for t in transports)
    timing = (f"; input-to-send latency median {stats.latency_ms(50):.0f} ms, p95 {stats.latency_ms(95):.0f} ms"
              if source.live else "")
    _log(f"live: {how}: {stats.frames} frames ({stats.samples_in / 16000:.1f} s of audio); {sent}{timing}")
    return 0
