"""How the coarticulation constants were chosen: a sweep on synthesized speech.

The reference here is espeak-ng's own phoneme timing (exact), in several voices
and languages, so the sweep scores the coarticulation model alone, without
alignment error, and never touches the measurement recordings (TIMIT).

    python -m bench.tune_coarticulation                 # score the defaults
    python -m bench.tune_coarticulation --sweep         # small grid around them
"""
from __future__ import annotations

import argparse
import itertools
from dataclasses import replace


from bench.metrics import pool, score_visemes, viseme_matrix
from toolkit.visemes.coarticulation import DEFAULT_PARAMS, animate_phonemes

SENTENCES = [
    ("en", "Bob made a map of Paris, and we watched the fireworks over the river."),
    ("en", "Please pass the butter before the bread gets cold."),
    ("en", "Five wives found a few fine violins in the van."),
    ("en", "She sells sea shells by the sea shore, mostly on Monday mornings."),
    ("en", "Thank you for thinking of the theatre this Thursday."),
    ("en", "My mother made marmalade with the plums from the big old tree."),
    ("en", "How much wood would a woodchuck chuck if it could?"),
    ("de", "Guten Morgen, wir fahren heute mit dem Bus nach Berlin."),
    ("fr", "Bonjour, je voudrais un petit pain au chocolat, s'il vous plait."),
    ("es", "Buenos dias, me gustaria comprar unas manzanas para mi madre."),
]
VOICES = [None, "f3", "m2", "f1"]


def corpus():
    from toolkit.alignment.tts import synthesize

    out = []
    for k, (lang, text) in enumerate(SENTENCES):
        for j, variant in enumerate(VOICES[: 2 if lang != "en" else 4]):
            sp = synthesize(text, lang=lang, variant=variant, rate_wpm=150 + 20 * ((k + j) % 3))
            out.append(sp)
    return out


def score(data, params, fps=30):
    res = []
    for sp in data:
        dur = len(sp.samples) / sp.sample_rate
        anim = animate_phonemes(sp.phonemes, dur, fps, audio=sp.samples, sample_rate=sp.sample_rate, params=params)
        res.append(score_visemes(viseme_matrix(anim), fps, sp.phonemes))
    return pool(res)


def show(tag, s):
    print(f"{tag:<60} top1 {s.mid_top1:.3f} top2 {s.mid_top2:.3f} frame {s.frame_acc:.3f} "
          f"bilabial {s.bilabial_recall:.3f} vowel-shut {s.vowel_shut:.3f} lag {s.lag_ms:+.0f}")


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--sweep", action="store_true")
    args = ap.parse_args(argv)
    data = corpus()
    show("defaults", score(data, DEFAULT_PARAMS))
    if args.sweep:
        for lead, plateau, ant in itertools.product([0.0, 0.01, 0.02, 0.03], [0.5, 0.6, 0.7], [0.09, 0.12, 0.15]):
            p = replace(DEFAULT_PARAMS, lead_s=lead, plateau_share=plateau, anticipation_s=ant)
            show(f"lead {lead} plateau {plateau} anticipation {ant}", score(data, p))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
