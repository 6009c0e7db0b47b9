"""Every job field a user can write is named in the README (an issue found nine that were not)."""

from __future__ import annotations

import re
import typing
from pathlib import Path

from pydantic import BaseModel

from lrtune.specs import JobSpec

README = Path(__file__).resolve().parents[2] / "README.md"
#: Fields lrtune fills in itself when it loads a job (where the space came from).
FILLED_BY_LRTUNE = {"space_path", "space_files"}


def job_fields(model: type[BaseModel], prefix: str = "", seen: set[type] | None = None) -> list:
    """Dotted paths of every field of ``model`` and the models its fields hold."""
    seen = set() if seen is None else seen
    if model in seen:
        return []
    seen.add(model)
    paths = []
    for name, info in model.model_fields.items():
        key = info.alias or name
        paths.append((f"{prefix}{key}", key))
        for outer in (info.annotation, *typing.get_args(info.annotation)):
            for inner in (outer, *typing.get_args(outer)):
                if isinstance(inner, type) and issubclass(inner, BaseModel):
                    paths += job_fields(inner, f"{prefix}{key}.", seen)
    return paths


def test_every_job_field_is_named_in_the_readme() -> None:
    text = README.read_text()
    fields = job_fields(JobSpec)
    assert len(fields) > 60, fields  # the walk reaches the nested sections
    missing = [
        path
        for path, key in fields
        if key not in FILLED_BY_LRTUNE and not re.search(rf"\b{re.escape(key)}\b", text)
    ]
    assert missing == [], f"job fields the README never names: {missing}"
