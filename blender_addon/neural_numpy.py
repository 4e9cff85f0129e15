"""The shipped neural audio-to-face model in numpy, for Blender's Python (which has no torch).

`build.py` converts the torch checkpoint (``assets/model/audio2face.pt``, as
it is at build time) with `export`, run in the toolkit's ``.venv`` (it has
torch), into ``vendor/assets/model/audio2face.npz``.  Inside Blender `load`
returns a `toolkit.motion.model.NeuralAnimator` whose network is `NumpyNet`,
so its `predict` and `refine` (the audio-only and hybrid engines) run
unchanged.  `export` checks the numpy pass against torch before writing: a
network changed in a way this file does not know is refused, never shipped.

    python blender_addon/neural_numpy.py OUT.npz [CHECKPOINT.pt]     # in .venv (torch)

Example
-------
>>> net = NumpyNet.from_state(_tiny_state(), {"dilations": [1], "eps": 1e-5})
>>> logits, curves = net.forward(np.zeros((7, 2), np.float32))
>>> logits.shape, curves.shape
((7, 3), (7, 1))
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

FORMAT = "viseme-toolkit/audio2face-numpy@1"
TOLERANCE = 1e-4  # numpy vs torch, on the logits and curves


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # no overflow warning for large |x|


class NumpyNet:
    """`toolkit.motion.model.build_network`'s AudioToFace, offline (whole clip at once), in numpy.

    Causal dilated convolutions with per-frame LayerNorm and residuals, a GRU
    (PyTorch's gate order r, z, n) and two linear heads on [GRU output, GRU input].
    """

    def __init__(self, w: dict[str, np.ndarray], dilations: list[int], eps: float):
        self.w, self.dilations, self.eps = w, list(dilations), float(eps)

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray], arch: dict) -> "NumpyNet":
        """From a state_dict (name -> array) and the architecture the state does not hold (dilations, eps)."""
        w = {k: np.asarray(v, np.float32) for k, v in state.items()}
        n_conv = len(arch["dilations"])
        expected = {"mean", "std", "gru.weight_ih_l0", "gru.weight_hh_l0", "gru.bias_ih_l0", "gru.bias_hh_l0",
                    "cls.weight", "cls.bias", "reg.weight", "reg.bias"}
        for i in range(n_conv):
            expected |= {f"convs.{i}.conv.weight", f"convs.{i}.conv.bias", f"norms.{i}.weight", f"norms.{i}.bias"}
        if set(w) != expected:
            raise ValueError("the network's layers are not the ones this numpy version knows "
                             f"(missing {sorted(expected - set(w))}, unknown {sorted(set(w) - expected)})")
        return cls(w, arch["dilations"], arch["eps"])

    def eval(self) -> "NumpyNet":  # NeuralAnimator calls net.eval(); nothing to switch off here
        return self

    def _conv(self, x: np.ndarray, i: int) -> np.ndarray:
        """Causal conv over time: x (T, C_in) -> (T, C_out), history before frame 0 is zeros."""
        weight, bias = self.w[f"convs.{i}.conv.weight"], self.w[f"convs.{i}.conv.bias"]  # (out, in, k)
        k, d = weight.shape[2], self.dilations[i]
        xx = np.concatenate([np.zeros(((k - 1) * d, x.shape[1]), np.float32), x])
        t = x.shape[0]
        y = np.tile(bias, (t, 1))
        for j in range(k):
            y += xx[j * d: j * d + t] @ weight[:, :, j].T
        return y

    def _norm(self, y: np.ndarray, i: int) -> np.ndarray:
        mu = y.mean(axis=1, keepdims=True)
        var = ((y - mu) ** 2).mean(axis=1, keepdims=True)
        return (y - mu) / np.sqrt(var + self.eps) * self.w[f"norms.{i}.weight"] + self.w[f"norms.{i}.bias"]

    def _gru(self, x: np.ndarray) -> np.ndarray:
        w_ih, w_hh = self.w["gru.weight_ih_l0"], self.w["gru.weight_hh_l0"]
        b_hh = self.w["gru.bias_hh_l0"]
        n = w_hh.shape[1]
        gi = x @ w_ih.T + self.w["gru.bias_ih_l0"]  # every frame's input projection at once
        h = np.zeros(n, np.float32)
        out = np.empty((x.shape[0], n), np.float32)
        for t in range(x.shape[0]):
            gh = w_hh @ h + b_hh
            r = _sigmoid(gi[t, :n] + gh[:n])
            z = _sigmoid(gi[t, n:2 * n] + gh[n:2 * n])
            cand = np.tanh(gi[t, 2 * n:] + r * gh[2 * n:])
            h = (1.0 - z) * cand + z * h
            out[t] = h
        return out

    def forward(self, feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw log-mel (T, n_mels) -> logits (T, classes), curves (T, K)."""
        x = (np.asarray(feats, np.float32) - self.w["mean"]) / self.w["std"]
        for i in range(len(self.dilations)):
            y = np.maximum(self._norm(self._conv(x, i), i), 0.0)
            x = y if i == 0 else x + y
        z = np.concatenate([self._gru(x), x], axis=1)
        return z @ self.w["cls.weight"].T + self.w["cls.bias"], z @ self.w["reg.weight"].T + self.w["reg.bias"]


def _animator_class():
    """NeuralAnimator with numpy inference (made on first use: the toolkit is importable only then)."""
    from toolkit.animation import VISEMES
    from toolkit.motion.model import DELAY, SILENCE_FEATURE, NeuralAnimator

    class NumpyAnimator(NeuralAnimator):
        @property
        def _logit_bias(self) -> np.ndarray:
            b = np.zeros(len(VISEMES), np.float32)
            b[VISEMES.index("PP")] = float(self.meta.get("pp_logit_bias", 0.0))
            return b

        def infer_features(self, feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            """As NeuralAnimator.infer_features: the end padded with DELAY frames of silence."""
            pad = np.full((DELAY, feats.shape[1]), SILENCE_FEATURE, np.float32)
            logits, curves = self.net.forward(np.concatenate([feats, pad]))
            z = logits[DELAY:] + self._logit_bias
            e = np.exp(z - z.max(axis=1, keepdims=True))
            return e / e.sum(axis=1, keepdims=True), curves[DELAY:]

    return NumpyAnimator


def load(path: str | Path):
    """The animator from an exported .npz (a `toolkit.motion.model.NeuralAnimator`, no torch needed)."""
    with np.load(path, allow_pickle=False) as z:
        header = json.loads(bytes(z["__header__"]).decode("utf-8"))
        if header.get("format") != FORMAT:
            raise ValueError(f"{path}: not a {FORMAT} file")
        state = {k: z[k] for k in z.files if k != "__header__"}
    net = NumpyNet.from_state(state, header["arch"])
    return _animator_class()(net, header["curve_channels"], header.get("meta", {}))


def export(out: str | Path, checkpoint: str | Path | None = None) -> Path:
    """Write the torch checkpoint as .npz for `load` (needs torch); refuses when numpy and torch disagree."""
    from toolkit.motion.model import NeuralAnimator

    torch_model = NeuralAnimator.load(checkpoint)
    net = torch_model.net
    state = {k: v.detach().float().cpu().numpy() for k, v in net.state_dict().items()}
    arch = {"dilations": [int(c.conv.dilation[0]) for c in net.convs], "eps": float(net.norms[0].eps)}
    header = {"format": FORMAT, "arch": arch, "curve_channels": torch_model.curve_channels,
              "meta": json.loads(json.dumps(torch_model.meta, default=str))}
    numpy_model = _animator_class()(NumpyNet.from_state(state, arch), torch_model.curve_channels, header["meta"])
    diff = max_difference(torch_model, numpy_model)
    if diff > TOLERANCE:
        raise ValueError(f"the numpy network differs from torch by {diff:.2g} (> {TOLERANCE}): "
                         "toolkit/motion/model.py changed in a way blender_addon/neural_numpy.py does not follow")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    # the checkpoint stores float16 weights: keeping them so halves the file and changes no value
    state = {k: v.astype(np.float16) if np.array_equal(v.astype(np.float16).astype(np.float32), v) else v
             for k, v in state.items()}
    with open(tmp, "wb") as f:
        np.savez(f, __header__=np.frombuffer(json.dumps(header).encode("utf-8"), np.uint8), **state)
    tmp.replace(out)
    return out


def max_difference(torch_model, numpy_model, seconds: float = 3.0, seed: int = 0) -> float:
    """Largest gap between the two models' viseme probabilities and curves on speech-like features."""
    from toolkit.motion.features import log_mel

    rng = np.random.default_rng(seed)
    t = np.arange(int(16000 * seconds)) / 16000
    audio = (0.3 * np.sin(2 * np.pi * 180 * t) * (np.sin(2 * np.pi * 3 * t) > 0)
             + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
    feats = log_mel(audio)
    pa, ca = torch_model.infer_features(feats)
    pb, cb = numpy_model.infer_features(feats)
    return float(max(np.abs(pa - pb).max(), np.abs(ca - cb).max()))


def _tiny_state() -> dict[str, np.ndarray]:
    """A 2-mel, 1-conv, 2-hidden network (for the docstring example)."""
    rng = np.random.default_rng(0)
    shapes = {"mean": (2,), "std": (2,), "convs.0.conv.weight": (2, 2, 3), "convs.0.conv.bias": (2,),
              "norms.0.weight": (2,), "norms.0.bias": (2,), "gru.weight_ih_l0": (6, 2), "gru.weight_hh_l0": (6, 2),
              "gru.bias_ih_l0": (6,), "gru.bias_hh_l0": (6,), "cls.weight": (3, 4), "cls.bias": (3,),
              "reg.weight": (1, 4), "reg.bias": (1,)}
    state = {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
    state["std"] = np.abs(state["std"]) + 0.5
    return state


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        raise SystemExit(__doc__.split("\n\n")[2])
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo's toolkit
    print(export(sys.argv[1], sys.argv[2] if len(sys.argv) == 3 else None))
