"""Tracking URIs as lrtune stores them (summaries, markers, pickled jobs: the password redacted,
`redact_uri`) and as it reads them back (a redacted password is never used as ``***``).
Without Ray, for `lrtune.specs`, `lrtune.analysis` and the drivers alike."""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

from lrtune.registry import LRTuneError

REDACTED = "***"  # what stands for a password in a stored URI (``redact_uri``)


def redact_uri(uri: str) -> str:
    """``uri`` with the password of a ``user:password@host`` part shown as ``***``."""
    try:
        parts = urlsplit(uri)
        password = parts.password
    except ValueError:  # a malformed port or netloc: show the scheme only, never the rest
        return uri.partition("://")[0] + "://" + REDACTED
    if not password:
        return uri
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:{REDACTED}@{host}"))


class StoredURIError(LRTuneError):
    """A stored tracking URI whose password was redacted, and no other URI given."""


def recorded_tracking_uri(
    given: str | None, stored: list[str | None], default: str, what: str
) -> str:
    """The tracking URI to read an experiment's records from: ``given`` (``--tracking-uri``),
    else the first ``stored`` one that is whole, else ``MLFLOW_TRACKING_URI``, else ``default``.
    A stored URI whose password was redacted is usable only with the password from the
    environment (``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``, MLflow's own
    variables); otherwise `StoredURIError` says what to pass."""
    if given:
        return given
    found = [uri for uri in stored if uri]
    whole = [uri for uri in found if REDACTED not in uri]
    if whole:
        return whole[0]
    from_env = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    if from_env:
        return from_env
    if not found:
        return default
    hidden = found[0]
    if os.environ.get("MLFLOW_TRACKING_USERNAME") and os.environ.get("MLFLOW_TRACKING_PASSWORD"):
        scheme, _, rest = hidden.partition("://")
        return f"{scheme}://{rest.partition('@')[2]}"  # MLflow adds the credentials itself
    raise StoredURIError(
        f"{what}: its stored tracking URI {hidden} hides the password (lrtune never writes "
        "one to disk). Pass the full URI with --tracking-uri, or set MLFLOW_TRACKING_URI to it, "
        "or set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (the stored URI is "
        "then used without its credentials)."
    )
