"""The audio-to-face network in torch (training only), and its weights file.

`build_network` is the trainable twin of `toolkit.motion.network.Network`: same
layers, same names.  `save` writes the trained weights as the ``.npz`` file the
numpy network reads, after checking that both give the same outputs (to
`TOLERANCE`), so a change here that the numpy side does not follow is refused,
never shipped.  `load` reads such a file back into torch (to continue training).

Example
-------
>>> net = build_network(hidden=16)                                  # doctest: +SKIP
>>> save(net, CURVE_CHANNELS, {"note": "test"}, "/tmp/a2f.npz")     # doctest: +SKIP
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from toolkit.animation import VISEMES
from toolkit.motion.features import N_MELS
from toolkit.motion.model import NeuralAnimator
from toolkit.motion.network import Network, read_weights, write_weights

TOLERANCE = 1e-4  # numpy vs torch, on the viseme probabilities and the curves


def build_network(n_mels: int = N_MELS, hidden: int = 128, n_classes: int = len(VISEMES), n_curves: int = 40,
                  dilations: tuple[int, ...] = (1, 2, 4)):
    """The causal network (a torch.nn.Module): dilated causal convs + LayerNorm, a GRU, two linear heads."""
    import torch

    nn = torch.nn

    class CausalConv(nn.Module):
        def __init__(self, c_in, c_out, k, d):
            super().__init__()
            self.pad = (k - 1) * d
            self.conv = nn.Conv1d(c_in, c_out, k, dilation=d)

        def forward(self, x):
            # x: (B, C, T) with silence (zeros) before the first frame, as the numpy network's history
            return self.conv(torch.nn.functional.pad(x, (self.pad, 0)))

    class AudioToFace(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("mean", torch.zeros(n_mels))
            self.register_buffer("std", torch.ones(n_mels))
            kernels = [5] + [3] * (len(dilations) - 1)
            ins = [n_mels] + [hidden] * (len(dilations) - 1)
            self.convs = nn.ModuleList([CausalConv(c, hidden, k, d) for c, k, d in zip(ins, kernels, dilations)])
            self.norms = nn.ModuleList([nn.LayerNorm(hidden) for _ in self.convs])
            self.gru = nn.GRU(hidden, hidden, batch_first=True)
            self.drop = nn.Dropout(0.1)
            self.cls = nn.Linear(hidden * 2, n_classes)
            self.reg = nn.Linear(hidden * 2, n_curves)

        def forward(self, feats):
            """feats (B, T, n_mels) raw log-mel -> logits (B, T, classes), curves (B, T, K)."""
            x = ((feats - self.mean) / self.std).transpose(1, 2)
            for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
                # per-frame norm (over channels only) keeps the model causal
                y = torch.relu(norm(conv(x).transpose(1, 2))).transpose(1, 2)
                x = y if i == 0 else x + y
            h_in = x.transpose(1, 2)
            h, _ = self.gru(h_in)
            z = self.drop(torch.cat([h, h_in], dim=2))
            return self.cls(z), self.reg(z)

    net = AudioToFace()
    net.dilations = list(dilations)
    return net


def _arch(net) -> dict:
    return {"dilations": [int(c.conv.dilation[0]) for c in net.convs], "eps": float(net.norms[0].eps),
            "hidden": int(net.gru.hidden_size), "n_curves": int(net.reg.out_features)}


def to_numpy(net, curve_channels: list[str], meta: dict | None = None) -> NeuralAnimator:
    """The numpy animator with the torch network's current weights."""
    weights = {k: v.detach().float().cpu().numpy() for k, v in net.state_dict().items()}
    arch = _arch(net)
    return NeuralAnimator(Network(weights, arch["dilations"], arch["eps"]), curve_channels, meta or {})


class TorchAnimator(NeuralAnimator):
    """The animator running the torch network (for evaluation while training; same outputs as numpy)."""

    def __init__(self, net, curve_channels: list[str], meta: dict | None = None):
        self.torch_net = net
        super().__init__(None, curve_channels, meta)

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.torch_net.parameters())

    def network_outputs(self, feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import torch

        self.torch_net.eval()
        with torch.inference_mode():
            logits, curves = self.torch_net(torch.from_numpy(np.asarray(feats, np.float32)[None]))
        return logits[0].numpy(), curves[0].numpy()


def max_difference(a: NeuralAnimator, b: NeuralAnimator, seconds: float = 3.0, seed: int = 0) -> float:
    """Largest gap between two animators' viseme probabilities and curves on speech-like audio."""
    from toolkit.motion.features import log_mel

    rng = np.random.default_rng(seed)
    t = np.arange(int(16000 * seconds)) / 16000
    audio = (0.3 * np.sin(2 * np.pi * 180 * t) * (np.sin(2 * np.pi * 3 * t) > 0)
             + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
    feats = log_mel(audio)
    pa, ca = a.infer_features(feats)
    pb, cb = b.infer_features(feats)
    return float(max(np.abs(pa - pb).max(), np.abs(ca - cb).max()))


def save(net, curve_channels: list[str], meta: dict, path: str | Path) -> Path:
    """Write the weights file the numpy network reads; refuses when numpy and torch disagree."""
    net = net.cpu().eval()
    diff = max_difference(TorchAnimator(net, curve_channels, meta), to_numpy(net, curve_channels, meta))
    if diff > TOLERANCE:
        raise ValueError(f"the numpy network differs from torch by {diff:.2g} (> {TOLERANCE}): "
                         "toolkit/train/network.py changed in a way toolkit/motion/network.py does not follow")
    weights = {k: v.detach().float().cpu().numpy() for k, v in net.state_dict().items()}
    write_weights(path, weights, _arch(net), curve_channels, meta)
    return Path(path)


def load(path: str | Path):
    """A weights file back in torch: (network, curve channels, meta), e.g. to continue training."""
    import torch

    numpy_net, header = read_weights(path)
    arch = header["arch"]
    w = numpy_net.w
    net = build_network(n_mels=w["mean"].shape[0], hidden=numpy_net.hidden_size, n_classes=w["cls.weight"].shape[0],
                        n_curves=w["reg.weight"].shape[0], dilations=tuple(arch["dilations"]))
    net.load_state_dict({k: torch.from_numpy(np.array(v, np.float32)) for k, v in w.items()})
    return net, list(header["curve_channels"]), dict(header.get("meta", {}))
