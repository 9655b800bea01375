"""Benchmarks; their corpora are written moments before they run, so no file is left "settling"."""

import os

os.environ.setdefault("FLEET_MIN_AGE_S", "0")
