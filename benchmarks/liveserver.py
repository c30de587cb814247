"""Pieces the live-service benchmarks share: start ``coldbrew serve``, time requests, read memory.

Used by ``load.py`` and ``replay.py`` (run as scripts, so this module is imported by its plain
name from the ``benchmarks/`` folder).
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil

from coldbrew.bench.provenance import stamped

KEY = "bench-key-3b8f1e72"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_server(
    command: list[str], env: dict[str, str], base: str, timeout_s: float = 300.0
) -> tuple[subprocess.Popen[bytes], float]:
    """Start ``coldbrew serve`` and wait until ``/readyz`` answers 200; return it and the seconds.

    Raises ``RuntimeError`` if the server exits or is not ready within ``timeout_s``.
    """
    start = time.perf_counter()
    server = subprocess.Popen(command, env=env)
    with httpx.Client(base_url=base, timeout=60) as client:
        while True:
            try:
                if client.get("/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None:
                raise RuntimeError("the server exited during start-up")
            if time.perf_counter() - start > timeout_s:
                stop_server(server)
                raise RuntimeError(f"the server was not ready within {timeout_s:.0f}s")
            time.sleep(0.2)
    ready_s = time.perf_counter() - start
    print(f"server ready in {ready_s:.1f}s", flush=True)
    return server, ready_s


def stop_server(server: subprocess.Popen[bytes], timeout_s: float = 120.0) -> None:
    """Terminate the server (SIGTERM, then SIGKILL after ``timeout_s``) and wait for it."""
    server.terminate()
    try:
        server.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=30)


def tree_status_mb(pid: int, field: str = "VmHWM") -> float:
    """A ``/proc/PID/status`` size summed over the process tree, in MiB (Linux; 0 where it
    does not say): ``VmHWM``, the largest resident size each process has had (a start's
    transient peak), or ``RssFile``, the resident pages of mapped files (rows in the page
    cache)."""
    try:
        root = psutil.Process(pid)
        pids = [pid, *(p.pid for p in root.children(recursive=True))]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0
    for each in pids:
        try:
            lines = Path(f"/proc/{each}/status").read_text().splitlines()
        except OSError:
            continue
        total += sum(int(line.split()[1]) for line in lines if line.startswith(f"{field}:"))
    return total / 2**10


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants, in MiB (0 once it has gone)."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total / 2**20


def percentiles(seconds: list[float]) -> dict[str, float]:
    """Count, p50, p99 and mean of durations given in seconds, reported in milliseconds."""
    if not seconds:
        return {"n": 0}
    ms = np.asarray(seconds) * 1e3
    return {
        "n": len(ms),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "mean_ms": round(float(ms.mean()), 2),
    }


def timed(client: httpx.Client, method: str, path: str, body: Any = None) -> tuple[float, Any]:
    """Send one request with the write key; return its client-side seconds and JSON body."""
    start = time.perf_counter()
    response = client.request(method, path, json=body, headers={"X-API-Key": KEY})
    took = time.perf_counter() - start
    response.raise_for_status()
    return took, response.json()


def save_report(out: str, name: str, report: dict[str, Any]) -> Path:
    """Write ``report`` as ``<out>/<name>.json`` (folders made), print it, return the path."""
    path = Path(out) / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    report = stamped(report)
    path.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    print(f"wrote {path}")
    return path
