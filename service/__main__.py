"""`python -m service` runs the langdu command line."""

from service.cli import main

# Guarded: engine worker processes are spawned and re-import the main module.
if __name__ == "__main__":
    raise SystemExit(main())
