#!/usr/bin/env python3
"""Install langdu and its test tools into .venv-dev/ (first run) and run the test suite:
`python3 scripts/test.py`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dev import main

sys.exit(main(["test", *sys.argv[1:]]))
