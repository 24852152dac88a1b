"""`meshsim view` (a real process on 127.0.0.1) under abuse: 50 concurrent clients for 10 seconds mixing path
traversal (plain, %-encoded, double-encoded, absolute, backslashes, NUL), garbage query values, raw garbage
request lines and valid requests. The server never answers 5xx, never serves a byte of a file outside its own,
keeps answering, and its resident memory stays steady. Every client loop is bounded by a deadline."""

from __future__ import annotations

import http.client
import random
import re
import socket
import subprocess
import threading
import time
from pathlib import Path

from procs import meshsim_cmd, read_line, spawn

SECRET = "TOP-SECRET-7f3a9c"
CLIENTS, SECONDS = 50, 10.0

TRAVERSALS = [
    "/../secret.txt", "/static/../../secret.txt", "/static/..%2f..%2fsecret.txt", "/static/%2e%2e/%2e%2e/secret.txt",
    "/static/..%252f..%252fsecret.txt", "/static/%252e%252e%252fsecret.txt", "/static/..\\..\\secret.txt",
    "/static/..%5c..%5csecret.txt", "/{abs}", "//{abs}", "/static/{abs}", "/static/%2f{abs_enc}",
    "/static/index.html%00/../../secret.txt", "/api/meta/../../secret.txt", "/api/../../secret.txt",
    "/static/vendor/../../../secret.txt", "/%2e%2e/%2e%2e/etc/passwd", "/static/....//....//secret.txt",
    "/static/%c0%ae%c0%ae/secret.txt", "/static/..;/secret.txt", "/secret.txt", "/data.h5", "/static/../data.h5",
]
GARBAGE_VALUES = ["", "-1", "1e999", "nan", "%00", "%ff%fe", "0x10", "9" * 40, "'%20OR%201=1%20--", "<script>", "..",
                  "%2e%2e%2f", "%E2%98%83", "1,2", "[0]", "a" * 3000]


def _requests(rng, traj, traversals):
    r = rng.random()
    if r < 0.35:
        return rng.choice(traversals)
    if r < 0.75:
        endpoint = rng.choice(["positions", "field", "range", "cells", "traj"])
        keys = rng.sample(["traj", "t", "src", "name", "id", "x"], rng.randint(0, 4))
        query = "&".join(f"{k}={rng.choice(GARBAGE_VALUES + [traj, '0', 'gt', 'pred', 'stress'])}" for k in keys)
        return f"/api/{endpoint}?{query}"
    return rng.choice([f"/api/positions?traj={traj}&t={rng.randint(0, 5)}", f"/api/traj?id={traj}", "/api/meta",
                       f"/api/cells?traj={traj}", "/", "/static/app.js"])


def _rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _raw(host, port, payload: bytes):
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(payload)
        try:
            return s.recv(4096)
        except OSError:
            return b""


def test_fifty_clients_ten_seconds_of_traversal_and_garbage(good_inputs, tmp_path, tally):
    import shutil

    served = tmp_path / "served"
    served.mkdir()
    shutil.copyfile(good_inputs["rollout"], served / "data.h5")
    secret = tmp_path / "secret.txt"  # beside the served folder, and one inside it next to the data file
    secret.write_text(SECRET)
    (served / "secret.txt").write_text(SECRET)
    with spawn(meshsim_cmd("view", served / "data.h5", "--no-browser", "--port", "0"), stdout=subprocess.PIPE,
               stderr=subprocess.PIPE, text=True) as proc:
        line = read_line(proc, timeout=120)
        match = re.search(r"http://(127\.0\.0\.1):(\d+)", line)
        assert match, f"no URL announced: {line!r} {proc.stderr.read() if proc.poll() is not None else ''}"
        host, port = match.group(1), int(match.group(2))
        absolute = str(secret).lstrip("/")
        traversals = [p.replace("{abs}", absolute).replace("{abs_enc}", absolute.replace("/", "%2f"))
                      for p in TRAVERSALS]
        stats = {"requests": 0, "raw": 0, "leaks": [], "5xx": [], "errors": 0, "status": {}, "error_kinds": {}}
        lock = threading.Lock()

        def client(seed, deadline):
            rng = random.Random(seed)
            conn = http.client.HTTPConnection(host, port, timeout=10)
            while time.monotonic() < deadline:  # bounded: every loop stops at the deadline
                if rng.random() < 0.05:
                    payload = rng.choice([b"GARBAGE\r\n\r\n", b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n",
                                          b"GET / HTTP/1.1\r\nHost: evil.example\r\n\r\n", bytes(rng.randbytes(64)),
                                          b"POST /api/meta HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"])
                    body = _raw(host, port, payload)
                    with lock:
                        stats["raw"] += 1
                        if SECRET.encode() in body:
                            stats["leaks"].append("raw")
                    continue
                path = _requests(rng, "00000", traversals)
                try:
                    conn.request("GET", path, headers={"Host": f"{host}:{port}"})
                    resp = conn.getresponse()
                    body, status = resp.read(), resp.status
                except (OSError, http.client.HTTPException) as err:  # the server closed the connection
                    conn.close()
                    conn = http.client.HTTPConnection(host, port, timeout=10)
                    with lock:
                        stats["errors"] += 1
                        kind = type(err).__name__
                        stats["error_kinds"][kind] = stats["error_kinds"].get(kind, 0) + 1
                    continue
                with lock:
                    stats["requests"] += 1
                    stats["status"][status] = stats["status"].get(status, 0) + 1
                    if SECRET.encode() in body or b"root:" in body:
                        stats["leaks"].append(path)
                    if status >= 500:
                        stats["5xx"].append(path)
            conn.close()

        # warm-up (caches, first frames), then the baseline memory
        client(0, time.monotonic() + 1.5)
        rss_before = _rss_kib(proc.pid)
        deadline = time.monotonic() + SECONDS
        crashed = []

        def guarded(seed):
            try:
                client(seed, deadline)
            except Exception as err:  # a bug of this test's client, not of the server: fail loudly
                crashed.append(repr(err))

        threads = [threading.Thread(target=guarded, args=(i + 1,), daemon=True) for i in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=SECONDS + 30)
        assert not any(t.is_alive() for t in threads), "a client loop did not stop by itself"
        assert not crashed, crashed[:3]
        rss_after = _rss_kib(proc.pid)
        client(999, time.monotonic() + 1.0)
        rss_final = _rss_kib(proc.pid)

        assert proc.poll() is None, f"the server died: {proc.stderr.read()[-2000:]}"
        assert not stats["leaks"], f"served a file outside its own: {stats['leaks'][:5]}"
        assert not stats["5xx"], f"server errors on: {stats['5xx'][:5]}"
        assert stats["requests"] > 10 * CLIENTS, stats
        # the server still answers normally after the abuse
        conn = http.client.HTTPConnection(host, port, timeout=10)
        conn.request("GET", "/api/positions?traj=00000&t=1", headers={"Host": f"{host}:{port}"})
        resp = conn.getresponse()
        assert resp.status == 200 and len(resp.read()) > 0
        growth = rss_final - rss_before
        assert growth < max(30_000, rss_before // 4), (rss_before, rss_after, rss_final)  # KiB
        tally["viewer.requests"] += stats["requests"]
        tally["viewer.raw_garbage_connections"] += stats["raw"]
        tally["viewer.dropped_connections"] += stats["errors"]
        tally.note("viewer_abuse", {"clients": CLIENTS, "seconds": SECONDS, "requests": stats["requests"],
                                    "raw_garbage": stats["raw"], "reconnects": stats["error_kinds"],
                                    "status_counts": dict(sorted(stats["status"].items())),
                                    "rss_kib_before": rss_before, "rss_kib_after": rss_after,
                                    "rss_kib_final": rss_final, "traversal_paths": len(traversals)})
