"""The generic registry: one `Registry` object per plugin slot.

A slot's entries come from three places, all of which work in every process (Ray workers
included), because each is reached by importing a module, never by a call made only in a driver:

1. built-in modules named when the registry is created, imported on first lookup;
2. installed distributions that declare an entry point in the slot's group
   (``lrtune.schedules``, ``lrtune.optimizers``, ...), loaded on first lookup;
3. any module that uses the slot's ``register`` decorator and is imported.
"""

from __future__ import annotations

import difflib
import importlib
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from lrtune.registry._errors import (
    DuplicatePluginError,
    PluginLoadError,
    PluginParamsError,
    UnknownPluginError,
)

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


class PluginParams(BaseModel):
    """Base of every plugin's parameter model: frozen, and unknown keys are errors.

    Numbers are validated in pydantic's lax mode so that YAML's ``1e-4`` (read by PyYAML as a
    string) is accepted as the float users meant.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoParams(PluginParams):
    """Parameter model of a plugin that takes no parameters."""


@dataclass(frozen=True)
class Capabilities:
    """What an entry can do, so that specs can reject impossible combinations before running.

    Attributes:
        agents: the agents (names in the ``agents`` slot) the entry supports; None: every
            agent, third-party ones included.
        stateful: whether the entry keeps state that must be checkpointed.
        needs_budget: whether the entry needs the trial's env-step budget when a horizon is not
            given explicitly (schedules such as ``cosine``).
    """

    agents: frozenset[str] | None = None
    stateful: bool = False
    needs_budget: bool = False

    def supports(self, agent: str) -> bool:
        """Whether the entry works with ``agent``."""
        return self.agents is None or agent in self.agents

    def agents_text(self) -> str:
        """The supported agents for messages: ``ppo`` or ``every agent``."""
        return "every agent" if self.agents is None else ", ".join(sorted(self.agents))


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered plugin: its name, parameter model, factory and metadata.

    ``factory(params)`` receives a validated instance of ``params_model`` (and keyword arguments
    that the slot defines, such as a schedule's budget) and returns the plugin object.
    ``example`` is a valid set of parameters (``{}`` when every parameter has a default), used by
    the contract tests and shown by ``lrtune plugins``.
    """

    slot: str
    name: str
    factory: Callable[..., T]
    params_model: type[PluginParams]
    description: str
    capabilities: Capabilities = field(default_factory=Capabilities)
    source: str = "builtin"
    example: Mapping[str, Any] = field(default_factory=dict)

    def validate_params(self, params: Mapping[str, Any] | PluginParams | None) -> PluginParams:
        """Return ``params`` as a validated ``params_model`` instance.

        Raises:
            PluginParamsError: naming each offending field, its problem and what is allowed.
        """
        if isinstance(params, self.params_model):
            return params
        raw = {} if params is None else params
        if isinstance(raw, BaseModel):
            raw = raw.model_dump()
        if not isinstance(raw, Mapping):
            raise PluginParamsError(
                f"{self.slot} '{self.name}': params must be a mapping of parameter names to "
                f"values, got {type(raw).__name__}. Run `lrtune plugins {self.slot}` to see "
                "the parameters it takes."
            )
        try:
            return self.params_model.model_validate(dict(raw))
        except ValidationError as exc:
            raise PluginParamsError(
                f"{self.slot} '{self.name}': {format_validation_error(exc)}. "
                f"Run `lrtune plugins {self.slot}` to see its parameters, defaults and bounds."
            ) from None

    def build(self, params: Mapping[str, Any] | PluginParams | None = None, **context: Any) -> T:
        """Validate ``params`` and call the factory with them (plus the slot's context kwargs)."""
        return self.factory(self.validate_params(params), **context)


def format_validation_error(exc: ValidationError, prefix: str = "") -> str:
    """Render a pydantic error as one line per problem: ``field.path: message (got value)``."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in (prefix, *err["loc"]) if p != "")
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (not a parameter of this plugin)"
        got = err.get("input")
        shown = "" if err["type"] in ("missing", "extra_forbidden") else f" (got {got!r})"
        parts.append(f"{loc or 'value'}: {msg}{shown}")
    return "; ".join(parts)


class Registry(Generic[T]):
    """The entries of one plugin slot, e.g. ``schedules``.

    Lookups are lazy: the first call to `get`, `names` or `entries` imports the slot's built-in
    modules and loads its entry-point group. Registration is by the `register` decorator; a name
    can be registered once (a second, different registration raises `DuplicatePluginError`).
    """

    def __init__(self, slot: str, *, builtin_modules: tuple[str, ...] = ()) -> None:
        self.slot = slot
        self.entry_point_group = f"lrtune.{slot}"
        self._builtin_modules = builtin_modules
        self._entries: dict[str, Entry[T]] = {}
        self._loaded = False
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"Registry({self.slot!r}, entries={sorted(self._entries)})"

    def register(
        self,
        name: str,
        *,
        params: type[PluginParams] = NoParams,
        description: str | None = None,
        capabilities: Capabilities | None = None,
        example: Mapping[str, Any] | None = None,
    ) -> Callable[[F], F]:
        """Decorator that registers a factory (usually a class) under ``name``.

        The description defaults to the first line of the factory's docstring.
        """

        def decorator(factory: F) -> F:
            desc = description or (factory.__doc__ or "").strip().splitlines()[0:1]
            self.add(
                Entry(
                    slot=self.slot,
                    name=name,
                    factory=factory,
                    params_model=params,
                    description=desc if isinstance(desc, str) else (desc[0] if desc else ""),
                    capabilities=capabilities or Capabilities(),
                    source=getattr(factory, "__module__", "?"),
                    example=dict(example or {}),
                )
            )
            return factory

        return decorator

    def add(self, entry: Entry[T]) -> None:
        """Add an entry; the same factory registered again under the same name is a no-op."""
        if not entry.name or not entry.name.replace("_", "").replace("-", "").isalnum():
            raise PluginLoadError(
                f"{self.slot}: plugin name {entry.name!r} must be letters, digits, '_' or '-'."
            )
        if not issubclass(entry.params_model, PluginParams):
            raise PluginLoadError(
                f"{self.slot} '{entry.name}': its params model must subclass "
                "lrtune.registry.PluginParams (frozen, extra keys forbidden)."
            )
        with self._lock:
            existing = self._entries.get(entry.name)
            if existing is not None:
                if _same_factory(existing.factory, entry.factory):
                    return
                raise DuplicatePluginError(
                    f"{self.slot} '{entry.name}' is registered twice: by {existing.source} and "
                    f"by {entry.source}. Plugin names are unique per slot; rename one of them "
                    "(third-party plugins usually prefix the package name, e.g. 'mypkg_cosine')."
                )
            self._entries[entry.name] = entry

    def agent_problem(self, name: str, agent: str) -> str | None:
        """Why entry ``name`` cannot run with ``agent`` (one clause for a spec error naming
        the field), or None when its capabilities allow that agent."""
        capabilities = self.get(name).capabilities
        if capabilities.supports(agent):
            return None
        return (
            f"{self.slot} '{name}' does not support agent '{agent}' (it supports "
            f"{capabilities.agents_text()}): remove it or choose another agent"
        )

    def get(self, name: str) -> Entry[T]:
        """The entry called ``name``, or `UnknownPluginError` listing close matches."""
        self._ensure_loaded()
        try:
            return self._entries[name]
        except KeyError:
            pass
        close = difflib.get_close_matches(str(name), list(self._entries), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise UnknownPluginError(
            f"unknown {self.singular} {name!r}.{hint} Run `lrtune plugins {self.slot}` to "
            f"list the {len(self._entries)} available ones; third-party plugins register through "
            f"the '{self.entry_point_group}' entry-point group."
        )

    def build(self, name: str, params: Mapping[str, Any] | None = None, **context: Any) -> T:
        """Shortcut for ``get(name).build(params, **context)``."""
        return self.get(name).build(params, **context)

    def names(self) -> list[str]:
        """Sorted names of all entries."""
        self._ensure_loaded()
        return sorted(self._entries)

    def entries(self) -> list[Entry[T]]:
        """All entries, sorted by name."""
        self._ensure_loaded()
        return [self._entries[n] for n in sorted(self._entries)]

    def __contains__(self, name: object) -> bool:
        self._ensure_loaded()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self._ensure_loaded()
        return len(self._entries)

    @property
    def singular(self) -> str:
        """One entry of the slot in words: ``gradient gate`` for ``gradients``."""
        return {
            "schedules": "schedule",
            "optimizers": "optimizer",
            "gradients": "gradient gate",
            "feedback": "feedback rule",
            "populations": "population",
            "searchers": "searcher",
            "schedulers": "scheduler",
            "agents": "agent",
        }.get(self.slot, self.slot)

    def _ensure_loaded(self) -> None:
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            for module in self._builtin_modules:
                importlib.import_module(module)
            for ep in entry_points(group=self.entry_point_group):
                self._load_entry_point(ep)
            self._loaded = True

    def _load_entry_point(self, ep: Any) -> None:
        try:
            obj = ep.load()
        except Exception as exc:
            raise PluginLoadError(
                f"{self.slot}: entry point '{ep.name} = {ep.value}' (group "
                f"'{self.entry_point_group}') failed to import: {type(exc).__name__}: {exc}. "
                "Fix or uninstall the distribution that declares it."
            ) from exc
        if isinstance(obj, Entry):
            self.add(obj)
            name = obj.name
        else:
            name = ep.name
            registered = self._entries.get(name)
            if registered is None or not _same_factory(registered.factory, obj):
                raise PluginLoadError(
                    f"{self.slot}: entry point '{ep.name} = {ep.value}' loaded, but nothing was "
                    f"registered as {ep.name!r} by it. Decorate the object with "
                    f"`@lrtune.registry.{self.slot}.register({ep.name!r}, params=...)`, and make "
                    "the entry-point name equal to the registered name."
                )
        if name != ep.name:
            raise PluginLoadError(
                f"{self.slot}: entry point {ep.name!r} registers {name!r}; "
                "the two names must match."
            )


def _same_factory(a: Any, b: Any) -> bool:
    if a is b:
        return True
    return (getattr(a, "__module__", None), getattr(a, "__qualname__", None)) == (
        getattr(b, "__module__", None),
        getattr(b, "__qualname__", None),
    )
