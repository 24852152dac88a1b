"""`meshsim view`: a standard-library HTTP server for the playback page and the frames of ONE data file.

Endpoints (all GET; binary answers are little-endian):
  /                                    the page;  /static/<file>  its scripts and the vendored three.js
  /api/meta                            JSON: file, format, colour map, trajectories (id, sizes, dt)
  /api/traj?id=ID                      JSON: one trajectory: fields per source, bounds, sample count
  /api/range?traj=ID&name=F            JSON: [lo, hi], the fixed colour range of a field
  /api/cells?traj=ID[&faces=all]       <u4 [F*3]: triangles to draw (boundary faces of tetrahedra; with
                                       faces=all every face, interior ones included, for the clip plane)
  /api/probe?traj=ID&node=I&quantity=Q JSON: one node's value of Q at every frame, per source (gt, pred)
  /api/positions?traj=ID&t=T&src=gt    <f4 [N*3]: positions of frame T (src = gt | pred)
  /api/field?traj=ID&name=F&t=T&src=gt <f4 [N]: per-node scalar of frame T
  both take an optional &count=K (1..64): frames T..T+K-1 back to back, cut at the trajectory's last frame
Malformed requests get 400, unknown names or frames 404, each with a one-line text message. Only the files
listed at start-up are served; paths are looked up in that table, never joined onto the disk.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import threading
import traceback
import webbrowser
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import numpy as np
from meshsim.viewer.colormap import COLORMAP, colormap_table
from meshsim.viewer.source import FrameSource

from meshsim.errors import ConfigError, DataFormatError

STATIC_DIR = Path(__file__).resolve().parent / "static"
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8", ".md": "text/plain; charset=utf-8", "": "text/plain; charset=utf-8"}
LOOPBACK = ("127.0.0.1", "localhost", "::1")
FIELD_UNITS = {"stress": "Pa", "speed": "m/s", "velocity": "m/s", "error": "m", "displacement": "m", "height": "m",
               "x": "m", "y": "m", "z": "m", "node_type": ""}
MAX_QUERY = 2048
MAX_FRAMES_PER_REQUEST = 64  # the page fetches blocks of frames: one request per block, not per frame


class BadRequest(Exception):
    """Turned into an HTTP error answer: status and a one-line message."""

    def __init__(self, status: HTTPStatus, message: str):
        super().__init__(message)
        self.status = status


class ViewerServer(ThreadingHTTPServer):
    """Serves one open FrameSource. `url` is where the page is; `serve_forever()` runs it."""

    daemon_threads = True

    def __init__(self, source: FrameSource, host: str = "127.0.0.1", port: int = 0, traj: str | None = None):
        if traj is not None:
            source.require(traj)
        if not 0 <= port <= 65535:
            raise ConfigError(f"--port {port} is not a TCP port; use 0 (any free port) or 1..65535")
        self.address_family = _address_family(host)
        try:
            super().__init__((host, port), ViewerHandler)
        except OSError as err:
            reason = err.strerror or err
            raise ConfigError(f"cannot listen on {host}:{port} ({reason}); pick another --port or --host") from None
        try:
            self.source = source
            self.default_traj = traj or source.ids[0]
            self.static = _static_table()
            self.meta = json.dumps(_meta(source, self.default_traj)).encode()
            self.loopback_only = host in LOOPBACK
        except BaseException:
            self.server_close()
            raise

    def handle_error(self, request, client_address) -> None:
        """A browser closing a kept-alive connection is normal; anything else is a bug and is printed."""
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError, TimeoutError)):
            super().handle_error(request, client_address)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}/?traj={quote(self.default_traj)}"

    def allowed_hosts(self) -> set[str]:
        port = self.server_address[1]
        return {f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"}


class ViewerHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the page fetches many small frames
    server: ViewerServer
    server_version = "meshsim-viewer"

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Protocol-level errors (malformed request line, unknown method, huge headers): one line of text, and
        always a status line (HTTP/0.9 is not spoken here)."""
        self.request_version = "HTTP/1.0" if self.request_version == "HTTP/0.9" else self.request_version
        self.close_connection = True
        status = HTTPStatus(code) if code in HTTPStatus._value2member_map_ else HTTPStatus.BAD_REQUEST
        body = f"{status.value} {message or status.phrase}\n".encode("latin-1", "replace")
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (signature of the base class)
        pass  # one line per frame request would drown the terminal; errors are answered to the client

    def _answer(self, send_body: bool) -> None:
        try:
            body, content_type = self._route()
            status = HTTPStatus.OK
        except BadRequest as err:
            status, body, content_type = err.status, (str(err) + "\n").encode(), "text/plain; charset=utf-8"
        except DataFormatError as err:  # the file itself is damaged at this frame
            status, body = HTTPStatus.INTERNAL_SERVER_ERROR, (str(err) + "\n").encode()
            content_type = "text/plain; charset=utf-8"
        except Exception as err:  # a bug: answer, and keep the traceback on the server's terminal
            traceback.print_exc()
            status, body = HTTPStatus.INTERNAL_SERVER_ERROR, f"internal error ({type(err).__name__})\n".encode()
            content_type = "text/plain; charset=utf-8"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def _route(self) -> tuple[bytes, str]:
        if self.server.loopback_only and self.headers.get("Host", "").lower() not in self.server.allowed_hosts():
            # A page on another site that re-points its DNS name at 127.0.0.1 must not read the data.
            raise BadRequest(HTTPStatus.FORBIDDEN, "forbidden: unexpected Host header")
        if len(self.path) > MAX_QUERY:
            raise BadRequest(HTTPStatus.REQUEST_URI_TOO_LONG, "request line too long")
        parts = urlsplit(self.path)
        path = parts.path
        if path in ("/", "/index.html"):
            path = "/static/index.html"
        if path.startswith("/static/"):
            found = self.server.static.get(path[len("/static/") :])
            if found is None:
                raise BadRequest(HTTPStatus.NOT_FOUND, f"not found: {path[:100]}")
            return found
        handler = API.get(path)
        if handler is None:
            raise BadRequest(HTTPStatus.NOT_FOUND, f"not found: {path[:100]}")
        return handler(self.server, Query(parts.query))


class Query:
    """Parsed query string with typed, validated look-ups that raise BadRequest."""

    def __init__(self, text: str):
        try:
            pairs = parse_qs(text, keep_blank_values=True, strict_parsing=bool(text), max_num_fields=8)
        except ValueError:
            raise BadRequest(HTTPStatus.BAD_REQUEST, "malformed query string") from None
        self.values = pairs

    def text(self, key: str, default: str | None = None) -> str:
        values = self.values.get(key)
        if values is None:
            if default is None:
                raise BadRequest(HTTPStatus.BAD_REQUEST, f"missing query parameter {key!r}")
            return default
        if len(values) != 1 or not values[0] or len(values[0]) > 200:
            raise BadRequest(HTTPStatus.BAD_REQUEST, f"query parameter {key!r} must be given once, non-empty")
        return values[0]

    def frame(self, source: FrameSource, traj: str) -> int:
        raw = self.text("t")
        if not (raw.isascii() and raw.isdigit()) or len(raw) > 9:
            raise BadRequest(HTTPStatus.BAD_REQUEST, f"frame t={raw[:20]!r} is not a non-negative integer")
        t, count = int(raw), source.num_frames(traj)
        if t >= count:
            raise BadRequest(HTTPStatus.NOT_FOUND, f"frame {t} out of range: trajectory {traj!r} has 0..{count - 1}")
        return t

    def frames(self, source: FrameSource, traj: str) -> range:
        """Frames t .. t+count-1 (count optional, default 1), cut at the trajectory's last frame."""
        t = self.frame(source, traj)
        raw = self.text("count", "1")
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_FRAMES_PER_REQUEST:
            raise BadRequest(HTTPStatus.BAD_REQUEST, f"count={raw[:20]!r} must be 1..{MAX_FRAMES_PER_REQUEST}")
        return range(t, min(t + int(raw), source.num_frames(traj)))

    def traj(self, source: FrameSource, key: str = "traj") -> str:
        traj = self.text(key)
        if traj not in source.ids:
            raise BadRequest(HTTPStatus.NOT_FOUND, f"no trajectory {traj[:60]!r} in this file")
        return traj

    def source_name(self, source: FrameSource, traj: str) -> str:
        src = self.text("src", "gt")
        if src not in source.sources(traj):
            raise BadRequest(HTTPStatus.NOT_FOUND, f"source {src[:20]!r} not in this file; use {source.sources(traj)}")
        return src

    def node(self, source: FrameSource, traj: str) -> int:
        raw = self.text("node")
        count = source.info(traj)["num_nodes"]
        if not (raw.isascii() and raw.isdigit()) or len(raw) > 9:
            raise BadRequest(HTTPStatus.BAD_REQUEST, f"node={raw[:20]!r} is not a non-negative integer")
        if int(raw) >= count:
            raise BadRequest(HTTPStatus.NOT_FOUND, f"node {raw} out of range: trajectory {traj!r} has 0..{count - 1}")
        return int(raw)

    def field_name(self, source: FrameSource, traj: str) -> str:
        name = self.text("name")
        if name not in source.fields(traj):
            raise BadRequest(HTTPStatus.NOT_FOUND, f"no field {name[:60]!r} in trajectory {traj!r}")
        return name


def _json(value) -> tuple[bytes, str]:
    return json.dumps(value).encode(), "application/json"


def _binary(array: np.ndarray, dtype: str) -> tuple[bytes, str]:
    return np.ascontiguousarray(array, dtype=dtype).tobytes(), "application/octet-stream"


def _api_traj(server: ViewerServer, q: Query):
    source = server.source
    traj = q.traj(source, "id")
    info = source.info(traj)
    lo, hi = source.bounds(traj)
    public = {k: v for k, v in info.items() if k not in ("stored_fields", "vector_fields")}
    public["field_units"] = {name: FIELD_UNITS.get(name, "") for name in info["fields"]}
    public["probe_quantities"] = source.probe_quantities(traj)
    return _json({**public, "bounds": [lo, hi], "num_triangles": int(len(source.surface(traj)))})


def _api_range(server: ViewerServer, q: Query):
    traj = q.traj(server.source)
    return _json(list(server.source.field_range(traj, q.field_name(server.source, traj))))


def _api_cells(server: ViewerServer, q: Query):
    traj = q.traj(server.source)
    faces = q.text("faces", "surface")
    if faces not in ("surface", "all"):
        raise BadRequest(HTTPStatus.BAD_REQUEST, f"faces={faces[:20]!r} must be surface or all")
    return _binary(server.source.surface(traj) if faces == "surface" else server.source.all_faces(traj), "<u4")


def _api_probe(server: ViewerServer, q: Query):
    """One node's history, for the probe plot and for scripts: the quantity at every frame, per source."""
    source = server.source
    traj = q.traj(source)
    node = q.node(source, traj)
    quantity = q.text("quantity")
    info = source.info(traj)
    if quantity not in source.probe_quantities(traj):
        allowed = ", ".join(source.probe_quantities(traj))
        raise BadRequest(HTTPStatus.NOT_FOUND, f"no quantity {quantity[:60]!r} in trajectory {traj!r}; use {allowed}")
    sources = info["sources"] if quantity in ("x", "y", "z") else info["fields"][quantity]
    if quantity == "error":
        sources = ["pred"]  # one series: |pred - gt|
    series = {src: [float(v) for v in source.node_series(traj, node, quantity, src)] for src in sources}
    node_type = int(source.node_type(traj)[node])
    return _json({
        "traj": traj, "node": node, "quantity": quantity, "unit": FIELD_UNITS.get(quantity, ""),
        "dt": info["dt"], "time": [round(t * info["dt"], 12) for t in range(info["num_frames"])],
        "node_type": node_type, "node_type_name": info["node_types"].get(str(node_type), ""),
        "reference": [float(v) for v in source.reference(traj)[node]],
        "series": series, "labels": {"pred": "|pred - gt|"} if quantity == "error" else
        {src: info["labels"][src]["text"] for src in series},
    })  # fmt: skip


def _api_positions(server: ViewerServer, q: Query):
    source = server.source
    traj = q.traj(source)
    src = q.source_name(source, traj)
    return _binary(np.concatenate([source.positions(traj, t, src) for t in q.frames(source, traj)]), "<f4")


def _api_field(server: ViewerServer, q: Query):
    source = server.source
    traj = q.traj(source)
    name = q.field_name(source, traj)
    src = q.source_name(source, traj)
    frames = q.frames(source, traj)
    if src not in source.fields(traj)[name]:
        raise BadRequest(HTTPStatus.NOT_FOUND, f"field {name!r} has no {src!r} values in trajectory {traj!r}")
    return _binary(np.concatenate([source.field(traj, name, t, src) for t in frames]), "<f4")


API = {
    "/api/meta": lambda server, q: (server.meta, "application/json"),
    "/api/traj": _api_traj,
    "/api/range": _api_range,
    "/api/cells": _api_cells,
    "/api/positions": _api_positions,
    "/api/field": _api_field,
    "/api/probe": _api_probe,
}


def _meta(source: FrameSource, default_traj: str) -> dict:
    trajectories = [{"id": t, "num_frames": source.num_frames(t)} for t in source.ids]
    return {
        "file": os.path.basename(source.path), "format": source.format, "is_rollout": source.is_rollout,
        "default_traj": default_traj, "trajectories": trajectories,
        "units": {"length": "m", "time": "s", "stress": "Pa"}, "field_units": FIELD_UNITS,
        "colormap": {"name": COLORMAP, "srgb": np.round(colormap_table(), 5).tolist()},
    }  # fmt: skip


def _static_table() -> dict[str, tuple[bytes, str]]:
    """Every servable file, read once: relative URL path -> (bytes, content type)."""
    table = {}
    for path in sorted(STATIC_DIR.rglob("*")):
        if path.is_file() and not path.name.startswith("."):
            rel = path.relative_to(STATIC_DIR).as_posix()
            table[rel] = (path.read_bytes(), CONTENT_TYPES.get(path.suffix, "application/octet-stream"))
    return table


def _address_family(host: str):
    import socket

    return socket.AF_INET6 if ":" in host else socket.AF_INET


def open_viewer(path: str | os.PathLike, host: str = "127.0.0.1", port: int = 0, traj: str | None = None):
    """Validate the file and bind the server (nothing served until serve_forever). Raises DataFormatError or
    ConfigError before listening if the file or the address is unusable."""
    source = FrameSource(path)
    try:
        server = ViewerServer(source, host, port, traj)
        # Bounds and the default colour range read up to 2 x 32 frames: do it now, not on the first page view.
        info = source.info(server.default_traj)
        source.bounds(server.default_traj)
        if info["default_field"]:
            source.field_range(server.default_traj, info["default_field"])
        return server
    except BaseException:
        source.close()
        raise


def serve(path, host: str = "127.0.0.1", port: int = 0, traj: str | None = None, open_browser: bool = True,
          announce=None) -> None:  # fmt: skip
    """Run the viewer until Ctrl-C, then close the socket and the file."""
    announce = announce or functools.partial(print, flush=True)
    server = open_viewer(path, host, port, traj)
    announce(f"meshsim viewer: {server.url}  (Ctrl-C stops)")
    if host not in LOOPBACK:
        print(f"warning: listening on {host}: anyone who can reach this machine can read {path}", file=sys.stderr)
    if open_browser:
        threading.Thread(target=webbrowser.open, args=(server.url,), daemon=True).start()
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        announce("meshsim viewer: stopped")
    finally:
        server.server_close()
        server.source.close()
