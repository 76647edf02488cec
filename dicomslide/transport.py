"""Requests to a DICOMweb server: one origin, no credentials in URLs, retries.

Every request that dicomslide sends itself (frames, bulk data, whole
instances) goes through :func:`get`, which

- sends it with the timeouts of :data:`settings`;
- follows redirects only within the origin (scheme, host and port) of the URL
  asked for, and refuses the others;
- retries transient failures (connection errors, timeouts, HTTP 408, 429,
  500, 502, 503 and 504) a bounded number of times, after the time that a
  ``Retry-After`` header gives for 429 and 503, else with exponential
  backoff, each wait capped.

URIs that a server hands out (bulk data URIs) are never used as they are:
:func:`rebase` moves their path onto the client's own base URL and refuses
what does not move cleanly. Hosts and ports are decided as urllib3, which
sends the requests, decides them.
"""

from __future__ import annotations

import datetime
import email.utils
import logging
import os
import re
import time
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

import requests
import requests.adapters
from urllib3.util import parse_url

from dicomslide._compat import client_session, replace_client_session
from dicomslide.preconnect import ConnectingAdapter
from dicomslide.urls import without_credentials as without_credentials

if TYPE_CHECKING:
    from dicomweb_client import DICOMwebClient

logger = logging.getLogger(__name__)


@dataclass
class WebSettings:
    """How dicomslide talks to DICOMweb servers.

    Parameters
    ----------
    timeout: Tuple[float, float]
        Connect and read timeout in seconds of every request dicomslide sends
        itself (frames, bulk data, instances), whoever built the client; a
        client that dicomslide opens from a URL gets it for its own requests
        (searches, metadata) too
    retries: int
        Attempts after the first one for transient failures (connection
        errors, timeouts, HTTP 408, 429, 500, 502, 503 and 504)
    backoff: float
        Wait before the first retry in seconds; doubled for each further one
    max_wait: float
        Longest wait before a retry in seconds: caps the backoff and the time
        that a ``Retry-After`` header asks for
    chunk_frames: int
        Largest number of frames in one request
    split_frames: int
        A read of at least twice this many frames is split into concurrent
        requests of at least this many frames each, as many as
        `connections` allows
    connections: int
        Largest number of requests that dicomslide has in flight at once for
        frames fetched in the background (read-ahead, neighbours) and for the
        parts of a split read: the size of its I/O thread pool
        (:func:`dicomslide.pool.io_executor`), apart from the threads that
        decode; sessions that dicomslide makes keep as many connections
    neighbours: bool
        Whether a read that fetches frames also asks, in a separate request in
        the background, for the ring of tiles around it, while at least a
        quarter of the tiles so fetched are read later
    reprobe_reads: int
        Reads after which a media type learnt because the server refused the
        stored bytes is given up for the stored bytes again (once)
    reprobe_seconds: float
        Seconds after which the same happens
    instance_cache_bytes: int
        Largest number of bytes of instances kept in memory that were
        retrieved whole because the server refused to send their frames

    """

    timeout: tuple[float, float] = (5.0, 60.0)
    retries: int = 3
    backoff: float = 0.1
    max_wait: float = 30.0
    chunk_frames: int = 512
    split_frames: int = 16
    connections: int = 8
    neighbours: bool = True
    reprobe_reads: int = 100
    reprobe_seconds: float = 300.0
    instance_cache_bytes: int = 256 * 1024 * 1024


#: Settings of every request dicomslide sends to a DICOMweb server
settings = WebSettings()

#: Statuses after which a request is sent again
TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_WAIT_STATUSES = frozenset({429, 503})  # where Retry-After is honoured
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 5
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Characters that no URI we send may hold: controls, space and backslash
# (urllib3 ends the authority at a backslash, urllib.parse does not)
_UNSAFE = re.compile(r"[\x00-\x20\x7f\\]")


class RequestError(Exception):
    """A request failed for good (the message holds no URL).

    Parameters
    ----------
    message: str
        What the server said, or why the request was refused
    response: Union[requests.Response, None], optional
        The last answer, if there was one

    """

    def __init__(self, message: str, response: requests.Response | None = None):
        super().__init__(message)
        self.response = response

    @property
    def status(self) -> int | None:
        """Union[int, None]: HTTP status of the last answer, if there was one"""
        return None if self.response is None else self.response.status_code


def split_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """Take the user information out of a URL.

    Parameters
    ----------
    url: str
        URL, possibly of the form ``scheme://user:password@host/...``

    Returns
    -------
    Tuple[str, Union[Tuple[str, str], None]]
        The URL without user information, and the (percent-decoded) user name
        and password it held, if any

    Raises
    ------
    ValueError
        When the user information cannot be told apart from the host the way
        every parser would (e.g. a backslash or a second ``@``)

    """
    split = urlsplit(url)
    if "@" not in split.netloc:
        return url, None
    try:
        parsed = parse_url(url)
        port = split.port
    except ValueError:
        parsed, port = None, None
    if (
        parsed is None
        or _UNSAFE.search(url)
        or parsed.auth is None
        or _host(parsed.host) != (split.hostname or "")
        or parsed.port != port
    ):
        raise ValueError("the user information of the URL is ambiguous")
    user, _, password = parsed.auth.partition(":")
    if (unquote(user), unquote(password)) != (
        unquote(split.username or ""),
        unquote(split.password or ""),
    ):
        raise ValueError("the user information of the URL is ambiguous")
    return without_credentials(url), (unquote(user), unquote(password))


def _host(host: str | None) -> str:
    """A host as urllib.parse gives it: lower case, IPv6 without brackets."""
    return (host or "").lower().removeprefix("[").removesuffix("]")


def origin(url: str) -> tuple[str, str, int] | None:
    """Scheme, host and port that a request for a URL goes to.

    Parameters
    ----------
    url: str
        Absolute ``http(s)`` URL

    Returns
    -------
    Union[Tuple[str, str, int], None]
        Origin, or None unless the URL names it unambiguously: without user
        information, percent-encoding in its authority, backslashes or
        control characters, and with urllib3 and urllib.parse agreeing

    """
    if _UNSAFE.search(url):
        return None
    split = urlsplit(url)
    if "@" in split.netloc or "%" in split.netloc:
        return None
    try:
        parsed = parse_url(url)
        split_port = split.port
    except ValueError:
        return None
    scheme = (parsed.scheme or "").lower()
    if scheme not in _DEFAULT_PORTS or split.scheme.lower() != scheme:
        return None
    host = _host(parsed.host)
    if not host or host != (split.hostname or ""):
        return None
    port = parsed.port or _DEFAULT_PORTS[scheme]
    if (split_port or _DEFAULT_PORTS[scheme]) != port:
        return None
    return scheme, host, port


def _clean_path(path: str) -> bool:
    """Whether a path names the same resource for every server: no dot
    segments and no encoded slashes, backslashes or dots."""
    for segment in path.split("/"):
        decoded = unquote(segment)
        if decoded in (".", "..") or "/" in decoded or "\\" in decoded:
            return False
    return True


def rebase(base_url: str, uri: str) -> str | None:
    """Move a server-given URI onto a client's base URL.

    The URI's path must lie below the path of the base URL; it is joined to
    the base URL, whose scheme, host and port are used whatever the URI says
    (servers behind proxies often write their internal host name). A relative
    URI is resolved against the base URL first.

    Parameters
    ----------
    base_url: str
        Base URL of the client (its DICOMweb root)
    uri: str
        URI from the server, e.g. a bulk data URI

    Returns
    -------
    Union[str, None]
        URL to fetch, on the base URL's origin; None when the URI does not
        re-base cleanly: a scheme other than http(s), user information, an
        authority that parsers read differently, dot segments, encoded
        slashes, a fragment, or a path outside the base URL's

    """
    own = origin(base_url)
    if own is None or _UNSAFE.search(uri) or "#" in uri:
        return None
    base = urlsplit(base_url)
    root = base.path.rstrip("/")
    target = urlsplit(uri)
    if not _clean_path(target.path):
        return None
    if target.scheme or target.netloc or uri.startswith("//"):
        absolute = uri if target.scheme else f"{own[0]}:{uri}"
        if origin(absolute) is None:
            return None
        path = target.path
    else:
        path = urlsplit(urljoin(f"{root}/", target.path)).path if target.path else ""
    if not path.startswith(f"{root}/"):
        return None
    rebased = urlunsplit((base.scheme, base.netloc, path, target.query, ""))
    return rebased if origin(rebased) == own else None


def retry_delay(attempt: int) -> float:
    """Seconds to wait before a retry after no ``Retry-After``.

    Parameters
    ----------
    attempt: int
        Number of the retry (1 for the first)

    Returns
    -------
    float
        ``backoff * 2 ** (attempt - 1)``, at most :attr:`WebSettings.max_wait`

    """
    return min(settings.max_wait, settings.backoff * 2.0 ** max(0, attempt - 1))


def retry_after(response: requests.Response) -> float | None:
    """Seconds that a ``Retry-After`` header asks to wait, if it is valid.

    Parameters
    ----------
    response: requests.Response
        Answer

    Returns
    -------
    Union[float, None]
        Seconds (delay-seconds or an HTTP date), or None

    """
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    now = datetime.datetime.now(datetime.timezone.utc)
    return max(0.0, (when - now).total_seconds())


def server_message(response: requests.Response) -> str:
    """A short excerpt of an error answer (Orthanc explains its errors).

    Parameters
    ----------
    response: requests.Response
        Answer

    Returns
    -------
    str
        ``": <details>"``, or an empty string

    """
    try:
        details = response.json()
    except ValueError:
        return ""
    if isinstance(details, dict):
        text = details.get("Details") or details.get("Message")
        if text:
            return f": {str(text)[:200]}"
    return ""


def describe(response: requests.Response) -> str:
    """What an answer said: status, reason, ``Retry-After`` and details.

    Parameters
    ----------
    response: requests.Response
        Answer

    Returns
    -------
    str
        Description without URL

    """
    text = f"HTTP {response.status_code}"
    if response.reason:
        text += f" {str(response.reason)[:80]}"
    wait = response.headers.get("Retry-After")
    if wait:
        text += f" (Retry-After: {wait.strip()[:40]})"
    return text + server_message(response)


def get(session: requests.Session, url: str, accept: str) -> requests.Response:
    """Send a GET request under the rules of this module.

    Parameters
    ----------
    session: requests.Session
        Session (its authentication, headers, proxies and certificates apply)
    url: str
        URL
    accept: str
        Accept header

    Returns
    -------
    requests.Response
        The first answer whose status is not transient (it may be an error)

    Raises
    ------
    RequestError
        When transient failures outlast the retries (the message says what
        the server said: statuses, ``Retry-After``), or a redirect leaves the
        origin

    """
    failures: list[str] = []
    last: requests.Response | None = None
    wait = 0.0
    attempts = max(0, settings.retries) + 1
    for attempt in range(attempts):
        if attempt:
            time.sleep(wait)
        try:
            response = _follow(session, url, accept)
        except requests.RequestException as error:
            failures.append(type(error).__name__)
            logger.debug("request failed: %s", type(error).__name__)
            wait = retry_delay(attempt + 1)
            continue
        if response.status_code not in TRANSIENT_STATUSES:
            return response
        last = response
        failures.append(describe(response))
        asked = (
            retry_after(response) if response.status_code in _WAIT_STATUSES else None
        )
        wait = (
            retry_delay(attempt + 1) if asked is None else min(asked, settings.max_wait)
        )
        logger.debug("HTTP %d, retried in %.2f s", response.status_code, wait)
    raise RequestError(
        f"{', '.join(dict.fromkeys(failures))} ({attempts} attempts)", last
    )


def _follow(session: requests.Session, url: str, accept: str) -> requests.Response:
    """One attempt: the request and the redirects within its origin."""
    own = origin(url)
    for _ in range(_MAX_REDIRECTS + 1):
        response = session.get(
            url,
            headers={"Accept": accept},
            timeout=settings.timeout,
            allow_redirects=False,
        )
        location = response.headers.get("Location")
        if response.status_code not in _REDIRECT_STATUSES or not location:
            return response
        target = urljoin(url, location)
        there = origin(target)
        if own is None or there != own:
            shown = "an unparsable location" if there is None else _origin_text(there)
            raise RequestError(
                f"HTTP {response.status_code}: redirected to {shown}, another "
                "origin than the server's: refused",
                response,
            )
        logger.debug("redirected within %s", _origin_text(own))
        response.close()
        url = target
    raise RequestError(f"more than {_MAX_REDIRECTS} redirects")


def _origin_text(value: tuple[str, str, int]) -> str:
    scheme, host, port = value
    return f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}"


def new_session() -> requests.Session:
    """A session that keeps a connection for every request dicomslide may
    have in flight (:attr:`WebSettings.connections`, and the reading threads'),
    and opens connections ahead of need to servers that close them after
    answering (:class:`dicomslide.preconnect.ConnectingAdapter`).

    Returns
    -------
    requests.Session
        Session

    """
    session = requests.Session()
    size = max(1, settings.connections) + (os.cpu_count() or 2)
    session.mount("https://", requests.adapters.HTTPAdapter(pool_maxsize=size))
    session.mount("http://", ConnectingAdapter(pool_maxsize=size))
    return session


_sessions: weakref.WeakKeyDictionary[Any, tuple[int, requests.Session]] = (
    weakref.WeakKeyDictionary()
)


def give_session(client: DICOMwebClient, session: requests.Session) -> None:
    """Record the session that dicomslide built `client` with.

    Parameters
    ----------
    client: dicomweb_client.DICOMwebClient
        A client dicomslide built
    session: requests.Session
        The session it was given
    """
    _sessions[client] = (os.getpid(), session)


def session_of(client: DICOMwebClient) -> requests.Session | None:
    """The HTTP session of a ``DICOMwebClient``, never one shared across fork.

    A client dicomslide built (:func:`give_session`) sends with the session
    it was given; a user-built one with its own, when it can be reached
    (:func:`dicomslide._compat.client_session`). In a process forked after the
    session was used, it is replaced by a new one with the same
    authentication, headers, proxies and certificates, so parent and child
    never share a socket.

    Parameters
    ----------
    client: dicomweb_client.DICOMwebClient
        Client

    Returns
    -------
    requests.Session or None
        Session to send requests with; ``None`` when the client's session
        cannot be reached: then use the client's public methods

    """
    pid = os.getpid()
    entry = _sessions.get(client)
    if entry is None:
        own = client_session(client)
        if own is None:
            return None
        entry = _sessions[client] = (pid, own)
    owner, old = entry
    if owner == pid:
        return old
    new = new_session()
    new.auth = old.auth
    new.headers.update(old.headers)
    new.proxies.update(old.proxies)
    new.verify = old.verify
    new.cert = old.cert
    new.hooks = old.hooks
    replace_client_session(client, new)
    _sessions[client] = (pid, new)
    return new
