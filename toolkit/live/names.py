"""The names a live frame is sent under, and its weights under those names.

``--names`` picks a rig profile (``arkit`` = ``arkit52``, ``oculus`` = ``oculus15``, ``vrm0``,
``vrm1``, any other profile in ``rigs/`` or a rig JSON file).  The names sent are the profile's
own targets (the first spelling of each), less the coarse targets its ``only_if_missing`` rules
leave undriven beside the finer ones (VRM ``Blink`` beside ``Blink_L``/``Blink_R``):

    vrm0   A I U E O Blink_L Blink_R
    vrm1   aa ih ou ee oh blinkLeft blinkRight
    arkit  the 52 ARKit names (eyeBlinkLeft ... tongueOut)
    oculus viseme_sil ... viseme_ou

The weights come from `toolkit.rigs.retarget`, the mapping the file exporters use, applied to
each batch of frames the streamer hands over: there is no second mapping table here.

Example
-------
>>> import numpy as np
>>> from toolkit.animation import CHANNELS
>>> m = NameMap("vrm0")
>>> m.names
['A', 'I', 'U', 'E', 'O', 'Blink_L', 'Blink_R']
>>> frame = np.zeros((1, len(CHANNELS)), np.float32)
>>> frame[0, CHANNELS.index("viseme_aa")] = 1.0
>>> float(m.weights(frame, fps=60)[0, 0])
1.0
"""
from __future__ import annotations

import numpy as np

from toolkit.animation import CHANNELS, Animation
from toolkit.rigs import RigError, load_profile, match_one, retarget

# Short names for the profiles VTuber apps, engines and web avatars use.
NAME_ALIASES = {"arkit": "arkit52", "oculus": "oculus15", "vrm0": "vrm0", "vrm1": "vrm1"}


class NameMap:
    """A profile's target names and the per-frame weights for them."""

    def __init__(self, spec: str = "vrm0") -> None:
        profile = load_profile(NAME_ALIASES.get(spec, spec))
        if not profile.targets:
            raise RigError(f"{profile.path}: the profile names its targets only by index; live output "
                           "needs target names")
        coarse = {k for k, finer in profile.only_if_missing.items() if all(f in profile.targets for f in finer)}
        self.spec = spec
        self.profile = profile
        self.names = [key.split("|")[0] for key in profile.targets if key not in coarse]
        self._match = match_one(profile, self.names)

    @property
    def vmc_names(self) -> list[str]:
        """The names as VMC receivers know them.  ARKit shapes go as PerfectSync BlendShapeClips,
        whose names are the ARKit names with a capital first letter (``JawOpen``), as the clips
        HANA_Tool makes and VSeeFace / VMagicMirror read; every other profile's names unchanged."""
        if self.profile.name == "arkit52":
            return [n[0].upper() + n[1:] for n in self.names]
        return list(self.names)

    def weights(self, frames: np.ndarray, fps: float) -> np.ndarray:
        """Frames (n x `CHANNELS`) -> weights (n x len(names)) in [0, 1], through `rigs.retarget`."""
        anim = frames if isinstance(frames, Animation) else Animation(fps, list(CHANNELS), np.asarray(frames))
        return retarget(anim, self.names, profile=self._match)
