"""Connections opened ahead, for servers that close them after every answer.

Some DICOMweb servers close the connection after each multipart answer
(Orthanc does, ``Connection: close``), so that every request for frames opens
a new connection and waits a round trip for the TCP handshake before it is
even sent: over a network 50 ms away, a read of one request takes two round
trips instead of one. :class:`ConnectingAdapter`, the transport adapter of the
sessions that dicomslide makes (:func:`dicomslide.transport.new_session`),
notices an origin whose connections have to be opened again, and from then on
keeps a few connections to it open ahead of need (:class:`Spares`), so that
the next request finds its handshake done. Spares that wait too long are
closed, as are those the server closes meanwhile; connections through a proxy
and over TLS are opened when needed, as before.
"""

from __future__ import annotations

import logging
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

#: Connections kept open ahead of need, per origin
SPARES = 2
#: Seconds after which a spare nobody took is closed (servers close idle
#: connections themselves, and each one they keep may hold a server thread)
SPARE_SECONDS = 5.0


class Spares:
    """Sockets opened ahead of need, per origin and socket settings.

    Parameters
    ----------
    count: int, optional
        Sockets kept open ahead per origin
    seconds: float, optional
        Seconds after which a socket nobody took is closed

    """

    def __init__(self, count: int = SPARES, seconds: float = SPARE_SECONDS) -> None:
        self.count = count
        self.seconds = seconds
        self._lock = threading.Lock()
        self._ready: dict[Hashable, deque[tuple[float, socket.socket]]] = {}
        self._opening: dict[Hashable, int] = {}

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
        """Open sockets to `address` in the background, up to :attr:`count`
        for `key` ready or opening.

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
        with self._lock:
            ready = len(self._ready.get(key, ()))
            opening = self._opening.get(key, 0)
            wanted = self.count - ready - opening
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

    def close(self) -> None:
        """Close every socket opened ahead."""
        with self._lock:
            entries = [entry for ready in self._ready.values() for entry in ready]
            self._ready.clear()
        for _, sock in entries:
            sock.close()


#: The sockets opened ahead for every session dicomslide makes
spares = Spares()


class AheadConnection(HTTPConnection):
    """An HTTP connection that uses a socket opened ahead when there is one,
    and has sockets to its origin opened ahead for the next requests when the
    server says that it closes this one after answering."""

    def _spare_key(self) -> Hashable:
        return (self.host, self.port, self.source_address, repr(self.socket_options))

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
        response = super().getresponse()
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
