"""Fuzz targets: what each parser of user files must do with any input, and how inputs are made.

Every target is a `check(example)` that feeds one example to the real code and asserts the
contract: it works (and what it returns is sane: finite, the right shape), or it raises the
toolkit's error (a ValueError subclass) whose message is one line naming the file.  Anything
else (a KeyError, a TypeError, a traceback from numpy) is a bug.

An example is ``(suffix, bytes)``: the bytes of a file and its file ending, so that every
failure can be kept as a file in ``tests/fuzz_regressions/<target>/`` and replayed.

Examples come from hypothesis: byte-level mutations (flips, interesting values in headers,
inserts, deletes, cuts) of valid seed files the tests make (audio, TextGrids), JSON-level
mutations (nulls, wrong types, out-of-range indices, deleted keys) of procedural glTF/VRM
models plus byte damage to their binary chunk, and generated text for the transcript parsers.

`run(target, examples)` is bounded for ``make test`` (a fixed number of derandomized
examples, a few seconds); with ``VISEME_FUZZ_SECONDS`` set (``make fuzz``) it draws random
batches until that many seconds have passed and prints how many examples ran.
"""
from __future__ import annotations

import copy
import hashlib
import io
import json
import math
import os
import struct
import tempfile
import time
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

REGRESSIONS = Path(__file__).resolve().parent / "fuzz_regressions"
FUZZ_SECONDS = float(os.environ.get("VISEME_FUZZ_SECONDS", "0") or 0)


# -- the runner -------------------------------------------------------------------------------------
def run(target: str, strategy, check, examples: int) -> int:
    """Feed examples of ``strategy`` to ``check``; returns how many ran.  A failing example (the
    smallest hypothesis finds) is saved under tests/fuzz_regressions/<target>/ before the error is raised."""
    count = [0]
    last: list = []

    def batch(**how):
        """One hypothesis run of a fresh test function (settings attach to a function once)."""
        def body(example):
            count[0] += 1
            try:
                check(example)
            except BaseException:
                last[:] = [example]
                raise

        given(strategy)(settings(deadline=None, database=None, suppress_health_check=list(HealthCheck),
                                 report_multiple_bugs=False, phases=[Phase.generate, Phase.shrink], **how)(body))()

    t0 = time.monotonic()
    try:
        if not FUZZ_SECONDS:
            batch(max_examples=examples, derandomize=True)
        else:
            while time.monotonic() - t0 < FUZZ_SECONDS:
                batch(max_examples=max(examples, 200))
    except BaseException:
        if last:
            saved = save_regression(target, *last[0])
            print(f"fuzz {target}: failing example saved as {saved}")
        raise
    finally:
        print(f"fuzz {target}: {count[0]} examples in {time.monotonic() - t0:.0f} s")
    return count[0]


def save_regression(target: str, suffix: str, data: bytes) -> Path:
    folder = REGRESSIONS / target
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (hashlib.sha1(data).hexdigest()[:16] + suffix)
    path.write_bytes(data)
    return path


def regressions(target: str) -> list[tuple[str, bytes]]:
    """The saved examples of a target as (suffix, bytes)."""
    out = []
    for p in sorted((REGRESSIONS / target).glob("*")) if (REGRESSIONS / target).is_dir() else []:
        if p.is_file() and not p.name.startswith("."):
            suffix = p.name[16:] if len(p.name) > 16 else p.suffix
            out.append((suffix, p.read_bytes()))
    return out


def expected_error(e: BaseException, name: str) -> None:
    """The contract for a refusal: the toolkit's kind of error, one line, naming the input."""
    msg = str(e)
    assert isinstance(e, ValueError), f"{type(e).__name__} instead of a one-line error: {msg}"
    assert "\n" not in msg.strip(), f"more than one line: {msg!r}"
    assert name in msg, f"the message does not name {name}: {msg!r}"


def read_as_file(example, read):
    """``read(path)`` of the example written to a temporary file; None when ``read`` refused it
    the way the contract says (`expected_error`); any other exception is a bug and propagates."""
    suffix, data = example
    with tempfile.TemporaryDirectory(prefix="viseme-fuzz-") as d:
        path = Path(d) / ("fuzz" + suffix)
        path.write_bytes(data)
        try:
            return read(path)
        except ValueError as e:
            expected_error(e, str(path))
            return None


# -- byte mutations -----------------------------------------------------------------------------------
_INTERESTING = [0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF]


@st.composite
def mutated_bytes(draw, seeds: list[tuple[str, bytes]], head: int = 64):
    """A seed file with 1-6 edits: bit flips, interesting integers in the first ``head`` bytes
    (where headers keep sizes and counts), random bytes, inserts, deletes, a cut."""
    suffix, data = draw(st.sampled_from(seeds))
    data = bytearray(data)
    for _ in range(draw(st.integers(1, 6))):
        if not data:
            break
        op = draw(st.sampled_from(["flip", "header", "byte", "insert", "delete", "cut"]))
        pos = draw(st.integers(0, len(data) - 1))
        if op == "flip":
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "header":
            width = draw(st.sampled_from([1, 2, 4]))
            at = draw(st.integers(0, max(0, min(head, len(data)) - width)))
            value = draw(st.sampled_from(_INTERESTING)) & ((1 << (8 * width)) - 1)
            data[at:at + width] = value.to_bytes(width, draw(st.sampled_from(["little", "big"])))
        elif op == "byte":
            data[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del data[pos:pos + draw(st.integers(1, 64))]
        else:
            del data[pos:]
    return suffix, bytes(data)


# -- audio: WAV/FLAC/MP3/OGG through toolkit.audio.load_audio -----------------------------------------
def audio_seeds() -> list[tuple[str, bytes]]:
    import soundfile as sf

    rng = np.random.default_rng(0)
    t = np.arange(4000) / 16000
    x = (0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(len(t))).astype(np.float32)
    out = []
    for suffix, fmt, subtype, sr, ch in ((".wav", "WAV", "PCM_16", 16000, 1), (".wav", "WAV", "PCM_24", 44100, 2),
                                         (".wav", "WAV", "FLOAT", 22050, 1), (".flac", "FLAC", "PCM_16", 16000, 1),
                                         (".mp3", "MP3", "MPEG_LAYER_III", 16000, 1),
                                         (".ogg", "OGG", "VORBIS", 16000, 1)):
        buf = io.BytesIO()
        y = np.repeat(x[:, None], ch, axis=1) if ch > 1 else x
        sf.write(buf, y, sr, format=fmt, subtype=subtype)
        out.append((suffix, buf.getvalue()))
    return out


def check_audio(example) -> None:
    from toolkit.audio import load_audio

    x = read_as_file(example, load_audio)
    if x is not None:
        assert x.dtype == np.float32 and x.ndim == 1 and len(x) > 0 and np.all(np.isfinite(x))


# -- glTF/GLB/VRM: reader, drive, writer, renderer's scene, Blender hand-over -------------------------
def gltf_seeds() -> list[tuple[dict, bytes]]:
    """(JSON document, binary chunk) of procedural characters: a Ready Player Me-like avatar (skin,
    3 meshes, 2 primitives), a VRM 1.0 face, a VRM 0.x face, sparse targets with a texture."""
    from gltf_helpers import RPM_VIS, Builder, vrm1_model

    from toolkit.animation import ARKIT_BLENDSHAPES

    def pack(b: Builder) -> tuple[dict, bytes]:
        b.blob += b"\0" * (-len(b.blob) % 4)
        b.doc["buffers"] = [{"byteLength": len(b.blob)}]
        return copy.deepcopy(b.doc), bytes(b.blob)

    out = []
    b = Builder()
    skin = b.skeleton()
    b.node(name="Head", mesh=b.mesh("Wolf3D_Head", RPM_VIS[:6] + ARKIT_BLENDSHAPES[14:20], skinned=True), skin=skin)
    b.node(name="Teeth", mesh=b.mesh("Wolf3D_Teeth", RPM_VIS[:3] + ["jawOpen"], n_prims=2))
    out.append(pack(b))
    with tempfile.TemporaryDirectory() as d:
        data = vrm1_model(Path(d), {"aa": [{"node": 2, "index": 0, "weight": 1.0}],
                                    "blink": [{"node": 2, "index": 1, "weight": 1.0}]}).read_bytes()
    out.append(_split_glb(data))
    b = Builder()
    b.node(name="Face", mesh=b.mesh("Face", None, n_targets=3))
    b.node(name="J_Bip_C_Head", translation=[0, 1.5, 0])
    b.doc["extensionsUsed"] = ["VRM"]
    b.doc["extensions"] = {"VRM": {"specVersion": "0.0", "humanoid": {"humanBones": [{"bone": "head", "node": 1}]},
                                   "blendShapeMaster": {"blendShapeGroups": [
                                       {"name": "A", "presetName": "a", "binds": [{"mesh": 0, "index": 0,
                                                                                   "weight": 100}]},
                                       {"name": "Blink", "presetName": "blink",
                                        "binds": [{"mesh": 0, "index": 1, "weight": 100}]}]}}}
    out.append(pack(b))
    b = Builder()
    b.node(name="Head", mesh=b.mesh("Face", ARKIT_BLENDSHAPES, sparse=True))
    png = _tiny_png()
    b.doc["images"] = [{"bufferView": b.view(png), "mimeType": "image/png"}]
    b.doc["textures"] = [{"source": 0}]
    b.doc["materials"] = [{"pbrMetallicRoughness": {"baseColorTexture": {"index": 0}, "baseColorFactor": [1, 1, 1, 1]}}]
    b.doc["meshes"][0]["primitives"][0]["material"] = 0
    out.append(pack(b))
    if FUZZ_SECONDS:  # the long runs also mutate real characters when ../shared/data is there
        from gltf_helpers import MODELS

        for rel in ("facecap/facecap.glb", "vrm/vrm-specification/VRMC_vrm_expressions_isBinary_Overrides.vrm"):
            if (MODELS / rel).is_file():
                out.append(_split_glb((MODELS / rel).read_bytes()))
    return out


def _tiny_png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (2, 2), (200, 120, 100)).save(buf, format="PNG")
    return buf.getvalue()


def _split_glb(data: bytes) -> tuple[dict, bytes]:
    jlen = struct.unpack_from("<I", data, 12)[0]
    doc = json.loads(data[20:20 + jlen])
    blen = struct.unpack_from("<I", data, 20 + jlen)[0]
    return doc, data[28 + jlen: 28 + jlen + blen]


def glb_bytes(doc: dict, blob: bytes) -> bytes:
    js = json.dumps(doc).encode("utf-8")
    js += b" " * (-len(js) % 4)
    blob = blob + b"\0" * (-len(blob) % 4)
    return (struct.pack("<4sII", b"glTF", 2, 28 + len(js) + len(blob)) + struct.pack("<II", len(js), 0x4E4F534A)
            + js + struct.pack("<II", len(blob), 0x004E4942) + blob)


_NASTY = st.one_of(st.none(), st.booleans(), st.integers(-3, 12), st.sampled_from(
    [-1, 2**31, 2**53 + 1, 10**30, 0.5, 3.0, -0.0, 1e308, -1e308, float("nan"), float("inf"), "", "x", "0",
     "VEC3", "SCALAR", [], {}, [0], [None], {"node": 0}, {"": None}]),
    st.lists(st.integers(-1, 6), max_size=4), st.text(max_size=6))


def _nasty(draw):
    """A nasty value, copied: a later edit inside it must not change the constants of `_NASTY`."""
    return copy.deepcopy(draw(_NASTY))


def _places(node, out: list) -> list:
    """Every (container, key) in a JSON tree."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for k, v in list(items):
        out.append((node, k))
        _places(v, out)
    return out


@st.composite
def mutated_gltf(draw, seeds):
    doc, blob = draw(st.sampled_from(seeds))
    doc, blob = copy.deepcopy(doc), bytearray(blob)
    for _ in range(draw(st.integers(1, 4))):
        places = _places(doc, [])
        holder, key = draw(st.sampled_from(places))
        op = draw(st.sampled_from(["replace", "replace", "delete", "wrap"]))
        if op == "delete" and isinstance(holder, dict):
            del holder[key]
        elif op == "wrap":
            holder[key] = draw(st.sampled_from([[holder[key]], {"value": holder[key]}, str(holder[key])[:20]]))
        else:
            holder[key] = _nasty(draw)
    if blob and draw(st.integers(0, 4)) == 0:  # damage the binary chunk too
        pos = draw(st.integers(0, len(blob) - 1))
        if draw(st.booleans()):
            del blob[pos:]
        else:
            blob[pos] ^= 0xFF
    if draw(st.integers(0, 5)) == 0:  # a .gltf: the same JSON, buffer as a data URI
        if isinstance(doc.get("buffers"), list) and doc["buffers"] and isinstance(doc["buffers"][0], dict):
            import base64

            doc["buffers"][0]["uri"] = "data:application/octet-stream;base64," + base64.b64encode(blob).decode()
        return ".gltf", json.dumps(doc).encode("utf-8")
    data = glb_bytes(doc, bytes(blob))
    if draw(st.integers(0, 9)) == 0:  # a cut file
        data = data[:draw(st.integers(0, len(data)))]
    return ".glb", data


def fuzz_animation(n: int = 12):
    """A short animation that moves every channel (lips closed on frames 4-6, a head turn)."""
    from toolkit.animation import empty_animation

    a = empty_animation(n, 30)
    a.values[:, :] = 0.3
    a.values[4:7, a.channels.index("viseme_PP")] = 1.0
    a.values[:, a.channels.index("headYaw")] = np.linspace(-0.3, 0.3, n)
    return a


def check_gltf(example) -> None:
    """The whole path a character takes: `viseme rig inspect`, the renderer's scene, the Blender
    hand-over, the checks before any work and, for a model they pass, the glTF writer (read back,
    no NaN).  Each step may refuse the model (one line naming it), none may crash."""
    from toolkit.export.blend import gltf_drive, plain_glb
    from toolkit.export.gltf import _animate
    from toolkit.gltf.drive import check_model
    from toolkit.gltf.inspect import inspect_model
    from toolkit.gltf.read import load_model, load_model_bytes
    from toolkit.render.scene import face_model_from_gltf

    def scene(model):
        face = face_model_from_gltf(model)   # no GL needed
        assert all(np.all(np.isfinite(p.positions)) for p in face.parts), "non-finite vertices to render"

    def use(path):
        model = load_model(path)
        model.read_buffers()
        for step in (lambda: inspect_model(path), lambda: scene(model), lambda: plain_glb(model)):
            try:
                step()
            except ValueError as e:
                expected_error(e, str(path))
        model = check_model(path)
        anim = fuzz_animation()
        out, _ = _animate(model, anim, None, "viseme-talk", True, ".glb", 0.0, Path("out.glb"))
        back = load_model_bytes(out, "out.glb")
        for s in back.doc["animations"][-1]["samplers"]:
            assert np.all(np.isfinite(back.accessor(s["output"]))), "NaN written"
        gltf_drive(anim, model)

    read_as_file(example, use)


# -- TextGrid: the reader and what the aligned engine does with its timing ----------------------------
def textgrid_seeds() -> list[tuple[str, bytes]]:
    from toolkit.alignment import Alignment
    from toolkit.alignment.textgrid import textgrid_text
    from toolkit.animation import Segment

    al = Alignment([Segment("b", 0.1, 0.15), Segment("ɑ", 0.15, 0.3), Segment("", 0.3, 0.4),
                    Segment("m", 0.4, 0.5), Segment("aɪ", 0.5, 0.7)],
                   [Segment("bob", 0.1, 0.3), Segment("my", 0.4, 0.7)], 1.0, "test")
    long = textgrid_text(al, 1.0)
    short = ('File type = "ooTextFile"\nObject class = "TextGrid"\n\n0\n1\n<exists>\n2\n"IntervalTier"\n"words"\n0\n1\n'
             '2\n0\n0.5\n"hello"\n0.5\n1\n""\n"IntervalTier"\n"phones"\n0\n1\n3\n0\n0.2\n"HH"\n0.2\n0.5\n"AH0"\n'
             '0.5\n1\n"sil"\n')
    return [(".TextGrid", long.encode("utf-8")), (".TextGrid", short.encode("utf-8")),
            (".TextGrid", short.encode("utf-16"))]


@st.composite
def mutated_textgrid(draw, seeds):
    """Token-level edits (numbers made huge, negative, swapped; labels made odd; lines dropped or
    repeated) and byte-level ones."""
    suffix, data = draw(st.sampled_from(seeds))
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") or draw(st.integers(0, 3)) == 0:
        return draw(mutated_bytes([(suffix, data)], head=200))
    lines = data.decode("utf-8").split("\n")
    for _ in range(draw(st.integers(1, 5))):
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["number", "label", "drop", "repeat", "swap"]))
        if op == "number":
            v = draw(st.sampled_from(["1e999", "-1e999", "1e308", "-5", "0", "99999999999", "1.5e-320", "3",
                                      "-0", "2.5", "1000000"]))
            lines[i] = "".join(c for c in lines[i] if not (c.isdigit() or c in ".-+e")).rstrip() + " " + v \
                if "=" in lines[i] else v
        elif op == "label":
            lines[i] = f'text = "{draw(st.text(max_size=8))}"' if "text" in lines[i] else \
                '"' + draw(st.text(max_size=8)).replace('"', '""') + '"'
        elif op == "drop":
            del lines[i]
        elif op == "repeat":
            lines[i:i] = [lines[i]] * draw(st.integers(1, 3))
        else:
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        if not lines:
            break
    return suffix, "\n".join(lines).encode("utf-8")


def check_textgrid(example) -> None:
    from toolkit.engines import Aligned
    from toolkit.pipeline import _read_textgrid

    al = read_as_file(example, _read_textgrid)   # what `viseme animate --textgrid` reads
    if al is None:
        return
    for s in al.phonemes + al.words:
        assert isinstance(s.label, str) and math.isfinite(s.start) and math.isfinite(s.end) and s.end >= s.start
    samples = 0.1 * np.sin(np.arange(16000) / 10.0).astype(np.float32)
    anim = Aligned().mouth(samples, al, 30)   # what `viseme animate --textgrid` does with it
    assert np.all(np.isfinite(anim.values)) and anim.n_frames == 30


# -- transcripts: file decoding, normalisation, g2p, IPA splitting (espeak-ng's and --ipa's), visemes ------
_SCRIPTS = st.sampled_from(
    ["Bob made a map", "$5.50", "1,000,000", "3rd", "1999", "12:30", "Dr. Smith", "don't", "café", "Straße",
     "ʃɪp", "tʃ", "aɪ", "ŋ", "ˈ", "ː", "😀", "\u200b", "\u0301", "日本語", "Привет", "مرحبا", "-7", "%", "&",
     "[laughter]", "<unk>", "e.g.", "10^100", "9" * 30, "9" * 5000, "$" + "1" * 40, "7" * 40 + "th", "\t", "\r\n", "''", "'s", "...", "ǀ", "ʘ",
     "t͡ʃ", "\u0361", "ⁿd", "i̯", "n̩", "kʼ", "ma˥˩", "ma55", "tʰ", "ɓ", "Tbilisi=tʰbilisi", "x=ǃ", "a=b="])
LANGS = ("en", "de", "fr", "ru", "cmn")


@st.composite
def transcripts(draw):
    parts = draw(st.lists(st.one_of(_SCRIPTS, st.text(max_size=12)), min_size=1, max_size=8))
    text = " ".join(parts) if draw(st.booleans()) else "".join(parts)
    lang = draw(st.sampled_from(LANGS))
    enc = draw(st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "utf-16", "latin-1-bytes"]))
    if enc == "latin-1-bytes":
        data = draw(st.binary(max_size=64))
    else:
        data = text.encode(enc, "surrogatepass")
    return f".{lang}.txt", data


def check_text(example) -> None:
    from toolkit.phonemes.g2p import words_to_phonemes
    from toolkit.phonemes.inventory import split_ipa
    from toolkit.phonemes.ipa import parse_ipa, phone_parts
    from toolkit.phonemes.text import decode_text
    from toolkit.visemes.tables import visemes_for

    suffix, data = example
    lang = suffix.split(".")[1]
    try:
        text = decode_text(data, "fuzz" + suffix)
    except ValueError as e:
        expected_error(e, "fuzz" + suffix)
        return
    assert isinstance(text, str)
    try:
        words = words_to_phonemes(text, lang=lang)   # any text in a known language: words, never an error...
    except ValueError as e:   # ...but a `word=IPA` override whose IPA the toolkit cannot place or that lacks a side,
        assert "=" in text and "\n" not in str(e), e   # named in one line
        assert str(e).startswith("IPA ") or "word=IPA override" in str(e), e
        words = []
    for w in words:
        assert w.text and all(isinstance(p, str) and p for p in w.phones), w
        for p in w.phones:
            visemes_for(p)   # every phone the g2p makes has a mouth shape (KeyError = bug)
    for piece in split_ipa(text):
        assert isinstance(piece, str) and piece
    try:   # the same text given as --ipa: phones with a mouth shape and articulatory parts, or one line naming why not
        ipa_words = parse_ipa(text)
    except ValueError as e:
        assert str(e) and "\n" not in str(e), e
        return
    for w in ipa_words:
        for p in w.phones:
            visemes_for(p.label)
            assert phone_parts(p.label), p


# -- numeric options: the command line's types and the Python API ---------------------------------------
_NUMBER_TEXT = st.one_of(
    st.sampled_from(["nan", "-nan", "inf", "-inf", "1e9", "-1e9", "0", "-0", "1e-320", "0x10", "1_000", " 5",
                     "5 ", "", "-", "--", "1e", "١٢", "30", "-5", "2.5", "240", "241", "4294967296"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr), st.integers(-2**40, 2**40).map(str),
    st.text(max_size=6))
OPTIONS = ("--fps", "--intensity", "--jaw", "--offset-ms", "--anticipation-ms", "--seed", "--size", "--raw-rate")


@st.composite
def option_values(draw):
    pairs = draw(st.lists(st.tuples(st.sampled_from(OPTIONS), _NUMBER_TEXT), min_size=1, max_size=3))
    form = draw(st.sampled_from(["space", "equals"]))
    return ".json", json.dumps({"pairs": pairs, "form": form}).encode("utf-8")


def check_options(example) -> None:
    """Every numeric option: a value in its range is taken as a finite number, anything else is exit 2
    with the option's name in the message, before any work."""
    import contextlib

    from toolkit.arguments import parse_args
    from toolkit.cli import build_parser
    from toolkit.pipeline import Options

    spec = json.loads(example[1])
    argv = ["animate", "speech.wav", "-o", "out.json"]
    for opt, value in spec["pairs"]:
        argv += [f"{opt}={value}"] if spec["form"] == "equals" else [opt, value]
    parser = build_parser()
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            args = parse_args(parser, argv)
    except SystemExit as e:
        assert e.code == 2, e.code
        msg = err.getvalue().strip().splitlines()[-1]
        assert msg.startswith("viseme animate: error: "), msg
        return
    for name in ("fps", "intensity", "jaw", "offset_ms", "anticipation_ms", "seed", "size", "raw_rate"):
        v = getattr(args, name)
        assert v is None or (isinstance(v, (int, float)) and math.isfinite(v)), (name, v)
    Options(fps=args.fps, intensity=args.intensity, offset_ms=args.offset_ms, seed=args.seed)  # no ValueError


# -- animation JSON (what `viseme render` reads) ------------------------------------------------------------
def animation_json_seeds() -> list[tuple[str, bytes]]:
    from toolkit.animation import Segment

    a = fuzz_animation(6)
    a.phonemes = [Segment("m", 0.0, 0.1)]
    a.words = [Segment("m", 0.0, 0.1)]
    return [(".json", json.dumps(a.to_dict()).encode("utf-8"))]


@st.composite
def mutated_json(draw, seeds):
    """A seed JSON file with 1-3 values replaced by nasty ones (or deleted)."""
    suffix, data = draw(st.sampled_from(seeds))
    doc = json.loads(data)
    for _ in range(draw(st.integers(1, 3))):
        holder, key = draw(st.sampled_from(_places(doc, [])))
        if draw(st.booleans()) and isinstance(holder, dict):
            del holder[key]
        else:
            holder[key] = _nasty(draw)
    return suffix, json.dumps(doc).encode("utf-8")


def check_animation_json(example) -> None:
    from toolkit.animation import Animation
    from toolkit.export import tracks

    anim = read_as_file(example, Animation.load)
    if anim is None:
        return
    assert np.all(np.isfinite(anim.values)) and anim.fps > 0
    with tempfile.TemporaryDirectory() as d:   # every text writer takes what the reader accepted
        tracks.write_json(anim, Path(d) / "a.json")
        tracks.write_livelink_csv(anim, Path(d) / "a.csv")
        tracks.write_rhubarb_tsv(anim, Path(d) / "a.tsv")


# -- rig profiles (--rig myrig.json) ----------------------------------------------------------------------
def rig_seeds() -> list[tuple[str, bytes]]:
    from toolkit.resources import RIGS_DIR

    return [(".json", p.read_bytes()) for p in sorted(RIGS_DIR.glob("*.json"))[:6]] + [
        (".json", json.dumps({"name": "blob", "targets_by_index": {"0": "viseme_PP", "2": {"jawOpen": 0.5}},
                              "scale": {}, "required": []}).encode())]


def check_rig(example) -> None:
    from toolkit import rigs
    from toolkit.animation import ARKIT_BLENDSHAPES

    prof = read_as_file(example, rigs.load_profile)
    if prof is None:
        return
    names = ["viseme_PP", "jawOpen", "Fcl_MTH_A", "mouthClose", None, "eyeBlinkLeft"] + ARKIT_BLENDSHAPES[:10]
    w = rigs.retarget(fuzz_animation(), names, rigs.match_one(prof, names))
    assert np.all(np.isfinite(w)), "a rig made NaN weights"
