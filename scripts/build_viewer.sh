#!/usr/bin/env bash
# Builds toolkit/view/viewer.bundle.js: viewer/main.js with three.js and @pixiv/three-vrm (exact versions
# in package.json / package-lock.json), bundled and minified by esbuild into ONE script that
# `viseme view` inlines into its pages (no CDN, works from file://).
#
# The bundle is committed (like the trained weights), so a pip-installed toolkit needs no node;
# run this after changing viewer/main.js or the npm versions.  tests/test_viewer.py checks that
# rebuilding gives the committed file byte for byte.
#   bash scripts/build_viewer.sh [OUT]      (default OUT: toolkit/view/viewer.bundle.js)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-toolkit/view/viewer.bundle.js}
[ -x node_modules/.bin/esbuild ] || { echo "build_viewer: run 'npm ci' (or make setup) first" >&2; exit 2; }
node_modules/.bin/esbuild viewer/main.js --bundle --minify --format=iife --target=es2020 \
  --legal-comments=eof --charset=utf8 --log-level=warning --outfile="$out"
