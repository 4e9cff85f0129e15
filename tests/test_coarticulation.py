"""Coarticulation: dominance blending and the JALI-style rules, on hand-built phone timings."""
import numpy as np
import pytest

from toolkit.animation import CHANNELS, VISEMES, Segment
from toolkit.visemes.coarticulation import DEFAULT_PARAMS, animate_phonemes, viseme_weights
from toolkit.visemes.tables import VISEME_POSES, visemes_for

V = {v: i for i, v in enumerate(VISEMES)}


def segs(*items):
    return [Segment(p, a, b) for p, a, b in items]


# "a map of a pub": vowels around bilabials and a labiodental, with a pause
PHONES = segs(("ə", 0.20, 0.28), ("m", 0.28, 0.36), ("æ", 0.36, 0.50), ("p", 0.50, 0.58),
              ("ʌ", 0.58, 0.66), ("v", 0.66, 0.72), ("ə", 0.72, 0.80), ("p", 0.80, 0.86),
              ("ʌ", 0.86, 1.00), ("b", 1.00, 1.06))


@pytest.mark.parametrize("fps", [24, 25, 30, 60])
def test_weights_are_a_partition_at_any_fps(fps):
    w = viseme_weights(PHONES, 1.4, fps)
    assert w.shape == (round(1.4 * fps), 15)
    assert np.allclose(w.sum(axis=1), 1.0, atol=1e-5)
    assert (w >= -1e-6).all()


@pytest.mark.parametrize("fps", [24, 30, 60])
def test_bilabials_close_fully_and_vowels_never_shut(fps):
    w = viseme_weights(PHONES, 1.4, fps)
    t = np.arange(len(w)) / fps
    for s in PHONES:
        core = (t >= s.start - 0.06) & (t <= s.end)
        if s.label in "pbm":
            assert w[core, V["PP"]].max() >= 0.999, s
        elif s.label in "əæʌ":  # lips open (PP below the bench's 0.8 "closed") and the vowel shows
            mid = int(round((s.start + s.end) / 2 * fps))
            assert w[mid, V["PP"]] < 0.8, s
            assert V[visemes_for(s.label)[0]] in np.argsort(-w[mid])[:2], s


def test_labiodental_reaches_contact():
    w = viseme_weights(PHONES, 1.4, 30)
    t = np.arange(len(w)) / 30
    core = (t >= 0.66 - 0.06) & (t <= 0.72)
    assert w[core, V["FF"]].max() >= 0.9


def test_mouth_leads_the_sound():
    """The /m/ closure and the vowel opening come before their acoustic onsets, not after."""
    fps = 100
    w = viseme_weights(segs(("ɑ", 0.3, 0.6)), 1.0, fps)
    aa = w[:, V["aa"]]
    onset = np.argmax(aa > 0.5) / fps
    assert 0.3 - 0.15 < onset < 0.3, onset
    # anticipation: the shape has begun to show ~100 ms ahead
    assert aa[int(0.2 * fps)] > 0.02


def test_anticipation_is_tunable():
    from dataclasses import replace

    early = viseme_weights(segs(("u", 0.5, 0.8)), 1.2, 100, replace(DEFAULT_PARAMS, anticipation_s=0.3))
    late = viseme_weights(segs(("u", 0.5, 0.8)), 1.2, 100, replace(DEFAULT_PARAMS, anticipation_s=0.06))
    assert early[35, V["ou"]] > late[35, V["ou"]] + 0.05


def test_no_single_frame_flicker():
    """A viseme never spikes for exactly one frame (up, down) except the enforced closures."""
    rng = np.random.default_rng(0)
    phones = list("tdkszʃnlɹiɪeɛæɑɔoʊu")
    t, items = 0.1, []
    for _ in range(60):
        d = rng.uniform(0.03, 0.12)
        items.append((phones[rng.integers(len(phones))], t, t + d))
        t += d
    w = viseme_weights(segs(*items), t + 0.2, 60)
    d1 = np.diff(w, axis=0)
    spikes = (d1[:-1] > 0.3) & (d1[1:] < -0.3)
    assert not spikes.any()


def test_short_pause_bridged_long_pause_relaxes():
    fps = 100
    short = viseme_weights(segs(("ɑ", 0.2, 0.4), ("ɑ", 0.46, 0.7)), 1.0, fps)
    long = viseme_weights(segs(("ɑ", 0.2, 0.4), ("ɑ", 0.8, 1.0)), 1.3, fps)
    assert short[43, V["sil"]] < 0.2
    assert long[60, V["sil"]] > 0.8


def test_transparent_h_takes_next_vowel():
    w = viseme_weights(segs(("h", 0.3, 0.38), ("u", 0.38, 0.6)), 1.0, 100)
    assert w[34, V["ou"]] > 0.5  # lips round during /h/ before /u/


def test_diphthong_glides():
    w = viseme_weights(segs(("aɪ", 0.2, 0.6)), 0.9, 100)
    assert w[25, V["aa"]] > w[25, V["ih"]]
    assert w[55, V["ih"]] > w[55, V["aa"]]


def test_arkit_curves_follow_visemes_and_loudness():
    sr = 16000
    t = np.arange(int(1.4 * sr)) / sr
    quiet = 0.02 * np.sin(2 * np.pi * 150 * t)
    loud = quiet * np.where(t > 0.7, 20.0, 1.0)  # second half louder
    anim = animate_phonemes(segs(("ɑ", 0.2, 0.5), ("m", 0.5, 0.6), ("ɑ", 0.9, 1.2)), 1.4, 30, audio=loud)
    assert anim.channels == CHANNELS
    jaw = anim.channel("jawOpen")
    assert jaw[int(1.05 * 30)] > jaw[int(0.35 * 30)] * 1.2  # louder vowel, wider jaw
    i_m = int(0.55 * 30)
    assert jaw[i_m] <= anim.channel("mouthClose")[i_m] + 1e-6  # lips sealed over any jaw during /m/
    assert anim.channel("mouthPressLeft")[i_m] == pytest.approx(VISEME_POSES["PP"]["mouthPressLeft"], abs=0.02)


def test_intensity_scales_motion():
    base = animate_phonemes(segs(("ɑ", 0.2, 0.5)), 0.8, 30)
    small = animate_phonemes(segs(("ɑ", 0.2, 0.5)), 0.8, 30,
                             params=__import__("dataclasses").replace(DEFAULT_PARAMS, intensity=0.5))
    assert small.channel("jawOpen").max() == pytest.approx(base.channel("jawOpen").max() * 0.5, rel=0.02)
    assert small.channel("viseme_aa").max() < base.channel("viseme_aa").max()


def test_every_viseme_reachable_from_ipa():
    seen = set()
    for sym in "p f θ t k ʃ s n ɹ ɑ ɛ i o u".split():
        seen.update(visemes_for(sym))
    assert seen == set(VISEMES) - {"sil"}


def test_n_before_a_bilabial_closes_the_lips_over_its_end():
    """'in boats': the /n/ takes the /b/'s closure over its second half, its first half stays /n/."""
    phones = segs(("ɪ", 0.20, 0.30), ("n", 0.30, 0.40), ("b", 0.40, 0.46), ("oʊ", 0.46, 0.70))
    w = viseme_weights(phones, 0.9, 100)
    assert w[36:39, V["PP"]].min() > 0.99  # second half of the /n/ (lead-shifted)
    assert w[31, V["PP"]] < 0.8 and V["nn"] in np.argsort(-w[31])[:2]
    # an /n/ before a vowel, or before a pause, is left alone
    apart = segs(("ɪ", 0.20, 0.30), ("n", 0.30, 0.40), ("", 0.40, 0.60), ("b", 0.60, 0.66), ("oʊ", 0.66, 0.9))
    w2 = viseme_weights(apart, 1.0, 100)
    assert w2[30:40, V["PP"]].max() < 0.8
