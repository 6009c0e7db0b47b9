"""``python -m lrtune`` runs the command line."""

from lrtune.cli import main

raise SystemExit(main())
