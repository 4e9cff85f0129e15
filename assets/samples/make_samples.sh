#!/usr/bin/env bash
# Rebuilds the bundled demo sample: speech synthesized by espeak-ng (made by this
# project, no third-party recording), 22.05 kHz mono 16-bit WAV, and its transcript.
set -euo pipefail
cd "$(dirname "$0")"
TEXT="Bob made a map of Paris, and we watched the fireworks over the river."
printf '%s\n' "$TEXT" > bob.txt
espeak-ng -v en-us+m3 -s 160 -w bob.wav "$TEXT"
