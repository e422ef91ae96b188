"""Shared pytest set-up: the harness module is importable and fixture notebooks are not
collected by nbval (they are inputs of the grading tests, not lectures)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

collect_ignore_glob = ["fixtures/*"]
