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
_REPO = _PACKAGE.parent            # in a clone of the repository
# The repository when the toolkit runs from a clone (an editable install too), else None (an installed
# package, whose parent is site-packages): the trainers write their data and weights into it, and its
# Blender environment (.venv-blender, `make setup`) lives there.
CHECKOUT: Path | None = _REPO if (_REPO / "pyproject.toml").is_file() else None


def data_path(relative: str) -> Path:
    """The file or folder ``relative`` (as laid out in the repository: ``rigs/...``, ``assets/...``)."""
    bundled = _BUNDLED / relative
    return bundled if bundled.exists() else _REPO / relative


RIGS_DIR = data_path("rigs")
DEFAULT_HEAD = data_path("assets/head/head.glb")
NEURAL_WEIGHTS = data_path("assets/model/audio2face.npz")
ALIGNER_WEIGHTS = data_path("assets/model/aligner.npz")
