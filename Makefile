# The two commands a new user runs:  `make demo`  and  `make test`.
PY := .venv/bin/python
SAMPLE := assets/samples/bob.wav
SAMPLE_TEXT := assets/samples/bob.txt

.PHONY: setup demo test bench train train-aligner addon clean fuzz

setup:
	@bash scripts/setup.sh

# The main job on the bundled sample: curves (JSON, Live Link CSV, plot), the
# default head talking as a GLB, and a preview video with sound.
demo: setup
	@mkdir -p out
	.venv/bin/viseme animate $(SAMPLE) --transcript $(SAMPLE_TEXT) \
		-o out/demo.json -o out/demo.csv -o out/demo.png -o out/demo.glb -o out/demo.mp4
	@echo "demo: wrote out/demo.json out/demo.csv out/demo.png out/demo.glb out/demo.mp4"

test: setup
	$(PY) -m pytest -q -ra

# Fuzz every parser of user files for FUZZ_SECONDS each (default 10 minutes; `make -j2 fuzz` runs two
# at a time); failing inputs land in tests/fuzz_regressions/<target>/ and `make test` replays them.
FUZZ_SECONDS ?= 600
FUZZ_TARGETS := audio gltf textgrid text options animation_json rig
fuzz: $(addprefix fuzz-,$(FUZZ_TARGETS))
fuzz-%: setup
	VISEME_FUZZ_SECONDS=$(FUZZ_SECONDS) OMP_NUM_THREADS=1 $(PY) -m pytest -q -s -p no:cacheprovider \
		"tests/test_fuzz.py::test_fuzz[$*]"

bench:
	@VISEME_SETUP_BENCH=1 bash scripts/setup.sh
	$(PY) -m bench.run

# Retrain the neural audio-to-face model (CPU, about an hour; see assets/model/MODEL_CARD.md)
train:
	@VISEME_SETUP_TRAIN=1 bash scripts/setup.sh
	.venv/bin/viseme train

# Retrain the universal aligner's frame classifier (CPU, about 40 min; see assets/model/ALIGNER_CARD.md)
train-aligner:
	@VISEME_SETUP_TRAIN=1 bash scripts/setup.sh
	$(PY) -m toolkit.train.aligner

# The Blender extension: dist/viseme_lipsync-<version>.zip (install in Blender: Get Extensions > Install from Disk)
addon:
	$(PY) blender_addon/build.py

clean:
	rm -rf out .pytest_cache
