"""Track exporters: animation JSON, Live Link CSV, Rhubarb cues, PNG plot; atomic writes."""
import csv
import json
import warnings

import numpy as np
import pytest

from toolkit.animation import ARKIT_BLENDSHAPES, CHANNELS, Animation, Segment
from toolkit.export import tracks
from toolkit.files import OutputError, atomic_write, check_output_path
from toolkit.visemes.coarticulation import animate_phonemes

PHONES = [Segment("b", 0.1, 0.18), Segment("ɑ", 0.18, 0.4), Segment("f", 0.4, 0.5), Segment("u", 0.5, 0.8)]


@pytest.fixture
def anim():
    a = animate_phonemes(PHONES, 1.2, 30, words=[Segment("bah", 0.1, 0.4), Segment("foo", 0.4, 0.8)])
    a.meta["engine"] = "align"
    return a


def test_json_round_trip_and_documented_fields(anim, tmp_path):
    p = tmp_path / "a.json"
    tracks.write_json(anim, p)
    d = json.loads(p.read_text())
    for key in ("fps", "channels", "values", "phonemes", "words"):
        assert key in d
    assert d["channels"] == CHANNELS
    assert len(d["values"]) == anim.n_frames and len(d["values"][0]) == len(CHANNELS)
    assert d["phonemes"][0] == {"label": "b", "start": 0.1, "end": 0.18}
    back = Animation.load(p)
    assert np.allclose(back.values, anim.values, atol=1e-4)
    assert back.words[1].label == "foo"


def test_livelink_csv_layout(anim, tmp_path):
    p = tmp_path / "a.csv"
    tracks.write_livelink_csv(anim, p)
    rows = list(csv.reader(p.open()))
    header = rows[0]
    assert header[:2] == ["Timecode", "BlendShapeCount"]
    assert len(header) == 2 + 61 and header[2] == "EyeBlinkLeft" and header[-1] == "RightEyeRoll"
    assert len(rows) == anim.n_frames + 1
    assert rows[1][1] == "61"
    jaw_col = header.index("JawOpen")
    jaw = np.array([float(r[jaw_col]) for r in rows[1:]])
    assert np.allclose(jaw, anim.channel("jawOpen"), atol=1e-5)
    assert rows[31][0].startswith("00:00:01:00")  # frame 30 at 30 fps = 1 s


def test_rhubarb_cues_shapes(anim, tmp_path):
    cues = tracks.rhubarb_cues(anim)
    values = [c["value"] for c in cues]
    assert values[0] == "X" and values[-1] == "X"
    assert "A" in values and "D" in values and "G" in values and "F" in values
    assert values.index("A") < values.index("D") < values.index("G") < values.index("F")
    for a, b in zip(cues, cues[1:]):
        assert a["end"] == b["start"] and a["value"] != b["value"]
    tracks.write_rhubarb_tsv(anim, tmp_path / "m.tsv")
    lines = (tmp_path / "m.tsv").read_text().splitlines()
    assert lines[0] == "0.00\tX" and lines[-1].endswith("\tX")
    tracks.write_rhubarb_json(anim, tmp_path / "rhubarb.json", sound_file="s.wav")
    d = json.loads((tmp_path / "rhubarb.json").read_text())
    assert d["metadata"]["soundFile"] == "s.wav" and d["mouthCues"] == cues


# matplotlib's default colour cycle: each curve of the plot is drawn in one of these
TAB10 = np.array([(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
                  (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)])


def _plot_pixels(path):
    """(height, width) of a PNG plot and, per colour of the cycle, how many pixels are drawn in it."""
    from PIL import Image

    im = np.asarray(Image.open(path).convert("RGB")).astype(np.int16)
    counts = np.array([(np.abs(im - c).sum(2) < 40).sum() for c in TAB10])  # the colours are > 80 apart
    return im.shape[:2], counts


def test_plot_png(anim, tmp_path):
    """A decodable image of the documented size whose curves are drawn (coloured lines, one per curve)."""
    p = tmp_path / "a.png"
    tracks.write_plot_png(anim, p, samples=np.random.default_rng(0).normal(0, 0.1, 16000))
    size, colours = _plot_pixels(p)
    assert size == (675, 720)  # 8 x 7.5 inches at 90 dpi: the minimum width for short clips
    flat = Animation(anim.fps, anim.channels, np.zeros_like(anim.values))  # nothing moves: no curve to see
    with warnings.catch_warnings():  # (matplotlib: an empty legend)
        warnings.simplefilter("ignore", UserWarning)
        tracks.write_plot_png(flat, tmp_path / "flat.png")
    _, flat_colours = _plot_pixels(tmp_path / "flat.png")
    drawn = colours - flat_colours
    assert (drawn > 100).sum() >= 4, drawn  # PP, aa, FF, ou and the jaw/lip channels each show as a line
    assert drawn.sum() > 3000, drawn
    long = anim.resampled(30)
    long.values = np.tile(long.values, (5, 1))  # 6 s: the plot grows with the clip (3 inches a second)
    tracks.write_plot_png(long, tmp_path / "long.png")
    assert _plot_pixels(tmp_path / "long.png")[0] == (675, int(long.duration_s * 3 * 90))


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    p = tmp_path / "out.json"
    p.write_text("old")

    def boom(tmp):
        tmp.write_text("partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(p, boom)
    assert p.read_text() == "old"
    assert [f.name for f in tmp_path.iterdir()] == ["out.json"]


def test_output_checks(tmp_path):
    src = tmp_path / "in.wav"
    src.write_bytes(b"x")
    with pytest.raises(OutputError, match="same as the input"):
        check_output_path(src, inputs=(src,))
    with pytest.raises(OutputError, match="does not exist"):
        check_output_path(tmp_path / "nope" / "a.json")


def test_animation_resample_and_select(anim):
    r = anim.resampled(60)
    assert r.n_frames == round(anim.duration_s * 60) and r.fps == 60
    assert abs(r.channel("jawOpen").max() - anim.channel("jawOpen").max()) < 0.05
    s = anim.select(["jawOpen", "mouthClose"])
    assert s.channels == ["jawOpen", "mouthClose"]
    assert len(ARKIT_BLENDSHAPES) == 52 and len(CHANNELS) == 70
