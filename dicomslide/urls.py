"""What a source's URL says: where the user information is, and whether it
names objects in object storage.

Plain string work (:mod:`urllib.parse`), so that a local folder's messages and
the choice of a source need none of the modules that reach DICOMweb servers
(:mod:`dicomslide.transport`) or object storage (:mod:`dicomslide.objects`).
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

__all__ = ["is_object_url", "without_credentials"]

#: Schemes that are not object storage when given alone: files, and
#: ``http(s)://``, which names a DICOMweb service (lists of HTTP URLs of files
#: are objects)
_NOT_OBJECT_SCHEMES = frozenset({"file", "http", "https"})


def without_credentials(url: str, mask: str = "") -> str:
    """Remove user name and password from a URL (for messages and logs).

    Parameters
    ----------
    url: str
        URL
    mask: str, optional
        What to put in their place, e.g. ``"***@"``

    Returns
    -------
    str
        The URL without its user information

    """
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = mask + parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def is_object_url(source: object) -> bool:
    """Whether a source names objects in object storage.

    Parameters
    ----------
    source: object
        What was passed as a source of slides

    Returns
    -------
    bool
        True for a URL of an fsspec protocol (``s3://``, ``gs://``,
        ``memory://``, ...) other than ``file``, ``http`` and ``https``, and
        for a list or tuple of URLs of files (``http(s)://`` ones too)

    """
    if isinstance(source, str):
        scheme, separator, _ = source.partition("://")
        return (
            bool(separator)
            and len(scheme) > 1
            and scheme.replace("+", "").replace("-", "").isalnum()
            and scheme.lower() not in _NOT_OBJECT_SCHEMES
        )
    if isinstance(source, (list, tuple)) and source:
        return all(isinstance(url, str) and "://" in url for url in source)
    return False
