"""Preview renderer: mouth shapes read from pixels, mp4 streams line up, any glTF with morph targets renders."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import importlib.util  # noqa: E402

if importlib.util.find_spec("pyrender") is None:   # not importorskip: the GL platform is chosen on first import
    pytest.skip("pyrender not installed (pip install 'viseme-toolkit[render]')", allow_module_level=True)

from toolkit.animation import Segment, empty_animation  # noqa: E402
from toolkit.render.scene import DEFAULT_HEAD, FaceRenderer, ModelError, load_face_model  # noqa: E402
from toolkit.visemes.tables import VISEME_POSES  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "assets" / "head"))
import build_head as bh  # noqa: E402

SIZE = 160


def _weights(model, pose: dict) -> np.ndarray:
    w = np.zeros(len(model.target_names), np.float32)
    for k, v in pose.items():
        w[model.target_names.index(k)] = v
    return w


@pytest.fixture(scope="module")
def head():
    return load_face_model(DEFAULT_HEAD)


def _mouth_inside(img: np.ndarray) -> np.ndarray:
    """Pixels of the mouth's dark red inside (darker and redder than lips, skin or the lip line)."""
    im = img.astype(int)
    return (im[..., 0] - im[..., 1] > 50) & (im.sum(2) < 300)


@pytest.fixture(scope="module")
def frames(head):
    r = FaceRenderer(head, size=SIZE)
    try:
        out = {v: r.render(_weights(head, VISEME_POSES[v])) for v in ("sil", "PP", "aa", "ou")}
        mouth_px = r.project([[0, bh.MOUTH_Y, bh.MOUTH_Z]])[0]
        eye_px = r.project([[bh.EYE_C[0], bh.EYE_C[1], bh.EYE_C[2] + bh.EYE_R]])[0]
        chin_px = r.project([[0, -0.118, 0.05]])[0]
    finally:
        r.close()
    return out, mouth_px, eye_px, chin_px


def test_frames_are_rgb_and_show_a_face(frames):
    imgs, mouth, eye, _ = frames
    im = imgs["sil"]
    assert im.shape == (SIZE, SIZE, 3) and im.dtype == np.uint8 and im.flags["C_CONTIGUOUS"]
    assert 0.2 * SIZE < mouth[0] < 0.8 * SIZE and 0.5 * SIZE < mouth[1] < 0.95 * SIZE
    assert eye[1] < mouth[1]
    bg = im[2, 2].astype(int)
    face = np.abs(im.astype(int) - bg).sum(2) > 40
    assert 0.15 < face.mean() < 0.8   # the head fills a good part of the frame


def test_open_and_closed_mouth_differ_at_the_mouth_only(frames):
    imgs, mouth, eye, chin = frames
    pp, aa = imgs["PP"].astype(int), imgs["aa"].astype(int)
    diff = np.abs(pp - aa).sum(2)
    rows, cols = np.mgrid[0:SIZE, 0:SIZE]
    r = 0.09 * SIZE
    near_mouth = (np.abs(cols - mouth[0]) < r) & (np.abs(rows - mouth[1]) < r * 0.6)
    assert diff[near_mouth].mean() > 60          # the mouth opens: dark mouth, teeth
    # the jaw swings: allow the mouth, chin and jaw line; everything above the nose stays put
    above = rows < (eye[1] + mouth[1]) / 2
    assert (diff[above] > 40).mean() < 0.002
    # the open mouth shows its dark inside (between the teeth); the closed lips show none
    assert _mouth_inside(aa)[near_mouth].sum() > 20 and _mouth_inside(pp)[near_mouth].sum() == 0
    # pursed (ou) is narrower than the rest mouth: fewer lip-coloured pixels across the mouth line
    row = int(round(mouth[1]))
    rest, ou = imgs["sil"][row - 1:row + 2].astype(int), imgs["ou"][row - 1:row + 2].astype(int)

    def lip_width(band):
        red = (band[..., 0] - band[..., 2] > 60) & (band[..., 0] > 90)
        return red.any(0).sum()
    assert lip_width(ou) < lip_width(rest)


@pytest.fixture(scope="module")
def big(head):
    """A 256-pixel renderer of the default head, for checks on the eyes and lips."""
    r = FaceRenderer(head, size=256)
    yield r
    r.close()


def _box(r: FaceRenderer, centre, half_w: float, half_h: float) -> tuple[slice, slice]:
    """Image rows and columns around a world point (rest pose), half_w/half_h in metres."""
    c = np.asarray(centre, float)
    px = r.project([c, c + (half_w, 0, 0), c + (0, half_h, 0)])
    (cx, cy), dx, dy = px[0], abs(px[1][0] - px[0][0]), abs(px[2][1] - px[0][1])
    return slice(int(round(cy - dy)), int(round(cy + dy)) + 1), slice(int(round(cx - dx)), int(round(cx + dx)) + 1)


def _eyeball_pixels(img: np.ndarray) -> np.ndarray:
    """Iris (blue) or sclera/pupil (grey: no skin tint) pixels; lids, lashes and skin are all reddish."""
    im = img.astype(int)
    return (im[..., 2] - im[..., 0] > 25) | (np.ptp(im, axis=2) < 12)


@pytest.mark.parametrize("look", [None, "eyeLookUp", "eyeLookDown", "eyeLookIn", "eyeLookOut"])
def test_closed_lids_hide_the_eyes(head, big, look):
    """blink = 1: no iris, pupil or white of the eye shows anywhere in either eye, corners included,
    wherever the eye looks; blink = 0: they do; blink = 0.5: only under the half-closed lid."""
    both = lambda k, v: {f"{k}Left": v, f"{k}Right": v}  # noqa: E731
    gaze = both(look, 1.0) if look else {}
    for sign in (1, -1):
        eye = _box(big, (sign * bh.EYE_C[0], bh.EYE_C[1], bh.EYE_C[2] + bh.EYE_R), bh.EYE_R * 1.3, bh.EYE_R * 0.8)
        shut = _eyeball_pixels(big.render(_weights(head, {**both("eyeBlink", 1.0), **gaze}))[eye])
        assert shut.sum() <= 1, (sign, look, shut.sum())
        if look is None:
            open_ = _eyeball_pixels(big.render(_weights(head, {}))[eye])
            assert open_.sum() > 100
            half = _eyeball_pixels(big.render(_weights(head, both("eyeBlink", 0.5)))[eye])
            rows = np.flatnonzero(half.any(1))
            assert 20 < half.sum() < 0.7 * open_.sum()
            assert rows.min() > 0.4 * half.shape[0]        # nothing above the lid, which is near the middle


@pytest.mark.parametrize("w", [0.35, 0.6])
def test_mouth_close_seals_the_lips_over_an_open_jaw(head, big, w):
    """jawOpen = mouthClose = w, as ARKit closes the lips: across the whole width of the mouth,
    corners included, nothing of the mouth's dark inside shows between the lips."""
    mouth = _box(big, (0, bh.MOUTH_Y, bh.MOUTH_Z), bh.MOUTH_HALF_W * 1.15, 0.007)

    def inside(pose):
        return _mouth_inside(big.render(_weights(head, pose))[mouth]).sum()

    assert inside({"jawOpen": w}) > 5
    assert inside({"jawOpen": w, "mouthClose": w}) == 0


def test_upper_teeth_show_when_the_mouth_opens(head, big):
    """With the jaw open the upper teeth show under the upper lip, as in a real face; with the
    mouth closed nothing of them does (compared with a render of the head without them)."""
    import dataclasses

    teeth = np.array([0.74, 0.71, 0.64, 1.0])
    upper = [p for p in head.parts if np.allclose(p.base_color, teeth) and (p.targets is None or not len(p.targets))]
    assert len(upper) == 1
    without = dataclasses.replace(head, parts=[p for p in head.parts if p is not upper[0]])
    r = FaceRenderer(without, size=256)
    try:
        for pose, shows in (({}, False), ({"jawOpen": 0.3}, True), ({"jawOpen": 0.6}, True)):
            diff = np.abs(big.render(_weights(head, pose)).astype(int) - r.render(_weights(head, pose))).sum(2) > 30
            assert (diff.sum() > 15) == shows, (pose, diff.sum())
    finally:
        r.close()


def _anim(n=18, fps=30.0):
    a = empty_animation(n, fps)
    for i in range(n):
        v = ("PP", "aa", "ou")[(i // 6) % 3]
        for k, x in VISEME_POSES[v].items():
            a.values[i, a.channels.index(k)] = x
        a.values[i, a.channels.index("viseme_" + v)] = 1.0
    a.phonemes = [Segment("p", 0.0, 0.2), Segment("ɑ", 0.2, 0.4), Segment("u", 0.4, 0.6)]
    a.words = [Segment("pa", 0.0, 0.6)]
    return a


def _streams(path: Path) -> tuple[float, float, str]:
    """(video seconds, audio seconds, ffmpeg's stream listing) of an mp4, by decoding both streams."""
    import imageio_ffmpeg

    exe = imageio_ffmpeg.get_ffmpeg_exe()
    n_frames, _ = imageio_ffmpeg.count_frames_and_secs(str(path))
    info = subprocess.run([exe, "-hide_banner", "-i", str(path)], capture_output=True, text=True).stderr
    fps = float(re.search(r"(\d+(?:\.\d+)?) fps", info).group(1))
    pcm = subprocess.run([exe, "-v", "error", "-i", str(path), "-vn", "-f", "s16le", "-ac", "1", "-ar", "16000", "-"],
                         capture_output=True, check=True).stdout
    return n_frames / fps, len(pcm) / 2 / 16000, info


def test_video_with_audio_streams_line_up(tmp_path):
    from toolkit.audio import write_wav
    from toolkit.render.preview import render_video

    a = _anim()
    wav = write_wav(tmp_path / "speech.wav", 0.3 * np.sin(np.arange(int(16000 * 0.8)) * 0.1), 16000)  # longer
    out = render_video(a, tmp_path / "out.mp4", size=64, audio=wav, progress=False)
    video_s, audio_s, info = _streams(out)
    assert "h264" in info and "aac" in info and "start: 0.000000" in info
    assert abs(video_s - a.duration_s) < 1e-6
    assert abs(audio_s - video_s) <= 1 / a.fps
    assert not list(tmp_path.glob(".*"))   # no temporary files left


def test_video_keeps_the_speech_files_rate_and_channels(tmp_path):
    """A 44.1 kHz stereo file stays 44.1 kHz stereo in the preview (not the pipeline's 16 kHz mono),
    padded to the video's length."""
    from toolkit.audio import write_wav
    from toolkit.render.preview import render_video

    a = _anim()
    t = np.arange(int(44100 * 0.5)) / 44100
    tones = np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 660 * t)], 1)
    wav = write_wav(tmp_path / "stereo.wav", 0.3 * tones, 44100)
    out = render_video(a, tmp_path / "out.mp4", size=48, audio=wav, progress=False)
    video_s, audio_s, info = _streams(out)
    assert re.search(r"Audio: aac.*44100 Hz, stereo", info), info
    assert abs(audio_s - video_s) <= 1 / a.fps and abs(video_s - a.duration_s) < 1e-6


def test_side_by_side_strip_and_contact_sheet(tmp_path):
    import imageio_ffmpeg
    from PIL import Image

    from toolkit.render.preview import contact_sheet, render_video

    a, b = _anim(), _anim()
    b.values[:] = 0
    b.meta["label"] = "silent"
    out = render_video(a, tmp_path / "cmp.mp4", size=64, compare=b, progress=False)
    gen = imageio_ffmpeg.read_frames(str(out))
    meta = next(gen)
    w, h = meta["size"]
    assert w == 128 and h > 64               # two faces side by side, a strip under them
    frames = [np.frombuffer(f, np.uint8).reshape(h, w, 3) for f in gen]
    assert len(frames) == a.n_frames
    open_a = frames[8]                        # "aa" in A, rest pose in B
    halves = np.abs(open_a[:64, :64].astype(int) - open_a[:64, 64:].astype(int)).sum(2)
    assert (halves > 60).sum() > 10
    png = contact_sheet(a, tmp_path / "sheet.png", n=4, size=64)
    im = Image.open(png)
    assert im.size[0] == 4 * 64 and im.size[1] > 64


def _morph_gltf(path: Path, vrm_aa_bind: float | None = None) -> None:
    """A textured quad whose one morph target ("open") lifts its top edge: a stand-in for a user's character.

    vrm_aa_bind: make it a VRM 1.0 whose "aa" expression binds the (then unnamed) target with this weight."""
    import io

    import pygltflib as g
    from PIL import Image

    pos = np.array([[-0.1, -0.1, 0], [0.1, -0.1, 0], [0.1, 0.1, 0], [-0.1, 0.1, 0]], np.float32)
    uv = np.array([[0, 1], [1, 1], [1, 0], [0, 0]], np.float32)
    idx = np.array([0, 1, 2, 0, 2, 3], np.uint16)
    tgt = np.zeros_like(pos)
    tgt[2:, 1] = 0.15
    tex = np.zeros((8, 8, 3), np.uint8)
    tex[..., 1] = 200       # green
    buf = io.BytesIO()
    Image.fromarray(tex).save(buf, format="PNG")
    blobs = [pos.tobytes(), uv.tobytes(), idx.tobytes(), tgt.tobytes(), buf.getvalue()]
    offs = np.concatenate([[0], np.cumsum([len(b) for b in blobs])]).tolist()
    gl = g.GLTF2(
        scene=0, scenes=[g.Scene(nodes=[0])], nodes=[g.Node(mesh=0, translation=[0, 1.5, 0])],
        meshes=[g.Mesh(primitives=[g.Primitive(attributes=g.Attributes(POSITION=0, TEXCOORD_0=1), indices=2,
                                               targets=[{"POSITION": 3}], material=0)],
                       weights=[0.0], extras={"targetNames": ["open"]})],
        materials=[g.Material(pbrMetallicRoughness=g.PbrMetallicRoughness(baseColorTexture=g.TextureInfo(index=0)),
                              doubleSided=True)],
        textures=[g.Texture(source=0)], images=[g.Image(bufferView=4, mimeType="image/png")],
        accessors=[g.Accessor(bufferView=0, componentType=g.FLOAT, count=4, type="VEC3",
                              min=pos.min(0).tolist(), max=pos.max(0).tolist()),
                   g.Accessor(bufferView=1, componentType=g.FLOAT, count=4, type="VEC2"),
                   g.Accessor(bufferView=2, componentType=g.UNSIGNED_SHORT, count=6, type="SCALAR"),
                   g.Accessor(bufferView=3, componentType=g.FLOAT, count=4, type="VEC3",
                              min=tgt.min(0).tolist(), max=tgt.max(0).tolist())],
        bufferViews=[g.BufferView(buffer=0, byteOffset=offs[i], byteLength=len(b)) for i, b in enumerate(blobs)],
        buffers=[g.Buffer(byteLength=offs[-1])])
    if vrm_aa_bind is not None:   # only the expression bind says what the target does
        gl.meshes[0].extras = {}
        gl.extensionsUsed = ["VRMC_vrm"]
        gl.extensions = {"VRMC_vrm": {"specVersion": "1.0", "expressions": {"preset": {
            "aa": {"morphTargetBinds": [{"node": 0, "index": 0, "weight": vrm_aa_bind}]}, "blink": {}}}}}
    gl.set_binary_blob(b"".join(blobs))
    gl.save_binary(str(path))


def test_any_gltf_with_morph_targets_and_texture(tmp_path):
    p = tmp_path / "quad.glb"
    _morph_gltf(p)
    m = load_face_model(p)
    assert m.target_names == ["open"]
    assert np.allclose(m.bounds()[0][1], 1.4)            # node translation applied
    r = FaceRenderer(m, size=64)
    try:
        rest, opened = r.render(np.array([0.0])), r.render(np.array([1.0]))
    finally:
        r.close()
    green = lambda im: ((im[..., 1] > 100) & (im[..., 0] < 90)).sum()  # noqa: E731
    assert green(rest) > 200                              # the texture shows
    assert green(opened) > green(rest) * 1.2              # the morph target grew the quad


def test_bad_model_files_name_the_file(tmp_path):
    bad = tmp_path / "broken.glb"
    bad.write_bytes(b"not a model at all")
    with pytest.raises(ModelError, match="broken.glb"):
        load_face_model(bad)
    with pytest.raises(ModelError, match="missing.vrm"):
        load_face_model(tmp_path / "missing.vrm")


REAL_MODELS = ROOT.parent / "shared" / "data" / "models"


@pytest.mark.parametrize("rel", ["khronos_gltf_samples/AnimatedMorphCube/glTF/AnimatedMorphCube.gltf",
                                 "khronos_gltf_samples/AnimatedMorphSphere/glTF/AnimatedMorphSphere.gltf",
                                 "khronos_gltf_samples/MorphPrimitivesTest/glTF/MorphPrimitivesTest.gltf",
                                 "khronos_gltf_samples/MorphStressTest/glTF/MorphStressTest.gltf",
                                 "khronos_gltf_samples/SimpleMorph/glTF/SimpleMorph.gltf",
                                 "bevy/MorphStressTest.gltf", "vrm/three-vrm-core_cube/cube.gltf",
                                 "vrm/three-vrm_0.x_sphere.vrm"])
def test_real_models_render_and_their_targets_move_them(rel):
    """Every real model loads (an error is a failure), fills the frame it is framed in, and its morph
    targets at full weight change a good part of what is drawn."""
    f = REAL_MODELS / rel
    if not f.exists():
        pytest.skip(f"{f} not present (real glTF/VRM samples live in ../shared/data/models)")
    m = load_face_model(f)
    r = FaceRenderer(m, size=64)
    try:
        rest = r.render(np.zeros(len(m.target_names), np.float32)).astype(int)
        full = r.render(np.ones(len(m.target_names), np.float32)).astype(int)
    finally:
        r.close()
    drawn = np.abs(rest - rest[0, 0]).sum(2) > 30
    assert drawn.mean() > 0.02, f"{rel}: only {drawn.mean():.1%} of the frame shows the model"
    moved = (np.abs(full - rest).sum(2) > 30).mean()
    if m.target_names:
        assert moved > 0.05, f"{rel}: its {len(m.target_names)} targets moved {moved:.1%} of the pixels"
    else:
        assert moved == 0  # nothing to move: the same picture


def test_vrm_expression_binds_drive_the_render(tmp_path):
    """A VRM's unnamed target moves through its "aa" expression bind (toolkit.gltf.drive.perform)."""
    from toolkit.render.preview import model_weights

    p = tmp_path / "quad.vrm"
    _morph_gltf(p, vrm_aa_bind=0.5)
    m = load_face_model(p)
    assert m.target_names == [None]
    a = empty_animation(2, 30.0)
    a.values[1, a.channels.index("viseme_aa")] = 1.0
    a.values[1, a.channels.index("jawOpen")] = 1.0
    w = model_weights(a, m)
    assert w.shape == (2, 1) and w[0, 0] == 0.0 and 0.2 < w[1, 0] <= 0.5 + 1e-6   # bind weight 0.5
    r = FaceRenderer(m, size=64)
    try:
        rest, opened = r.render(w[0]), r.render(w[1])
    finally:
        r.close()
    green = lambda im: ((im[..., 1] > 100) & (im[..., 0] < 90)).sum()  # noqa: E731
    assert green(opened) > green(rest) * 1.1


def test_blending_touches_only_moved_vertices_and_matches_full_solve(head):
    """The per-frame deformer (sparse targets, normals around moved vertices) equals a full recompute."""
    from toolkit.render.scene import NormalSolver, _Deformer, merge_by_material

    part = next(p for p in merge_by_material(head.parts) if p.targets is not None)
    assert len(merge_by_material(head.parts)) == 1   # the untextured head is one draw call
    d = _Deformer(part, NormalSolver(part.positions, part.indices)(part.positions), [])
    assert 0 < len(d.active) < len(part.positions)
    w = np.zeros(len(part.target_slots), np.float32)
    for k, v in VISEME_POSES["aa"].items():
        w[list(part.target_slots).index(head.target_names.index(k))] = v
    block = d.update(w)
    pos = part.positions + np.tensordot(w, part.targets, axes=1)
    assert np.allclose(block[:, :3], pos, atol=1e-6)
    assert np.allclose(block[:, 3:6], NormalSolver(part.positions, part.indices)(pos), atol=1e-5)
    assert d.update(w) is None                        # same weights: nothing to upload


def test_antialiased_frames_soften_the_edges_only(head):
    """antialias=True (4x multisampling, also on the CPU renderer): the same picture, with the
    silhouette and part edges blended (pixels change along edges only)."""
    w = _weights(head, VISEME_POSES["aa"])
    frames = []
    for aa in (False, True):
        r = FaceRenderer(head, size=96, antialias=aa)
        try:
            frames.append(r.render(w).astype(int))
            frames.append(r.render(w).astype(int))      # a second frame the same way (buffers reused)
        finally:
            r.close()
    plain, _, smooth, again = frames
    assert np.array_equal(smooth, again)
    diff = np.abs(plain - smooth).sum(2)
    assert 0.005 < (diff > 30).mean() < 0.1 and diff.mean() < 6


def test_shader_programs_are_compiled_once(head):
    r = FaceRenderer(head, size=32)
    try:
        w = np.zeros(len(head.target_names), np.float32)
        r.render(w)
        n = len(r.renderer._renderer._program_cache._program_cache)
        for k in range(3):
            w[k] = 0.5
            r.render(w)
        assert len(r.renderer._renderer._program_cache._program_cache) == n
    finally:
        r.close()


def test_facecap_meshopt_model_renders_and_moves_its_mouth():
    """The three.js face-capture head: EXT_meshopt_compression + quantized geometry through toolkit.gltf.read;
    its KTX2 (Basis) texture cannot be decoded, so it is drawn with its base colour, with a note."""
    f = ROOT.parent / "shared" / "data" / "models" / "facecap" / "facecap.glb"
    if not f.exists():
        pytest.skip("../shared/data/models/facecap/facecap.glb not present (real meshopt ARKit head)")
    pytest.importorskip("meshopt", reason="facecap needs the meshopt decoder")
    from toolkit.render.preview import model_weights

    m = load_face_model(f)
    assert any("ktx2" in n.lower() for n in m.notes)
    assert "jawOpen" in m.target_names
    a = _anim()
    w = model_weights(a, m)
    r = FaceRenderer(m, size=96)
    try:
        closed, opened = r.render(w[0]), r.render(w[8])   # PP, then aa
    finally:
        r.close()
    diff = np.abs(closed.astype(int) - opened.astype(int)).sum(2) > 40
    rows = np.flatnonzero(diff.any(1))
    assert diff.sum() > 40 and rows.min() > 96 * 0.45    # something changes, in the lower face only
