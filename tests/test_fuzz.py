"""Fuzzing the parsers of user files (`tests/fuzz_targets.py`): a few seconds each here, ten minutes
each with `make fuzz`; every failure ever found is kept in tests/fuzz_regressions/ and replayed."""
import pytest
from fuzz_targets import (animation_json_seeds, audio_seeds, check_animation_json, check_audio, check_gltf,
                          check_options, check_text, check_textgrid, gltf_seeds, mutated_json,
                          check_rig, mutated_bytes, mutated_gltf, mutated_textgrid, option_values, regressions,
                          rig_seeds, run, textgrid_seeds, transcripts)

TARGETS = {
    # name: (check, strategy maker, examples in `make test`)
    "audio": (check_audio, lambda: mutated_bytes(audio_seeds()), 60),
    "gltf": (check_gltf, lambda: mutated_gltf(gltf_seeds()), 60),
    "textgrid": (check_textgrid, lambda: mutated_textgrid(textgrid_seeds()), 100),
    "text": (check_text, transcripts, 60),
    "options": (check_options, option_values, 150),
    "animation_json": (check_animation_json, lambda: mutated_json(animation_json_seeds()), 100),
    "rig": (check_rig, lambda: mutated_json(rig_seeds()), 100),
}


@pytest.mark.parametrize("target", list(TARGETS))
def test_fuzz(target):
    check, strategy, examples = TARGETS[target]
    assert run(target, strategy(), check, examples) >= examples


@pytest.mark.parametrize("target,example", [(t, e) for t in TARGETS for e in regressions(t)],
                         ids=lambda x: x if isinstance(x, str) else x[0])
def test_fuzz_regression(target, example):
    TARGETS[target][0](example)
