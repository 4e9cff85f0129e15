"""Build the installable Blender extension: ``dist/viseme_lipsync-<version>.zip``.

The zip holds the add-on's panel (``__init__.py``), a copy of the toolkit laid
out as in the repo (``vendor/toolkit`` with its Blender side ``toolkit/blender``,
``vendor/rigs``, ``vendor/assets/model`` with the neural model's numpy weights,
which run without torch) and the wheels Blender installs for it (``wheels/``,
listed in the manifest's ``wheels``).  Wheels are downloaded for both of
Blender's Pythons (3.11 in Blender 4.2 - 5.0, 3.13 in 5.1 and later;
manylinux x86_64) into ``build/blender-wheels`` once and reused.  Blender
installs only the wheels that match its own Python.

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
ADDON_MODULES = ["__init__.py"]  # the panel; everything else is the bundled toolkit (toolkit/blender/ among it)
WHEEL_CACHE = REPO / "build" / "blender-wheels"
# Blender's Python: 3.11 in Blender 4.2 - 5.0, 3.13 from 5.1 (the manifest sets no maximum Blender version)
PYTHONS = ("3.11", "3.13")
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64", "linux_x86_64"]
# Blender's extension validator rejects files it does not expect in a package
_SKIP_DIRS = {"__pycache__", ".pytest_cache"}
# the toolkit's training code (torch) is not part of what Blender runs
_SKIP_TOOLKIT = {"train"}


def project_version() -> str:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]


def requirements() -> list[str]:
    lines = (HERE / "requirements-wheels.txt").read_text(encoding="utf-8").splitlines()
    return [ln.split("#")[0].strip() for ln in lines if ln.split("#")[0].strip()]


def download_wheels(reqs: list[str], dest: Path = WHEEL_CACHE, pythons: tuple[str, ...] = PYTHONS) -> list[Path]:
    """The wheels for `reqs` for each of Blender's Pythons (one per requirement and Python, shared when
    pure), downloaded once into `dest`."""
    wheels: list[Path] = []
    for py in pythons:
        for w in _download_for(reqs, dest, py):
            if w not in wheels:
                wheels.append(w)
    return wheels


def _download_for(reqs: list[str], dest: Path, py: str) -> list[Path]:
    abi = "cp" + py.replace(".", "")
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
           "--python-version", py, "--implementation", "cp", "--abi", abi, "--abi", "abi3", "--abi", "none",
           "-d", str(dest)]
    for p in PLATFORMS + ["any"]:
        cmd += ["--platform", p]
    # offline first: a cache that already satisfies every requirement needs no network
    r = subprocess.run(cmd + ["--no-index", "--find-links", str(dest)] + reqs, capture_output=True, text=True)
    if r.returncode != 0:
        r = subprocess.run(cmd + reqs, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"build.py: cannot download the wheels for Blender's Python {py} ({' '.join(reqs)}):\n"
                         f"{r.stderr[-2000:]}")
    wheels = []
    for req in reqs:
        name = re.split(r"[<>=!~ \[]", req, maxsplit=1)[0]
        canon = re.sub(r"[-_.]+", "_", name).lower()
        hits = sorted(w for w in dest.glob("*.whl") if re.sub(r"[-_.]+", "_", w.name.split("-")[0]).lower() == canon
                      and wheel_fits(w.name, py))
        if not hits:
            raise SystemExit(f"build.py: no wheel for {req} (Python {py}) in {dest}")
        wheels.append(_newest(hits))
    return wheels


def wheel_fits(filename: str, py: str) -> bool:
    """Whether a wheel (by its file name tags) runs on CPython `py` ("3.11").

    >>> [wheel_fits(n, "3.11") for n in ("a-1-cp311-cp311-linux_x86_64.whl", "a-1-cp313-cp313-linux_x86_64.whl",
    ...                                   "a-1-py3-none-any.whl", "a-1-cp38-abi3-linux_x86_64.whl")]
    [True, False, True, True]
    """
    major, minor = (int(x) for x in py.split("."))
    py_tags, abi_tags = (t.split(".") for t in filename[:-4].split("-")[-3:-1])
    for tag in py_tags:
        m = re.fullmatch(r"(cp|py)(\d)(\d*)", tag)
        if not m or int(m.group(2)) != major:
            continue
        tag_minor = int(m.group(3)) if m.group(3) else None
        if "abi3" in abi_tags:  # the stable ABI: built for that Python or any later one
            if tag_minor is None or tag_minor <= minor:
                return True
        elif m.group(1) == "py" and "none" in abi_tags and (tag_minor is None or tag_minor <= minor):
            return True
        elif tag_minor == minor and (f"cp{major}{minor}" in abi_tags or "none" in abi_tags):
            return True
    return False


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


def _add_tree(zf: zipfile.ZipFile, src: Path, arc: str, suffixes: tuple[str, ...] | None = None,
              skip: set[str] = frozenset()) -> int:
    n = 0
    for root, dirs, files in os.walk(src):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS | skip and not d.startswith("."))
        for f in sorted(files):
            if f.startswith(".") or f.endswith((".pyc", ".pyo")) or (suffixes and not f.endswith(suffixes)):
                continue
            p = Path(root) / f
            zf.write(p, f"{arc}/{p.relative_to(src).as_posix()}")
            n += 1
    return n


def build(out_dir: Path = REPO / "dist", wheels: bool = True, pythons: tuple[str, ...] = PYTHONS) -> Path:
    """Write the extension zip atomically; returns its path."""
    version = project_version()
    wheel_files = download_wheels(requirements(), pythons=pythons) if wheels else []
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
            _add_tree(zf, REPO / "toolkit", "vendor/toolkit", (".py", ".json", ".txt", ".dic", ".dict"),
                      skip=_SKIP_TOOLKIT)
            _add_tree(zf, REPO / "rigs", "vendor/rigs", (".json", ".md"))
            # the neural model's numpy weights: the audio-only and hybrid engines run without torch
            _add_tree(zf, REPO / "assets" / "model", "vendor/assets/model", (".npz", ".md"))
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
    ap.add_argument("--python", action="append", choices=PYTHONS, dest="pythons",
                    help="only the wheels for this Blender Python (repeatable; default: all, "
                         f"{', '.join(PYTHONS)}): a smaller zip for one Blender line")
    args = ap.parse_args(argv)
    out = build(Path(args.out_dir), wheels=not args.no_wheels, pythons=tuple(args.pythons or PYTHONS))
    print(f"{out} ({out.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
