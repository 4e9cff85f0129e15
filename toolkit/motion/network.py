"""The audio-to-face network in numpy: the only inference implementation (CLI, API, live, Blender).

`viseme train` (`toolkit.train.audio2face`, torch) fits the network and writes its
weights as ``assets/model/audio2face.npz``: a JSON header (format, architecture,
the curve channels, training meta) and one array per layer, named as in torch's
``state_dict``.  This module reads that file and runs the network without torch:

* three causal dilated 1-D convolutions over 100 Hz log-mel frames, each with a
  per-frame LayerNorm and ReLU, residual after the first,
* a GRU (PyTorch's gate order r, z, n),
* two linear heads on [GRU output, GRU input]: viseme logits and curves.

Every layer is causal, so `forward` can run a whole clip at once or chunk by
chunk with a `State` carried over (the streaming path), with the same result.

Example
-------
>>> net = Network(_tiny_weights(), dilations=[1], eps=1e-5)
>>> x = np.random.default_rng(0).standard_normal((9, 2)).astype(np.float32)
>>> logits, curves, _ = net.forward(x)
>>> logits.shape, curves.shape
((9, 3), (9, 1))
>>> a, b, state = net.forward(x[:4])
>>> c, d, _ = net.forward(x[4:], state)
>>> bool(np.allclose(np.concatenate([a, c]), logits, atol=1e-5))
True
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FORMAT = "viseme-toolkit/audio2face-numpy@1"


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # no overflow warning for large |x|


@dataclass
class State:
    """What a chunk leaves for the next: each convolution's last inputs and the GRU's hidden state."""

    conv: list[np.ndarray]
    hidden: np.ndarray


class Network:
    """The causal network with its weights (``weights``: state_dict name -> float32 array)."""

    def __init__(self, weights: dict[str, np.ndarray], dilations: list[int], eps: float):
        self.w = {k: np.asarray(v, np.float32) for k, v in weights.items()}
        self.dilations, self.eps = [int(d) for d in dilations], float(eps)
        expected = _layer_names(len(self.dilations))
        if set(self.w) != expected:
            raise ValueError("the network's layers are not the ones this numpy version knows "
                             f"(missing {sorted(expected - set(self.w))}, unknown {sorted(set(self.w) - expected)})")
        # the GRU's input and recurrent weights transposed once (every frame uses them)
        self._w_ih_t = np.ascontiguousarray(self.w["gru.weight_ih_l0"].T)
        self._w_hh_t = np.ascontiguousarray(self.w["gru.weight_hh_l0"].T)

    @property
    def hidden_size(self) -> int:
        return int(self.w["gru.weight_hh_l0"].shape[1])

    @property
    def n_params(self) -> int:
        return int(sum(v.size for k, v in self.w.items() if k not in ("mean", "std")))

    def initial_state(self) -> State:
        """Silence before time 0: zero history in every convolution, a zero GRU state."""
        conv = []
        for i, d in enumerate(self.dilations):
            weight = self.w[f"convs.{i}.conv.weight"]  # (out, in, k)
            conv.append(np.zeros(((weight.shape[2] - 1) * d, weight.shape[1]), np.float32))
        return State(conv, np.zeros(self.hidden_size, np.float32))

    def forward(self, feats: np.ndarray, state: State | None = None) -> tuple[np.ndarray, np.ndarray, State]:
        """Raw log-mel (T, n_mels) -> logits (T, classes), curves (T, K) and the state after frame T."""
        state = state or self.initial_state()
        x = (np.asarray(feats, np.float32) - self.w["mean"]) / self.w["std"]
        new_conv = []
        for i in range(len(self.dilations)):
            y, hist = self._conv(x, i, state.conv[i])
            new_conv.append(hist)
            # per-frame norm (over channels only) keeps the network causal
            y = np.maximum(self._norm(y, i), 0.0)
            x = y if i == 0 else x + y
        h, hidden = self._gru(x, state.hidden)
        z = np.concatenate([h, x], axis=1)
        logits = z @ self.w["cls.weight"].T + self.w["cls.bias"]
        curves = z @ self.w["reg.weight"].T + self.w["reg.bias"]
        return logits, curves, State(new_conv, hidden)

    def _conv(self, x: np.ndarray, i: int, history: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Causal conv over time: x (T, C_in) after ``history`` -> (T, C_out) and the new history."""
        weight, bias = self.w[f"convs.{i}.conv.weight"], self.w[f"convs.{i}.conv.bias"]  # (out, in, k)
        k, d = weight.shape[2], self.dilations[i]
        xx = np.concatenate([history, x])
        t = x.shape[0]
        y = np.tile(bias, (t, 1))
        for j in range(k):
            y += xx[j * d: j * d + t] @ weight[:, :, j].T
        return y, xx[xx.shape[0] - history.shape[0]:]

    def _norm(self, y: np.ndarray, i: int) -> np.ndarray:
        mu = y.mean(axis=1, keepdims=True)
        var = ((y - mu) ** 2).mean(axis=1, keepdims=True)
        return (y - mu) / np.sqrt(var + self.eps) * self.w[f"norms.{i}.weight"] + self.w[f"norms.{i}.bias"]

    def _gru(self, x: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = self.hidden_size
        b_hh = self.w["gru.bias_hh_l0"]
        gi = x @ self._w_ih_t + self.w["gru.bias_ih_l0"]  # every frame's input projection at once
        out = np.empty((x.shape[0], n), np.float32)
        h = h.astype(np.float32, copy=True)
        for t in range(x.shape[0]):
            gh = h @ self._w_hh_t + b_hh
            r = _sigmoid(gi[t, :n] + gh[:n])
            z = _sigmoid(gi[t, n:2 * n] + gh[n:2 * n])
            cand = np.tanh(gi[t, 2 * n:] + r * gh[2 * n:])
            h = (1.0 - z) * cand + z * h
            out[t] = h
        return out, h


def _layer_names(n_conv: int) -> set[str]:
    names = {"mean", "std", "gru.weight_ih_l0", "gru.weight_hh_l0", "gru.bias_ih_l0", "gru.bias_hh_l0",
             "cls.weight", "cls.bias", "reg.weight", "reg.bias"}
    for i in range(n_conv):
        names |= {f"convs.{i}.conv.weight", f"convs.{i}.conv.bias", f"norms.{i}.weight", f"norms.{i}.bias"}
    return names


def read_weights(path: str | Path) -> tuple[Network, dict]:
    """The network in a weights file and its header (``curve_channels``, ``meta``, ``arch``).

    Raises ValueError naming the file when it is not a weights file of this format."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            header = json.loads(bytes(z["__header__"]).decode("utf-8"))
            weights = {k: z[k] for k in z.files if k != "__header__"}
        if header.get("format") != FORMAT:
            raise ValueError(f"format {header.get('format')!r}, expected {FORMAT!r}")
        net = Network(weights, header["arch"]["dilations"], header["arch"]["eps"])
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: neural model weights not found (train them with `viseme train`)") from None
    except (OSError, KeyError, ValueError, TypeError) as e:
        raise ValueError(f"{path}: not a viseme-toolkit neural model ({e})") from None
    return net, header


def write_weights(path: str | Path, weights: dict[str, np.ndarray], arch: dict, curve_channels: list[str],
                  meta: dict) -> None:
    """Write a weights file `read_weights` reads (atomically).  Weights that float16 holds exactly
    are stored as float16: the file is half the size and no value changes."""
    from toolkit.files import atomic_write

    header = {"format": FORMAT, "arch": arch, "curve_channels": list(curve_channels),
              "meta": json.loads(json.dumps(meta, default=str))}
    arrays = {}
    for k, v in weights.items():
        v = np.asarray(v, np.float32)
        half = v.astype(np.float16)
        arrays[k] = half if np.array_equal(half.astype(np.float32), v) else v

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, __header__=np.frombuffer(json.dumps(header).encode("utf-8"), np.uint8), **arrays)

    atomic_write(path, write)


def _tiny_weights() -> dict[str, np.ndarray]:
    """A 2-mel, 1-conv, 2-hidden network (for the docstring example)."""
    rng = np.random.default_rng(0)
    shapes = {"mean": (2,), "std": (2,), "convs.0.conv.weight": (2, 2, 3), "convs.0.conv.bias": (2,),
              "norms.0.weight": (2,), "norms.0.bias": (2,), "gru.weight_ih_l0": (6, 2), "gru.weight_hh_l0": (6, 2),
              "gru.bias_ih_l0": (6,), "gru.bias_hh_l0": (6,), "cls.weight": (3, 4), "cls.bias": (3,),
              "reg.weight": (1, 4), "reg.bias": (1,)}
    weights = {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
    weights["std"] = np.abs(weights["std"]) + 0.5
    return weights
