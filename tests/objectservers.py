"""Real object storage servers on 127.0.0.1 for the tests, and a counting proxy.

:class:`MotoServer` runs moto's standalone S3-compatible server
(``python -m moto.server``) in a child process, :class:`GcsEmulator`
gcp-storage-emulator (a Google Cloud Storage server); :class:`Nginx` runs Debian's
nginx serving a folder (it honours ``Range``). :class:`CountingProxy` sits in
front of either and records every request it passes on (method, path,
``Range``, status, bytes of the body), so that tests count the requests the
server saw, not what the client believes it sent.
"""

from __future__ import annotations

import contextlib
import http.server
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import requests

_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "content-encoding",
    "host",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(url: str, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        with contextlib.suppress(requests.RequestException):
            requests.get(url, timeout=1)
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not start")


class ChildServer:
    """A server in a child process on a free port of 127.0.0.1, whose output
    is kept as its log; subclasses give the command and a closing step."""

    #: What the server is called in errors
    name = "server"

    def __init__(self) -> None:
        self.port = free_port()
        #: The server's own output (many servers log a line per request)
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())
        self.process = subprocess.Popen(
            self.command(), stdout=self.log, stderr=subprocess.STDOUT
        )
        _wait_for(self.url, self.process, self.name)

    def command(self) -> list[str]:
        """The command that starts the server on :attr:`port`."""
        raise NotImplementedError

    def address(self, host_option: str, port_option: str) -> list[str]:
        """Command-line options that bind the server to 127.0.0.1:port."""
        return [host_option, "127.0.0.1", port_option, str(self.port)]

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the server's log."""
        self.log.seek(0)
        return "\n".join(self.log.read().decode(errors="replace").splitlines()[-lines:])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        self.log.close()


class MotoServer(ChildServer):
    """moto's S3-compatible server (``python -m moto.server``)."""

    name = "moto.server"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "moto.server"] + self.address("-H", "-p")


class GcsEmulator(ChildServer):
    """gcp-storage-emulator, a Google Cloud Storage API server in Python,
    keeping objects in memory (it honours ``Range``)."""

    name = "gcp-storage-emulator"

    def command(self) -> list[str]:
        emulator = [sys.executable, "-m", "gcp_storage_emulator", "start", "-q", "-M"]
        return emulator + self.address("-H", "--port")


class Nginx(ChildServer):
    """nginx serving a folder (with byte ranges)."""

    name = "nginx"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.prefix = Path(tempfile.mkdtemp(prefix="dicomslide-nginx-"))
        super().__init__()

    def command(self) -> list[str]:
        (self.prefix / "logs").mkdir()
        config = self.prefix / "nginx.conf"
        config.write_text(
            f"""
pid {self.prefix}/nginx.pid;
error_log {self.prefix}/logs/error.log;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {self.prefix}/body;
    proxy_temp_path {self.prefix}/proxy;
    fastcgi_temp_path {self.prefix}/fastcgi;
    uwsgi_temp_path {self.prefix}/uwsgi;
    scgi_temp_path {self.prefix}/scgi;
    server {{
        listen 127.0.0.1:{self.port};
        root {self.root};
        location / {{ autoindex on; }}
    }}
}}
"""
        )
        executable = shutil.which("nginx") or "/usr/sbin/nginx"
        options = ["-g", "daemon off; master_process off;"]
        return [executable, "-p", str(self.prefix), "-c", str(config), *options]

    def close(self) -> None:
        super().close()
        shutil.rmtree(self.prefix, ignore_errors=True)


@dataclass
class Seen:
    """A request the proxy passed on."""

    method: str
    path: str
    range: str | None
    status: int = 0
    nbytes: int = 0
    start: float = 0.0  # time.monotonic() when received and answered
    end: float = 0.0


class CountingProxy:
    """An HTTP proxy on 127.0.0.1 that records the requests it passes on.

    Parameters
    ----------
    target: str
        Root URL of the server

    """

    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")
        self.seen: list[Seen] = []
        #: Requests to break (the connection closed unanswered) from now on;
        #: None for every one
        self.break_next: int | None = 0
        #: Seconds each request waits before it is passed on (a round trip
        #: of a wide area network)
        self.delay = 0.0
        self._lock = threading.Lock()
        self._sessions = threading.local()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # quiet
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                proxy._handle(self)

            do_HEAD = do_GET  # noqa: N815

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def clear(self) -> None:
        with self._lock:
            self.seen.clear()

    def requests(self, method: str | None = None) -> list[Seen]:
        """The requests seen so far (of one method)."""
        with self._lock:
            return [s for s in self.seen if method is None or s.method == method]

    def most_at_once(self) -> int:
        """The most requests that were being answered at the same time."""
        with self._lock:
            events = sorted(
                [(s.start, 1) for s in self.seen] + [(s.end, -1) for s in self.seen]
            )
        running = most = 0
        for _, change in events:
            running += change
            most = max(most, running)
        return most

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handle(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        headers = dict(handler.headers.items())
        seen = Seen(
            handler.command, handler.path, headers.get("Range"), start=time.monotonic()
        )
        with self._lock:
            self.seen.append(seen)
            broken = self.break_next is None or self.break_next > 0
            if self.break_next:
                self.break_next -= 1
        if broken:  # the server went away
            with contextlib.suppress(OSError):
                handler.connection.shutdown(socket.SHUT_RDWR)
            handler.close_connection = True
            return
        if self.delay:
            time.sleep(self.delay)
        session = getattr(self._sessions, "session", None)
        if session is None:
            session = self._sessions.session = requests.Session()
        forwarded = {k: v for k, v in headers.items() if k.lower() not in _HOP_BY_HOP}
        upstream = session.request(
            handler.command,
            self.target + handler.path,
            headers=forwarded,
            allow_redirects=False,
        )
        body = upstream.content
        seen.status, seen.nbytes = upstream.status_code, len(body)
        seen.end = time.monotonic()
        with contextlib.suppress(OSError):  # the client may have given up
            handler.send_response(upstream.status_code)
            for name, value in upstream.headers.items():
                if name.lower() not in _HOP_BY_HOP:
                    handler.send_header(name, value)
            if handler.command == "HEAD":
                length = upstream.headers.get("Content-Length", "0")
                handler.send_header("Content-Length", length)
                handler.end_headers()
                return
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
