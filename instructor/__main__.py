import sys

from .course import skip_slow_imports

skip_slow_imports()
from .cli import main  # noqa: E402

sys.exit(main(sys.argv[1:]))
