"""Training (torch): only `viseme train` imports this package; inference never does.

    audio2face.py   the audio-to-face network's data recipe, training loop and `viseme train`
    network.py      the network in torch, and its weights file (read by `toolkit.motion.network`)
    voices.py       festival / flite voices made from real speakers, with their phone times
    sentences.py    random sentences to speak
"""
