"""Shared pytest set-up. tests/ mirrors the code: helpers/, graders/, instructor/ (unit tests),
pipeline/ (the grading harness and every assignment's pipeline); fixtures/ and mutants/ are data.
The harness (``grading``, ``pipeline``) and the attack builders (``attacks``) are importable from
every test, and fixture notebooks are not collected by nbval (they are inputs, not lectures)."""
import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path[:0] = [str(HERE / "pipeline"), str(HERE / "instructor")]

collect_ignore_glob = ["fixtures/*", "mutants/*"]
