"""Alignment with an installed Montreal Forced Aligner (the ``mfa`` command).

MFA is not a dependency (it lives in its own conda environment); when ``mfa``
is on PATH this runs ``mfa align`` on a one-file temporary corpus (a WAV and its
``.lab`` transcript) with the ``english_us_arpa`` dictionary and acoustic model,
or ones the user names, and reads the TextGrid back.  Without it,
`MfaUnavailable` (a RuntimeError) says how to install it.

Example
-------
>>> import numpy as np
>>> if mfa_available():                                          # doctest: +SKIP
...     al = align_mfa(np.zeros(16000, np.float32), 16000, ["hello"])
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

from toolkit import cleanup
from toolkit.alignment.result import Alignment

DEFAULT_DICTIONARY = "english_us_arpa"
DEFAULT_ACOUSTIC_MODEL = "english_us_arpa"


class MfaUnavailable(RuntimeError):
    """No usable ``mfa`` executable."""


class MfaFailed(RuntimeError):
    """``mfa align`` ran but produced no alignment."""


def mfa_executable() -> str | None:
    """Path of the ``mfa`` command (``$MFA_EXECUTABLE`` first, then PATH), or None."""
    exe = os.environ.get("MFA_EXECUTABLE")
    if exe and Path(exe).is_file() and os.access(exe, os.X_OK):
        return exe
    return shutil.which("mfa")


def mfa_available() -> bool:
    return mfa_executable() is not None


def align_mfa(samples: np.ndarray, sample_rate: int, words: list[str], *,
              dictionary: str = DEFAULT_DICTIONARY, acoustic_model: str = DEFAULT_ACOUSTIC_MODEL,
              timeout_s: float = 600.0, source: str = "audio") -> Alignment:
    """Align with ``mfa align``; returns an Alignment with method "mfa".

    dictionary / acoustic_model: MFA model names (downloaded beforehand with
    ``mfa model download``) or paths.  Raises `MfaUnavailable` without ``mfa``
    and `MfaFailed` (with MFA's own error output) when it produces nothing.
    """
    exe = mfa_executable()
    if exe is None:
        raise MfaUnavailable(
            "the Montreal Forced Aligner ('mfa') is not on PATH: install it with "
            "'conda install -c conda-forge montreal-forced-aligner' and "
            f"'mfa model download dictionary {dictionary}; mfa model download acoustic {acoustic_model}', "
            "or use the built-in PocketSphinx aligner"
        )
    import soundfile as sf

    from toolkit.alignment.textgrid import read_textgrid

    with cleanup.temp_dir(prefix="viseme-mfa-") as tmp:  # removed on an interrupt too
        corpus, out = Path(tmp) / "corpus", Path(tmp) / "aligned"
        corpus.mkdir()
        out.mkdir()
        sf.write(corpus / "utt.wav", np.clip(np.asarray(samples, np.float32), -1, 1), sample_rate, subtype="PCM_16")
        (corpus / "utt.lab").write_text(" ".join(words) + "\n", encoding="utf-8")
        cmd = [exe, "align", "--clean", "--single_speaker", str(corpus), dictionary, acoustic_model, str(out)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise MfaFailed(f"{source}: mfa align took longer than {timeout_s:.0f} s") from None
        except OSError as e:
            raise MfaUnavailable(f"cannot run {exe}: {e}") from None
        grids = sorted(out.rglob("*.TextGrid"))
        if proc.returncode != 0 or not grids:
            tail = (proc.stderr or proc.stdout or "").strip()[-800:]
            raise MfaFailed(f"{source}: mfa align failed (exit {proc.returncode}): {tail or 'no TextGrid written'}")
        al = read_textgrid(grids[0])
    al.method = "mfa"
    al.warnings = [w for w in al.warnings if "no tier named" not in w]
    return al
