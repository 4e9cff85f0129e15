"""The `viseme` command: outputs by extension, the say/align subcommands, exit codes and no partial files."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gltf_helpers import PP, Builder, digest, leftover_temp_files, node_index, read_clip, real, rpm_avatar, speech_anim

from toolkit.animation import ARKIT_BLENDSHAPES
from toolkit.cli import main

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "assets" / "samples" / "bob.wav"
SAMPLE_TEXT = ROOT / "assets" / "samples" / "bob.txt"


def test_animate_writes_every_track_format(tmp_path, capsys):
    """Each output read back with its own format's reader: the same animation in every one."""
    import csv

    from PIL import Image

    from toolkit.alignment.textgrid import read_textgrid

    outs = ["a.json", "a.csv", "m.tsv", "rhubarb.json", "a.png", "a.TextGrid"]
    rc = main(["animate", str(SAMPLE), "--transcript", str(SAMPLE_TEXT), "--fps", "24", "--engine", "align"]
              + sum((["-o", str(tmp_path / o)] for o in outs), []))
    assert rc == 0
    d = json.loads((tmp_path / "a.json").read_text())
    assert d["fps"] == 24 and d["words"][0]["label"] == "bob"
    n = len(d["values"])
    assert n == round(d["duration"] * 24)
    # Live Link CSV: one row per frame, the JSON's jaw curve
    rows = list(csv.reader((tmp_path / "a.csv").open()))
    assert len(rows) == n + 1 and rows[0][:2] == ["Timecode", "BlendShapeCount"]
    jaw = np.array([float(r[rows[0].index("JawOpen")]) for r in rows[1:]])
    np.testing.assert_allclose(jaw, np.array(d["values"])[:, d["channels"].index("jawOpen")], atol=1e-4)
    # Rhubarb cues: the same cues in TSV and JSON, Rhubarb's shapes, contiguous, ending at the audio's end
    cues = json.loads((tmp_path / "rhubarb.json").read_text())["mouthCues"]
    tsv = [line.split("\t") for line in (tmp_path / "m.tsv").read_text().splitlines()]
    assert [(float(t), v) for t, v in tsv[:-1]] == [(round(c["start"], 2), c["value"]) for c in cues]
    assert {c["value"] for c in cues} <= set("ABCDEFGHX") and {"A", "X"} <= {c["value"] for c in cues}
    assert all(a["end"] == b["start"] for a, b in zip(cues, cues[1:]))
    assert abs(cues[-1]["end"] - d["duration"]) < 0.05
    # PNG plot: decodes, 3 inches a second at 90 dpi
    assert Image.open(tmp_path / "a.png").size == (int(max(8.0, d["duration"] * 3) * 90), 675)
    # TextGrid: the JSON's words and phonemes, times to the millisecond
    grid = read_textgrid(tmp_path / "a.TextGrid")
    assert [(w.label, round(w.start, 3)) for w in grid.words] == [(w["label"], round(w["start"], 3)) for w in d["words"]]
    speech = [p for p in grid.phonemes if p.label]
    assert [(p.label, round(p.end, 3)) for p in speech] == [(p["label"], round(p["end"], 3)) for p in d["phonemes"]
                                                           if p["label"]]
    assert "24 fps" in capsys.readouterr().out


def test_align_prints_json(tmp_path, capsys):
    rc = main(["align", str(SAMPLE), "--text", SAMPLE_TEXT.read_text()])
    assert rc == 0
    d = json.loads(capsys.readouterr().out)
    assert d["method"] == "pocketsphinx" and d["words"][1]["label"] == "made"
    assert all(p["end"] >= p["start"] for p in d["phonemes"])


@pytest.mark.parametrize("name", ["speech.csv", "speech.png", "speech"])
def test_align_refuses_an_output_type_it_does_not_write(tmp_path, capsys, monkeypatch, name):
    """align writes JSON or a TextGrid: any other file ending would get JSON under a name that lies."""
    from toolkit import pipeline

    monkeypatch.setattr(pipeline, "align", lambda *a, **k: pytest.fail("aligned before the output was checked"))
    rc = main(["align", str(SAMPLE), "--text", SAMPLE_TEXT.read_text(), "-o", str(tmp_path / name)])
    err = capsys.readouterr().err
    assert rc == 2 and name in err and ".TextGrid" in err and len(err.strip().splitlines()) == 1, err
    assert list(tmp_path.iterdir()) == []


def test_say_writes_wav_and_animation(tmp_path):
    rc = main(["say", "Guten Morgen", "--lang", "de", "-o", str(tmp_path / "hello")])
    assert rc == 0
    assert (tmp_path / "hello.wav").stat().st_size > 1000
    d = json.loads((tmp_path / "hello.json").read_text())
    assert d["meta"]["alignment"] == "espeak" and d["words"][0]["label"].lower() == "guten"


def test_say_refuses_one_file_named_twice(tmp_path, capsys):
    # the .wav outputs are written beside the plan's outputs: the same file twice was written twice
    wav = str(tmp_path / "x.wav")
    rc = main(["say", "hello", "-o", wav, "-o", str(tmp_path / "x.json"), "-o", wav])
    err = capsys.readouterr().err
    assert rc == 2 and "two outputs would write" in err and len(err.strip().splitlines()) == 1, err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("case", ["missing", "empty", "silent", "truncated", "bad-lang", "unwritable", "same-as-input",
                                  "bad-ext"])
def test_bad_input_exits_nonzero_without_output(tmp_path, capsys, case):
    import numpy as np

    from toolkit.audio import write_wav

    audio, out, extra = str(SAMPLE), tmp_path / "out.json", []
    if case == "missing":
        audio = str(tmp_path / "nope.wav")
    elif case == "empty":
        (tmp_path / "empty.wav").write_bytes(b"")
        audio = str(tmp_path / "empty.wav")
    elif case == "silent":
        audio = str(write_wav(tmp_path / "quiet.wav", np.zeros(8000, np.float32), 16000))
    elif case == "truncated":  # a copy cut off after 40 % of its audio
        data = SAMPLE.read_bytes()
        (tmp_path / "cut.wav").write_bytes(data[: int(len(data) * 0.4)])
        audio = str(tmp_path / "cut.wav")
    elif case == "bad-lang":
        extra = ["--lang", "qq"]
    elif case == "unwritable":
        out = tmp_path / "no_such_dir" / "out.json"
    elif case == "same-as-input":
        out = Path(audio)
    elif case == "bad-ext":
        out = tmp_path / "out.xyz"
    before = SAMPLE.read_bytes()
    rc = main(["animate", audio, "--text", "Bob made a map", "--engine", "align", "-o", str(out)] + extra)
    err = capsys.readouterr().err
    assert rc != 0
    assert "error" in err and len(err.strip().splitlines()) <= 3, err
    if case in ("missing", "empty", "silent", "truncated"):
        assert Path(audio).name in err
    assert SAMPLE.read_bytes() == before  # the input is never touched
    if case != "same-as-input":
        assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp files left


def _audio_seconds(mp4: Path) -> float:
    import imageio_ffmpeg

    pcm = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(mp4), "-vn", "-f", "s16le",
                          "-ac", "1", "-ar", "16000", "-"], capture_output=True, check=True).stdout
    return len(pcm) / 2 / 16000


def test_truncated_audio_is_animated_when_the_user_allows_it(tmp_path, capsys):
    data = SAMPLE.read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[: int(len(data) * 0.6)])
    out, mp4 = tmp_path / "cut.json", tmp_path / "cut.mp4"
    assert main(["animate", str(tmp_path / "cut.wav"), "--text", "Bob made a map", "--engine", "align",
                 "--allow-truncated", "--size", "64", "-o", str(out), "-o", str(mp4)]) == 0
    assert "truncated" in capsys.readouterr().err
    d = json.loads(out.read_text())
    assert d["words"] and abs(d["duration"] - 0.6 * 4.2) < 0.3
    assert abs(_audio_seconds(mp4) - d["duration"]) < 0.05  # the preview has the speech that is there


def test_headerless_pcm_reaches_the_preview_video(tmp_path):
    from toolkit.audio import load_audio

    x = load_audio(SAMPLE)
    raw = tmp_path / "bob.raw"
    raw.write_bytes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())
    mp4 = tmp_path / "bob.mp4"
    assert main(["animate", str(raw), "--raw-rate", "16000", "--transcript", str(SAMPLE_TEXT), "--engine", "align",
                 "--size", "64", "-o", str(mp4)]) == 0
    assert abs(_audio_seconds(mp4) - len(x) / 16000) < 0.05


def test_headerless_pcm_without_a_rate_names_the_option(tmp_path, capsys):
    """The refusal tells a command-line user the option to give (it named only Python's raw_rate=)."""
    raw = tmp_path / "bob.raw"
    raw.write_bytes(np.zeros(1600, "<i2").tobytes())
    assert main(["animate", str(raw), "-o", str(tmp_path / "x.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"viseme: error: {raw}: headerless PCM") and "--raw-rate" in err and "\n" not in err


def test_console_script_runs():
    exe = Path(sys.executable).parent / "viseme"
    if not exe.exists():
        pytest.skip("viseme console script not installed (run make setup)")
    r = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "animate" in r.stdout


def test_audio_only_uses_the_neural_model_and_train_has_its_options(tmp_path, capsys):
    out = tmp_path / "nn.json"
    assert main(["animate", str(SAMPLE), "-o", str(out)]) == 0
    d = json.loads(out.read_text())
    assert d["meta"]["engine"] == "neural" and d["phonemes"] == []
    assert "engine neural" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main(["train", "--help"])
    assert e.value.code == 0 and "--minutes" in capsys.readouterr().out


def test_train_without_torch_names_the_extra(tmp_path, monkeypatch, capsys):
    """A core pip install has no torch: `viseme train` says which extra, exit 2, before making any data
    (it was a ModuleNotFoundError traceback, exit 1)."""
    monkeypatch.setitem(sys.modules, "torch", None)  # import raises ImportError, as when not installed
    assert main(["train", "--cache", str(tmp_path / "cache"), "--quiet"]) == 2
    assert "viseme-toolkit[train]" in capsys.readouterr().err
    assert not (tmp_path / "cache").exists()


# -- characters: --model, .vrma, rig inspect ---------------------------------------------------------
def _anim_json(tmp_path) -> Path:
    """speech_anim (an /m/ on frames 15-23) as animation JSON, for `viseme render`."""
    from toolkit.export import tracks

    p = tmp_path / "anim.json"
    tracks.write_json(speech_anim(), p)
    return p


def _no_pipeline(monkeypatch):
    """Make running the pipeline a failure: checks must come before the work."""
    from toolkit import pipeline

    def boom(*a, **k):
        raise AssertionError("the pipeline ran before the model and outputs were checked")

    monkeypatch.setattr(pipeline, "animate", boom)


def test_animate_with_a_glb_model_closes_the_lips_on_every_m(tmp_path, capsys, gltf_validator):
    src = rpm_avatar(tmp_path)
    outs = {k: tmp_path / f"talk.{k}" for k in ("json", "glb", "vrma")}
    rc = main(["animate", str(SAMPLE), "--transcript", str(SAMPLE_TEXT), "--engine", "align", "--model", str(src)]
              + sum((["-o", str(p)] for p in outs.values()), []))
    err = capsys.readouterr().err
    assert rc == 0, err
    # the write reports: the profile, the meshes driven, the head bone
    assert "talk.glb: morph target names -> profile arkit52" in err and "drives node #4 Wolf3D_Head" in err
    assert "head rotation: node #0 mixamorig:Head" in err and "talk.vrma: VRM Animation" in err
    gltf_validator(outs["glb"])
    gltf_validator(outs["vrma"])
    d = json.loads(outs["json"].read_text())
    ms = [p for p in d["phonemes"] if p["label"] == "m"]
    assert len(ms) >= 2  # "made", "map"
    m, clip = read_clip(outs["glb"])
    head = node_index(m, "Head")
    w = clip[(head, "weights")][1]
    names = m.meshes[m.doc["nodes"][head]["mesh"]].target_names
    press, jaw, close = names.index("mouthPressLeft"), names.index("jawOpen"), names.index("mouthClose")
    vm, vclip = read_clip(outs["vrma"])
    pre = vm.doc["extensions"]["VRMC_vrm_animation"]["expressions"]["preset"]
    aa = vclip[(pre["aa"]["node"], "translation")][1][:, 0]
    assert len(aa) == len(w) == len(d["values"]) + 1
    for ph in ms:
        frames = np.arange(int(ph["start"] * d["fps"]), int(np.ceil(ph["end"] * d["fps"])) + 1)
        closed = frames[np.argmax(w[frames, press])]
        assert w[closed, press] > 0.4, ph  # lips pressed during the /m/
        assert w[closed, jaw] - w[closed, close] < 0.02, ph  # and whatever the jaw opens, sealed
        assert aa[closed] < 0.05, ph  # and the VRM Animation's open vowel off there
    assert aa.max() > 0.5  # (it does open elsewhere)


def test_render_reports_a_missing_head_bone(tmp_path, capsys):
    b = Builder()
    b.skeleton()
    b.doc["nodes"][0]["name"] = "HeadTop_End"
    b.node(name="Face", mesh=b.mesh("Face", ARKIT_BLENDSHAPES, skinned=True), skin=0)
    src = b.save(tmp_path / "nohead.glb")
    assert main(["render", str(_anim_json(tmp_path)), "--model", str(src), "-o", str(tmp_path / "o.glb")]) == 0
    err = capsys.readouterr().err
    assert "profile arkit52" in err and "head rotation: none" in err
    assert "warning: " in err and "no head bone found" in err


def _rock(tmp_path, name="rock.vrm") -> Path:
    """A VRM 0.x with one mesh and no morph targets: nothing can move its face."""
    b = Builder()
    b.node(name="Rock", mesh=b.mesh("Rock", []))
    b.doc["extensionsUsed"] = ["VRM"]
    b.doc["extensions"] = {"VRM": {"specVersion": "0.0", "blendShapeMaster": {"blendShapeGroups": []}}}
    return b.save(tmp_path / name)


def test_a_model_that_cannot_work_fails_before_anything_is_written_or_computed(tmp_path, capsys, monkeypatch):
    _no_pipeline(monkeypatch)
    rock, anim = _rock(tmp_path), _anim_json(tmp_path)
    p = tmp_path / "p"
    rc = main(["render", str(anim), "--model", str(rock), "-o", f"{p}.csv", "-o", f"{p}.vrm"])
    assert rc == 2 and "no morph targets" in capsys.readouterr().err
    rc = main(["animate", str(SAMPLE), "--text", "Bob", "--model", str(rock), "-o", f"{p}.json", "-o", f"{p}.glb"])
    assert rc == 2 and "rock.vrm" in capsys.readouterr().err
    glb = rpm_avatar(tmp_path)
    for bad in (["-o", f"{p}.csv", "-o", f"{p}.vrm"],  # .vrm from a model that is not a VRM
                ["-o", f"{p}.csv", "-o", f"{p}.xyz"]):  # an unknown type after a good one
        assert main(["animate", str(SAMPLE), "--text", "Bob", "--model", str(glb)] + bad) == 2
    assert main(["render", str(anim), "-o", f"{p}.csv", "-o", f"{p}.vrm"]) == 2  # .vrm needs a VRM model
    err = capsys.readouterr().err
    assert "not a VRM" in err and "unknown output type '.xyz'" in err and "needs a VRM model" in err
    assert sorted(x.name for x in tmp_path.iterdir()) == ["anim.json", "avatar.glb", "rock.vrm"]


@pytest.mark.parametrize("rig,msg", [("arkit", "no rig profile 'arkit'"), ("my rig.json", "my rig.json: rig file not found")])
@pytest.mark.parametrize("outs", [["a.glb"], ["a.json", "a.anim"]])
def test_an_unknown_rig_is_refused_before_any_work_even_without_a_model(tmp_path, capsys, monkeypatch, rig, msg, outs):
    """--rig was read only with --model and a model output: a typo animated the default head (or wrote
    JSON) with the rig silently ignored."""
    _no_pipeline(monkeypatch)
    rc = main(["animate", str(SAMPLE), "--text", "Bob", "--rig", str(tmp_path / rig) if rig.endswith(".json") else rig]
              + sum((["-o", str(tmp_path / o)] for o in outs), []))
    err = capsys.readouterr().err
    assert rc == 2 and msg in err and len(err.strip().splitlines()) == 1, err
    assert list(tmp_path.iterdir()) == []


def test_outputs_never_overwrite_the_models_own_files(tmp_path, capsys, monkeypatch):
    from PIL import Image

    src = rpm_avatar(tmp_path, ".gltf")  # avatar.gltf + avatar.bin
    doc = json.loads(src.read_text())
    doc.update(images=[{"uri": "skin.png"}], textures=[{"source": 0}],
               materials=[{"pbrMetallicRoughness": {"baseColorTexture": {"index": 0}}}])
    src.write_text(json.dumps(doc))
    Image.new("RGB", (4, 4), (200, 120, 100)).save(tmp_path / "skin.png")
    before = {p.name: digest(p) for p in tmp_path.iterdir()}
    _no_pipeline(monkeypatch)
    anim = _anim_json(tmp_path)
    for cmd in (["animate", str(SAMPLE), "--text", "Bob", "--model", str(src), "-o", str(tmp_path / "skin.png")],
                ["animate", str(SAMPLE), "--text", "Bob", "--model", str(src), "--format", "json",
                 "-o", str(tmp_path / "avatar.bin")],
                ["render", str(anim), "--model", str(src), "-o", str(tmp_path / "skin.png")],
                ["render", str(anim), "--model", str(src), "-o", str(tmp_path / "x.csv"), "-o", str(src)]):
        assert main(cmd) == 2, cmd
        err = capsys.readouterr().err
        assert "same as the input" in err or "overwrite the input" in err, err
    assert {p.name: digest(p) for p in tmp_path.iterdir() if p.name != "anim.json"} == before
    assert not leftover_temp_files(tmp_path)


def test_rig_inspect(tmp_path, capsys):
    assert main(["rig", "inspect", str(rpm_avatar(tmp_path))]) == 0
    out = capsys.readouterr().out
    assert "Wolf3D_Head" in out and "rig (morph target names): profile arkit52" in out
    assert "animates: morph target names -> profile arkit52" in out and "mixamorig:Head" in out
    assert "* arkit52 (morph)" in out and "- readyplayerme (morph)" in out
    b = Builder()
    b.node(name="Blob", mesh=b.mesh(None, None, n_targets=3))
    blob = b.save(tmp_path / "blob.gltf")
    rig = tmp_path / "blobrig.json"
    rig.write_text(json.dumps({"name": "blobrig", "targets_by_index": {"0": "viseme_PP", "2": "jawOpen"}}))
    assert main(["rig", "inspect", str(blob), "--rig", str(rig)]) == 0
    out = capsys.readouterr().out
    assert f"rig blobrig ({rig}) on mesh #0: profile blobrig (morph): 2/2 keys matched" in out
    assert "<- viseme_PP   -> #0" in out and "<- jawOpen   -> #2" in out and "animates:" in out
    # unnamed targets and no rig file: the report, then why it cannot animate as the one error line, exit 2
    # (it exited 0, so a script checking its assets passed a model that cannot move)
    assert main(["rig", "inspect", str(blob)]) == 2
    out, err = capsys.readouterr()
    assert "all morph targets are unnamed" in out and "cannot animate:" in out and out.rstrip().endswith("#0 Blob")
    assert err.splitlines() == [f"viseme: error: {blob}: cannot drive this model. Found mesh #0: 3 targets (unnamed). "
                                "all morph targets are unnamed: give a rig file with 'targets_by_index'."], err
    (tmp_path / "blob.bin").unlink()
    assert main(["rig", "inspect", str(blob)]) == 2
    err = capsys.readouterr().err
    assert "blob.gltf: buffer #0 refers to 'blob.bin', which cannot be read" in err


# -- real models in ../shared/data/models -------------------------------------------------------------
@pytest.mark.parametrize("rel,rig", [
    ("khronos_gltf_samples/AnimatedMorphCube/glTF/AnimatedMorphCube.gltf",
     {"name": "cube", "targets_by_index": {"0": "viseme_PP", "1": "jawOpen"}}),
    ("khronos_gltf_samples/AnimatedMorphSphere/glTF/AnimatedMorphSphere.gltf",
     {"name": "sphere", "targets_by_index": {"0": "viseme_PP", "1": "jawOpen"}}),
    ("khronos_gltf_samples/MorphStressTest/glTF/MorphStressTest.gltf",
     {"name": "stress", "targets": {"Key 1": "viseme_PP", "Key 2": "jawOpen"}}),
])
def test_khronos_morph_samples_with_a_rig_file(tmp_path, capsys, rel, rig, gltf_validator):
    from toolkit.gltf.read import load_model
    from toolkit.visemes.tables import VISEME_POSES

    src = real(rel)
    (tmp_path / "rig.json").write_text(json.dumps(rig))
    out = tmp_path / "talking.glb"
    rc = main(["render", str(_anim_json(tmp_path)), "--model", str(src), "--rig", str(tmp_path / "rig.json"),
               "-o", str(out)])
    assert rc == 0, capsys.readouterr().err
    assert f"profile {rig['name']}" in capsys.readouterr().err
    gltf_validator(out)  # zero validator errors, nothing excused
    m, clip = read_clip(out)
    assert len(m.doc["animations"]) == len(load_model(src).doc["animations"]) + 1  # the sample's own clips kept
    w = clip[(0, "weights")][1]
    assert w[PP, 0].min() > 0.99 and w[:15, 0].max() < 0.01  # the lip-closing target shuts for the /m/
    assert w[5, 1] == pytest.approx(VISEME_POSES["aa"]["jawOpen"], abs=1e-6)


def test_morph_stress_test_textures_are_never_overwritten(tmp_path, capsys):
    folder = real("khronos_gltf_samples/MorphStressTest/glTF")
    for f in folder.iterdir():  # a copy: the shared models are read-only
        (tmp_path / f.name).write_bytes(f.read_bytes())
    src = tmp_path / "MorphStressTest.gltf"
    (tmp_path / "rig.json").write_text(json.dumps({"targets": {"Key 1": "viseme_PP"}}))
    before = digest(tmp_path / "ColorSwatches.png")
    rc = main(["render", str(_anim_json(tmp_path)), "--model", str(src), "--rig", str(tmp_path / "rig.json"),
               "-o", str(tmp_path / "ColorSwatches.png")])
    assert rc == 2 and "ColorSwatches.png" in capsys.readouterr().err
    assert digest(tmp_path / "ColorSwatches.png") == before


def test_vrm0_sphere_without_morphs_writes_no_partial_output(tmp_path, capsys):
    src = real("vrm/three-vrm_0.x_sphere.vrm")
    rc = main(["render", str(_anim_json(tmp_path)), "--model", str(src), "-o", str(tmp_path / "p.csv"),
               "-o", str(tmp_path / "p.vrm")])
    assert rc == 2 and "no morph targets" in capsys.readouterr().err
    assert not (tmp_path / "p.csv").exists() and not (tmp_path / "p.vrm").exists()


def test_contact_sheet_tiles_follow_size(tmp_path):
    from PIL import Image

    anim = _anim_json(tmp_path)
    widths = []
    for size in (128, 256):
        out = tmp_path / f"sheet{size}.png"
        assert main(["render", str(anim), "-o", str(out), "--size", str(size)]) == 0
        widths.append(Image.open(out).size[0])
    assert abs(widths[1] / widths[0] - 2.0) < 0.1, widths


@pytest.mark.parametrize("argv", [["animate", str(SAMPLE), "--fps", "nan", "-o", "x.json"], ["animate", str(SAMPLE)],
                                  ["animat", str(SAMPLE)], ["say", "hi", "--seed", "1.5", "-o", "x"]])
def test_usage_errors_are_one_line(argv, capsys):
    # argparse printed its usage block (a dozen lines for animate) before the line that says what is wrong
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(err) == 1 and ": error: " in err[0] and err[0].endswith("--help)"), err
