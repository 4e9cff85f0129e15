"""A real browser for tests: Debian's chromium (headless) through playwright-core (tests/browser/driver.mjs).

``Browser`` starts the driver once; ``goto``/``eval``/``screenshot``/``errors`` talk to it
one JSON line at a time.  `browser_or_skip` is the session fixture's body: it skips with the
reason when chromium, node or playwright-core is missing, and fails instead under CI=true
(CI must have them: scripts/setup.sh installs them).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
from conftest import missing_dependency

ROOT = Path(__file__).resolve().parents[1]
DRIVER = ROOT / "tests" / "browser" / "driver.mjs"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


class Browser:
    def __init__(self):
        self.proc = subprocess.Popen(["node", str(DRIVER)], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env={**os.environ, "CHROMIUM": CHROMIUM})
        self._blank: Path | None = None

    def call(self, op: str, **kw):
        self.proc.stdin.write(json.dumps({"op": op, **kw}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"browser driver died: {self.proc.stderr.read()[-3000:]}")
        answer = json.loads(line)
        if not answer["ok"]:
            raise RuntimeError(f"browser: {op} failed: {answer['error']}")
        return answer.get("result")

    def goto(self, path: Path) -> list[str]:
        """Open a page (a file) and wait until its viewer is ready; returns the errors so far."""
        return self.call("goto", url=Path(path).resolve().as_uri())["errors"]

    def goto_blank(self) -> None:
        """A fresh page with only the viewer script (`toolkit.view.page.loader_page`): window.viseme.inspect."""
        if self._blank is None:
            import tempfile

            from toolkit.view.page import loader_page

            self._blank = Path(tempfile.mkdtemp(prefix="viseme-loader-")) / "loader.html"
            self._blank.write_text(loader_page(), encoding="utf-8")
        errors = self.goto(self._blank)
        assert errors == [], errors

    def eval(self, fn: str, arg=None):
        return self.call("eval", fn=fn, arg=arg)

    def screenshot(self, path: Path) -> np.ndarray:
        from PIL import Image

        self.call("screenshot", path=str(path))
        return np.asarray(Image.open(path).convert("RGB"))

    def errors(self) -> list[str]:
        return self.call("errors")

    def close(self) -> None:
        try:
            self.call("close")
            self.proc.stdin.close()
        except (RuntimeError, OSError, ValueError):
            pass
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def missing_browser_parts() -> list[str]:
    missing = []
    if not Path(CHROMIUM).exists():
        missing.append(f"chromium ({CHROMIUM}; Debian package 'chromium')")
    if shutil.which("node") is None:
        missing.append("node")
    if not (ROOT / "node_modules" / "playwright-core").is_dir():
        missing.append("npm playwright-core (`npm ci` in the repo root)")
    return missing


def browser_or_skip():
    """A started Browser, or a skip (a failure under CI=true) naming what is missing."""
    missing = missing_browser_parts()
    if missing:
        missing_dependency("browser tests need " + ", ".join(missing) + " (make setup installs them)")
    return Browser()
