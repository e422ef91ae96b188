"""Shared pytest set-up. tests/ mirrors the code: helpers/, graders/, instructor/ (unit tests),
pipeline/ (the grading harness and every assignment's pipeline); fixtures/ and mutants/ are data.
The harness (``grading``, ``pipeline``) and the attack builders (``attacks``) are importable from
every test, and fixture notebooks are not collected by nbval (they are inputs, not lectures)."""
import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path[:0] = [str(HERE / "pipeline"), str(HERE / "instructor"), str(HERE / "deploy")]

collect_ignore_glob = ["fixtures/*", "mutants/*"]

# Longest scopes first: pytest-xdist (--dist loadscope) hands out scopes in collection order, so
# starting the long ones first keeps both workers busy to the end (longest-processing-time first).
HEAVY_FIRST = ("TestVariants_a4_seq2seq_attention", "TestPipeline_a4_seq2seq_attention", "test_autograde_batch",
               "test_autograde_integrity", "test_hub_exchange", "test_browser", "TestPipeline_", "TestVariants_")


def pytest_collection_modifyitems(items):
    def rank(item):
        return next((i for i, key in enumerate(HEAVY_FIRST) if key in item.nodeid), len(HEAVY_FIRST))

    items.sort(key=rank)
