#!/usr/bin/env python3
"""Install langdu alone into .venv/ (first run) and start the service on http://127.0.0.1:8000/."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dev import main

sys.exit(main(["serve", *sys.argv[1:]]))
