"""The job file's ``cluster:`` section: how `lrtune submit` runs the job on a Ray cluster
(validated with the rest of the job; used by `lrtune.cluster`). README's "Run on a cluster"
shows every key. Plain ``env_vars`` values travel with the job; secrets never do."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, ValidatorFunctionWrapHandler, field_validator

from lrtune.specs._yaml import FROZEN, Real, Whole

DEFAULT_STOP_WAIT_S = 60
# Variables lrtune sets itself, or that must never travel in a job's runtime environment (it is
# stored by the cluster and shown by `ray job status`): the token is sent as a header only.
RESERVED_ENV_VARS = ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_JOB_STOP_WAIT_TIME_S")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Names whose values are taken for secrets: a plain value under such a name is refused.
SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|KEY|CREDENTIAL|AUTH", re.IGNORECASE)
_K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]{1,253}$")


class EntrypointResources(BaseModel):
    """What the job's driver (the ``lrtune run`` process) reserves on the cluster."""

    model_config = FROZEN

    num_cpus: Real | None = Field(default=None, ge=0)
    num_gpus: Real | None = Field(default=None, ge=0)
    memory: Whole | None = Field(default=None, ge=0, description="bytes")
    resources: dict[str, Annotated[Real, Field(ge=0)]] = Field(default_factory=dict)

    def submit_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of `JobSubmissionClient.submit_job`, ``entrypoint_<field>``
        (only those that are set)."""
        return {f"entrypoint_{k}": v for k, v in self.model_dump().items() if v not in (None, {})}


class SecretEnvRef(BaseModel):
    """An environment variable read from a key of an existing Kubernetes Secret: rendered as
    ``valueFrom.secretKeyRef``; its value never passes through lrtune."""

    model_config = FROZEN

    secret: str = Field(pattern=_K8S_NAME.pattern)
    key: str = Field(pattern=_SECRET_KEY.pattern)


class PlainEnvValue(BaseModel):
    """A plain value under a name that looks secret, declared not secret (``secret: false``)."""

    model_config = FROZEN

    value: str
    secret: Literal[False] = False


EnvValue = str | SecretEnvRef | PlainEnvValue

_SECRET_FORM_HINT = (
    "give the value from a Kubernetes Secret instead: {name}: {{secret: <secret name>, key: "
    "<key in it>}} (kubectl create secret generic <secret name> --from-literal=<key>=...); "
    "or, if it is no secret, {name}: {{value: ..., secret: false}}"
)


def _scalar_text(value: Any) -> Any:
    """A YAML boolean or number as the text an environment variable holds; else ``value``."""
    if isinstance(value, bool | int | float):
        return str(value).lower() if isinstance(value, bool) else str(value)
    return value


def _env_value(name: str, item: Any) -> EnvValue:
    """One ``env_vars`` entry in its typed form; messages never repeat the value given."""
    item = _scalar_text(item)
    if isinstance(item, str):
        if SECRET_NAME.search(name):
            raise ValueError(
                f"{name}: its name says it holds a secret, and a plain value would be stored "
                "in job files, results, MLflow, Ray's job records and Kubernetes manifests; "
                + _SECRET_FORM_HINT.format(name=name)
            )
        return item
    if isinstance(item, Mapping):
        keys = set(item)
        if keys == {"secret", "key"} and isinstance(item.get("secret"), str):
            secret, key = str(item["secret"]), item["key"]
            if not _K8S_NAME.match(secret):
                raise ValueError(
                    f"{name}.secret: {secret!r} is not a Kubernetes Secret name (lowercase "
                    "letters, digits, '-' and '.')"
                )
            if not isinstance(key, str) or not _SECRET_KEY.match(key):
                raise ValueError(
                    f"{name}.key: a key of the Secret (letters, digits, '-', '_', '.')"
                )
            return SecretEnvRef(secret=secret, key=key)
        if keys == {"value", "secret"} and item.get("secret") is False:
            value = _scalar_text(item["value"])
            if not isinstance(value, str):
                raise ValueError(f"{name}.value: must be a string")
            return PlainEnvValue(value=value)
    raise ValueError(
        f"{name}: a string, or {{secret: <Kubernetes Secret>, key: <key>}} for a secret, or "
        "{value: ..., secret: false} for a plain value under a name that looks secret "
        "(a value marked secret: true is not stored anywhere: put it in a Kubernetes Secret "
        "and reference it)"
    )


class ClusterSpec(BaseModel):
    """A job's ``cluster:`` section, validated (`lrtune.cluster.parse_cluster` turns errors into
    one paragraph).

    Relative paths (``working_dir``, ``py_modules``) are relative to the job file's folder.
    """

    model_config = FROZEN

    address: str | None = Field(default=None, min_length=1)
    working_dir: str | None = Field(default=None, min_length=1)
    working_dir_excludes: tuple[str, ...] = ()
    install: Literal["wheel", "preinstalled"] = "wheel"
    py_modules: tuple[str, ...] = ()
    pip: tuple[str, ...] = ()
    env_vars: dict[str, EnvValue] = Field(default_factory=dict)
    entrypoint_resources: EntrypointResources = EntrypointResources.model_validate({})
    stop_wait_s: Whole = Field(default=DEFAULT_STOP_WAIT_S, ge=3, le=24 * 3600)
    python: str = Field(default="python", min_length=1, pattern=r"^[A-Za-z0-9_./+-]+$")

    @field_validator("working_dir_excludes", "py_modules", "pip", mode="wrap")
    @classmethod
    def _entries(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> tuple[str, ...]:
        """One string or a list of them; none empty."""
        entries: tuple[str, ...] = handler((value,) if isinstance(value, str) else value)
        if any(not item.strip() for item in entries):
            raise ValueError("entries must be non-empty strings")
        return entries

    @field_validator("env_vars", mode="before")
    @classmethod
    def _env_forms(cls, value: Any) -> Any:
        if not isinstance(value, Mapping):
            return value
        out: dict[str, EnvValue] = {}
        for key, item in value.items():
            key = str(key)
            if not _ENV_NAME.match(key):
                raise ValueError(f"{key!r} is not an environment variable name")
            if key in RESERVED_ENV_VARS:
                hint = (
                    "use stop_wait_s instead"
                    if key == "RAY_JOB_STOP_WAIT_TIME_S"
                    else "lrtune sends the token as a request header and never stores it in a "
                    "job's runtime environment (the cluster keeps and shows that)"
                )
                raise ValueError(f"{key} cannot be set here: {hint}")
            out[key] = _env_value(key, item)
        return out

    def plain_env(self) -> dict[str, str]:
        """The env vars that travel as plain values (in Ray's runtime environment)."""
        return {
            name: item if isinstance(item, str) else item.value
            for name, item in self.env_vars.items()
            if isinstance(item, str | PlainEnvValue)
        }

    def secret_env(self) -> dict[str, SecretEnvRef]:
        """The env vars read from Kubernetes Secrets (pods' ``valueFrom.secretKeyRef``)."""
        return {n: v for n, v in self.env_vars.items() if isinstance(v, SecretEnvRef)}
