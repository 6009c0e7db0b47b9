"""Argument types shared by every ``lrtune`` command (one parser per kind of value)."""

from __future__ import annotations

import argparse
import logging
import re
from typing import Any


def positive_int(text: str) -> int:
    """A whole number ≥ 1, read as a job file's whole numbers are: ``80000``, ``8e4``, ``1e1``."""
    from lrtune.specs._yaml import positive_whole

    try:
        return positive_whole(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


#: The logger every lrtune room reports progress and warnings through ("lrtune.*" children).
LOGGER = "lrtune"
_HANDLER_NAME = "lrtune-cli"


def add_verbosity_options(parser: argparse.ArgumentParser) -> None:
    """``-v/--verbose`` and ``-q/--quiet`` on a command (they may follow the command's name).

    ``default=SUPPRESS`` keeps a sub-command's unset flag from overwriting the value given
    before the command (``lrtune -q compare …`` and ``lrtune compare -q …`` both work).
    """
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS,
        help="more detail on stderr (-vv: the libraries' own debug lines too)",
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action="count",
        default=argparse.SUPPRESS,
        help="only warnings and errors on stderr (results still go to stdout)",
    )


def configure_logging(verbose: int, quiet: int) -> int:
    """Route lrtune's progress lines (logger ``lrtune``) to stderr at the asked level.

    Progress is INFO (shown by default), details are DEBUG (``-v``), ``-q`` leaves warnings
    only. Returns the level set. Calling it again replaces the handler (tests call ``main``
    many times in one process).
    """
    import sys

    level = logging.INFO + 10 * (quiet - verbose)
    level = max(logging.DEBUG, min(logging.WARNING, level))
    logger = logging.getLogger(LOGGER)
    for handler in list(logger.handlers):
        if handler.get_name() == _HANDLER_NAME:
            logger.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(logging.Formatter("lrtune: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    if verbose >= 2:  # the libraries' own debug output as well
        logging.getLogger().setLevel(logging.DEBUG)
    for name in LibraryNotices.LOGGERS:
        library_logger = logging.getLogger(name)
        for old in [f for f in library_logger.filters if isinstance(f, LibraryNotices)]:
            library_logger.removeFilter(old)
        if verbose < 2:
            library_logger.addFilter(LibraryNotices())
    return level


class LibraryNotices(logging.Filter):
    """Drops the notices Ray and RLlib print on every algorithm lrtune builds in the command's
    process (`lrtune train`), which are about choices lrtune makes, not the user's job: that
    RLlib runs on its new API stack (lrtune always does), that RLlib's own `RLModule`
    constructor builds a deprecated ``RLModuleConfig`` (RLlib 2.60 does it for every module),
    and that ``gputil`` is missing (lrtune reads no GPU statistics). ``-vv`` keeps them, and
    every other record of these loggers passes."""

    #: The loggers that print them (RLlib's algorithm configs, Ray's deprecation helper and
    #: Tune's utilities), with a filter each: a logger's filter sees its own records only.
    LOGGERS = (
        "ray.rllib.algorithms.algorithm_config",
        "ray.rllib.algorithms.sac.sac",
        "ray._common.deprecation",
        "ray.tune.utils.util",
    )
    _NOTICES = re.compile(
        r"You are running \w+ on the new API stack!"
        r"|DeprecationWarning: `RLModule\(config=\[RLModuleConfig object\]\)` has been deprecated"
        r"|Install gputil for GPU system monitoring"
    )

    def filter(self, record: logging.LogRecord) -> bool:
        """False (drop) for the notices above, True for every other record."""
        return self._NOTICES.match(record.getMessage()) is None


class CommandParser(argparse.ArgumentParser):
    """An argument parser with ``-v``/``-q``; sub-command parsers made from it are one too.

    argparse builds each sub-command's parser with the class of the parser it hangs from, so
    ``-v``/``-q`` may follow any command's name, nested ones included (``schedule show … -q``).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        add_verbosity_options(self)
