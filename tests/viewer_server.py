"""The viewer's real server for tests: ``dicomslide serve`` in a subprocess.

:func:`viewer_server` starts the command on a free port of 127.0.0.1 and
yields its base URL once it answers; :func:`get` makes one request with the
standard library and returns the status, headers and body.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get(
    base: str, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """GET a path as written (no normalisation: ``..`` is sent as it is)."""
    host, port = base.removeprefix("http://").rstrip("/").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        body = response.read()
        return (
            response.status,
            {k.lower(): v for k, v in response.getheaders()},
            body,
        )
    finally:
        connection.close()


def slides(base: str) -> list[dict[str, Any]]:
    status, _, body = get(base, "/slides.json")
    assert status == 200
    return list(json.loads(body))


@contextmanager
def viewer_server(source: str | Path, *options: str) -> Iterator[str]:
    """Run ``dicomslide serve SOURCE`` until the block ends; yield its URL."""
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT}{os.pathsep}" + os.environ.get("PYTHONPATH", ""),
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dicomslide",
            "serve",
            str(source),
            "--port",
            str(port),
            *options,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                output = process.stdout.read() if process.stdout else ""
                raise RuntimeError(f"dicomslide serve exited: {output}")
            try:
                if get(base, "/slides.json")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("dicomslide serve did not answer in 90 s")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()
