"""The ``lrtune`` command line: argument parsing only; the work is done by the other rooms."""

from lrtune.cli._main import build_parser, main

__all__ = ["build_parser", "main"]
