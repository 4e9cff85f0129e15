"""Neural audio-to-face regressor, features and procedural motion (toolkit.motion)."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import require_espeak

from toolkit.animation import CHANNELS, VISEMES, Segment, empty_animation
from toolkit.audio import resample
from toolkit.motion import procedural
from toolkit.motion.features import MelStreamer, log_mel

from toolkit.motion import model as M
from toolkit.motion import network as N
from toolkit.train import audio2face as T
from toolkit.train import voices as V


def _speechlike(seconds: float, seed: int = 0) -> np.ndarray:
    """Noise bursts with pauses: enough for the streaming/feature mechanics."""
    rng = np.random.default_rng(seed)
    n = int(seconds * 16000)
    env = (np.sin(np.arange(n) / 16000 * 2 * np.pi * 0.7) > -0.2).astype(np.float32)
    return (rng.standard_normal(n) * 0.1 * env).astype(np.float32)


def _espeak(text: str, lang="en-us", variant=None, rate=175):
    """espeak-ng speech; skips only when espeak-ng itself is not installed (conftest.require_espeak)."""
    from toolkit.alignment import tts

    require_espeak()
    return tts.synthesize(text, lang=lang, rate_wpm=rate, variant=variant)


# -- features ---------------------------------------------------------------------------------------


def test_log_mel_stream_equals_offline_for_any_chunking():
    x = _speechlike(1.37)
    ref = log_mel(x)
    assert ref.shape == (int(np.ceil(x.size / 160)), 40)
    for chunk in (1, 159, 160, 1234, 30000):
        s = MelStreamer()
        out = np.concatenate([s.push(x[i:i + chunk]) for i in range(0, x.size, chunk)] + [s.flush()])
        assert out.shape == ref.shape
        np.testing.assert_allclose(out, ref, atol=1e-5)


def test_log_mel_rejects_other_rates():
    with pytest.raises(ValueError, match="16000"):
        log_mel(np.zeros(100, np.float32), 44100)


# -- model mechanics (untrained network: fast, no weights needed) -----------------------------------


def _random_weights(hidden: int = 32, n_mels: int = 40, n_curves: int = len(T.CURVE_CHANNELS), seed: int = 0):
    """Weights of the shipped architecture's shapes, drawn at random (no torch, no training)."""
    rng = np.random.default_rng(seed)
    shapes = {"mean": (n_mels,), "std": (n_mels,), "cls.weight": (len(VISEMES), 2 * hidden), "cls.bias": (len(VISEMES),),
              "reg.weight": (n_curves, 2 * hidden), "reg.bias": (n_curves,), "gru.weight_ih_l0": (3 * hidden, hidden),
              "gru.weight_hh_l0": (3 * hidden, hidden), "gru.bias_ih_l0": (3 * hidden,), "gru.bias_hh_l0": (3 * hidden,)}
    for i, (c_in, k) in enumerate([(n_mels, 5), (hidden, 3), (hidden, 3)]):
        shapes |= {f"convs.{i}.conv.weight": (hidden, c_in, k), f"convs.{i}.conv.bias": (hidden,),
                   f"norms.{i}.weight": (hidden,), f"norms.{i}.bias": (hidden,)}
    w = {k: (rng.standard_normal(v) * 0.3).astype(np.float32) for k, v in shapes.items()}
    w["mean"], w["std"] = np.full(n_mels, -3.0, np.float32), np.full(n_mels, 1.5, np.float32)
    w["reg.bias"][:] = 0.4  # curves around mid-range, so scaling them shows
    return w


@pytest.fixture(scope="module")
def random_animator():
    return M.NeuralAnimator(N.Network(_random_weights(), [1, 2, 4], 1e-5), T.CURVE_CHANNELS)


@pytest.mark.parametrize("fps", [30, 24, 60, 100])
def test_streaming_equals_offline(random_animator, fps):
    x = _speechlike(2.3, seed=1)
    off = random_animator.predict(x, 16000, fps=fps, seed=5)
    for chunk in (160, 777, 8000):
        st = random_animator.streamer(fps=fps, seed=5, keep=True)
        frames = [st.push(x[i:i + chunk]) for i in range(0, x.size, chunk)] + [st.flush()]
        on = np.concatenate(frames)
        assert on.shape == off.values.shape
        np.testing.assert_allclose(on, off.values, atol=1e-4)
        assert st.animation().n_frames == off.n_frames


def test_streaming_state_does_not_grow_with_the_stream(random_animator):
    """A stream of any length (a VTuber's evening) keeps a bounded state: no frame history, no audio history."""
    st = random_animator.streamer(fps=60)
    x = _speechlike(20.0, seed=3)
    sizes = []
    for i in range(0, x.size, 320):
        st.push(x[i:i + 320])
        if i % 16000 == 0:
            sizes.append(st._loud.size + st._grid.shape[0] + st._aud_rem.size)
    assert max(sizes) < 50 and st._frames is None
    with pytest.raises(ValueError, match="keep=True"):
        st.animation()


def test_stream_chunks_int16_scaled_stereo_and_nan_refused(random_animator):
    """int16 buffers (a microphone's) were read as floats 32768 times too loud, a stereo one as twice
    the audio, and one NaN chunk turned every later frame NaN: scaled as load_audio does / refused."""
    x = _speechlike(1.0, seed=4)
    pcm = np.round(x * 32767).astype(np.int16)
    want = random_animator.predict(pcm.astype(np.float32) / 32768, 16000, fps=30).values
    for chunks in ([pcm[i:i + 480] for i in range(0, pcm.size, 480)], [pcm[:, None]]):  # 1-D, (n, 1)
        st = random_animator.streamer(fps=30)
        got = np.concatenate([st.push(c) for c in chunks] + [st.flush()])
        np.testing.assert_allclose(got, want, atol=1e-4)
    st = random_animator.streamer(fps=30)
    with pytest.raises(ValueError, match=r"mono.*\(480, 2\)"):
        st.push(np.zeros((480, 2), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        st.push(np.full(480, np.nan, np.float32))
    with pytest.raises(ValueError, match="dtype <U3"):
        st.push(np.array(["abc"]))


@pytest.mark.parametrize("fps", [30, 100])
def test_streaming_latency_at_most_60ms(random_animator, fps):
    """Each output frame is emitted once audio at most 60 ms past its time has been pushed."""
    assert M.latency_s(fps) <= 0.060 + 1e-9
    x = _speechlike(1.0, seed=2)
    st = random_animator.streamer(fps=fps)
    n, worst = 0, 0.0
    for i in range(0, x.size, 16):  # 1 ms chunks
        for _ in range(st.push(x[i:i + 16]).shape[0]):
            worst = max(worst, (i + 16) / 16000 - n / fps)
            n += 1
    assert n >= fps * 0.9 and worst <= 0.060 + 1e-9


def test_predict_output_and_input_checks(random_animator, tmp_path):
    x = _speechlike(1.0)
    anim = random_animator.predict(x, 16000, fps=30)
    assert anim.channels == CHANNELS and anim.n_frames == 30
    assert np.isfinite(anim.values).all()
    # another sample rate is resampled, same length in time
    x22 = np.interp(np.arange(22050) / 22050, np.arange(16000) / 16000, x).astype(np.float32)
    assert random_animator.predict(x22, 22050, fps=30).n_frames == 30
    with pytest.raises(ValueError, match="mono"):
        random_animator.predict(np.zeros((100, 2), np.float32), 16000)
    # same input + seed -> same output; another seed -> other blinks/head
    a = random_animator.predict(x, 16000, fps=30, seed=1).values
    assert np.array_equal(a, random_animator.predict(x, 16000, fps=30, seed=1).values)
    # weights file round trip (float32 weights that float16 cannot hold stay float32: exact)
    path = tmp_path / "m.npz"
    N.write_weights(path, random_animator.net.w, {"dilations": [1, 2, 4], "eps": 1e-5}, T.CURVE_CHANNELS, {})
    back = M.NeuralAnimator.load(path)
    np.testing.assert_allclose(back.predict(x, 16000).values, anim.values, atol=1e-6)
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        M.NeuralAnimator.load(tmp_path / "nope.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a weights file")
    with pytest.raises(ValueError, match="bad.npz"):
        M.NeuralAnimator.load(bad)


def test_numpy_network_equals_torch():
    """The one inference implementation (numpy) against the training network (torch), to 1e-4:
    a random network, and the shipped weights loaded back into torch."""
    pytest.importorskip("torch", reason="torch is only installed for training (`make train`)")
    from toolkit.train import network as TN

    net = TN.build_network(hidden=32, n_curves=len(T.CURVE_CHANNELS))
    assert TN.max_difference(TN.TorchAnimator(net, T.CURVE_CHANNELS), TN.to_numpy(net, T.CURVE_CHANNELS)) < 1e-4
    shipped_torch, channels, meta = TN.load(M.DEFAULT_WEIGHTS)
    x = _speechlike(2.0, seed=7)
    feats = log_mel(x)
    pt, ct = TN.TorchAnimator(shipped_torch, channels, meta).infer_features(feats)
    pn, cn = M.NeuralAnimator.load().infer_features(feats)
    assert max(np.abs(pt - pn).max(), np.abs(ct - cn).max()) < 1e-4


def test_weights_file_written_by_training_is_checked(tmp_path):
    """`toolkit.train.network.save` writes what the numpy network reads, and refuses a network it would misread."""
    pytest.importorskip("torch", reason="torch is only installed for training (`make train`)")
    from toolkit.train import network as TN

    net = TN.build_network(hidden=16, n_curves=len(T.CURVE_CHANNELS))
    out = TN.save(net, T.CURVE_CHANNELS, {"note": "test"}, tmp_path / "w.npz")
    back = M.NeuralAnimator.load(out)
    assert back.meta["note"] == "test" and back.net.hidden_size == 16
    net.norms[1].eps = 0.5  # a change the numpy side does not know about (it reads eps of the first norm)
    with pytest.raises(ValueError, match="differs from torch"):
        TN.save(net, T.CURVE_CHANNELS, {}, tmp_path / "w2.npz")


# -- procedural layers -------------------------------------------------------------------------------


def test_blinks_rate_duration_and_seed():
    anim = empty_animation(30 * 120, 30)
    x = _speechlike(120, seed=2)
    a = procedural.add_blinks(anim, x, 16000, seed=3)
    b = procedural.add_blinks(anim, x, 16000, seed=3)
    c = procedural.add_blinks(anim, x, 16000, seed=4)
    assert np.array_equal(a.values, b.values) and not np.array_equal(a.values, c.values)
    g = procedural.BlinkProcess(seed=3).step(procedural.loudness_db(x))
    onsets = np.flatnonzero((g[1:] > 0) & (g[:-1] == 0))
    assert 10 * 2 <= onsets.size <= 20 * 2 + 4  # 10-20 a minute over 2 minutes
    lengths = [int(np.argmax(g[o + 1:] == 0)) for o in onsets[:-1]]
    assert 14 <= min(lengths) and max(lengths) <= 25  # 150-250 ms
    assert np.allclose(a.channel("eyeBlinkLeft"), a.channel("eyeBlinkRight"))


def test_blinks_prefer_pauses():
    x = _speechlike(600, seed=5)
    db = procedural.loudness_db(x)
    g = procedural.BlinkProcess(seed=0).step(db)
    onsets = np.flatnonzero((g[1:] > 0) & (g[:-1] == 0)) + 1
    quiet = db < -45
    assert quiet[onsets].mean() > quiet.mean() + 0.1


def test_head_motion_follows_speech_and_is_bounded():
    anim = empty_animation(30 * 20, 30)
    silent = procedural.add_head_motion(anim, np.zeros(16000 * 20, np.float32), 16000, seed=1)
    talking = procedural.add_head_motion(anim, _speechlike(20, seed=3), 16000, seed=1)
    head = talking.select(procedural.HEAD_CHANNELS).values
    assert np.abs(head).max() < 0.35  # radians: natural, not wild
    assert head.std(0).sum() > 1.5 * silent.select(procedural.HEAD_CHANNELS).values.std(0).sum()
    assert np.abs(np.diff(head, axis=0)).max() < 0.05  # no snapping between frames


# -- training on a tiny generated set ----------------------------------------------------------------


def test_frame_labels_and_targets():
    phones = [Segment("", 0.0, 0.1), Segment("h", 0.1, 0.15), Segment("a", 0.15, 0.3), Segment("m", 0.3, 0.4)]
    lab = T.frame_labels(phones, 45)
    assert VISEMES[lab[5]] == "sil" and VISEMES[lab[12]] == "aa"  # glottal /h/ takes the vowel's shape
    assert VISEMES[lab[20]] == "aa" and VISEMES[lab[35]] == "PP" and VISEMES[lab[44]] == "sil"
    assert [s.label for s in T.clean_phones([Segment("a", 0, 1), Segment(":", 1, 2)])] == ["a"]


def test_festival_segments_become_ipa(tmp_path):
    """festival's utt.save.segs output (end times, radio phone set) -> contiguous IPA segments."""
    segs = tmp_path / "a.segs"
    segs.write_text("#\n0.1750 100 pau\n0.2200 100 b\n0.3650 100 aa\n0.4250 100 b\n0.5 100 ax\n0.58 100 dx\n0.7 100 pau\n")
    got = [(s.label, s.start, s.end) for s in V.festival_phones(segs)]
    assert got == [("", 0.0, 0.175), ("b", 0.175, 0.22), ("ɑ", 0.22, 0.365), ("b", 0.365, 0.425),
                   ("ə", 0.425, 0.5), ("t", 0.5, 0.58), ("", 0.58, 0.7)]
    if V.festival_voices():  # real synthesis when festival is installed (`make train` installs it)
        (x, phones, group), = list(V.synth_festival(1, seed=0, progress=False))
        assert group.startswith("fest:") and abs(phones[-1].end - x.size / 16000) < 0.1


def test_flite_speech_comes_with_its_phone_times():
    """flite (libflite through ctypes): audio and exact phone times that end with the audio."""
    if not V.flite_voices():
        pytest.skip("flite is not installed (Debian package flite; `make train` installs it)")
    x, phones = V.flite_synthesize("Bob made a map.", "rms")
    labels = [p.label for p in phones if p.label]
    assert labels[:4] == ["b", "ɑ", "b", "m"] and x.dtype == np.float32
    assert all(a.end == b.start for a, b in zip(phones, phones[1:]))  # contiguous
    assert abs(phones[-1].end - x.size / 16000) < 0.15
    slow, slow_phones = V.flite_synthesize("Bob made a map.", "rms", stretch=1.5)
    assert slow.size > 1.3 * x.size and slow_phones[-1].end > 1.3 * phones[-1].end
    # the /p/ of "map" (closed lips, then a burst) is far quieter than the vowel before it:
    # the times are the audio's
    p = [s for s in phones if s.label == "p"][-1]
    vowel = phones[phones.index(p) - 1]
    rms = lambda s: float(np.sqrt(np.mean(x[int(s.start * 16000):int(s.end * 16000)] ** 2)))  # noqa: E731
    assert vowel.label == "æ" and rms(p) < 0.25 * rms(vowel)


def test_vocal_tract_warp_moves_formants():
    feats = np.zeros((2, 3, 40), np.float32)
    feats[:, :, 20] = 1.0  # a formant at band 20
    out = T.warp_bands(feats, np.array([1.0, 0.8]))
    assert np.allclose(out[0], feats[0]) and out[1, 0].argmax() == 25  # band 25 reads band 20 when shrunk


def test_training_loop_learns_tiny_set(tmp_path):
    pytest.importorskip("torch", reason="torch is only installed for training (`make train`)")
    require_espeak()
    tr, va, info = T.build_dataset(tmp_path, n_train=8, n_val=2, n_aug=1, real_repeats=0, seed=0,
                                   progress=False, use_real=False)
    assert info["n_train_clips"] >= 8 and len(va) >= 2
    assert (tmp_path / next(p.name for p in tmp_path.glob("data-*.npz"))).exists()
    # cached: a second call loads the same data
    tr2, _, _ = T.build_dataset(tmp_path, n_train=8, n_val=2, n_aug=1, real_repeats=0, seed=0,
                                progress=False, use_real=False)
    assert np.array_equal(tr2[0].feats, tr[0].feats)
    animator, history = T.train(tr, tr[:4], minutes=3, max_steps=120, seed=0, batch=8, crop=200, hidden=48,
                                lr=3e-3, progress=False, log=lambda s: None)
    res = T.evaluate(animator, tr[:4])
    labels = np.concatenate([c.labels for c in tr[:4]])
    majority = np.bincount(labels).max() / labels.size
    acc = list(res.values())[0]["frame_acc"]
    assert acc > majority + 0.1, (acc, majority)
    anim = animator.predict(np.zeros(8000, np.float32), 16000)
    assert anim.channel("viseme_sil").mean() > 0.5  # silence in, rest out


# -- the shipped weights -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shipped():
    if not M.DEFAULT_WEIGHTS.exists():
        pytest.fail(f"{M.DEFAULT_WEIGHTS} missing: train with `viseme train`")
    return M.NeuralAnimator.load()


def test_shipped_weights_small(shipped):
    assert M.DEFAULT_WEIGHTS.stat().st_size < 10e6
    assert 50_000 < shipped.n_params < 1_000_000


# espeak-ng voices the model never trained on (its validation voices, MODEL_CARD.md) and new sentences
UNSEEN_VOICES = ("m7", "f3", "klatt2", "Alicia", "Jacky")
UNSEEN_SENTENCES = ("Please bring my bag of maps to the pub by the bay.",
                    "Five of the wise owls were sitting above the old barn.",
                    "Which jewels would the chef show the young judge?",
                    "Thank you for the fresh view of the valley.")


def test_shipped_weights_hold_their_floor_on_unseen_voices(shipped):
    """Its own task, as trained: the viseme of each 10 ms frame of speech from voices it never heard,
    against espeak-ng's exact phone times; floors in bench/floors.toml [neural_unseen_voices]."""
    import tomllib
    from pathlib import Path

    floors = tomllib.loads((Path(__file__).resolve().parents[1] / "bench" / "floors.toml").read_text())
    floor = floors["neural_unseen_voices"]
    acc, hits, total = [], 0, 0
    pp = VISEMES.index("PP")
    for variant in UNSEEN_VOICES:
        for text in UNSEEN_SENTENCES:
            sp = _espeak(text, variant=variant)
            n = int(np.ceil(sp.samples.size / 160))
            ref = T.frame_labels(T.clean_phones(sp.phonemes), n)
            pred = shipped.viseme_track(sp.samples, sp.sample_rate)[:n]
            acc.append((pred == ref).mean())
            for s in sp.phonemes:
                if s.label in ("p", "b", "m"):
                    total += 1
                    a, b = int(s.start * 100) - 2, int(np.ceil(s.end * 100)) + 2
                    hits += int((pred[max(0, a):b] == pp).any())
    assert np.mean(acc) >= floor["frame_acc"]["min"], (np.mean(acc), np.round(acc, 3))
    assert hits / total >= floor["bilabial"]["min"], (hits, total)


def test_shipped_weights_jaw_follows_speech(shipped):
    sp = _espeak("Wow, how about a large apple?", variant="f3")
    anim = shipped.predict(sp.samples, sp.sample_rate, fps=30)
    jaw = anim.channel("jawOpen")
    silence = np.concatenate([np.zeros(16000, np.float32), sp.samples])
    quiet = shipped.predict(silence, 16000, fps=30).channel("jawOpen")[:25]
    assert jaw.max() > 0.3 and quiet.max() < 0.1


def test_refine_keeps_aligned_visemes_and_closures(random_animator):
    from toolkit.visemes.coarticulation import animate_phonemes

    phones = [Segment("", 0, 0.2), Segment("m", 0.2, 0.35), Segment("a", 0.35, 0.7), Segment("", 0.7, 1.0)]
    x = _speechlike(1.0, seed=4)
    aligned = animate_phonemes(phones, 1.0, fps=30, audio=x)
    hybrid = random_animator.refine(aligned, x, 16000, seed=2)
    assert hybrid.channels == aligned.channels and hybrid.n_frames == aligned.n_frames
    vis = [c for c in aligned.channels if c.startswith("viseme_")]
    assert np.array_equal(hybrid.select(vis).values, aligned.select(vis).values)
    closed = aligned.channel("viseme_PP") > 0.9
    assert closed.any()
    for c in ("mouthClose", "mouthPressLeft", "jawOpen"):
        np.testing.assert_allclose(hybrid.channel(c)[closed], aligned.channel(c)[closed], atol=1e-6)
    assert not np.array_equal(hybrid.channel("jawOpen"), aligned.channel("jawOpen"))  # the audio's jaw mixed in


def test_intensity_scales_mouth(random_animator):
    x = _speechlike(1.0, seed=6)
    a = random_animator.predict(x, 16000, intensity=1.0, blinks=False, head_motion=False)
    b = random_animator.predict(x, 16000, intensity=0.5, blinks=False, head_motion=False)
    assert b.channel("jawOpen").sum() < a.channel("jawOpen").sum()
    vis = b.select([c for c in b.channels if c.startswith("viseme_")]).values
    np.testing.assert_allclose(vis.sum(1), 1.0, atol=1e-4)


# -- the public Python API: arrays and chunk streams --------------------------------------------------


def test_public_api_animates_an_array_and_a_stream(shipped):
    import toolkit

    sp = _espeak("Maybe we can meet by the lake.", variant="f3")
    x = resample(sp.samples, sp.sample_rate, 16000)
    anim = toolkit.animate(x, sample_rate=16000, fps=30)  # no transcript: the neural engine
    assert anim.meta["engine"] == "neural" and anim.n_frames == round(x.size / 16000 * 30)
    assert anim.channel("jawOpen").max() > 0.3
    chunks = [x[i:i + 480] for i in range(0, x.size, 480)]  # 30 ms buffers, as from a microphone
    frames = np.concatenate(list(toolkit.stream(chunks, fps=30, seed=3)))
    offline = shipped.predict(x, 16000, fps=30, seed=3)
    assert frames.shape == offline.values.shape
    np.testing.assert_allclose(frames, offline.values, atol=1e-4)
    with pytest.raises(ValueError, match="16000 Hz"):
        next(toolkit.stream(chunks, sample_rate=44100))
    with pytest.raises(ValueError, match="got '16000' Hz"):  # a string, not "needs 16000 Hz, got 16000 Hz"
        next(toolkit.stream(chunks, sample_rate="16000"))
    with pytest.raises(AttributeError):
        toolkit.no_such_thing
