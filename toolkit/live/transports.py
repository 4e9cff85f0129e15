"""Live outputs: VMC protocol (VTuber apps), Live Link Face (Unreal), a WebSocket server (web pages).

Each transport has ``send(batch)`` (a `toolkit.live.session.FrameBatch`: the frames the
streamer just made, with their weights under the chosen names) and ``close()``.  UDP
transports never block and never stop the stream: a receiver that is absent or restarts
only costs the packets sent meanwhile (counted in ``dropped``).

VMC protocol (https://protocol.vmc.info/english, "Marionette" spec; OSC over UDP, python-osc):
    one bundle per frame:  /VMC/Ext/OK (int)1                 model loaded
                           /VMC/Ext/T (float)t                the frame's audio time, seconds
                           [/VMC/Ext/Bone/Pos (string)"Head" (float)px py pz qx qy qz qw]   with head=True
                           /VMC/Ext/Blend/Val (string)name (float)value      one per name
                           /VMC/Ext/Blend/Apply               after all the values
    Bone names are Unity HumanBodyBones names, positions and rotations local and in Unity's
    left-handed axes (+Y up, +Z forward, +X the character's right): from glTF's right-handed
    axes x -> -x, so a quaternion (x, y, z, w) becomes (x, -y, -z, w).  Marionettes (VSeeFace,
    EVMC4U) listen on 39539 by default.

Live Link Face (Unreal's Apple ARKit Face Support source, UDP port 11111), one packet per frame,
big-endian ("network byte order", Unreal's FNboSerialize):
    uint8   packet version, 6
    int32   device id length, then the device id (UTF-8, no terminator)
    int32   subject name length, then the subject name (UTF-8, no terminator)
    int32 frame number, float32 sub-frame, int32 rate numerator, int32 rate denominator
            (FQualifiedFrameTime: timecode of day in frames)
    uint8   curve count, 61
    61 x float32  the 52 ARKit shapes then HeadYaw HeadPitch HeadRoll, LeftEye Yaw Pitch Roll,
            RightEye Yaw Pitch Roll, in Unreal's EARFaceBlendShape order (`LIVELINK_PACKET_ORDER`)
    Sources read for this layout (no code taken): JimWest/PyLiveLinkFace (pylivelinkface.py,
    encode/decode), shun126/livelinkface_arkit_receiver (__init__.py, a parser of the iPhone
    app's packets), think-biq/LLV (readme, "Frame layout", quoting Unreal's
    AppleARKitLiveLinkSource.cpp), and EARFaceBlendShape as copied in
    MediaPipe4U's ARKitBlendShape.h.  Values: the same curves as the Live Link CSV exporter
    (`toolkit.export.tracks.livelink_table`, head angles in radians); eyes are sent at 0.

WebSocket (``websockets``, asyncio, in its own thread): every client gets every frame as JSON text
    {"t": 1.2333, "frame": 74, "weights": {"A": 0.41, ...},
     "head": {"pitch": 0.01, "yaw": -0.02, "roll": 0.0, "quaternion": [x, y, z, w]}}
    (head angles in radians, the quaternion in glTF / three.js axes, the character facing +Z).

Example
-------
>>> parse_address("127.0.0.1:39539", 39539, "--vmc")[1]
('127.0.0.1', 39539)
>>> len(livelink_packet([0.0] * 61, subject="face", device_id="dev", frame=0, subframe=0.0, rate=(60, 1)))
277
"""
from __future__ import annotations

import asyncio
import json
import socket
import struct
import sys
import threading
import time
import uuid

import numpy as np

from toolkit.export.tracks import LIVELINK_CURVES
from toolkit.live.sources import LiveError

VMC_PORT = 39539
LIVELINK_PORT = 11111
WS_PORT = 8765
LIVELINK_VERSION = 6
# The Head bone's local position sent with its rotation: receivers that apply bone positions
# (EVMC4U's "BonePositionSynchronize") need one; a typical VRoid neck-to-head offset, metres.
HEAD_LOCAL_POSITION_M = (0.0, 0.07, 0.0)

# Unreal's EARFaceBlendShape order (the packet's slots); note JawLeft/JawRight and
# MouthLeft/MouthRight come in the opposite order from the Live Link Face CSV's columns.
LIVELINK_PACKET_ORDER = [
    "EyeBlinkLeft", "EyeLookDownLeft", "EyeLookInLeft", "EyeLookOutLeft", "EyeLookUpLeft", "EyeSquintLeft",
    "EyeWideLeft", "EyeBlinkRight", "EyeLookDownRight", "EyeLookInRight", "EyeLookOutRight", "EyeLookUpRight",
    "EyeSquintRight", "EyeWideRight", "JawForward", "JawLeft", "JawRight", "JawOpen", "MouthClose", "MouthFunnel",
    "MouthPucker", "MouthLeft", "MouthRight", "MouthSmileLeft", "MouthSmileRight", "MouthFrownLeft",
    "MouthFrownRight", "MouthDimpleLeft", "MouthDimpleRight", "MouthStretchLeft", "MouthStretchRight",
    "MouthRollLower", "MouthRollUpper", "MouthShrugLower", "MouthShrugUpper", "MouthPressLeft", "MouthPressRight",
    "MouthLowerDownLeft", "MouthLowerDownRight", "MouthUpperUpLeft", "MouthUpperUpRight", "BrowDownLeft",
    "BrowDownRight", "BrowInnerUp", "BrowOuterUpLeft", "BrowOuterUpRight", "CheekPuff", "CheekSquintLeft",
    "CheekSquintRight", "NoseSneerLeft", "NoseSneerRight", "TongueOut", "HeadYaw", "HeadPitch", "HeadRoll",
    "LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll", "RightEyeYaw", "RightEyePitch", "RightEyeRoll",
]
_PACKET_FROM_CSV = np.array([LIVELINK_CURVES.index(n) for n in LIVELINK_PACKET_ORDER])


def _warn(msg: str) -> None:
    print(f"warning: {msg}", file=sys.stderr)


def parse_address(text: str, default_port: int, option: str, default_host: str = "127.0.0.1"):
    """``HOST:PORT``, ``PORT``, ``HOST`` or ``[IPv6]:PORT`` -> (address family, (host, port)).

    The host is resolved once, here, so a typo fails before the stream starts."""
    text = (text or "").strip()
    host, port = default_host, default_port
    if text.startswith("["):  # [::1]:39539
        host, _, rest = text[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else default_port
    elif text.isdigit():
        port = int(text)
    elif text.count(":") == 1:
        host, p = text.split(":")
        if not p.isdigit():
            raise LiveError(f"{option} {text!r}: the port must be a number (HOST:PORT)")
        port = int(p)
    elif text:
        host = text
    if not 0 <= port <= 65535:
        raise LiveError(f"{option} {text!r}: port {port} is out of range")
    try:
        info = socket.getaddrinfo(host or default_host, port, type=socket.SOCK_DGRAM)[0]
    except socket.gaierror as e:
        raise LiveError(f"{option} {text!r}: cannot resolve host {host!r} ({e.strerror})") from None
    family, addr = info[0], info[4]
    return family, (addr[0], addr[1])


class _UdpSender:
    """A non-blocking UDP socket whose failed sends are counted, and reported once."""

    label = "UDP"

    def __init__(self, address: str, default_port: int, option: str) -> None:
        family, self.address = parse_address(address, default_port, option)
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.sent = 0
        self.dropped = 0
        self._reported = False

    def describe(self) -> str:
        return f"{self.label} -> {self.address[0]}:{self.address[1]}"

    def _send(self, data: bytes) -> None:
        try:
            self.sock.sendto(data, self.address)
            self.sent += 1
        except OSError as e:  # refused (ICMP from a closed port), buffer full, no route: skip this frame
            self.dropped += 1
            if not self._reported:
                self._reported = True
                _warn(f"{self.describe()}: {e.strerror or e}; going on (frames are dropped until it answers)")

    def close(self) -> None:
        self.sock.close()


class VmcSender(_UdpSender):
    """VMC protocol bundles to a Marionette (VSeeFace, VMagicMirror, Warudo, VNyan, EVMC4U)."""

    label = "VMC"

    def __init__(self, address: str, names: list[str], *, head: bool = False) -> None:
        try:  # the [live] extra; a core install lacks it, and says so as --ws does
            from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
            from pythonosc.osc_message_builder import OscMessageBuilder
        except ImportError:
            raise LiveError("--vmc needs the python-osc package: pip install 'viseme-toolkit[live]'") from None
        super().__init__(address, VMC_PORT, "--vmc")

        self._bundle, self._now, self._msg = OscBundleBuilder, IMMEDIATELY, OscMessageBuilder
        self.names = list(names)
        self.head = head

    def _message(self, address: str, *args) -> object:
        m = self._msg(address)
        for value, kind in args:
            m.add_arg(value, kind)
        return m.build()

    def bundle(self, t_s: float, weights: np.ndarray, head_xyzw=None) -> bytes:
        """One frame's bundle (the datagram)."""
        b = self._bundle(self._now)
        b.add_content(self._message("/VMC/Ext/OK", (1, "i")))
        b.add_content(self._message("/VMC/Ext/T", (float(t_s), "f")))
        if head_xyzw is not None:
            x, y, z, w = (float(v) for v in head_xyzw)
            pos = [(float(p), "f") for p in HEAD_LOCAL_POSITION_M]
            # glTF (right-handed) -> Unity (left-handed): mirror x
            b.add_content(self._message("/VMC/Ext/Bone/Pos", ("Head", "s"), *pos,
                                        (x, "f"), (-y, "f"), (-z, "f"), (w, "f")))
        for name, v in zip(self.names, weights):
            b.add_content(self._message("/VMC/Ext/Blend/Val", (name, "s"), (float(v), "f")))
        b.add_content(self._message("/VMC/Ext/Blend/Apply"))
        return b.build().dgram

    def send(self, batch) -> None:
        w = batch.weights
        q = batch.head_quaternion if self.head else None
        for i in range(batch.n):
            self._send(self.bundle(batch.times_s[i], w[i], None if q is None else q[i]))


def livelink_packet(values61, *, subject: str, device_id: str, frame: int, subframe: float,
                    rate: tuple[int, int]) -> bytes:
    """One Live Link Face packet (layout in the module docstring); ``values61`` in packet order."""
    dev, subj = device_id.encode("utf-8"), subject.encode("utf-8")
    return b"".join([
        struct.pack(">B", LIVELINK_VERSION),
        struct.pack(">i", len(dev)), dev,
        struct.pack(">i", len(subj)), subj,
        struct.pack(">ifiiB", int(frame), float(subframe), int(rate[0]), int(rate[1]), len(LIVELINK_PACKET_ORDER)),
        struct.pack(f">{len(LIVELINK_PACKET_ORDER)}f", *(float(v) for v in values61)),
    ])


def _seconds_of_day() -> float:
    t = time.time()
    lt = time.localtime(t)
    return lt.tm_hour * 3600 + lt.tm_min * 60 + lt.tm_sec + (t % 1.0)


class LiveLinkSender(_UdpSender):
    """Live Link Face packets to Unreal (Live Link window: Source > Apple ARKit Face Live Link)."""

    label = "Live Link"

    def __init__(self, address: str, *, subject: str = "viseme", fps: float = 60) -> None:
        super().__init__(address, LIVELINK_PORT, "--livelink")
        if not subject or len(subject.encode("utf-8")) > 255:
            raise LiveError(f"--subject must be 1..255 bytes, got {subject!r}")
        self.subject = subject
        self.device_id = str(uuid.uuid4()).upper()  # the app sends its device's UUID; Unreal keys on the subject
        self.rate = (int(round(fps)), 1) if abs(fps - round(fps)) < 1e-6 else (int(round(fps * 1001)), 1001)
        self._day_s0 = _seconds_of_day()  # timecode of day when frame 0 is at time 0

    def describe(self) -> str:
        return f"{super().describe()} (subject {self.subject!r})"

    def send(self, batch) -> None:
        table = batch.livelink[:, _PACKET_FROM_CSV]
        fps = self.rate[0] / self.rate[1]
        for i in range(batch.n):
            tc = (self._day_s0 + batch.times_s[i]) * fps
            self._send(livelink_packet(table[i], subject=self.subject, device_id=self.device_id,
                                       frame=int(tc), subframe=tc - int(tc), rate=self.rate))


class WebSocketServer:
    """A WebSocket server (any number of clients) sending every frame as JSON text."""

    label = "WebSocket"

    def __init__(self, address: str, names: list[str]) -> None:
        try:
            from websockets.asyncio.server import broadcast, serve
        except ImportError:
            raise LiveError("--ws needs the websockets package (>= 13): pip install 'viseme-toolkit[live]'") from None
        family, (host, port) = parse_address(address, WS_PORT, "--ws")
        self._broadcast_fn = broadcast
        self.names = list(names)
        self.clients: set = set()
        self.sent = 0
        self.loop = asyncio.new_event_loop()
        self._server = None
        started = threading.Event()
        error: list[BaseException] = []

        async def start():
            self._server = await serve(self._handler, host, port, family=family)

        def run():
            asyncio.set_event_loop(self.loop)
            try:
                self.loop.run_until_complete(start())
            except BaseException as e:  # noqa: BLE001 - handed to the caller below
                error.append(e)
                started.set()
                return
            started.set()
            self.loop.run_forever()

        self._thread = threading.Thread(target=run, name="viseme-ws", daemon=True)
        self._thread.start()
        started.wait()
        if error:
            e = error[0]
            raise LiveError(f"--ws {address!r}: cannot listen on {host}:{port} "
                            f"({getattr(e, 'strerror', None) or e})") from None
        self.host = host
        self.port = self._server.sockets[0].getsockname()[1]

    def describe(self) -> str:
        return f"WebSocket server ws://{self.host}:{self.port}"

    @property
    def n_clients(self) -> int:
        return len(self.clients)

    async def _handler(self, ws) -> None:
        self.clients.add(ws)
        try:
            async for _ in ws:  # clients may talk; nothing they say is needed
                pass
        except Exception:  # noqa: BLE001 - a client that vanishes mid-frame
            pass
        finally:
            self.clients.discard(ws)

    def frame_json(self, t_s: float, index: int, weights: np.ndarray, euler: np.ndarray, quat: np.ndarray) -> str:
        return json.dumps({
            "t": round(float(t_s), 4), "frame": int(index),
            "weights": {n: round(float(v), 4) for n, v in zip(self.names, weights)},
            "head": {"pitch": round(float(euler[0]), 4), "yaw": round(float(euler[1]), 4),
                     "roll": round(float(euler[2]), 4), "quaternion": [round(float(v), 5) for v in quat]},
        }, separators=(",", ":"))

    def send(self, batch) -> None:
        if not self.clients:  # nobody listening: no JSON to build
            return
        w, e, q = batch.weights, batch.head_euler, batch.head_quaternion
        msgs = [self.frame_json(batch.times_s[i], batch.start + i, w[i], e[i], q[i]) for i in range(batch.n)]
        self.loop.call_soon_threadsafe(self._broadcast, msgs)

    def _broadcast(self, msgs: list[str]) -> None:
        # websockets' broadcast skips a client whose buffer is full: a slow page never holds the others up
        for m in msgs:
            self._broadcast_fn(set(self.clients), m)
            self.sent += 1

    def close(self) -> None:
        if self._server is None:
            return

        async def stop():
            self._server.close()
            await self._server.wait_closed()

        try:
            asyncio.run_coroutine_threadsafe(stop(), self.loop).result(timeout=3)
        except Exception:  # noqa: BLE001 - closing is best effort
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=3)
        self._server = None
