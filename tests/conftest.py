"""Shared pytest fixtures."""
from __future__ import annotations

import pytest


# -- espeak-ng speech (helper core-io) ------------------------------------------------
@pytest.fixture(scope="session")
def espeak_speech():
    """`toolkit.align.tts.Speech` for "Bob made a map of Paris." (en-us, 16 kHz, exact phoneme times)."""
    from toolkit.align.tts import synthesize

    try:
        return synthesize("Bob made a map of Paris.", lang="en")
    except RuntimeError as e:  # libespeak-ng missing
        pytest.skip(f"espeak-ng unavailable: {e}")


@pytest.fixture(scope="session")
def espeak_wav(espeak_speech, tmp_path_factory):
    """Path of `espeak_speech` written as a 16 kHz PCM_16 WAV (its text: espeak_speech.text)."""
    from toolkit.audio import write_wav

    return write_wav(tmp_path_factory.mktemp("espeak") / "bob.wav", espeak_speech.samples, espeak_speech.sample_rate)
