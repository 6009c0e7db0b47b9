"""Argument types shared by every ``lrtune`` command (one parser per kind of value)."""

from __future__ import annotations

import argparse
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
    import logging
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
    return level


class CommandParser(argparse.ArgumentParser):
    """An argument parser with ``-v``/``-q``; sub-command parsers made from it are one too.

    argparse builds each sub-command's parser with the class of the parser it hangs from, so
    ``-v``/``-q`` may follow any command's name, nested ones included (``schedule show … -q``).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        add_verbosity_options(self)
