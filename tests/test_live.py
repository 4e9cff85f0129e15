"""`viseme live` against real receivers on loopback: a python-osc server and raw UDP sockets for VMC
bundles, a UDP socket parsing Live Link Face packets by their layout, WebSocket clients; stdin
input and SIGTERM/SIGINT through the real command; the microphone through a fake sounddevice.

No timing is asserted (the machine is shared): only what arrives, in what order and what it says.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pythonosc", reason="python-osc not installed (pip install 'viseme-toolkit[live]')")

from pythonosc.osc_bundle import OscBundle  # noqa: E402
from pythonosc.osc_message import OscMessage  # noqa: E402
from pythonosc.parsing import osc_types  # noqa: E402

from toolkit.animation import CHANNELS  # noqa: E402
from toolkit.live.names import NameMap  # noqa: E402
from toolkit.live.session import StopFlag, run_session  # noqa: E402
from toolkit.live.sources import (  # noqa: E402
    FileSource, LiveError, MicSource, StdinSource, find_input_device)
from toolkit.audio import StreamResampler  # noqa: E402
from toolkit.live.transports import (  # noqa: E402
    LIVELINK_PACKET_ORDER, LiveLinkSender, VmcSender, WebSocketServer, parse_address)
from toolkit.phonemes.inventory import base_symbol, is_vowel  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FPS = 60


@pytest.fixture(scope="module")
def animator():
    from toolkit.motion.model import NeuralAnimator

    try:
        return NeuralAnimator.load()
    except (ImportError, FileNotFoundError) as e:
        pytest.skip(f"neural model unavailable: {e}")


@pytest.fixture(scope="module")
def offline(animator, espeak_speech):
    """What the streamer must send, computed offline on the whole clip (streaming == offline)."""
    return animator.predict(espeak_speech.samples, 16000, fps=FPS)


class UdpReceiver:
    """A loopback UDP socket that collects every datagram in a thread."""

    def __init__(self, port: int = 0) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        self.sock.bind(("127.0.0.1", port))
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.packets: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.packets.append(self.sock.recvfrom(65536)[0])
            except socket.timeout:
                continue
            except OSError:
                return

    def wait_for(self, n: int, timeout_s: float = 10.0) -> list[bytes]:
        end = time.monotonic() + timeout_s
        while len(self.packets) < n and time.monotonic() < end:
            time.sleep(0.01)
        return self.packets

    def close(self) -> list[bytes]:
        time.sleep(0.05)  # the last datagrams are in the socket already (loopback); let the thread take them
        self._stop.set()
        self._thread.join()
        self.sock.close()
        return self.packets


def _typetags(dgram: bytes) -> str:
    _, i = osc_types.get_string(dgram, 0)
    return osc_types.get_string(dgram, i)[0]


def _parse_vmc(dgram: bytes) -> list[tuple[str, str, list]]:
    """One VMC datagram -> [(address, type tags, arguments)] in order (python-osc's parser)."""
    assert OscBundle.dgram_is_bundle(dgram), "each VMC datagram is one OSC bundle"
    out = []
    for item in OscBundle(dgram):
        assert isinstance(item, OscMessage), "no nested bundles"
        out.append((item.address, _typetags(item.dgram), item.params))
    return out


def _stream(samples, transports, names="vrm0", animator=None, **kw):
    return run_session(FileSource(samples), transports, NameMap(names), fps=FPS, animator=animator, **kw)


def _mid_frames(speech, pred) -> list[int]:
    return [min(int(round((p.start + p.end) / 2 * FPS)), int(len(speech.samples) / 16000 * FPS) - 1)
            for p in speech.phonemes if p.label and pred(p.label)]


def _bilabial(label: str) -> bool:
    return base_symbol(label) in ("p", "b", "m")


# -- VMC -------------------------------------------------------------------------------------------

def test_vmc_bundles_follow_the_spec_and_show_the_speech(espeak_speech, offline, animator):
    rx = UdpReceiver()
    names = NameMap("vrm0")
    stats = _stream(espeak_speech.samples, [VmcSender(f"127.0.0.1:{rx.port}", names.vmc_names, head=True)],
                    animator=animator)
    packets = rx.close()
    n = offline.n_frames
    assert stats.frames == n == round(len(espeak_speech.samples) / 16000 * FPS)
    assert len(packets) == n, "one bundle per frame"
    expected = names.weights(offline.values, FPS)
    from toolkit.rigs import head_rotation

    head = head_rotation(offline, facing="+z")
    opening = np.zeros(n)
    for k, dgram in enumerate(packets):
        msgs = _parse_vmc(dgram)
        addrs = [a for a, _, _ in msgs]
        assert addrs[:3] == ["/VMC/Ext/OK", "/VMC/Ext/T", "/VMC/Ext/Bone/Pos"]
        assert addrs[3:-1] == ["/VMC/Ext/Blend/Val"] * 7 and addrs[-1] == "/VMC/Ext/Blend/Apply", \
            "Apply after all the Vals"
        ok, t, bone = msgs[0], msgs[1], msgs[2]
        assert ok[1:] == (",i", [1])
        assert t[1] == ",f" and t[2][0] == pytest.approx(k / FPS, abs=1e-5)
        assert bone[1] == ",sfffffff" and bone[2][0] == "Head"
        q = np.array(bone[2][4:8])
        assert np.linalg.norm(q) == pytest.approx(1.0, abs=1e-4)
        gx, gy, gz, gw = head[k]  # glTF right-handed -> Unity left-handed: (x, -y, -z, w)
        assert q == pytest.approx([gx, -gy, -gz, gw], abs=1e-4)
        vals = msgs[3:-1]
        assert all(tags == ",sf" for _, tags, _ in vals)
        assert [v[2][0] for v in vals] == ["A", "I", "U", "E", "O", "Blink_L", "Blink_R"]
        got = np.array([v[2][1] for v in vals])
        assert got == pytest.approx(expected[k], abs=2e-3), f"frame {k}: streamed weights differ from offline"
        assert msgs[-1][1:] == (",", [])
        opening[k] = got[:5].max()
    # the mouth is shut in the middle of every /p b m/ and open on every vowel
    shut = _mid_frames(espeak_speech, _bilabial)
    vowels = _mid_frames(espeak_speech, is_vowel)
    assert len(shut) >= 4 and len(vowels) >= 5
    assert opening[shut].max() < 0.1, list(zip(shut, opening[shut]))
    assert opening[vowels].min() > 0.4, list(zip(vowels, opening[vowels]))


def test_vmc_perfect_sync_names_reach_a_python_osc_server(espeak_speech, animator):
    from pythonosc.dispatcher import Dispatcher
    from pythonosc.osc_server import ThreadingOSCUDPServer

    got: list[tuple] = []
    lock = threading.Lock()

    def record(address, *args):
        with lock:
            got.append((address, args))

    d = Dispatcher()
    d.set_default_handler(record)
    server = ThreadingOSCUDPServer(("127.0.0.1", 0), d)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        names = NameMap("arkit")
        vmc = VmcSender(f"127.0.0.1:{server.server_address[1]}", names.vmc_names)
        # at real-time pace, as a receiver app gets it (a burst of 2.5 kB bundles could overflow its socket)
        stats = run_session(FileSource(espeak_speech.samples, realtime=True), [vmc], names, fps=FPS,
                            animator=animator)
        end = time.monotonic() + 10
        while time.monotonic() < end:
            with lock:
                if sum(a == "/VMC/Ext/Blend/Apply" for a, _ in got) >= stats.frames:
                    break
            time.sleep(0.02)
    finally:
        server.shutdown()
        server.server_close()
    applies = sum(a == "/VMC/Ext/Blend/Apply" for a, _ in got)
    assert applies == stats.frames
    vals = [args for a, args in got if a == "/VMC/Ext/Blend/Val"]
    assert len(vals) == 52 * stats.frames
    sent = {v[0] for v in vals}
    assert {"JawOpen", "MouthClose", "EyeBlinkLeft", "MouthSmileLeft", "TongueOut"} <= sent, "PerfectSync clip names"
    assert max(v[1] for v in vals if v[0] == "JawOpen") > 0.3


def test_absent_and_restarting_receivers_do_not_stop_the_stream(espeak_speech, offline, animator):
    # nothing listens on this port at first; it opens after 40 chunks, closes after 80, opens again after 120
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    rx: list[UdpReceiver] = []
    src = FileSource(espeak_speech.samples)

    class Toggling:
        def chunks(self, stop):
            for i, c in enumerate(src.chunks(stop)):
                if i in (40, 120):
                    rx.append(UdpReceiver(port))
                elif i == 80:
                    rx[-1].close()
                yield c

        def close(self):
            pass

    vmc = VmcSender(f"127.0.0.1:{port}", NameMap("vrm0").vmc_names)
    stats = run_session(Toggling(), [vmc], NameMap("vrm0"), fps=FPS, animator=animator)
    first, second = rx[0].packets, rx[1].close()
    assert stats.frames == offline.n_frames, "every frame was made and sent, listener or not"
    assert vmc.sent + vmc.dropped == offline.n_frames
    assert first and second, "both listeners got frames"
    t_first = [_parse_vmc(p)[1][2][0] for p in first]
    t_second = [_parse_vmc(p)[1][2][0] for p in second]
    assert max(t_first) < min(t_second), "the restarted receiver picks up where the stream is"
    assert max(t_second) == pytest.approx((offline.n_frames - 1) / FPS, abs=1e-5)


# -- Live Link Face ----------------------------------------------------------------------------------

def _parse_livelink(p: bytes) -> dict:
    """A Live Link Face packet by the format's layout (see toolkit/live/transports.py)."""
    i = 0
    version = p[i]
    i += 1
    (n_id,) = struct.unpack_from(">i", p, i)
    device = p[i + 4: i + 4 + n_id].decode()
    i += 4 + n_id
    (n_name,) = struct.unpack_from(">i", p, i)
    subject = p[i + 4: i + 4 + n_name].decode()
    i += 4 + n_name
    frame, sub, num, den, count = struct.unpack_from(">ifiiB", p, i)
    i += 17
    values = struct.unpack_from(f">{count}f", p, i)
    assert i + 4 * count == len(p), "nothing after the curves"
    return {"version": version, "device": device, "subject": subject, "frame": frame, "subframe": sub,
            "rate": (num, den), "values": values}


def test_livelink_packets_have_the_face_apps_layout(espeak_speech, offline, animator):
    rx = UdpReceiver()
    _stream(espeak_speech.samples, [LiveLinkSender(f"127.0.0.1:{rx.port}", subject="Face", fps=FPS)],
            animator=animator)
    packets = [_parse_livelink(p) for p in rx.close()]
    assert len(packets) == offline.n_frames
    assert {p["version"] for p in packets} == {6}
    assert {p["subject"] for p in packets} == {"Face"} and len({p["device"] for p in packets}) == 1
    assert {p["rate"] for p in packets} == {(60, 1)}
    frames = np.array([p["frame"] for p in packets])
    assert (np.diff(frames) == 1).all(), "timecode advances one frame per packet"
    assert all(0.0 <= p["subframe"] < 1.0 for p in packets)
    vals = np.array([p["values"] for p in packets])
    assert vals.shape[1] == 61
    for slot, name in enumerate(LIVELINK_PACKET_ORDER):
        src = {"HeadYaw": "headYaw", "HeadPitch": "headPitch", "HeadRoll": "headRoll"}.get(name,
                                                                                         name[0].lower() + name[1:])
        want = offline.channel(src) if src in CHANNELS else np.zeros(offline.n_frames)
        assert vals[:, slot] == pytest.approx(want, abs=2e-3), name
    assert LIVELINK_PACKET_ORDER[15:17] == ["JawLeft", "JawRight"]  # Unreal's enum order, not the CSV's
    jaw = vals[:, LIVELINK_PACKET_ORDER.index("JawOpen")]
    assert jaw[_mid_frames(espeak_speech, is_vowel)].mean() > 2 * jaw[_mid_frames(espeak_speech, _bilabial)].mean()


# -- WebSocket ---------------------------------------------------------------------------------------

def test_websocket_clients_read_json_frames(espeak_speech, offline, animator):
    pytest.importorskip("websockets", reason="websockets not installed (pip install 'viseme-toolkit[live]')")
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    names = NameMap("arkit")
    server = WebSocketServer("127.0.0.1:0", names.names)
    stack = contextlib.ExitStack()
    clients = [stack.enter_context(connect(f"ws://127.0.0.1:{server.port}")) for _ in range(2)]
    end = time.monotonic() + 10
    while server.n_clients < 2 and time.monotonic() < end:
        time.sleep(0.01)
    received: list[list[dict]] = [[], []]

    def read(i):
        try:
            while True:
                received[i].append(json.loads(clients[i].recv(timeout=10)))
        except (ConnectionClosed, TimeoutError):
            pass

    readers = [threading.Thread(target=read, args=(i,)) for i in range(2)]
    for r in readers:
        r.start()
    stats = _stream(espeak_speech.samples, [server], names="arkit", animator=animator)  # closes the server
    for r in readers:
        r.join(timeout=15)
    stack.close()
    for frames in received:
        assert len(frames) == stats.frames == offline.n_frames, "several clients, every frame to each"
        assert [f["frame"] for f in frames] == list(range(stats.frames))
        assert frames[30]["t"] == pytest.approx(30 / FPS, abs=1e-3)
        assert list(frames[0]["weights"]) == names.names
        assert set(frames[0]["head"]) == {"pitch", "yaw", "roll", "quaternion"}
        jaw = np.array([f["weights"]["jawOpen"] - f["weights"]["mouthClose"] for f in frames])
        assert jaw[_mid_frames(espeak_speech, _bilabial)].max() < 0.1
        assert jaw[_mid_frames(espeak_speech, is_vowel)].mean() > 0.2
        pitch = np.array([f["head"]["pitch"] for f in frames])
        assert pitch == pytest.approx(offline.channel("headPitch"), abs=1e-3)


# -- names and addresses -----------------------------------------------------------------------------

def test_names_come_from_the_rig_profiles(tmp_path):
    assert NameMap("vrm1").names == ["aa", "ih", "ou", "ee", "oh", "blinkLeft", "blinkRight"]
    assert NameMap("oculus").names[:2] == ["viseme_sil", "viseme_PP"] and len(NameMap("oculus").names) == 15
    assert NameMap("arkit").vmc_names[17] == "JawOpen" and NameMap("vrm0").vmc_names == NameMap("vrm0").names
    rig = tmp_path / "myrig.json"
    rig.write_text(json.dumps({"name": "myrig", "targets": {"Ah|ah": {"viseme_aa": 1.0}, "Shut": "viseme_PP"}}))
    m = NameMap(str(rig))
    assert m.names == ["Ah", "Shut"]
    frame = np.zeros((1, len(CHANNELS)), np.float32)
    frame[0, CHANNELS.index("viseme_PP")] = 0.8
    assert m.weights(frame, FPS)[0].tolist() == pytest.approx([0.0, 0.8])


def test_addresses_are_checked_before_streaming():
    assert parse_address("8765", 1, "--ws")[1] == ("127.0.0.1", 8765)
    assert parse_address("[::1]:9000", 1, "--vmc")[1][1] == 9000
    with pytest.raises(LiveError, match="port must be a number"):
        parse_address("localhost:abc", 1, "--vmc")
    with pytest.raises(LiveError, match="cannot resolve host"):
        parse_address("no-such-host.invalid:39539", 1, "--vmc")


# -- stdin and the real command ------------------------------------------------------------------------

def _cmd(*args) -> list[str]:
    return [sys.executable, "-m", "toolkit.cli", "live", *args]


def test_stdin_pcm_through_the_command(espeak_speech, offline):
    rx = UdpReceiver()
    pcm = (np.clip(espeak_speech.samples, -1, 1) * 32767).astype("<i2").tobytes()
    r = subprocess.run(_cmd("--input", "-", "--vmc", f"127.0.0.1:{rx.port}"), input=pcm,
                       capture_output=True, timeout=120, cwd=ROOT)
    packets = rx.close()
    assert r.returncode == 0, r.stderr.decode()
    assert len(packets) == offline.n_frames
    assert b"end of input" in r.stderr
    opening = np.array([max(m[2][1] for m in _parse_vmc(p) if m[0] == "/VMC/Ext/Blend/Val" and m[2][0] in "AIUEO")
                        for p in packets])
    assert opening[_mid_frames(espeak_speech, _bilabial)].max() < 0.15


def test_a_headerless_file_plays_at_the_rate_option(espeak_speech, offline, tmp_path):
    """`--input speech.raw --rate R` reads the file as s16le at R Hz, as stdin is read; the rate was
    ignored for files, so every .raw file was refused (naming a Python argument the command lacks)."""
    from toolkit.audio import write_wav

    rx = UdpReceiver()
    raw = tmp_path / "speech.raw"
    raw.write_bytes((np.clip(espeak_speech.samples, -1, 1) * 32767).astype("<i2").tobytes())
    r = subprocess.run(_cmd("--input", str(raw), "--rate", "16000", "--vmc", f"127.0.0.1:{rx.port}"),
                       capture_output=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr.decode()
    wav = write_wav(tmp_path / "speech.wav", espeak_speech.samples, 16000)  # a file with a header keeps its own rate
    r = subprocess.run(_cmd("--input", str(wav), "--rate", "8000", "--vmc", f"127.0.0.1:{rx.port}"),
                       capture_output=True, timeout=120, cwd=ROOT)
    packets = rx.close()
    assert r.returncode == 0, r.stderr.decode()
    assert len(packets) == 2 * offline.n_frames


def test_stdin_realtime_fills_pauses_with_silence():
    """A pipe that pauses (between two TTS lines) keeps the clock going with silence."""
    r_fd, w_fd = os.pipe()
    src = StdinSource(realtime=True, stream=os.fdopen(r_fd, "rb", buffering=0))
    tone = (np.sin(np.arange(1600) * 0.2) * 8000).astype("<i2").tobytes()  # 0.1 s

    def writer():
        os.write(w_fd, tone)
        time.sleep(0.3)
        os.write(w_fd, tone)
        os.close(w_fd)

    threading.Thread(target=writer, daemon=True).start()
    chunks = list(src.chunks(threading.Event()))
    audio = np.concatenate([c.samples for c in chunks])
    assert np.count_nonzero(audio) > 3000, "both lines arrive"
    silent = [c for c in chunks if not c.samples.any()]
    assert silent, "the pause became silence"
    assert len(audio) > 3200 + 0.1 * 16000, "the pause is in the audio clock"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signals_stop_cleanly_with_the_mouth_at_rest(espeak_speech, tmp_path, sig):
    from toolkit.audio import write_wav

    wav = write_wav(tmp_path / "long.wav", np.tile(espeak_speech.samples, 8), 16000)  # ~10 s
    rx = UdpReceiver()
    p = subprocess.Popen(_cmd("--input", str(wav), "--realtime", "--vmc", f"127.0.0.1:{rx.port}"),
                         stderr=subprocess.PIPE, cwd=ROOT)
    try:
        assert len(rx.wait_for(20, timeout_s=60)) >= 20, "streaming started"
        p.send_signal(sig)
        err = p.communicate(timeout=20)[1].decode()
    finally:
        if p.poll() is None:
            p.kill()
    packets = rx.close()
    assert p.returncode == 0, err
    assert f"stopped by {sig.name}" in err and "Traceback" not in err
    last = {m[2][0]: m[2][1] for m in _parse_vmc(packets[-1]) if m[0] == "/VMC/Ext/Blend/Val"}
    assert max(last[v] for v in "AIUEO") == 0.0, "a rest frame ends the stream"
    assert len(packets) < 8 * offline_frames(espeak_speech), "stopped before the end of the file"


def offline_frames(speech) -> int:
    return round(len(speech.samples) / 16000 * FPS)


def test_command_errors_are_one_line(tmp_path):
    from toolkit.cli import main

    assert main(["live", "--input", str(tmp_path / "none.wav"), "--vmc"]) == 2
    assert main(["live", "--input", str(tmp_path / "none.wav")]) == 2
    assert main(["live", "--vmc", "127.0.0.1:99999"]) == 2


def test_vmc_without_python_osc_names_the_extra(espeak_wav, monkeypatch, capsys):
    """A core install has no python-osc: --vmc says which extra, exit 2 (it was an internal error, 1)."""
    from toolkit.cli import main

    for name in ("pythonosc", "pythonosc.osc_bundle_builder", "pythonosc.osc_message_builder"):
        monkeypatch.setitem(sys.modules, name, None)  # import raises ImportError, as when not installed
    assert main(["live", "--input", str(espeak_wav), "--vmc"]) == 2
    assert "viseme-toolkit[live]" in capsys.readouterr().err


# -- microphone, through a fake sounddevice ----------------------------------------------------------

class FakeSoundDevice:
    """The part of the sounddevice API MicSource uses; the "device" plays ``audio`` (48 kHz) in
    10 ms blocks from PortAudio's side (a thread), then ends like an unplugged device or stalls."""

    def __init__(self, audio_48k: np.ndarray, then: str = "unplug") -> None:
        self.audio, self.then = audio_48k, then
        self.opened: dict = {}
        self.closed = False
        self.delivered = threading.Event()
        self.default = type("Default", (), {"device": (2, 0)})()

    def query_devices(self):
        return [{"name": "Speakers", "hostapi": 0, "max_input_channels": 0, "default_samplerate": 48000.0},
                {"name": "Webcam Mic", "hostapi": 0, "max_input_channels": 1, "default_samplerate": 48000.0},
                {"name": "USB Podcast Mic", "hostapi": 0, "max_input_channels": 2, "default_samplerate": 48000.0}]

    def query_hostapis(self):
        return [{"name": "ALSA"}]

    def check_input_settings(self, device, samplerate, channels, dtype):
        if samplerate != 48000:
            raise ValueError("Invalid sample rate")

    def InputStream(self, **kw):  # noqa: N802 - sounddevice's name
        self.opened = kw
        fake = self

        class Stream:
            def start(self):
                threading.Thread(target=self._play, daemon=True).start()

            def _play(self):
                block = kw["blocksize"]
                for i in range(0, len(fake.audio) - block + 1, block):
                    x = np.repeat(fake.audio[i: i + block, None], kw["channels"], axis=1)
                    kw["callback"](x, block, None, None)
                    time.sleep(0.001)
                fake.delivered.set()
                if fake.then == "unplug":
                    kw["finished_callback"]()

            def stop(self, ignore_errors=True):
                pass

            def close(self, ignore_errors=True):
                fake.closed = True

        return Stream()


def _to_48k(samples):
    from toolkit.audio import resample

    return resample(samples, 16000, 48000)


def test_mic_stream_resampled_and_an_unplugged_mic_names_the_devices(espeak_speech, offline, animator):
    sd = FakeSoundDevice(_to_48k(espeak_speech.samples), then="unplug")
    mic = MicSource("usb", sd=sd)
    assert mic.device["name"] == "USB Podcast Mic" and mic.rate_hz == 48000 and mic.channels == 1
    rx = UdpReceiver()
    with pytest.raises(LiveError, match=r"'USB Podcast Mic' stopped \(unplugged\?\); input devices: "
                                        r"1: 'Webcam Mic', 2: 'USB Podcast Mic'"):
        run_session(mic, [VmcSender(f"127.0.0.1:{rx.port}", NameMap("vrm0").vmc_names)], NameMap("vrm0"),
                    fps=FPS, animator=animator)
    packets = rx.close()
    assert sd.closed and sd.opened["samplerate"] == 48000 and sd.opened["blocksize"] == 480
    assert abs(len(packets) - offline.n_frames) <= 8, "the speech went through before the device vanished"
    opening = np.array([max(m[2][1] for m in _parse_vmc(p) if m[0] == "/VMC/Ext/Blend/Val" and m[2][0] in "AIUEO")
                        for p in packets])
    vowels = [k for k in _mid_frames(espeak_speech, is_vowel) if k < len(opening)]
    assert opening[vowels].mean() > 0.4


def test_mic_stop_flag_ends_the_stream(espeak_speech, animator):
    sd = FakeSoundDevice(_to_48k(espeak_speech.samples), then="stall")
    stop = StopFlag()
    threading.Thread(target=lambda: (sd.delivered.wait(30), stop.stop("test")), daemon=True).start()
    stats = run_session(MicSource(None, sd=sd), [], NameMap("vrm0"), fps=FPS, animator=animator, stop=stop)
    assert stats.stopped_by == "test" and sd.closed
    assert stats.frames >= offline_frames(espeak_speech) - 8


def test_missing_microphone_names_the_devices_there_are(monkeypatch, capsys):
    sd = FakeSoundDevice(np.zeros(480, np.float32))
    with pytest.raises(LiveError) as e:
        find_input_device("Blue Yeti", sd)
    assert str(e.value) == "no input device 'Blue Yeti'; input devices: 1: 'Webcam Mic', 2: 'USB Podcast Mic'"
    assert find_input_device(None, sd)["name"] == "USB Podcast Mic"  # the default input
    assert find_input_device("1", sd)["name"] == "Webcam Mic"
    with pytest.raises(LiveError, match="ambiguous"):
        find_input_device("mic", sd)

    import toolkit.live.sources as sources
    from toolkit.cli import main

    monkeypatch.setattr(sources, "_sounddevice", lambda: sd)
    assert main(["live", "--list-devices"]) == 0
    out = capsys.readouterr().out
    assert "*   2  USB Podcast Mic  (ALSA, 2 ch, 48000 Hz)" in out and "Speakers" not in out
    assert main(["live", "--input", "mic:Blue Yeti", "--vmc"]) == 2
    assert "input devices: 1: 'Webcam Mic', 2: 'USB Podcast Mic'" in capsys.readouterr().err


def test_stream_resampler_keeps_speech_band_and_blocks_aliases():
    """Block by block, any block sizes: speech-band tones keep their level (within 1 dB up to 6 kHz),
    a 10 kHz tone (which would alias to 6 kHz at 16 kHz) is gone, and the length is the offline
    resampler's."""
    from toolkit.audio import resample

    rng = np.random.default_rng(1)
    t = np.arange(44100 * 2) / 44100

    def level(y, hz):  # amplitude of a tone in the middle second
        seg = y[8000:24000]
        return 2 * np.abs(np.exp(-2j * np.pi * hz * np.arange(len(seg)) / 16000) @ seg) / len(seg)

    for hz, want, tol in ((300, 1.0, 0.03), (2500, 1.0, 0.03), (6000, 1.0, 0.11), (10000, 0.0, 0.03)):
        x = np.sin(2 * np.pi * hz * t).astype(np.float32)
        r = StreamResampler(44100)
        parts, i = [], 0
        while i < len(x):
            n = int(rng.integers(1, 3000))
            parts.append(r(x[i: i + n]))
            i += n
        y = np.concatenate(parts + [r.flush()])
        assert len(y) == len(resample(x, 44100, 16000))
        alias = 16000 - hz if hz > 8000 else hz
        assert level(y, alias) == pytest.approx(want, abs=tol), hz
