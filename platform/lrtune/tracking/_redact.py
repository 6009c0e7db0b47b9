"""Tracking URIs as they may be shown: a password never reaches a terminal, a log or a file."""

from __future__ import annotations

from urllib.parse import urlsplit

from lrtune._stored_uri import redact_uri


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
