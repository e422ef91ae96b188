"""Helper package of the RNN course.

One module per concern:

- ``helpers.torch_utils`` -- seeding and device selection
- ``helpers.gradcheck``   -- relative error and numerical gradients
- ``helpers.checks``      -- the graders' checks (student-friendly failure messages)
- ``helpers.data``        -- dataset paths, loaders and deterministic generators

Nothing in this package solves a graded exercise.
"""
from .checks import assert_close, report
from .data import dataset_path, datasets_dir
from .gradcheck import numerical_gradient, rel_error
from .torch_utils import get_device, seed_everything

__all__ = [
    "assert_close",
    "dataset_path",
    "datasets_dir",
    "get_device",
    "numerical_gradient",
    "rel_error",
    "report",
    "seed_everything",
]
