"""Preview rendering speed: frames per second of `render_video` (render + H.264/AAC encode together).

Speech comes from espeak-ng (`toolkit.pipeline.say`), animated by the pipeline, then rendered on the
default head at 512x512 and 1024x1024 with the viseme strip, as a user runs it.  Printed beside the
time the rest of the pipeline took for the same clip, and the render-only rate (no encoder).

Target (``bench/targets.toml``): >= 30 fps at 512x512 on this 2-core machine (faster than real time at 30 fps).
Wall-clock rates depend on what else runs (the load average is printed before and after); the CPU
columns divide the frames by the CPU seconds spent (`time.process_time` of this process, render
thread and llvmpipe's raster threads included, plus the ffmpeg child's user+system time), which
a busy machine changes much less.

    .venv/bin/python -m bench.bench_render [--seconds 10] [--sizes 512 1024]
"""
from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

from bench.report import Column, Table, finish

TEXT = ("The quick brown fox jumps over the lazy dog, while five wizards box jumping queens. "
        "Peter picked a peck of pickled peppers and we all went home to a warm cup of tea.")


def _speech(seconds: float):
    from toolkit.pipeline import say

    t0 = time.perf_counter()
    speech, anim = say(TEXT, fps=30)
    pipeline_s = time.perf_counter() - t0
    n = min(anim.n_frames, int(round(seconds * anim.fps)))
    anim = anim.select(anim.channels)
    anim.values = anim.values[:n]
    return speech.samples[: int(n / anim.fps * speech.sample_rate)], anim, pipeline_s, speech


def _children_cpu() -> float:
    """CPU seconds of finished child processes (the ffmpeg encoder, once closed)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


COLUMNS = [Column("fps", "fps render+encode", "{:.1f}"), Column("cpu_fps", "per CPU s", "{:.1f}"),
           Column("render_fps", "fps render only", "{:.1f}"), Column("render_cpu_fps", "per CPU s ", "{:.1f}"),
           Column("x_real_time", "x real time", "{:.2f}"), Column("kb_s", "mp4 kB/s", "{:.0f}", lower_is_better=True)]


def tables(argv: list[str] | None = None) -> list[Table]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="clip length rendered at 512 (1024 gets a third)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[512, 1024])
    args = ap.parse_args(argv)

    from toolkit.render.preview import FrameSource, load_model, render_video
    from toolkit.render.scene import gl_platform

    samples, anim, pipeline_s, speech = _speech(args.seconds)
    audio_s = len(speech.samples) / speech.sample_rate
    print(f"platform {gl_platform()}, {os.cpu_count()} CPUs, load average before: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; clip {anim.n_frames} frames "
          f"({anim.duration_s:.1f} s at {anim.fps:g} fps)")
    print(f"pipeline (espeak-ng + animation) for {audio_s:.1f} s of speech: {pipeline_s:.2f} s "
          f"({audio_s / pipeline_s:.1f}x real time)")
    model = load_model(None)
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for size in args.sizes:
            clip = anim
            if size > 600:  # big frames: a shorter clip keeps the bench short
                clip = anim.select(anim.channels)
                clip.values = clip.values[: max(30, anim.n_frames // 3)]
            # render only (no encoder)
            src = FrameSource(clip, model, size=size, strip=True)
            src.frame(0)
            t0, c0 = time.perf_counter(), time.process_time()
            k = min(clip.n_frames, 60)
            for i in range(k):
                src.frame(i)
            render_fps, render_cpu_fps = k / (time.perf_counter() - t0), k / (time.process_time() - c0)
            src.close()
            # the real thing: render thread + ffmpeg, with audio
            from toolkit.audio import write_wav

            wav = write_wav(Path(d) / "speech.wav", samples, 16000)
            t0, c0, k0 = time.perf_counter(), time.process_time(), _children_cpu()
            render_video(clip, Path(d) / f"out{size}.mp4", size=size, audio=wav, progress=False)
            dt = time.perf_counter() - t0
            cpu = time.process_time() - c0 + _children_cpu() - k0
            fps = clip.n_frames / dt
            rows.append((size, clip.n_frames, dt, fps, clip.n_frames / cpu, render_fps, render_cpu_fps,
                         (Path(d) / f"out{size}.mp4").stat().st_size / clip.duration_s / 1e3))
    print(f"{'size':>10} {'frames':>7} {'seconds':>8} {'fps render+encode':>18} {'(per CPU s)':>11} "
          f"{'fps render only':>16} {'(per CPU s)':>11} {'x real time':>12} {'mp4 kB/s':>9}")
    for size, n, dt, fps, cfps, rfps, rcfps, kbs in rows:
        print(f"{size:>5}x{size:<4} {n:>7} {dt:>8.2f} {fps:>18.1f} {cfps:>11.1f} {rfps:>16.1f} {rcfps:>11.1f} "
              f"{fps / anim.fps:>12.2f} {kbs:>9.0f}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    table = Table("render", f"preview video of the default head with the viseme strip ({gl_platform()}, "
                  f"{os.cpu_count()} CPUs, {anim.fps:g} fps clip)", COLUMNS, notes=[
                      f"the pipeline took {pipeline_s / audio_s:.2f} s per second of speech for the same clip; "
                      "no peer renders offline on this machine (Audio2Face and the Blender add-ons need a GPU or "
                      "Blender's own renderer), so there is no peer row"])
    for size, n, dt, fps, cfps, rfps, rcfps, kbs in rows:
        table.add(f"default head, {size}x{size}", "ours", fps=fps, cpu_fps=cfps, render_fps=rfps,
                  render_cpu_fps=rcfps, x_real_time=fps / anim.fps, kb_s=kbs)
    return [table]


def main(argv: list[str] | None = None) -> int:
    return finish(tables(argv))


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    raise SystemExit(main())
