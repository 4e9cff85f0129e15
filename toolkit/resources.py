"""Where the toolkit's data files are: rig profiles, the default head, the neural and aligner weights.

The repository keeps them where the design card puts them (``rigs/``, ``assets/``);
a wheel carries them as package data under ``toolkit/_data/`` (mapped there at
build time, see ``pyproject.toml``).  `data_path` looks in the package first, then
in the checkout, so the same code runs from a clone and from ``pip install``.

Example
-------
>>> data_path("rigs/arkit52.json").name
'arkit52.json'
>>> DEFAULT_HEAD.name, NEURAL_WEIGHTS.name
('head.glb', 'audio2face.npz')
"""
from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_BUNDLED = _PACKAGE / "_data"      # in an installed wheel
_CHECKOUT = _PACKAGE.parent        # in a clone of the repository


def data_path(relative: str) -> Path:
    """The file or folder ``relative`` (as laid out in the repository: ``rigs/...``, ``assets/...``)."""
    bundled = _BUNDLED / relative
    return bundled if bundled.exists() else _CHECKOUT / relative


RIGS_DIR = data_path("rigs")
DEFAULT_HEAD = data_path("assets/head/head.glb")
NEURAL_WEIGHTS = data_path("assets/model/audio2face.npz")
ALIGNER_WEIGHTS = data_path("assets/model/aligner.npz")
