"""Errors raised by registry lookups and plugin parameter validation."""

from __future__ import annotations


class LRTuneError(Exception):
    """Base class of lrtune's user-facing errors: the message is one paragraph that says what to do.

    The CLI turns any `LRTuneError` into that paragraph on stderr and exit code 2.
    """


class SpecError(LRTuneError, ValueError):
    """A spec file (policy, job, search space) or a setting in it that cannot be used; the
    message says why. (Here, beside `LRTuneError`, so that the rooms below `lrtune.specs` that
    check a job's settings where they are used, such as `lrtune.agents`, raise it too.)"""


class DriverOSError(Exception):
    """The driver itself could not read or write a file (a full disk, a lost mount).

    Not bad input: ``lrtune run`` exits 1 with this one paragraph, after closing the run's
    MLflow runs and Optuna trials and releasing the experiment's lock. (It lives here, beside
    `LRTuneError`, so that the CLI catches it without importing Ray, Tune and torch.)
    """


class UnknownPluginError(LRTuneError, KeyError):
    """A name was looked up in a slot that has no entry by that name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DuplicatePluginError(LRTuneError):
    """A second, different entry tried to register under a name that is taken."""


class PluginParamsError(LRTuneError, ValueError):
    """Parameters given to a plugin do not validate against its parameter model."""


class PluginLoadError(LRTuneError):
    """An entry point could not be imported, or did not register what it names."""
