#!/usr/bin/env bash
# Installs everything the toolkit needs on a fresh Debian 12 / Python 3.11 machine.
# Idempotent: each step checks first, so a second run takes seconds.
#   .venv          the toolkit, its `viseme` command and the test tools
#   .venv-blender  bpy 5.0.1 (needs numpy<2, so it gets its own environment)
#   node_modules   the Khronos glTF validator, three.js + three-vrm + esbuild (the `viseme view` bundle)
#                  and playwright-core (drives Debian's chromium in the browser tests)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

# -- Debian packages ---------------------------------------------------------
# espeak-ng: IPA for ~100 languages and synthesized speech with exact timings;
# libosmesa6: offscreen rendering without a GPU; sox/libsndfile: audio I/O;
# fonts-dejavu-core: IPA glyphs in the preview video's label strip;
# libportaudio2: microphone input of `viseme live` (sounddevice); chromium: the real browser the
# `viseme view` and three.js loader tests run (playwright-core drives it; no browser is downloaded).
# gcc, patch, python3-dev: PocketSphinx is built from source with one fix (below).
APT_PACKAGES="gcc patch python3-dev espeak-ng libespeak-ng1 libosmesa6 libsndfile1 sox fonts-dejavu-core libportaudio2 nodejs npm chromium"
missing=""
for p in $APT_PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# node may come from elsewhere than Debian (it is preinstalled on some images)
if command -v node >/dev/null && command -v npm >/dev/null; then
  missing=$(echo "$missing" | sed -e 's/\bnodejs\b//' -e 's/\bnpm\b//')
fi
if [ -n "$(echo $missing)" ]; then
  echo "setup: installing Debian packages:$missing"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

# -- the toolkit's virtual environment ---------------------------------------
# .venv is the development environment: the toolkit (editable) with every extra the tests use
# (render, train, test, live, cluster, ja).  The core install that `pip install viseme-toolkit` gives needs none of them.
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
if ! .venv/bin/python -c "import toolkit, torch, scipy, pocketsphinx, pyrender, OpenGL, imageio_ffmpeg, pytest, hypothesis, meshopt, hatchling, pythonosc, websockets, sounddevice, yaml, srt, webvtt, distributed, janome" 2>/dev/null; then
  echo "setup: installing Python packages into .venv"
  .venv/bin/pip install -q --upgrade pip
  # torch pinned: 2.13.0 is the CPU wheel; an unpinned torch pulls gigabytes of CUDA
  .venv/bin/pip install -q "torch==2.13.0"
  .venv/bin/pip install -q -e ".[render,train,test,live,cluster,ja]"
  # pyrender pins an old PyOpenGL; 3.1.10 is the one that works with OSMesa here
  .venv/bin/pip install -q "PyOpenGL==3.1.10"
fi
# -- PocketSphinx with one fix (scripts/patches/; the reason is at the top of the patch) ------------
# Built once from PyPI's source release of the same version (gcc; about 40 s).  It saves CPU, it
# changes no result, so a failed build keeps PyPI's wheel with a warning and is not retried until
# .venv/pocketsphinx-patch is removed.  `pip install viseme-toolkit` gets PyPI's wheel (README, Scale).
PS_PATCH=scripts/patches/pocketsphinx-5.1.1-state-align-clear-active.patch
PS_STAMP=.venv/pocketsphinx-patch
ps_want="$(sha256sum < "$PS_PATCH" | cut -c1-16)"
if ! grep -q "$ps_want" "$PS_STAMP" 2>/dev/null; then
  echo "setup: building PocketSphinx 5.1.1 with $PS_PATCH"
  rm -rf build/pocketsphinx && mkdir -p build/pocketsphinx
  if .venv/bin/pip download -q --no-deps --no-binary pocketsphinx -d build/pocketsphinx "pocketsphinx==5.1.1" &&
     tar -xzf build/pocketsphinx/pocketsphinx-5.1.1.tar.gz -C build/pocketsphinx &&
     patch -s -d build/pocketsphinx/pocketsphinx-5.1.1 -p1 < "$PS_PATCH" &&
     CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" .venv/bin/pip wheel -q --no-deps -w build/pocketsphinx/wheel build/pocketsphinx/pocketsphinx-5.1.1 &&
     .venv/bin/pip install -q --no-deps --force-reinstall build/pocketsphinx/wheel/pocketsphinx-5.1.1-*.whl; then
    echo "patched $ps_want" > "$PS_STAMP"
  else
    echo "setup: warning: building the patched PocketSphinx failed; PyPI's wheel stays (same results, slower long files)" >&2
    echo "unpatched $ps_want (build failed; remove this file to try again)" > "$PS_STAMP"
  fi
fi
# -- the core install's wheels (tests/test_package.py installs the toolkit's wheel from them, offline) --
# every dependency of the core install, downloaded once into build/wheelhouse (gitignored)
if [ ! -f build/wheelhouse/.complete ]; then
  echo "setup: downloading the core install's wheels into build/wheelhouse"
  mkdir -p build/wheelhouse
  .venv/bin/python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml','rb'))['project']['dependencies']))" \
    > build/wheelhouse/requirements.txt
  # `pip wheel`, not `download`: some dependencies (g2p-en's `distance`) are published as sources only
  .venv/bin/pip wheel -q -w build/wheelhouse -r build/wheelhouse/requirements.txt hatchling
  touch build/wheelhouse/.complete
fi

# -- npm: glTF validator, three.js/three-vrm/esbuild (viewer bundle), playwright-core ---------
# The validator is a set-up dependency of the tests: in CI (CI=true) a test that needs it fails
# when it is missing (tests/conftest.py), so setup checks below that it loads.
# exact versions from package-lock.json (npm ci); the viewer bundle is rebuilt from them by
# scripts/build_viewer.sh and a test checks the committed toolkit/view/viewer.bundle.js matches
npm_ok=1
for m in gltf-validator three @pixiv/three-vrm @pixiv/three-vrm-animation esbuild playwright-core; do
  [ -d "node_modules/$m" ] || npm_ok=0
done
if [ -f package.json ] && [ "$npm_ok" = 0 ]; then
  echo "setup: installing npm packages (glTF validator, three.js, three-vrm, esbuild, playwright-core)"
  if [ -f package-lock.json ]; then
    npm ci --silent --no-audit --no-fund >/dev/null
  else
    npm install --silent --no-audit --no-fund >/dev/null
  fi
fi
if [ -f package.json ] && ! node -e "import('gltf-validator').then(v => process.exit(v.default.version() ? 0 : 1), () => process.exit(1))"; then
  echo "setup: the Khronos glTF validator (node_modules/gltf-validator) does not load; remove node_modules and run again" >&2
  exit 1
fi

# -- Blender (bpy) environment -----------------------------------------------
# (pytest too: the add-on's own tests run inside it, see tests/test_blender.py)
if [ -f blender_addon/requirements-bpy.txt ] && \
   ! { [ -x .venv-blender/bin/python ] && .venv-blender/bin/python -c "import bpy, pytest" 2>/dev/null; }; then
  echo "setup: installing bpy into .venv-blender (about 1 GB)"
  [ -x .venv-blender/bin/python ] || "$PY" -m venv .venv-blender
  .venv-blender/bin/pip install -q --upgrade pip
  .venv-blender/bin/pip install -q -r blender_addon/requirements-bpy.txt
fi
# Optional: older Blender LTS releases for the add-on tests (VISEME_BLENDER_LTS="4.2.23 4.5.15")
for v in ${VISEME_BLENDER_LTS:-}; do
  d=".venv-blender-${v%.*}"
  if ! { [ -x "$d/bin/python" ] && "$d/bin/python" -c "import bpy, pytest" 2>/dev/null; }; then
    echo "setup: installing bpy $v into $d"
    [ -x "$d/bin/python" ] || "$PY" -m venv "$d"
    "$d/bin/pip" install -q --upgrade pip
    "$d/bin/pip" install -q "bpy==$v" "numpy<2" "pytest>=7"
  fi
done
# -- training voices (only for `make train`) ----------------------------------
# festival's and flite's English voices from real speakers (kal, ked diphones; slt HTS; flite rms, awb, slt, kal16) widen the
# training data beyond espeak-ng (toolkit/train/voices.py uses them when installed); festival's non-English voices
# (Italian, Catalan, Finnish, Russian, Hindi, Marathi, Telugu, Czech) train and test the universal aligner
# (toolkit/train/speech.py; the Czech and one Finnish voice are held out for its sentence test in bench/)
TRAIN_VOICES="festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts flite festvox-italp16k festvox-itapc16k
  festvox-ca-ona-hts festvox-suopuhe-lj festvox-suopuhe-mv festvox-ru festvox-hi-nsk festvox-mr-nsk festvox-te-nsk
  festvox-czech-dita festvox-czech-krb festvox-czech-machac festvox-czech-ph"
if [ "${VISEME_SETUP_TRAIN:-0}" = 1 ] || [ "${VISEME_SETUP_BENCH:-0}" = 1 ]; then
  missing_voices=""
  for p in $TRAIN_VOICES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing_voices="$missing_voices $p"
  done
  if [ -n "$missing_voices" ]; then
    echo "setup: installing festival, flite and their voices (training data, sentence benchmark):$missing_voices"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing_voices >/dev/null
  fi
fi
# -- bench peers (only for `make bench`) --------------------------------------
if [ "${VISEME_SETUP_BENCH:-0}" = 1 ]; then
  # openfacefx (PyPI): a text-driven lip-sync peer, numpy only
  .venv/bin/python -c "import openfacefx" 2>/dev/null || .venv/bin/pip install -q "openfacefx==0.24.0"
  # uLipSync peer for the neural bench (pylipsync pins numpy<2.4: own venv)
  if [ ! -x .venv-pylipsync/bin/python ] || ! .venv-pylipsync/bin/python -c "import pylipsync" 2>/dev/null; then
    echo "setup: installing pylipsync (bench peer) into .venv-pylipsync"
    "$PY" -m venv .venv-pylipsync
    .venv-pylipsync/bin/pip install -q "pylipsync==0.2.1"
  fi
fi
echo "setup: ready"
