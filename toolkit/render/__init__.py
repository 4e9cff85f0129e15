"""Preview rendering: `scene.py` (the offscreen renderer), `preview.py` (videos, contact sheets)."""

SIZE_LIMITS_PX = (16, 4096)   # video frame sizes: below 16 px nothing shows, above 4096 H.264 levels end
