"""``python -m sloth``: the ``sloth`` command line."""

from sloth.cli.main import main

raise SystemExit(main())
