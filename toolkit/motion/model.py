"""Neural audio-to-face regressor: log-mel in, visemes + jaw/lip curves out.

The network (`AudioToFace`, ~0.2 M parameters) is strictly causal: three
causal dilated convolutions, a GRU and two linear heads.  Its look-ahead is a
fixed *delay*: the output at input frame ``t`` describes frame ``t - DELAY``
(40 ms earlier), so the model hears 40 ms past the frame it animates.  With
the 10 ms look-ahead of the feature window and at most 10 ms of linear
interpolation to the output frame rate, the streaming latency is at most
60 ms.  Offline inference pads the end with DELAY frames of silence, and
`Streamer.flush` does the same, so offline and streaming give the same curves.

Outputs per 100 Hz frame:

* ``logits``  15 viseme classes (what is being said); their sharpened
  probabilities are the animation's viseme weights,
* ``curves``  the coarticulated viseme weights and ARKit jaw/lip channels of
  `toolkit.visemes.coarticulation` (listed in the checkpoint), which carry the
  loudness-dependent jaw opening, rounding and lip tension; the ARKit ones are
  the animation's jaw/lip channels (lips sealed where a bilabial is heard).

Head rotation and blinks come from `toolkit.motion.procedural` (seeded).

Example
-------
>>> import numpy as np
>>> anim = NeuralAnimator.load().predict(np.zeros(16000, np.float32), 16000, fps=30)  # doctest: +SKIP
>>> anim.n_frames                                                                        # doctest: +SKIP
30
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from toolkit.animation import CHANNELS, VISEME_CHANNELS, VISEMES, Animation
from toolkit.audio import resample
from toolkit.files import atomic_write
from toolkit.motion import procedural
from toolkit.motion.features import FLOOR, FRAME_RATE, LOOKAHEAD_S, N_MELS, SAMPLE_RATE, MelStreamer, log_mel
from toolkit.visemes.tables import CLOSURE_VISEMES, CONTACT_VISEMES, VISEME_POSES

DELAY = 4  # frames of model look-ahead (40 ms)
DEFAULT_WEIGHTS = Path(__file__).resolve().parents[2] / "assets" / "model" / "audio2face.pt"
SILENCE_FEATURE = float(np.log10(FLOOR))  # log_mel of digital silence
_VIS_IDX = [CHANNELS.index(c) for c in VISEME_CHANNELS]
_PP = VISEMES.index("PP")
VISEME_SHARPNESS = 2.0  # exponent on the class probabilities: confident sounds reach full weight


def latency_s(fps: float) -> float:
    """Worst-case algorithmic latency of streaming output at ``fps`` (feature + model look-ahead + interpolation)."""
    interp = 0.0 if abs(fps - FRAME_RATE) < 1e-9 else 1.0 / FRAME_RATE
    return LOOKAHEAD_S + DELAY / FRAME_RATE + interp


def _torch():
    try:
        import torch
    except ImportError as e:  # the rest of the toolkit works without torch
        raise ImportError("the neural engine needs torch: pip install 'viseme-toolkit[neural]' (torch==2.13.0)") from e
    return torch


def build_network(n_mels: int = N_MELS, hidden: int = 128, n_classes: int = len(VISEMES), n_curves: int = 40):
    """The causal network (a torch.nn.Module)."""
    torch = _torch()
    nn = torch.nn

    class CausalConv(nn.Module):
        def __init__(self, c_in, c_out, k, d):
            super().__init__()
            self.pad = (k - 1) * d
            self.conv = nn.Conv1d(c_in, c_out, k, dilation=d)

        def forward(self, x, state):
            # x: (B, C, T); state: (B, C, pad) the previous inputs, or None for silence history
            if state is None:
                state = x.new_zeros(x.shape[0], x.shape[1], self.pad)
            xx = torch.cat([state, x], dim=2)
            t = x.shape[2]
            if t > 16:
                y = self.conv(xx)
            else:  # a few streaming frames: one small matmul beats conv1d's setup cost
                k, d = self.conv.kernel_size[0], self.conv.dilation[0]
                cols = torch.stack([xx[:, :, i * d: i * d + t] for i in range(k)], dim=3)  # B, C, T, k
                cols = cols.permute(0, 2, 1, 3).reshape(x.shape[0], t, -1)
                w = self.conv.weight.reshape(self.conv.out_channels, -1)
                y = torch.addmm(self.conv.bias, cols.reshape(-1, cols.shape[2]), w.t())
                y = y.reshape(x.shape[0], t, -1).transpose(1, 2)
            return y, xx[:, :, xx.shape[2] - self.pad:]

    class AudioToFace(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("mean", torch.zeros(n_mels))
            self.register_buffer("std", torch.ones(n_mels))
            self.convs = nn.ModuleList([CausalConv(n_mels, hidden, 5, 1), CausalConv(hidden, hidden, 3, 2),
                                        CausalConv(hidden, hidden, 3, 4)])
            self.norms = nn.ModuleList([nn.LayerNorm(hidden) for _ in self.convs])
            self.gru = nn.GRU(hidden, hidden, batch_first=True)
            self.drop = nn.Dropout(0.1)
            self.cls = nn.Linear(hidden * 2, n_classes)
            self.reg = nn.Linear(hidden * 2, n_curves)

        def forward(self, feats, state=None):
            """feats (B, T, n_mels) raw log-mel -> logits (B,T,15), curves (B,T,K), new state."""
            state = state or [None] * (len(self.convs) + 1)
            x = ((feats - self.mean) / self.std).transpose(1, 2)
            new_state = []
            for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
                y, s = conv(x, state[i])
                new_state.append(s)
                # per-frame norm (over channels only) keeps the model causal
                y = torch.relu(norm(y.transpose(1, 2))).transpose(1, 2)
                x = y if i == 0 else x + y
            h_in = x.transpose(1, 2)
            h, hn = self.gru(h_in, state[-1])
            new_state.append(hn)
            z = self.drop(torch.cat([h, h_in], dim=2))
            return self.cls(z), self.reg(z), new_state

    return AudioToFace()


class NeuralAnimator:
    """Trained weights + inference: `predict` (offline) and `streamer` (chunks)."""

    def __init__(self, net, curve_channels: list[str], meta: dict | None = None) -> None:
        self.net = net.eval()
        self.curve_channels = list(curve_channels)
        self._curve_idx = np.array([CHANNELS.index(c) for c in self.curve_channels])
        self.meta = dict(meta or {})

    @property
    def _logit_bias(self):
        """Class-prior correction calibrated on validation data (`train.calibrate_pp_bias`)."""
        torch = _torch()
        b = torch.zeros(len(VISEMES))
        b[_PP] = float(self.meta.get("pp_logit_bias", 0.0))
        return b

    # -- persistence -----------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> "NeuralAnimator":
        """Load weights (default ``assets/model/audio2face.pt``) on the CPU."""
        torch = _torch()
        path = Path(path) if path is not None else DEFAULT_WEIGHTS
        if not path.is_file():
            raise FileNotFoundError(f"{path}: neural model weights not found (train them with `viseme train`)")
        try:
            ck = torch.load(path, map_location="cpu", weights_only=False)
            cfg = ck["config"]
            net = build_network(**cfg["net"])
            net.load_state_dict({k: v.float() for k, v in ck["state_dict"].items()})
        except Exception as e:  # noqa: BLE001 - any unpickling/shape problem is a bad file
            raise ValueError(f"{path}: not a viseme-toolkit neural model ({e})") from None
        return cls(net, cfg["curve_channels"], ck.get("meta", {}))

    def save(self, path: str | os.PathLike, half: bool = True) -> None:
        """Write the checkpoint atomically (float16 weights by default: half the size, same accuracy)."""
        torch = _torch()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        sd = {k: (v.half() if half and v.is_floating_point() and k not in ("mean", "std") else v)
              for k, v in self.net.state_dict().items()}
        cfg = {"net": self.net_config, "curve_channels": self.curve_channels}
        atomic_write(path, lambda tmp: torch.save({"config": cfg, "state_dict": sd, "meta": self.meta}, tmp))

    @property
    def net_config(self) -> dict:
        n = self.net
        return {"n_mels": n.convs[0].conv.in_channels, "hidden": n.gru.hidden_size,
                "n_classes": n.cls.out_features, "n_curves": n.reg.out_features}

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.net.parameters())

    # -- inference ---------------------------------------------------------------------------
    def infer_features(self, feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """100 Hz log-mel (T, 40) -> viseme probabilities (T, 15) and curves (T, K), offline."""
        torch = _torch()
        pad = np.full((DELAY, feats.shape[1]), SILENCE_FEATURE, np.float32)
        x = torch.from_numpy(np.concatenate([feats, pad])[None].astype(np.float32))
        with torch.inference_mode():
            logits, curves, _ = self.net(x)
        probs = torch.softmax(logits[0, DELAY:] + self._logit_bias, dim=-1).numpy()
        return probs, curves[0, DELAY:].numpy()

    def frames_100hz(self, probs: np.ndarray, curves: np.ndarray, intensity: float = 1.0) -> np.ndarray:
        """Model outputs -> canonical channel values at 100 Hz (frames x CHANNELS), no procedural layers.

        Viseme weights are the classifier's probabilities, sharpened (``p**2``,
        renormalized) so a confident sound shows fully; jaw and lip channels are
        the regressed coarticulation curves, with the lips sealed wherever the
        classifier hears a bilabial (the curves alone are averages and may not close).
        """
        out = np.zeros((curves.shape[0], len(CHANNELS)), np.float32)
        out[:, self._curve_idx] = np.clip(curves, 0.0, 1.0)
        p = np.asarray(probs, np.float32) ** VISEME_SHARPNESS
        p /= np.maximum(p.sum(axis=1, keepdims=True), 1e-9)
        # as rule_bilabial_closure / rule_labiodental_contact of the aligned path: a heard
        # /p b m/ or /f v/ is shown fully (0.9), whatever its neighbours
        top = p.argmax(axis=1)
        for v in CLOSURE_VISEMES + CONTACT_VISEMES:
            k = VISEMES.index(v)
            sel = (top == k) & (p[:, k] < 0.9)
            if sel.any():
                rest = np.maximum(1.0 - p[sel, k], 1e-9)[:, None]
                p[sel] *= 0.1 / rest
                p[sel, k] = 0.9
        out[:, _VIS_IDX] = p
        closed = np.clip((p[:, _PP] - 0.3) / 0.5, 0.0, 1.0)
        if closed.any():
            for name, w in VISEME_POSES["PP"].items():
                j = CHANNELS.index(name)
                out[:, j] = np.maximum(out[:, j], closed * w)
            jaw, close = CHANNELS.index("jawOpen"), CHANNELS.index("mouthClose")
            out[:, jaw] *= 1.0 - 0.7 * closed
            out[:, close] = np.maximum(out[:, close], closed * out[:, jaw])  # seal over the jaw left open
        if intensity != 1.0:  # as the coarticulation stage: mouth scales, what is taken away goes to rest
            mouth = [CHANNELS.index(c) for c in self.curve_channels if c not in VISEME_CHANNELS]
            vis = _VIS_IDX
            out[:, mouth] = np.clip(out[:, mouth] * intensity, 0, 1)
            out[:, vis[1:]] = np.clip(out[:, vis[1:]] * intensity, 0, 1)
            out[:, vis[0]] = np.clip(1.0 - out[:, vis[1:]].sum(axis=1), 0, 1)
        return out

    def predict(self, samples: np.ndarray, sample_rate: int = SAMPLE_RATE, fps: float = 30, seed: int = 0,
                intensity: float = 1.0, blinks: bool = True, head_motion: bool = True) -> Animation:
        """Audio (float mono array) -> `Animation` at ``fps`` with the canonical channels.

        Visemes and jaw/lip channels come from the network; blinks and head
        motion from the seeded procedural layer.  ``intensity`` scales the
        mouth motion (1 = natural), as in `toolkit.visemes.coarticulation`.
        """
        x = self._mono16k(samples, sample_rate)
        probs, curves = self.infer_features(log_mel(x))
        grid = self.frames_100hz(probs, curves, intensity)
        grid = _add_procedural(grid, x, seed, blinks, head_motion)
        return _grid_to_animation(grid, fps, x.size / SAMPLE_RATE, {"engine": "neural", "seed": seed})

    def refine(self, aligned: Animation, samples: np.ndarray, sample_rate: int = SAMPLE_RATE, seed: int = 0,
               weight: float = 0.5, head_motion: bool = True) -> Animation:
        """Hybrid: keep the aligned visemes (their timing comes from the transcript) and mix in what
        the audio shows: jaw and lip channels are blended with the network's (``weight`` = its share),
        lip closures of the alignment are kept, and prosody head motion is added.
        """
        neural = self.predict(samples, sample_rate, fps=aligned.fps, seed=seed, blinks=False,
                              head_motion=head_motion)
        n = aligned.n_frames
        nv = neural.values
        if nv.shape[0] < n:
            nv = np.concatenate([nv, np.repeat(nv[-1:], n - nv.shape[0], axis=0)])
        out = aligned
        mouth = [c for c in self.curve_channels if c not in VISEME_CHANNELS and aligned.has(c)]
        if mouth:
            a = aligned.select(mouth).values
            b = nv[:n, [CHANNELS.index(c) for c in mouth]]
            mixed = (1 - weight) * a + weight * b
            if aligned.has("viseme_PP"):
                # where the transcript says the lips close, they close: no blending there
                closed = np.clip(aligned.channel("viseme_PP") * 2 - 0.6, 0, 1)[:, None]
                mixed = closed * a + (1 - closed) * mixed
            out = out.with_channels(mouth, mixed)
        if head_motion:
            head = [c for c in procedural.HEAD_CHANNELS]
            base = np.stack([aligned.channel(c) if aligned.has(c) else np.zeros(n, np.float32) for c in head], 1)
            out = out.with_channels(head, base + nv[:n, [CHANNELS.index(c) for c in head]])
        out.meta = {**aligned.meta, "refined_by": "neural"}
        return out

    @staticmethod
    def _mono16k(samples: np.ndarray, sample_rate: int) -> np.ndarray:
        x = np.asarray(samples, np.float32)
        if x.ndim != 1:
            raise ValueError(f"the neural model needs mono audio (a 1-D array), got shape {x.shape}")
        if sample_rate != SAMPLE_RATE:
            x = resample(x, sample_rate, SAMPLE_RATE)
        return x

    def viseme_track(self, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
        """Most likely viseme index per 100 Hz frame (into `toolkit.animation.VISEMES`)."""
        x = self._mono16k(samples, sample_rate)
        probs, _ = self.infer_features(log_mel(x))
        return probs.argmax(axis=1)

    def streamer(self, fps: float = 30, seed: int = 0, intensity: float = 1.0, blinks: bool = True,
                 head_motion: bool = True) -> "Streamer":
        """A `Streamer` whose output equals `predict` with the same arguments."""
        return Streamer(self, fps, seed, intensity, blinks, head_motion)


def _add_procedural(grid: np.ndarray, samples: np.ndarray, seed: int, blinks: bool, head_motion: bool) -> np.ndarray:
    db = procedural.loudness_db(samples, SAMPLE_RATE)[: grid.shape[0]]
    return _procedural_step(grid, db, procedural.BlinkProcess(seed) if blinks else None,
                            procedural.HeadProcess(seed) if head_motion else None)


def _procedural_step(grid, db, blinks, head) -> np.ndarray:
    grid = grid.copy()
    if blinks is not None:
        b = blinks.step(db)
        for c in procedural.BLINK_CHANNELS:
            grid[:, CHANNELS.index(c)] = np.maximum(grid[:, CHANNELS.index(c)], b)
    if head is not None:
        h = head.step(db)
        for j, c in enumerate(procedural.HEAD_CHANNELS):
            grid[:, CHANNELS.index(c)] += h[:, j]
    return grid


def _grid_times(n_out: int, fps: float) -> np.ndarray:
    return np.arange(n_out) / fps * FRAME_RATE  # output frame times in 100 Hz frame units


def _interp_rows(grid: np.ndarray, pos: np.ndarray) -> np.ndarray:
    i0 = np.clip(np.floor(pos).astype(int), 0, grid.shape[0] - 1)
    i1 = np.clip(i0 + 1, 0, grid.shape[0] - 1)
    w = (pos - np.floor(pos))[:, None].astype(np.float32)
    return grid[i0] * (1 - w) + grid[i1] * w


def _grid_to_animation(grid: np.ndarray, fps: float, duration_s: float, meta: dict) -> Animation:
    n_out = max(1, int(round(duration_s * fps)))
    values = _interp_rows(grid, _grid_times(n_out, fps)) if grid.shape[0] else np.zeros((n_out, len(CHANNELS)))
    return Animation(fps, list(CHANNELS), values, meta=meta)


class Streamer:
    """Chunked inference: `push(chunk)` -> new output frames (n x CHANNELS) at ``fps``; `flush()` ends.

    The concatenated frames equal `NeuralAnimator.predict` on the whole clip
    (same seed).  Audio must be 16 kHz mono float.
    """

    def __init__(self, animator: NeuralAnimator, fps: float = 30, seed: int = 0, intensity: float = 1.0,
                 blinks: bool = True, head_motion: bool = True):
        self.a = animator
        self.fps = float(fps)
        self.seed = seed
        self._mel = MelStreamer()
        self._state = None
        self._n_feat = 0  # feature frames fed to the network
        self._grid = np.zeros((0, len(CHANNELS)), np.float32)  # 100 Hz frames not yet fully consumed
        self._grid_offset = 0  # 100 Hz index of self._grid[0]
        self._n_out = 0
        self._n_samples = 0
        # loudness per 10 ms for the procedural layers, as `procedural.loudness_db` frames it
        self._aud_rem = np.zeros(0, np.float32)
        self._loud = np.zeros(0, np.float32)
        self._n_grid = 0
        self.intensity = intensity
        self._proc = (procedural.BlinkProcess(seed) if blinks else None, procedural.HeadProcess(seed) if head_motion else None)
        self._frames: list[np.ndarray] = []

    def _run(self, feats: np.ndarray) -> None:
        torch = _torch()
        if feats.shape[0] == 0:
            return
        with torch.inference_mode():
            logits, curves, self._state = self.a.net(torch.from_numpy(feats[None].astype(np.float32)), self._state)
            probs = torch.softmax(logits[0] + self.a._logit_bias, dim=-1).numpy()
        curves = curves[0].numpy()
        # the first DELAY outputs describe frames before time 0: drop them
        skip = max(0, DELAY - self._n_feat)
        self._n_feat += feats.shape[0]
        curves, probs = curves[skip:], probs[skip:]
        if curves.shape[0] == 0:
            return
        grid = self.a.frames_100hz(probs, curves, self.intensity)
        db = self._loud[self._n_grid: self._n_grid + grid.shape[0]]
        grid = _procedural_step(grid, db, *self._proc)
        self._n_grid += grid.shape[0]
        self._grid = np.concatenate([self._grid, grid])

    def _emit(self, final: bool) -> np.ndarray:
        total = self._grid_offset + self._grid.shape[0]
        n_final = max(1, int(round(self._n_samples / SAMPLE_RATE * self.fps)))
        rows = []
        while True:
            if final and self._n_out >= n_final:
                break
            pos = self._n_out / self.fps * FRAME_RATE
            need = int(np.floor(pos)) + (0 if pos == np.floor(pos) else 1)
            if need >= total and not (final and total > 0):
                break
            local = np.array([pos - self._grid_offset])
            g = self._grid
            rows.append(_interp_rows(g, local)[0])
            self._n_out += 1
        keep_from = int(np.floor(self._n_out / self.fps * FRAME_RATE)) - self._grid_offset
        keep_from = max(0, min(keep_from, self._grid.shape[0] - 1))
        self._grid = self._grid[keep_from:]
        self._grid_offset += keep_from
        out = np.stack(rows).astype(np.float32) if rows else np.zeros((0, len(CHANNELS)), np.float32)
        self._frames.append(out)
        return out

    def _add_loudness(self, chunk: np.ndarray, final: bool) -> None:
        hop = SAMPLE_RATE // int(FRAME_RATE)
        buf = np.concatenate([self._aud_rem, chunk])
        n = buf.size // hop if not final else int(np.ceil(buf.size / hop))
        if n:
            self._loud = np.concatenate([self._loud, procedural.loudness_db(buf[: n * hop])])
        self._aud_rem = buf[n * hop:]

    def push(self, chunk: np.ndarray) -> np.ndarray:
        """Feed audio (16 kHz mono float); returns the output frames that are now final."""
        chunk = np.asarray(chunk, np.float32).reshape(-1)
        self._n_samples += chunk.size
        self._add_loudness(chunk, final=False)
        self._run(self._mel.push(chunk))
        return self._emit(final=False)

    def flush(self) -> np.ndarray:
        """End of stream: the remaining frames (the clip is padded with silence as offline)."""
        self._add_loudness(np.zeros(0, np.float32), final=True)
        self._run(self._mel.flush())
        self._run(np.full((DELAY, N_MELS), SILENCE_FEATURE, np.float32))
        return self._emit(final=True)

    def animation(self) -> Animation:
        """Everything emitted so far as an `Animation`."""
        vals = np.concatenate(self._frames) if self._frames else np.zeros((0, len(CHANNELS)), np.float32)
        return Animation(self.fps, list(CHANNELS), vals, meta={"engine": "neural", "seed": self.seed})
