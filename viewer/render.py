"""`meshsim render`: a video or PNG frames of a trajectory, captured frame by frame in headless Chromium.

Browser-side recording (MediaRecorder) drops frames when rendering is slow, so each frame is drawn on demand
through the page's hook (`viewer.setFrame(t)`, then `viewer.pngDataURL()`) and handed to the encoder: every
frame of the file appears exactly once, whatever the machine's speed. MP4 (H.264) goes through the ffmpeg
binary shipped in imageio-ffmpeg, GIF through imageio, a folder gets frame_00000.png, ...
"""

from __future__ import annotations

import base64
import io
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import numpy as np
from meshsim.viewer.browser import serving, viewer_page

from meshsim.errors import ConfigError, OutputError
from meshsim.outputs import output_folder

MAX_SIDE = 4096


def parse_size(text: str) -> tuple[int, int]:
    """'1280x720' -> (1280, 720)."""
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"--size {text!r} is not WIDTHxHEIGHT, e.g. 1280x720") from None
    return width, height


def render_video(path: str | os.PathLike, output: str | os.PathLike, traj: str | None = None, fps: float = 30,
                 size: tuple[int, int] = (1280, 720), color: str | None = None, force: bool = False):  # fmt: skip
    """Render every frame of one trajectory to `output` (.mp4, .gif, or a folder for PNG files).

    color: field to colour by (default: the viewer's default; "" for none). Returns a summary dict."""
    output = Path(output)
    kind = "mp4" if output.suffix.lower() == ".mp4" else "gif" if output.suffix.lower() == ".gif" else "png"
    width, height = size
    if not (16 <= width <= MAX_SIDE and 16 <= height <= MAX_SIDE):
        raise ConfigError(f"--size {width}x{height} out of range; each side must be 16..{MAX_SIDE} pixels")
    if kind == "mp4" and (width % 2 or height % 2):
        even = f"{width + width % 2}x{height + height % 2}"
        raise ConfigError(f"--size {width}x{height}: H.264 needs even sides; use e.g. {even}")
    if not 0 < fps <= 240:
        raise ConfigError(f"--fps {fps} out of range; use a rate in (0, 240]")
    if kind == "png" and output.suffix:
        raise ConfigError(f"output {output} must end in .mp4 or .gif, or name a folder for PNG frames")
    output_folder(output)
    if output.exists() and not force and not (kind == "png" and output.is_dir() and not any(output.iterdir())):
        raise OutputError(f"{output} exists; pass --force to overwrite it or choose another -o")

    started = time.perf_counter()
    with serving(path, traj) as server:
        info = server.source.info(server.default_traj)
        if color and color not in info["fields"]:
            names = sorted(info["fields"])
            raise ConfigError(f"--color {color!r} not in trajectory {info['id']!r}; use one of {names}")
        url = f"{server.url}&render=1&aa=1" + ("" if color is None else f"&field={quote(color)}")
        with viewer_page(url, width, height) as page:
            frames = (_capture(page, t) for t in _progress(range(info["num_frames"]), output))
            _write(kind, frames, output, fps, (width, height))
    return {"output": str(output), "frames": info["num_frames"], "size": [width, height], "fps": fps,
            "trajectory": info["id"], "seconds": round(time.perf_counter() - started, 2)}  # fmt: skip


def _capture(page, t: int) -> bytes:
    url = page.evaluate("async (t) => { await viewer.setFrame(t); return viewer.pngDataURL(); }", t)
    if page.errors:
        from meshsim.viewer.browser import BrowserError

        raise BrowserError(f"the viewer page failed at frame {t}: {page.errors[0]}")
    return base64.b64decode(url.split(",", 1)[1])


def _write(kind: str, frames, output: Path, fps: float, size: tuple[int, int]) -> None:
    """Encode into a temporary name beside `output`, then rename: no half-written video under the real name."""
    work = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    try:
        if kind == "png":
            target = work / "frames"
            target.mkdir()
            for t, png in enumerate(frames):
                (target / f"frame_{t:05d}.png").write_bytes(png)
        elif kind == "gif":
            import imageio.v3 as iio

            target = work / output.name
            images = [_rgb(png) for png in frames]
            iio.imwrite(target, images, extension=".gif", duration=1000.0 / fps, loop=0)
        else:
            import imageio_ffmpeg

            target = work / output.name
            writer = imageio_ffmpeg.write_frames(str(target), size, fps=fps, codec="libx264", pix_fmt_out="yuv420p",
                                                 macro_block_size=1, quality=8)  # fmt: skip
            writer.send(None)
            try:
                for png in frames:
                    writer.send(np.ascontiguousarray(_rgb(png)))
            finally:
                writer.close()
        if output.exists():
            shutil.rmtree(output) if output.is_dir() else output.unlink()
        os.replace(target, output)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _rgb(png: bytes) -> np.ndarray:
    import imageio.v3 as iio

    return iio.imread(io.BytesIO(png), extension=".png")[..., :3]


def _progress(frames, output: Path):
    from tqdm import tqdm

    return tqdm(frames, desc=f"render {output.name}", unit="frame", disable=not sys.stderr.isatty())
