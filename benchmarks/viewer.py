"""Viewer speed in headless Chromium (software WebGL): time to first frame and frames per second while scrubbing.

    python benchmarks/viewer.py [--quick]

A 10,000-node triangle rollout (ground truth beside prediction, coloured by error) is served by `meshsim view`'s
server and opened in the system chromium at 1280x720. Measured inside the page (performance.now()):
  first_frame_ms_10k    navigation start -> first frame drawn (script, metadata, WebGL set-up, mesh, frame 0),
                        median over fresh page loads (server already running, like a user reopening the tab)
  scrub_fps_10k         frames shown per second stepping through every frame once, each drawn and presented
                        (setFrame, then the next animation frame) with the data fetched on demand + prefetch
  scrub_fps_10k_cached  the same pass again, frames already in the page's cache
  scrub_fps_10k_analysis  the cached pass again with a node probed (its plot redrawn every frame) and a clip plane
  server_probe_ms_10k   one /api/probe request (a node's displacement at every frame, gt and pred, as JSON)
The full run adds the same at 100,000 nodes and the server's time per positions request. Goals (issue 7):
first frame < 1,000 ms, >= 30 fps while scrubbing. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import tempfile
import time
from pathlib import Path

from meshsim.viewer.browser import headless_chromium, open_page, serving
from meshsim.viewer.sample import write_sample

SCRUB = """async () => {
  const count = viewer.info.num_frames, start = performance.now();
  for (let t = 0; t < count; t++) {
    await viewer.setFrame(t);
    await new Promise((resolve) => requestAnimationFrame(resolve));  // presented before the next one
  }
  return (count * 1000) / (performance.now() - start);
}"""
RENDERER = """() => { const gl = viewer.glRenderer.getContext();
  const ext = gl.getExtension('WEBGL_debug_renderer_info');
  return ext ? gl.getParameter(ext.UNMASKED_RENDERER_WEBGL) : 'unknown'; }"""


def measure(path: Path, loads: int, width: int, height: int) -> dict:
    with serving(path) as server, headless_chromium() as browser:
        first = []
        for _ in range(loads):
            with open_page(browser, server.url, width, height) as page:
                first.append(page.evaluate("viewer.firstFrameMs"))
                timings = page.evaluate("viewer.timings")
        with open_page(browser, server.url, width, height) as page:
            scrub = page.evaluate(SCRUB)
            cached = page.evaluate(SCRUB)
            page.evaluate("async () => { await viewer.setProbe(0, 'displacement'); await viewer.setClip(1, 0.5); }")
            analysis = page.evaluate(SCRUB)
            renderer = page.evaluate(RENDERER)
            assert not page.errors, page.errors
        host, port = server.server_address[:2]
        server_ms = request_ms(host, port, "/api/positions?traj=00000&t={t}&src=pred", 30)
        probe_ms = request_ms(host, port, "/api/probe?traj=00000&node={t}&quantity=displacement", 10)
    return {"first_frame_ms": statistics.median(first), "first_frame_ms_all": [round(x, 1) for x in first],
            "timings_ms": {k: round(v, 1) for k, v in timings.items()}, "scrub_fps": scrub, "scrub_fps_cached": cached,
            "scrub_fps_analysis": analysis, "renderer": renderer, "server_positions_ms": server_ms,
            "server_probe_ms": probe_ms}  # fmt: skip


def request_ms(host: str, port: int, template: str, count: int) -> float:
    """Median wall time of one positions request over a kept-alive connection (what the page pays per frame)."""
    conn = http.client.HTTPConnection(host, port, timeout=30)
    times = []
    for t in range(count):
        start = time.perf_counter()
        conn.request("GET", template.format(t=t % 10), headers={"Host": f"127.0.0.1:{port}"})
        conn.getresponse().read()
        times.append((time.perf_counter() - start) * 1000)
    conn.close()
    return statistics.median(times)


# The figures the result line reports for each mesh size: (its key, `{size}` filled in; the figure of `measure`;
# decimals). The keys are the ones docs/viewer.md and benchmarks/RESULTS.md name.
HEADLINE = (("first_frame_ms_{size}", "first_frame_ms", 1), ("scrub_fps_{size}", "scrub_fps", 1),
            ("scrub_fps_{size}_cached", "scrub_fps_cached", 1), ("scrub_fps_{size}_analysis", "scrub_fps_analysis", 1),
            ("server_positions_ms_{size}", "server_positions_ms", 2), ("server_probe_ms_{size}", "server_probe_ms", 2))


def headline(measured: dict, size: str) -> dict:
    """The result line's figures of one mesh size (`size`: "10k" or "100k")."""
    return {key.format(size=size): round(measured[figure], digits) for key, figure, digits in HEADLINE}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer frames and page loads, no 100k-node run")
    args = parser.parse_args()
    width, height = 1280, 720
    frames, loads = (60, 3) if args.quick else (120, 5)
    result = {"mode": "quick" if args.quick else "full", "viewport": f"{width}x{height}", "frames_10k": frames}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rollout_10k.h5"
        started = time.perf_counter()
        write_sample(path, "triangle", nodes=10_000, frames=frames)
        print(f"wrote 10k-node sample in {time.perf_counter() - started:.1f} s", flush=True)
        small = measure(path, loads, width, height)
        print(json.dumps(small), flush=True)
        result.update(headline(small, "10k"), renderer=small["renderer"])
        if not args.quick:
            path = Path(tmp) / "rollout_100k.h5"
            write_sample(path, "triangle", nodes=100_000, frames=30)
            large = measure(path, 2, width, height)
            print(json.dumps(large), flush=True)
            result.update(headline(large, "100k"))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
