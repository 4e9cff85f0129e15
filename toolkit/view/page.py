"""The `viseme view` page: one self-contained HTML file that plays a character in sync with its sound.

The page holds everything it needs, so it works offline and from ``file://``:

* the viewer script, ``viewer.bundle.js`` (three.js + @pixiv/three-vrm, bundled from
  ``viewer/main.js`` by ``scripts/build_viewer.sh`` and shipped inside the package);
* the character: the animated .glb/.vrm the toolkit's glTF writer makes
  (`toolkit.export.gltf`), so the browser plays the same Performance as every other output;
* the animation JSON (curves, phonemes, words) for the labels and the curve strip;
* the sound (base64): the original file when browsers play its type, else a WAV of it.

Example
-------
>>> html = build_page(anim, model="avatar.vrm", audio_path="speech.wav")   # doctest: +SKIP
>>> write_page(anim, "talk.html", model="avatar.vrm", audio_path="speech.wav")   # doctest: +SKIP
"""
from __future__ import annotations

import base64
import html
import io
import json
import re
from importlib import resources
from pathlib import Path

import numpy as np

from toolkit import cleanup
from toolkit.animation import Animation
from toolkit.files import atomic_write

BUNDLE = "viewer.bundle.js"

# Audio types every current browser's <audio> plays, embedded as they are; other files
# (raw PCM, AIFF, 24-bit oddities, SPHERE...) are embedded as a 16-bit WAV of their samples.
BROWSER_AUDIO = {".wav": "audio/wav", ".mp3": "audio/mpeg", ".ogg": "audio/ogg", ".oga": "audio/ogg",
                 ".opus": "audio/ogg", ".flac": "audio/flac", ".m4a": "audio/mp4", ".webm": "audio/webm"}


def viewer_script() -> str:
    """The bundled viewer script (package data; see scripts/build_viewer.sh)."""
    path = resources.files("toolkit.view").joinpath(BUNDLE)
    try:
        code = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RuntimeError(f"{path}: the viewer bundle is missing; build it with `bash scripts/build_viewer.sh`") \
            from None
    if re.search(r"</script|<!--", code, re.I):  # would end or derail the inline <script>
        raise RuntimeError(f"{path}: the bundle contains '</script' or '<!--' and cannot be inlined")
    return code


def model_bytes(anim: Animation, model: str | Path | None = None, profile=None) -> tuple[bytes, str, object]:
    """The character talking, as the glTF writer makes it: (GLB or VRM bytes, facing, WriteReport).

    ``model`` None: the default head."""
    from toolkit.export import gltf
    from toolkit.gltf.read import load_model

    with cleanup.temp_dir(prefix="viseme-view-") as tmp:  # removed on an interrupt too; a working folder
        if model is None:
            out = Path(tmp) / "head.glb"
            rep = gltf.write_standalone_head(anim, out)
            facing = "+z"
        else:
            m = load_model(model)
            out = Path(tmp) / ("model.vrm" if m.vrm is not None else "model.glb")
            rep = gltf.write_animated_model(anim, model, out, profile=profile)
            facing = m.facing
        return out.read_bytes(), facing, rep


def audio_payload(audio_path: str | Path | None = None, samples: np.ndarray | None = None,
                  sample_rate: int = 16000) -> dict | None:
    """{"mime", "base64"} of the sound: the file itself when browsers play its type, else a WAV of ``samples``."""
    if audio_path is not None and Path(audio_path).suffix.lower() in BROWSER_AUDIO:
        data = Path(audio_path).read_bytes()
        return {"mime": BROWSER_AUDIO[Path(audio_path).suffix.lower()], "base64": base64.b64encode(data).decode()}
    if samples is None and audio_path is not None:
        from toolkit.audio import load_audio

        samples = load_audio(audio_path)
    if samples is None:
        return None
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.clip(np.asarray(samples, np.float32), -1, 1), int(sample_rate), subtype="PCM_16", format="WAV")
    return {"mime": "audio/wav", "base64": base64.b64encode(buf.getvalue()).decode()}


def _json_in_script(value) -> str:
    """JSON that cannot end or derail the <script> element it sits in (every ``<`` as ``\\u003c``, the same JSON)."""
    return json.dumps(value, ensure_ascii=False).replace("<", "\\u003c")


def build_page(anim: Animation, model: str | Path | None = None, *, audio_path=None, samples=None,
               profile=None, title: str | None = None) -> tuple[str, object]:
    """The page's HTML and the glTF writer's report (what the character's clip drives)."""
    data, facing, rep = model_bytes(anim, model, profile)
    name = Path(model).name if model is not None else "default head"
    title = title or (f"{name} — {Path(audio_path).name}" if audio_path else name)
    payload = {
        "title": title,
        "model": {"name": name, "facing": facing, "base64": base64.b64encode(data).decode()},
        "audio": audio_payload(audio_path, samples),
        "animation": anim.to_dict(),
    }
    doc = ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
           "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\n"
           f"<meta name=\"generator\" content=\"viseme-toolkit\">\n<title>{html.escape(title)}</title>\n"
           "</head><body>\n"
           f"<script type=\"application/json\" id=\"viseme-data\">{_json_in_script(payload)}</script>\n"
           f"<script>{viewer_script()}</script>\n</body></html>\n")
    return doc, rep


def loader_page() -> str:
    """A page with the viewer script and no character: its ``window.viseme.inspect`` loads any
    .glb/.vrm/.vrma with the viewer's loader (the tests check every export through it)."""
    return (f"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>viseme loader</title></head>"
            f"<body>\n<script>{viewer_script()}</script>\n</body></html>\n")


def write_page(anim: Animation, path: str | Path, model=None, *, audio_path=None, samples=None, profile=None,
               title: str | None = None):
    """Write the page to ``path`` atomically; returns the glTF writer's report."""
    doc, rep = build_page(anim, model, audio_path=audio_path, samples=samples, profile=profile, title=title)
    atomic_write(path, doc)
    rep.out_path = str(path)
    return rep
