"""A loopback TCP proxy that behaves like a distant network.

:class:`WanProxy` listens on 127.0.0.1 and relays every connection to a server
(Orthanc). Each direction is delayed by half the round trip time; a new
connection sends nothing before a round trip has passed (the TCP handshake a
real network charges, which loopback does not); and an optional bandwidth cap
is shared by all connections in each direction, as one access link. It
counts connections, HTTP requests (data from the client that starts with a
method), bytes and the most requests in flight at once.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
import time
from dataclasses import dataclass

_METHODS = (b"GET ", b"POST ", b"PUT ", b"HEAD ", b"DELETE ", b"OPTIONS ")
_CHUNK = 64 * 1024


class _Link:
    """One direction of the emulated network: its delay and bottleneck."""

    def __init__(self, delay: float, bits_per_second: float | None) -> None:
        self.delay = delay
        self.bits_per_second = bits_per_second
        self._free_at = 0.0
        self._lock = threading.Lock()

    def due(self, nbytes: int, sent: float) -> float:
        """When `nbytes` sent at `sent` arrive at the other end."""
        if not self.bits_per_second:
            return sent + self.delay
        with self._lock:
            start = max(sent, self._free_at)
            self._free_at = start + nbytes * 8 / self.bits_per_second
            return self._free_at + self.delay


@dataclass
class Counts:
    """What the proxy saw (since the last :meth:`WanProxy.reset`)."""

    connections: int = 0
    requests: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    in_flight: int = 0
    max_in_flight: int = 0


class WanProxy:
    """A TCP proxy on 127.0.0.1 with a round trip time and a bandwidth cap.

    Parameters
    ----------
    host: str
        Host of the server
    port: int
        Port of the server
    rtt: float
        Round trip time in seconds (half of it each way)
    mbit: Union[float, None], optional
        Bandwidth cap of each direction in Mbit/s, shared by all connections

    """

    def __init__(
        self, host: str, port: int, rtt: float, mbit: float | None = None
    ) -> None:
        self.target = (host, port)
        self.rtt = rtt
        bits = mbit * 1e6 if mbit else None
        self._up = _Link(rtt / 2, bits)
        self._down = _Link(rtt / 2, bits)
        self.counts = Counts()
        self._lock = threading.Lock()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self.port = int(self._listener.getsockname()[1])
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, path: str = "") -> str:
        """URL of `path` on the server, through the proxy."""
        return f"http://127.0.0.1:{self.port}{path}"

    def reset(self) -> Counts:
        """Start counting afresh; returns what was counted until now."""
        with self._lock:
            counts, self.counts = self.counts, Counts()
            self.counts.in_flight = counts.in_flight
            return counts

    def close(self) -> None:
        """Stop accepting connections."""
        self._closed = True
        with contextlib.suppress(OSError):
            self._listener.close()

    def __enter__(self) -> WanProxy:
        return self

    def __exit__(self, *args: object) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            accepted = time.monotonic()
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self.counts.connections += 1
            pair = _Pair(client, server)
            # the client may send once the handshake's round trip has passed
            self._pump(client, server, self._up, accepted + self.rtt, pair, True)
            self._pump(server, client, self._down, 0.0, pair, False)

    def _pump(
        self,
        source: socket.socket,
        sink: socket.socket,
        link: _Link,
        not_before: float,
        pair: _Pair,
        upstream: bool,
    ) -> None:
        pending: queue.Queue[tuple[float, bytes | None]] = queue.Queue()

        def read() -> None:
            while True:
                try:
                    data = source.recv(_CHUNK)
                except OSError:
                    data = b""
                now = max(time.monotonic(), not_before)
                if not data:
                    pending.put((link.delay + now, None))
                    return
                self._count(data, upstream)
                pending.put((link.due(len(data), now), data))

        def write() -> None:
            while True:
                due, data = pending.get()
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                if data is None:
                    pair.half_close(sink)
                    return
                try:
                    sink.sendall(data)
                except OSError:
                    pair.half_close(sink)
                    return
                if not upstream:
                    self._answered(data)

        threading.Thread(target=read, daemon=True).start()
        threading.Thread(target=write, daemon=True).start()

    def _count(self, data: bytes, upstream: bool) -> None:
        with self._lock:
            if upstream:
                self.counts.bytes_up += len(data)
                if data.startswith(_METHODS):
                    self.counts.requests += 1
                    self.counts.in_flight += 1
                    self.counts.max_in_flight = max(
                        self.counts.max_in_flight, self.counts.in_flight
                    )
            else:
                self.counts.bytes_down += len(data)

    def _answered(self, data: bytes) -> None:
        # an answer's status line ends a request's time in flight
        if data.startswith(b"HTTP/1."):
            with self._lock:
                self.counts.in_flight = max(0, self.counts.in_flight - 1)


class _Pair:
    """The two sockets of a relayed connection, closed once both directions end."""

    def __init__(self, client: socket.socket, server: socket.socket) -> None:
        self._sockets = (client, server)
        self._ended = 0
        self._lock = threading.Lock()

    def half_close(self, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)
        with self._lock:
            self._ended += 1
            if self._ended < 2:
                return
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()
