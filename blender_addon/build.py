"""Build the installable Blender extension: ``dist/viseme_lipsync-<version>.zip``.

The zip holds the add-on modules, a copy of the toolkit laid out as in the
repo (``vendor/toolkit``, ``vendor/rigs``, ``vendor/assets/model`` when the
neural weights exist) and the wheels Blender installs for it (``wheels/``,
listed in the manifest's ``wheels``).  Wheels are downloaded for Blender's
Python (3.11, manylinux x86_64) into ``build/blender-wheels`` once and reused.

Usage::

    python blender_addon/build.py                  # -> dist/viseme_lipsync-0.1.0.zip
    python blender_addon/build.py --no-wheels      # modules only (tests of the UI code)

Example
-------
>>> text = manifest_text({"version": "1.2.3"}, ["./wheels/a-1.0-py3-none-any.whl"])
>>> 'wheels = ["./wheels/a-1.0-py3-none-any.whl"]' in text.splitlines(), 'version = "1.2.3"' in text
(True, True)
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
ADDON_MODULES = ["__init__.py", "keyframes.py", "lipsync.py"]
WHEEL_CACHE = REPO / "build" / "blender-wheels"
PY_VERSION, ABI = "3.11", "cp311"
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64", "linux_x86_64"]
# Blender's extension validator rejects files it does not expect in a package
_SKIP_DIRS = {"__pycache__", ".pytest_cache"}


def project_version() -> str:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]


def requirements() -> list[str]:
    lines = (HERE / "requirements-wheels.txt").read_text(encoding="utf-8").splitlines()
    return [ln.split("#")[0].strip() for ln in lines if ln.split("#")[0].strip()]


def download_wheels(reqs: list[str], dest: Path = WHEEL_CACHE) -> list[Path]:
    """The wheels for `reqs` (one per requirement) for Blender's Python, downloaded once into `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
           "--python-version", PY_VERSION, "--implementation", "cp", "--abi", ABI, "--abi", "abi3", "--abi", "none",
           "-d", str(dest)]
    for p in PLATFORMS + ["any"]:
        cmd += ["--platform", p]
    # offline first: a cache that already satisfies every requirement needs no network
    r = subprocess.run(cmd + ["--no-index", "--find-links", str(dest)] + reqs, capture_output=True, text=True)
    if r.returncode != 0:
        r = subprocess.run(cmd + reqs, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"build.py: cannot download the wheels for Blender ({' '.join(reqs)}):\n{r.stderr[-2000:]}")
    wheels = []
    for req in reqs:
        name = re.split(r"[<>=!~ \[]", req, maxsplit=1)[0]
        canon = re.sub(r"[-_.]+", "_", name).lower()
        hits = sorted(w for w in dest.glob("*.whl") if re.sub(r"[-_.]+", "_", w.name.split("-")[0]).lower() == canon)
        if not hits:
            raise SystemExit(f"build.py: no wheel for {req} in {dest}")
        wheels.append(_newest(hits))
    return wheels


def _newest(paths: list[Path]) -> Path:
    def key(p: Path):
        return tuple(int(x) if x.isdigit() else 0 for x in re.split(r"[.]", p.name.split("-")[1]))
    return max(paths, key=key)


def manifest_text(fields: dict, wheel_paths: list[str]) -> str:
    """The template manifest with `fields` overridden and the wheels listed."""
    text = (HERE / "blender_manifest.toml").read_text(encoding="utf-8")
    text = "\n".join(ln for ln in text.splitlines() if not ln.startswith("# Template"))
    for k, v in fields.items():
        text, n = re.subn(rf'(?m)^{k} = ".*"$', f'{k} = "{v}"', text)
        if not n:
            raise ValueError(f"blender_manifest.toml has no line '{k} = ...'")
    head, sep, tail = text.partition("\n[")
    if wheel_paths:
        head = head.rstrip() + "\nwheels = [" + ", ".join(f'"{w}"' for w in wheel_paths) + "]\n"
    return head + (sep + tail if sep else "")


def _add_tree(zf: zipfile.ZipFile, src: Path, arc: str, suffixes: tuple[str, ...] | None = None) -> int:
    n = 0
    for root, dirs, files in os.walk(src):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith("."))
        for f in sorted(files):
            if f.startswith(".") or f.endswith((".pyc", ".pyo")) or (suffixes and not f.endswith(suffixes)):
                continue
            p = Path(root) / f
            zf.write(p, f"{arc}/{p.relative_to(src).as_posix()}")
            n += 1
    return n


def build(out_dir: Path = REPO / "dist", wheels: bool = True) -> Path:
    """Write the extension zip atomically; returns its path."""
    version = project_version()
    wheel_files = download_wheels(requirements()) if wheels else []
    wheel_arcs = [f"./wheels/{w.name}" for w in wheel_files]
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"viseme_lipsync-{version}.zip"
    fd, tmp = tempfile.mkstemp(prefix=".viseme_lipsync.", suffix=".zip.part", dir=out_dir)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
            manifest = manifest_text({"version": version}, wheel_arcs)
            if not wheels:
                manifest = re.sub(r'(?m)^platforms = .*\n', "", manifest)
            zf.writestr("blender_manifest.toml", manifest)
            for m in ADDON_MODULES:
                zf.write(HERE / m, m)
            _add_tree(zf, REPO / "toolkit", "vendor/toolkit", (".py", ".json", ".txt", ".dic", ".dict"))
            _add_tree(zf, REPO / "rigs", "vendor/rigs", (".json", ".md"))
            if (REPO / "assets" / "model").is_dir():
                _add_tree(zf, REPO / "assets" / "model", "vendor/assets/model")
            for w, arc in zip(wheel_files, wheel_arcs):
                # wheels are zips already: storing them saves time and loses nothing
                zf.write(w, arc[2:], compress_type=zipfile.ZIP_STORED)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-o", "--out-dir", default=str(REPO / "dist"), help="folder for the zip (default dist/)")
    ap.add_argument("--no-wheels", action="store_true", help="leave the wheels out (no download)")
    args = ap.parse_args(argv)
    out = build(Path(args.out_dir), wheels=not args.no_wheels)
    print(f"{out} ({out.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
