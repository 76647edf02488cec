"""Connections opened ahead, for servers that close them after every answer.

Some DICOMweb servers close the connection after each multipart answer
(Orthanc does, ``Connection: close``), so that every request for frames opens
a new connection and waits a round trip for the TCP handshake before it is
even sent: over a network 50 ms away, a read of one request takes two round
trips instead of one. :class:`ConnectingAdapter`, the transport adapter of the
sessions that dicomslide makes (:func:`dicomslide.transport.new_session`),
notices an origin whose connections have to be opened again, and from then on
keeps connections to it open ahead of need (:class:`Spares`: two per request
in flight at once lately, from two to four), so that the next requests find
their handshake done. Spares that wait too long are closed, as are those the
server closes meanwhile; connections through a proxy and over TLS are opened
when needed, as before.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Hashable
from typing import Any

import requests.adapters
from urllib3.connection import HTTPConnection
from urllib3.connectionpool import HTTPConnectionPool
from urllib3.util.connection import create_connection
from urllib3.util.wait import wait_for_read

logger = logging.getLogger(__name__)

#: Connections kept open ahead of need per origin: two per request seen in
#: flight at once lately, at least SPARES and at most MAX_SPARES
SPARES = 2
MAX_SPARES = 4
#: Seconds after which a spare nobody took is closed (servers close idle
#: connections themselves, and each one they keep may hold a server thread)
SPARE_SECONDS = 5.0


class Spares:
    """Sockets opened ahead of need, per origin and socket settings.

    As many are kept as two per request that was in flight at once to the
    origin within the last `seconds` (a request is sent on one while its
    successor's handshake is done on the other), within `count` and
    `max_count`.

    Parameters
    ----------
    count: int, optional
        Fewest sockets kept open ahead per origin
    seconds: float, optional
        Seconds after which a socket nobody took is closed
    max_count: int, optional
        Most sockets kept open ahead per origin

    """

    def __init__(
        self,
        count: int = SPARES,
        seconds: float = SPARE_SECONDS,
        max_count: int = MAX_SPARES,
    ) -> None:
        self.count = count
        self.seconds = seconds
        self.max_count = max_count
        self._lock = threading.Lock()
        self._ready: dict[Hashable, deque[tuple[float, socket.socket]]] = {}
        self._opening: dict[Hashable, int] = {}
        # requests in flight per origin, and the most lately (with when)
        self._in_flight: dict[Hashable, int] = {}
        self._peak: dict[Hashable, tuple[int, float]] = {}

    def started(self, key: Hashable) -> None:
        """Count a request sent to the origin of `key`.

        Parameters
        ----------
        key: Hashable
            Origin and socket settings

        """
        now = time.monotonic()
        with self._lock:
            in_flight = self._in_flight[key] = self._in_flight.get(key, 0) + 1
            peak, when = self._peak.get(key, (0, now))
            if in_flight >= peak or now - when > self.seconds:
                self._peak[key] = (in_flight, now)

    def ended(self, key: Hashable) -> None:
        """Count a request to the origin of `key` answered (or failed).

        Parameters
        ----------
        key: Hashable
            Origin and socket settings

        """
        with self._lock:
            self._in_flight[key] = max(0, self._in_flight.get(key, 0) - 1)

    def wanted(self, key: Hashable) -> int:
        """Sockets to keep open ahead for `key` now.

        Parameters
        ----------
        key: Hashable
            Origin and socket settings

        Returns
        -------
        int
            Twice the most requests in flight at once lately, within
            :attr:`count` and :attr:`max_count`

        """
        with self._lock:
            peak, when = self._peak.get(key, (0, 0.0))
            if time.monotonic() - when > self.seconds:
                peak = self._in_flight.get(key, 0)
        return max(self.count, min(self.max_count, 2 * peak))

    def take(self, key: Hashable) -> socket.socket | None:
        """A socket opened ahead for `key` that is still open, if any.

        Parameters
        ----------
        key: Hashable
            Origin and socket settings (see :meth:`open_ahead`)

        Returns
        -------
        Union[socket.socket, None]
            A connected socket, the oldest first; None if there is none

        """
        while True:
            with self._lock:
                ready = self._ready.get(key)
                if not ready:
                    return None
                opened, sock = ready.popleft()
            # a server that closed it, or sent anything, makes it unusable
            if time.monotonic() - opened < self.seconds and not wait_for_read(
                sock, timeout=0.0
            ):
                return sock
            sock.close()

    def open_ahead(
        self,
        key: Hashable,
        address: tuple[str, int],
        timeout: float | None,
        source_address: tuple[str, int] | None,
        socket_options: Any,
    ) -> None:
        """Open sockets to `address` in the background, up to
        :meth:`wanted` for `key` ready or opening.

        Parameters
        ----------
        key: Hashable
            Names the origin and the socket settings
        address: Tuple[str, int]
            Host and port
        timeout: Union[float, None]
            Connect timeout in seconds
        source_address: Union[Tuple[str, int], None]
            Local address to bind to
        socket_options: Any
            Socket options, as urllib3 takes them

        """
        target = self.wanted(key)
        with self._lock:
            ready = len(self._ready.get(key, ()))
            opening = self._opening.get(key, 0)
            wanted = target - ready - opening
            if wanted <= 0:
                return
            self._opening[key] = opening + wanted
        for _ in range(wanted):
            threading.Thread(
                target=self._open,
                args=(key, address, timeout, source_address, socket_options),
                name="dicomslide-connect",
                daemon=True,
            ).start()

    def _open(
        self,
        key: Hashable,
        address: tuple[str, int],
        timeout: float | None,
        source_address: tuple[str, int] | None,
        socket_options: Any,
    ) -> None:
        try:
            sock = create_connection(
                address,
                timeout=timeout,
                source_address=source_address,
                socket_options=socket_options,
            )
        except OSError as error:
            logger.debug("opening a connection ahead failed: %s", error)
            return
        finally:
            with self._lock:
                self._opening[key] -= 1
        entry = (time.monotonic(), sock)
        with self._lock:
            self._ready.setdefault(key, deque()).append(entry)
        # close it once it has waited too long (unless taken meanwhile)
        timer = threading.Timer(self.seconds, self._expire, (key, entry))
        timer.daemon = True
        timer.start()

    def _expire(self, key: Hashable, entry: tuple[float, socket.socket]) -> None:
        with self._lock:
            ready = self._ready.get(key)
            if ready is None or entry not in ready:
                return
            ready.remove(entry)
        entry[1].close()


#: The sockets opened ahead for every session dicomslide makes
spares = Spares()


def _forget_after_fork() -> None:
    """A forked child opens its own: parent and child never share a socket."""
    global spares
    inherited = spares
    spares = Spares(inherited.count, inherited.seconds, inherited.max_count)
    # the child's copies only (the parent's stay open); no lock: a thread of
    # the parent may have held it at the fork
    for ready in inherited._ready.values():
        for _, sock in ready:
            sock.close()


os.register_at_fork(after_in_child=_forget_after_fork)


class AheadConnection(HTTPConnection):
    """An HTTP connection that uses a socket opened ahead when there is one,
    and has sockets to its origin opened ahead for the next requests when the
    server says that it closes this one after answering."""

    _counted = False  # whether a request of this connection is counted in flight

    def _spare_key(self) -> Hashable:
        return (self.host, self.port, self.source_address, repr(self.socket_options))

    def _end(self) -> None:
        if self._counted:
            self._counted = False
            spares.ended(self._spare_key())

    def request(self, *args: Any, **kwargs: Any) -> None:
        """Send a request, counted in flight until answered or closed
        (arguments as urllib3's)."""
        self._end()
        spares.started(self._spare_key())
        self._counted = True
        try:
            super().request(*args, **kwargs)
        except BaseException:
            self._end()
            raise

    def close(self) -> None:
        """Close the connection (a request in flight on it ends)."""
        self._end()
        super().close()

    def connect(self) -> None:
        """Connect: with a socket opened ahead if any, else as urllib3 does."""
        sock = spares.take(self._spare_key()) if self.proxy is None else None
        if sock is None:
            super().connect()
        else:
            self.sock = sock  # a direct connection is its socket

    def getresponse(self) -> Any:  # the type differs between urllib3 versions
        """The answer; where it closes the connection (``Connection: close``),
        connections to the origin are opened ahead for the next requests.

        Returns
        -------
        urllib3.response.HTTPResponse
            The answer, as urllib3 gives it

        """
        try:
            response = super().getresponse()
        finally:
            self._end()
        # http.client lets go of the socket of an answer that closes it
        if self.sock is None and self.proxy is None:
            spares.open_ahead(
                self._spare_key(),
                (self.host, self.port),
                self.timeout if isinstance(self.timeout, (int, float)) else None,
                self.source_address,
                self.socket_options,
            )
        return response


class AheadConnectionPool(HTTPConnectionPool):
    """An HTTP connection pool of :class:`AheadConnection`."""

    ConnectionCls = AheadConnection


class ConnectingAdapter(requests.adapters.HTTPAdapter):
    """A transport adapter whose plain HTTP connections are opened ahead of
    need where the server closes them (:class:`AheadConnection`); as
    ``requests.adapters.HTTPAdapter`` otherwise, and takes its arguments."""

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        """Make the pool manager, whose HTTP pools open connections ahead.

        Parameters
        ----------
        connections: int
            Pools to keep
        maxsize: int
            Connections to keep per pool
        block: bool, optional
            Whether to wait for a free connection
        **pool_kwargs: Any
            Further arguments of ``urllib3.PoolManager``

        """
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            **self.poolmanager.pool_classes_by_scheme,
            "http": AheadConnectionPool,
        }
