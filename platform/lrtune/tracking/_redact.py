"""Tracking URIs as they may be shown: a password never reaches a terminal, a log or a file."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def redact_uri(uri: str) -> str:
    """``uri`` with the password of a ``user:password@host`` part shown as ``***``."""
    try:
        parts = urlsplit(uri)
        password = parts.password
    except ValueError:  # a malformed port or netloc: show the scheme only, never the rest
        return uri.partition("://")[0] + "://***"
    if not password:
        return uri
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def has_password(uri: str) -> bool:
    """Whether ``uri`` carries a password (it must then never be written down)."""
    return redact_uri(uri) != uri


def scrub(text: str, uri: str) -> str:
    """``text`` (an error message, say) with ``uri``'s password replaced by ``***``."""
    try:
        password = urlsplit(uri).password
    except ValueError:
        return text
    return text.replace(password, "***") if password else text
