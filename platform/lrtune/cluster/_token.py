"""Finding the cluster's token where Ray's own tools look, without ever showing it.

Ray 2.60's order: ``RAY_AUTH_TOKEN``, then the file named by ``RAY_AUTH_TOKEN_PATH``, then
``~/.ray/auth_token``. The token is sent as ``Authorization: Bearer …`` and nothing else:
`AuthToken`'s ``repr`` and ``str`` hide it, and messages say only where it came from.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

ENV_TOKEN = "RAY_AUTH_TOKEN"
ENV_TOKEN_PATH = "RAY_AUTH_TOKEN_PATH"
DEFAULT_TOKEN_FILE = Path("~/.ray/auth_token")


@dataclass(frozen=True)
class AuthToken:
    """The outcome of a token lookup: the token (if any), its source, and every place tried."""

    value: str | None = field(repr=False)
    source: str | None
    looked: tuple[str, ...]

    def __str__(self) -> str:
        return f"token from {self.source}" if self.source else "no token"

    def headers(self) -> dict[str, str]:
        """The request headers that carry the token (empty without one)."""
        return {"Authorization": f"Bearer {self.value}"} if self.value else {}

    def where_looked(self) -> str:
        """One phrase naming the places searched, in order, and what each held."""
        return "; ".join(self.looked)


def find_token(env: Mapping[str, str] | None = None, home: Path | None = None) -> AuthToken:
    """Look the token up as Ray does: ``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH``,
    ``~/.ray/auth_token`` (the first that holds one wins)."""
    env = os.environ if env is None else env
    looked: list[str] = []
    value = (env.get(ENV_TOKEN) or "").strip()
    if value:
        looked.append(f"${ENV_TOKEN} (set)")
        return AuthToken(value, f"${ENV_TOKEN}", tuple(looked))
    looked.append(f"${ENV_TOKEN} (unset)")
    path_text = env.get(ENV_TOKEN_PATH)
    if path_text:
        path = Path(path_text).expanduser()
        token = _read(path)
        if token:
            looked.append(f"${ENV_TOKEN_PATH}={path} (read)")
            return AuthToken(token, f"${ENV_TOKEN_PATH} ({path})", tuple(looked))
        looked.append(f"${ENV_TOKEN_PATH}={path} ({_why_not(path)})")
    else:
        looked.append(f"${ENV_TOKEN_PATH} (unset)")
    default = (home / ".ray" / "auth_token") if home is not None else DEFAULT_TOKEN_FILE
    default = default.expanduser()
    token = _read(default)
    if token:
        looked.append(f"{default} (read)")
        return AuthToken(token, str(default), tuple(looked))
    looked.append(f"{default} ({_why_not(default)})")
    return AuthToken(None, None, tuple(looked))


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def _why_not(path: Path) -> str:
    if not path.exists():
        return "missing"
    if path.is_dir():
        return "a folder"
    try:
        path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return "unreadable"
    return "empty"


def redact(text: str, token: AuthToken | str | None) -> str:
    """``text`` with every occurrence of the token replaced by ``***``."""
    value = token.value if isinstance(token, AuthToken) else token
    return text.replace(value, "***") if value else text
