"""Preview videos and contact sheets of an animation on a character, for judging lip sync by eye.

`render_video` writes an H.264 .mp4 with the speech as AAC audio at the file's
own sample rate and channels (frame 0 at time 0; the audio is trimmed or padded
to the video's length).  Frames are
rendered in a worker thread and piped straight into one ffmpeg process, so a
long clip never sits in memory.  Options: a strip under the face with the
current viseme, phoneme and word over a scrolling phoneme track; a second
animation side by side (``compare``); `contact_sheet` for a still PNG of key
frames.

Example
-------
>>> from toolkit.animation import Animation
>>> anim = Animation.load("out/demo.json")                          # doctest: +SKIP
>>> render_video(anim, "out/demo.mp4", audio="speech.wav")          # doctest: +SKIP
>>> contact_sheet(anim, "out/demo_sheet.png")                       # doctest: +SKIP
"""
from __future__ import annotations

import contextlib
import os
import queue
import threading
import warnings
from pathlib import Path

import numpy as np

from toolkit.animation import VISEME_CHANNELS, VISEMES, Animation, Segment
from toolkit.checks import allowed, in_range
from toolkit import cleanup, files
from toolkit.files import atomic_write, check_output_path
from toolkit.render import SIZE_LIMITS_PX
from toolkit.phonemes.inventory import is_silence
from toolkit.render.scene import DEFAULT_HEAD, FaceRenderer, Model, ModelError, load_face_model

_FONT_PATHS = ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/TTF/DejaVuSans.ttf",
               "/Library/Fonts/Arial Unicode.ttf", "C:/Windows/Fonts/arial.ttf")


# -- what to draw -----------------------------------------------------------------------------------
def load_model(model: str | Path | Model | None) -> Model:
    """The user's character, or the toolkit's default head when None; what the preview leaves
    out (undecodable textures) is reported as a warning."""
    if isinstance(model, Model):
        return model
    mdl = load_face_model(DEFAULT_HEAD if model is None else model)
    for note in mdl.notes:
        warnings.warn(f"{mdl.source}: {note}", stacklevel=2)
    return mdl


def model_weights(anim: Animation, model: Model, profile=None) -> np.ndarray:
    """Morph weights per frame for every target slot of the model (frames x slots); see `pose`."""
    return pose(anim, model, profile)[0]


def pose(anim: Animation, model: Model, profile=None) -> tuple[np.ndarray, np.ndarray]:
    """The character's pose per frame: weights for every morph target slot (frames x slots) and the
    head's turn in world axes (frames x 4 quaternions).

    Both come from the character's `toolkit.gltf.drive.Performance`, so a VRM's expressions
    drive the morph targets they bind and other characters match a rig profile (or
    ``profile``: a name, rig JSON path or `toolkit.rigs.Profile`); slots the animation
    does not drive keep the mesh's own weights.

    >>> weights, head = pose(anim, load_model(None))         # doctest: +SKIP
    >>> weights.shape, head.shape                            # doctest: +SKIP
    ((90, 52), (90, 4))
    """
    from toolkit import rigs

    out = np.repeat(model.default_weights[None, :] if model.default_weights is not None else
                    np.zeros((1, len(model.target_names)), np.float32), anim.n_frames, axis=0)
    head = rigs.head_rotation(anim, facing=model.facing)
    if not model.target_names:
        return out.astype(np.float32), head
    if model.gltf is None:   # a scene built by hand: match its slot names directly
        try:
            return rigs.retarget(anim, model.target_names, profile).astype(np.float32), head
        except ValueError as e:
            raise ModelError(f"{model.source}: cannot map the animation to this character's morph targets "
                             f"({e})") from None
    from toolkit.gltf.drive import perform

    perf = perform(anim, model.gltf, profile)
    for node, w in perf.weights.items():
        if node in model.slots:   # nodes outside the rendered scene have no slots
            out[:, model.slots[node]] = w
    return out.astype(np.float32), perf.head_delta


def current_labels(anim: Animation, frame: int) -> tuple[str, str, str]:
    """(viseme, phoneme, word) shown at a frame."""
    t = frame / anim.fps

    def at(segs: list[Segment]) -> str:
        for s in segs:
            if s.start <= t < s.end:
                return s.label
        return ""

    phone, word = at(anim.phonemes), at(anim.words)
    vis = ""
    if any(anim.has(c) for c in VISEME_CHANNELS):
        vals = np.array([anim.channel(c)[frame] if anim.has(c) else 0.0 for c in VISEME_CHANNELS])
        vis = VISEMES[int(np.argmax(vals))] if vals.max() > 0.1 else "sil"
    elif phone:
        from toolkit.visemes.tables import visemes_for

        try:
            vis = str(visemes_for(phone)[0] or "")
        except KeyError:
            vis = ""
    return vis, "-" if is_silence(phone) else phone, word


class _Painter:
    """Text and the phoneme track, drawn with Pillow onto frames."""

    def __init__(self, height_px: int):
        from PIL import ImageFont

        self.px = max(10, int(height_px))
        self.font = None
        for p in _FONT_PATHS:
            if os.path.exists(p):
                self.font = ImageFont.truetype(p, self.px)
                self.small = ImageFont.truetype(p, max(8, int(self.px * 0.8)))
                break
        if self.font is None:
            self.font = ImageFont.load_default(size=self.px)
            self.small = ImageFont.load_default(size=max(8, int(self.px * 0.8)))

    def strip(self, anim: Animation, frame: int, width: int, height: int) -> np.ndarray:
        from PIL import Image, ImageDraw

        im = Image.new("RGB", (width, height), (24, 25, 30))
        d = ImageDraw.Draw(im)
        vis, phone, word = current_labels(anim, frame)
        t = frame / anim.fps
        pad = max(4, height // 12)
        d.text((pad, pad), f"{t:6.2f}s", fill=(150, 155, 165), font=self.small)
        d.text((int(width * 0.22), pad), f"viseme {vis or '-'}", fill=(255, 214, 120), font=self.font)
        d.text((int(width * 0.55), pad), f"/{phone}/", fill=(140, 210, 255), font=self.font)
        if word:
            d.text((int(width * 0.74), pad), word[:14], fill=(225, 225, 225), font=self.small)
        # phoneme track: +-1.5 s around now, playhead in the middle
        y0, y1 = int(height * 0.55), height - pad
        span = 3.0
        x_of = lambda s: (s - (t - span / 2)) / span * width  # noqa: E731
        for seg in anim.phonemes:
            if seg.end < t - span / 2 or seg.start > t + span / 2 or is_silence(seg.label):
                continue
            xa, xb = max(0, x_of(seg.start)), min(width - 1, x_of(seg.end))
            if xb - xa < 3:
                continue
            on = seg.start <= t < seg.end
            d.rectangle([xa + 1, y0, xb - 1, y1], fill=(70, 110, 150) if on else (48, 56, 70))
            if xb - xa > self.px * 0.6:
                d.text((xa + 3, y0 + 1), seg.label, fill=(235, 235, 235), font=self.small)
        d.line([width // 2, y0 - 3, width // 2, y1 + 2], fill=(255, 90, 90), width=2)
        return np.asarray(im)

    def label(self, img: np.ndarray, text: str) -> np.ndarray:
        from PIL import Image, ImageDraw

        im = Image.fromarray(img)
        ImageDraw.Draw(im).text((8, 6), text, fill=(235, 235, 235), font=self.font)
        return np.asarray(im)


# -- frames ---------------------------------------------------------------------------------------------
class FrameSource:
    """Renders the frames of one or two animations on one model; iterate in the thread that made it."""

    def __init__(self, anim: Animation, model: Model, size: int = 512, strip: bool = True,
                 compare: Animation | None = None, profile=None, antialias: bool = False):
        self.anims = [anim] + ([compare.resampled(anim.fps) if compare.fps != anim.fps else compare]
                               if compare is not None else [])
        self.model, self.size = model, int(size) // 2 * 2
        poses = [pose(a, model, profile) for a in self.anims]
        self.weights = [w for w, _ in poses]
        self.quats = [q for _, q in poses]
        self.n_frames = max(a.n_frames for a in self.anims)
        self.strip_h = (max(24, self.size // 7) // 2 * 2) if strip else 0
        self.width = self.size * len(self.anims)
        self.height = self.size + self.strip_h
        self.painter = _Painter(self.strip_h * 0.36 if strip else self.size / 24) \
            if (strip or compare is not None) else None
        self.renderer = FaceRenderer(model, size=self.size, antialias=antialias)

    def frame(self, i: int) -> np.ndarray:
        tiles = []
        for k, a in enumerate(self.anims):
            j = min(i, a.n_frames - 1)
            img = self.renderer.render(self.weights[k][j], self.quats[k][j])
            if len(self.anims) > 1:
                img = self.painter.label(img, "AB"[k] + ": " + str(a.meta.get("label") or a.meta.get("engine")
                                                                    or a.meta.get("source") or "")[:40])
            if self.strip_h:
                img = np.concatenate([img, self.painter.strip(a, j, self.size, self.strip_h)], axis=0)
            tiles.append(img)
        return np.ascontiguousarray(np.concatenate(tiles, axis=1) if len(tiles) > 1 else tiles[0])

    def close(self) -> None:
        self.renderer.close()


def _produce(make_source, q: queue.Queue, stop: threading.Event) -> None:
    """Worker thread: owns the GL context, renders every frame into the queue (bounded: constant memory)."""
    src = None
    try:
        src = make_source()
        q.put(("meta", (src.width, src.height, src.n_frames)))
        for i in range(src.n_frames):
            if stop.is_set():
                break
            q.put(("frame", src.frame(i)))
        q.put(("done", None))
    except BaseException as e:  # handed to the main thread, which raises it
        q.put(("error", e))
    finally:
        if src is not None:
            src.close()


def _audio_track(audio, temps: contextlib.ExitStack) -> Path:
    """Where ffmpeg reads the speech from.

    A file ffmpeg can decode is used as it is, so the preview keeps its own sample rate and
    channels; a 16 kHz float array, or a headerless PCM file (which only `toolkit.audio` can read),
    becomes a temporary 16 kHz WAV (removed when ``temps`` closes)."""
    from toolkit.audio import RAW_SUFFIXES, TARGET_RATE, load_audio, write_wav

    if isinstance(audio, (str, os.PathLike)):
        if Path(audio).suffix.lower() in RAW_SUFFIXES:
            raise ValueError(f"{audio}: a headerless PCM file has no sample rate: pass its samples "
                             "(toolkit.audio.load_audio(path, raw_rate=...)) as the audio")
        # an unreadable file fails here, with toolkit.audio's message naming it; a cut-off one
        # was refused or allowed when the animation was made, and ffmpeg muxes what is there
        load_audio(audio, allow_truncated=True)
        return Path(os.path.abspath(audio))
    x = np.asarray(audio, np.float32)
    return write_wav(temps.enter_context(cleanup.temp_file(prefix=".viseme-audio.", suffix=".wav")), x, TARGET_RATE)


def _audio_params(audio: Path, duration_s: float) -> list[str]:
    """ffmpeg output options for the speech: padded with silence or trimmed to exactly the video's
    length (frame 0 at time 0), AAC at a bitrate that suits its channels."""
    channels = 2
    try:
        import soundfile as sf

        channels = sf.info(str(audio)).channels
    except (RuntimeError, OSError):   # something only ffmpeg reads (m4a, webm): assume stereo
        pass
    d = f"{duration_s:.6f}"
    return ["-af", f"apad=whole_dur={d},atrim=end={d}", "-b:a", f"{min(96 * channels, 320)}k"]


def render_video(anim: Animation, out_path: str | Path, *, model=None, size: int = 512, audio=None,
                 strip: bool = True, compare: Animation | None = None, progress: bool = True,
                 crf: int = 20, preset: str = "veryfast", profile=None, antialias: bool = False) -> Path:
    """Render `anim` on `model` (default head when None) to an H.264 .mp4, with `audio` as AAC.

    audio: a speech file (anything `toolkit.audio.load_audio` reads; kept at its own sample rate and
    channels) or a 16 kHz float array; padded or trimmed to the video's length.
    compare: a second animation shown to the right (for example audio-only vs transcript).
    profile: rig profile for the model's morph targets (name, rig JSON path; None: detected).
    antialias: multisampled edges on the CPU (OSMesa) renderer too (`FaceRenderer`; about half the
    frame rate there, so off by default; contact sheets always have it).
    Returns the path written.  The file appears only when complete.

    >>> render_video(anim, "preview.mp4", audio="speech.wav", size=256)   # doctest: +SKIP
    """
    out = check_output_path(out_path, inputs=(audio if isinstance(audio, (str, os.PathLike)) else None,
                                              model if isinstance(model, (str, os.PathLike)) else None))
    if anim.n_frames == 0:
        raise ValueError(f"{out}: the animation has no frames")
    if not in_range(size, *SIZE_LIMITS_PX, whole=True):
        raise ValueError(f"{out}: size must be {allowed(*SIZE_LIMITS_PX, whole=True)} (pixels), got {size!r}")
    mdl = load_model(model)
    n_frames = max(anim.n_frames, compare.resampled(anim.fps).n_frames if compare is not None else 0)
    with contextlib.ExitStack() as temps:   # the speech as a WAV, the video until it is complete
        wav = _audio_track(audio, temps) if audio is not None else None
        tmp = temps.enter_context(files.temp_beside(out, ".mp4"))
        _encode(anim, mdl, tmp, wav, n_frames, size, strip, compare, profile, antialias, progress, crf, preset,
                label=out.name)
        files.publish(tmp, out)
    return out


class _Abandon(BaseException):
    """Thrown into imageio-ffmpeg's writer to make it kill ffmpeg at once (its output is discarded)."""


def _encode(anim, mdl, tmp: Path, wav: Path | None, n_frames: int, size, strip, compare, profile, antialias,
            progress: bool, crf: int, preset: str, label: str) -> None:
    """Render every frame in a worker thread and pipe it into one ffmpeg writing ``tmp``."""
    import imageio_ffmpeg

    q: queue.Queue = queue.Queue(maxsize=6)
    stop = threading.Event()
    worker = threading.Thread(target=_produce, daemon=True, name="viseme-render",
                              args=(lambda: FrameSource(anim, mdl, size, strip, compare, profile, antialias), q,
                                    stop))
    worker.start()
    bar = writer = None
    try:
        kind, meta = q.get()
        if kind == "error":
            raise meta
        w, h, n = meta
        writer = imageio_ffmpeg.write_frames(
            str(tmp), (w, h), fps=anim.fps, codec="libx264", pix_fmt_out="yuv420p", quality=None,
            macro_block_size=2, ffmpeg_log_level="error",
            output_params=["-preset", preset, "-crf", str(crf), "-movflags", "+faststart"]
            + (_audio_params(wav, n_frames / anim.fps) if wav else []),
            audio_path=str(wav) if wav else None, audio_codec="aac" if wav else None)
        writer.send(None)
        if progress:
            from tqdm import tqdm

            # disable=None: no bar when stderr is not a terminal (logs, CI)
            bar = tqdm(total=n, unit="frame", desc=f"render {label}", leave=False, disable=None)
        while True:
            kind, item = q.get()
            if kind == "frame":
                writer.send(item)
                if bar is not None:
                    bar.update(1)
            elif kind == "error":
                raise item
            else:
                break
        writer.close()   # ffmpeg finishes the file
        writer = None
    finally:
        stop.set()
        while worker.is_alive():   # unblock a worker waiting on a full queue
            try:
                q.get(timeout=0.05)
            except queue.Empty:
                pass
        if bar is not None:
            bar.close()
        if writer is not None:   # failed or interrupted half way: stop ffmpeg now, its file is removed
            try:
                writer.throw(_Abandon())
            except (_Abandon, StopIteration, Exception):
                pass


# -- stills ---------------------------------------------------------------------------------------------
def key_frames(anim: Animation, n: int = 8) -> list[int]:
    """n frames worth a look: the middles of spoken phonemes spread over the clip, else evenly spaced."""
    spoken = [s for s in anim.phonemes if not is_silence(s.label) and s.start < anim.duration_s]
    if len(spoken) >= n:
        pick = np.linspace(0, len(spoken) - 1, n).round().astype(int)
        frames = [int(round((spoken[i].start + spoken[i].end) / 2 * anim.fps)) for i in pick]
    else:
        frames = np.linspace(0, anim.n_frames - 1, n).round().astype(int).tolist()
    return [min(max(f, 0), anim.n_frames - 1) for f in frames]


def contact_sheet(anim: Animation, out_png: str | Path, model=None, n: int = 8, size: int = 256,
                  frames: list[int] | None = None, profile=None) -> Path:
    """A PNG grid of `n` key frames, each captioned with time, viseme and phoneme."""
    from PIL import Image

    out = check_output_path(out_png, inputs=(model if isinstance(model, (str, os.PathLike)) else None,))
    if anim.n_frames == 0:
        raise ValueError(f"{out}: the animation has no frames")
    mdl = load_model(model)
    frames = list(frames) if frames is not None else key_frames(anim, n)
    src = FrameSource(anim, mdl, size=size, strip=True, profile=profile, antialias=True)   # a still: no hurry
    try:
        tiles = [src.frame(f) for f in frames]
    finally:
        src.close()
    cols = min(4, len(tiles))
    rows = (len(tiles) + cols - 1) // cols
    th, tw = tiles[0].shape[:2]
    sheet = np.full((rows * th, cols * tw, 3), 12, np.uint8)
    for k, t in enumerate(tiles):
        r, c = divmod(k, cols)
        sheet[r * th:(r + 1) * th, c * tw:(c + 1) * tw] = t
    atomic_write(out, lambda p: Image.fromarray(sheet).save(p, format="PNG"))
    return out
