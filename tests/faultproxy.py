"""A fault-injecting HTTP proxy and a connection recorder, for DICOMweb tests.

:class:`FaultProxy` listens on 127.0.0.1 and passes every GET request on to a
server (the Orthanc fixture) with requests. It records each request it
answers (path, headers, status, bytes of the body sent), and a test installs
:class:`Rule` objects that answer in the server's place (a status, a redirect,
a reset connection) or alter the server's answer.

:class:`ConnectionRecorder` is a listening socket that accepts connections,
records them and closes them: the "other host" of the security tests.
"""

from __future__ import annotations

import contextlib
import http.server
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import requests

# Headers not passed on between client, proxy and server
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "content-encoding",
    "host",
}


@dataclass
class Seen:
    """A request the proxy answered."""

    path: str
    headers: dict[str, str]
    status: int = 0  # 0 until answered (or when reset)
    nbytes: int = 0  # bytes of the body sent back
    connection: int = 0  # number of the connection it came on (from 1)
    accepted: float = 0.0  # time.monotonic() when that connection was accepted
    arrived: float = 0.0  # time.monotonic() when the request arrived


@dataclass
class Rule:
    """What to do with the next requests whose path contains `fragment`.

    Parameters
    ----------
    fragment: str
        Part of the path (with query) that the rule applies to
    times: Union[int, None]
        How many requests it applies to; None for every one
    status: Union[int, None]
        Answer with this status (and `headers`, `body`) instead of the server
    headers: Dict[str, str]
        Headers of that answer (e.g. ``Retry-After``, ``Location``)
    body: bytes
        Body of that answer
    reset: bool
        Close the connection without an answer
    transform: Union[Callable[[bytes], bytes], None]
        Pass the request on and alter the body of the server's answer
    when: Union[Callable[[Dict[str, str]], bool], None]
        Apply only to requests whose headers satisfy this
    delay: float
        Seconds to wait before answering (a stalled server)

    """

    fragment: str
    times: int | None = 1
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b'{"Message": "injected fault"}'
    reset: bool = False
    transform: Callable[[bytes], bytes] | None = None
    when: Callable[[dict[str, str]], bool] | None = None
    delay: float = 0.0
    used: int = 0


class FaultProxy:
    """An HTTP proxy on 127.0.0.1 in front of a server.

    Parameters
    ----------
    target: str
        Root URL of the server, e.g. ``http://127.0.0.1:8042``
    authorization: Union[str, None], optional
        If given, the ``Authorization`` header that every request must carry;
        others are answered 401
    latency: float, optional
        Seconds of a network round trip: half of it passes before a request
        is passed on, half before the answer is sent (a distant server)
    close_connections: bool, optional
        Close every connection after its first answer (``Connection: close``),
        as Orthanc does after multipart answers
    idle_timeout: Union[float, None], optional
        Close connections that wait this many seconds for a request

    Attributes
    ----------
    max_in_flight: int
        Most requests that were being answered at the same time
    connections: int
        Connections accepted
    open_connections: int
        Connections accepted and not closed yet

    """

    def __init__(
        self,
        target: str,
        authorization: str | None = None,
        latency: float = 0.0,
        close_connections: bool = False,
        idle_timeout: float | None = None,
    ) -> None:
        self.target = target.rstrip("/")
        self.authorization = authorization
        self.latency = latency
        self.close_connections = close_connections
        self.connections = 0
        self.open_connections = 0
        self.rules: list[Rule] = []
        self.seen: list[Seen] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._sessions = threading.local()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = idle_timeout

            def setup(self) -> None:
                super().setup()
                with proxy._lock:
                    proxy.connections += 1
                    proxy.open_connections += 1
                    self.number = proxy.connections
                self.accepted = time.monotonic()

            def finish(self) -> None:
                with proxy._lock:
                    proxy.open_connections -= 1
                with contextlib.suppress(OSError):
                    super().finish()

            def log_message(self, *args: object) -> None:  # quiet
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                self.arrived = time.monotonic()
                proxy._handle(self)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """str: the proxy's root URL"""
        return f"http://127.0.0.1:{self.port}"

    @property
    def dicomweb_url(self) -> str:
        """str: the DICOMweb root through the proxy"""
        return f"{self.url}/dicom-web"

    def add(self, fragment: str, **kwargs: object) -> Rule:
        """Install a rule (see :class:`Rule`); the first that matches applies."""
        rule = Rule(fragment, **kwargs)  # type: ignore[arg-type]
        with self._lock:
            self.rules.append(rule)
        return rule

    def requests_to(self, fragment: str) -> list[Seen]:
        """The requests answered whose path contains `fragment`."""
        with self._lock:
            return [seen for seen in self.seen if fragment in seen.path]

    def bytes_to(self, fragment: str) -> int:
        """Bytes of the bodies sent back for paths that contain `fragment`."""
        return sum(seen.nbytes for seen in self.requests_to(fragment))

    def close(self) -> None:
        """Stop the proxy."""
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *args: object) -> None:
        self.close()

    def _rule_for(self, path: str, headers: dict[str, str]) -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if rule.fragment not in path or rule.times == 0:
                    continue
                if rule.when is not None and not rule.when(headers):
                    continue
                if rule.times is not None:
                    rule.times -= 1
                rule.used += 1
                return rule
        return None

    def _session(self) -> requests.Session:
        session = getattr(self._sessions, "session", None)
        if session is None:
            session = self._sessions.session = requests.Session()
        return session

    def _handle(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            time.sleep(self.latency / 2)
            self._answer_request(handler)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _answer_request(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        path = handler.path
        headers = dict(handler.headers.items())
        seen = Seen(
            path,
            headers,
            connection=getattr(handler, "number", 0),
            accepted=getattr(handler, "accepted", 0.0),
            arrived=getattr(handler, "arrived", 0.0),
        )
        with self._lock:
            self.seen.append(seen)
        if self.authorization is not None and (
            headers.get("Authorization") != self.authorization
        ):
            self._answer(handler, seen, 401, {}, b"")
            return
        rule = self._rule_for(path, headers)
        if rule is not None and rule.delay:
            time.sleep(rule.delay)
        if rule is not None and rule.reset:
            with contextlib.suppress(OSError):
                handler.connection.shutdown(socket.SHUT_RDWR)
            handler.close_connection = True
            return
        if rule is not None and rule.status is not None:
            reply = {"Content-Type": "application/json", **rule.headers}
            self._answer(handler, seen, rule.status, reply, rule.body)
            return
        forwarded = {k: v for k, v in headers.items() if k.lower() not in _HOP_BY_HOP}
        upstream = self._session().get(
            self.target + path, headers=forwarded, allow_redirects=False
        )
        body = upstream.content
        if rule is not None and rule.transform is not None:
            body = rule.transform(body)
        reply = {
            k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP
        }
        self._answer(handler, seen, upstream.status_code, reply, body)

    def _answer(
        self,
        handler: http.server.BaseHTTPRequestHandler,
        seen: Seen,
        status: int,
        reply: dict[str, str],
        body: bytes,
    ) -> None:
        with self._lock:
            seen.status, seen.nbytes = status, len(body)
        time.sleep(self.latency / 2)
        with contextlib.suppress(OSError):  # the client may have given up
            handler.send_response(status)
            for name, value in reply.items():
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(body)))
            if self.close_connections:
                handler.send_header("Connection", "close")
                handler.close_connection = True
            handler.end_headers()
            handler.wfile.write(body)


class ConnectionRecorder:
    """A socket on 127.0.0.1 that records the connections it accepts."""

    def __init__(self) -> None:
        self.connections: list[tuple[str, int]] = []
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(16)
        self.port = int(self._socket.getsockname()[1])
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, address = self._socket.accept()
            except OSError:  # closed
                return
            self.connections.append(address)
            connection.close()

    def close(self) -> None:
        """Stop listening."""
        with contextlib.suppress(OSError):
            self._socket.shutdown(socket.SHUT_RDWR)
        self._socket.close()
        self._thread.join(timeout=5)

    def __enter__(self) -> ConnectionRecorder:
        return self

    def __exit__(self, *args: object) -> None:
        self.close()
