# The two commands a new user runs:  `make demo`  and  `make test`.
PY := .venv/bin/python
SAMPLE := assets/samples/bob.wav
SAMPLE_TEXT := assets/samples/bob.txt

.PHONY: setup demo test bench train addon clean

setup:
	@bash scripts/setup.sh

demo: setup
	@mkdir -p out
	.venv/bin/viseme animate $(SAMPLE) --transcript $(SAMPLE_TEXT) -o out/demo.json
	.venv/bin/viseme animate $(SAMPLE) --transcript $(SAMPLE_TEXT) -o out/demo.png
	@echo "demo: wrote out/demo.json and out/demo.png"

test: setup
	$(PY) -m pytest -q -ra

bench: setup
	$(PY) -m bench.run

# The Blender extension: dist/viseme_lipsync-<version>.zip (install in Blender: Get Extensions > Install from Disk)
addon:
	$(PY) blender_addon/build.py

clean:
	rm -rf out .pytest_cache
