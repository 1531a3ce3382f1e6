"""`python -m engine`: the studio's command line."""

from engine.cli import main

raise SystemExit(main())
