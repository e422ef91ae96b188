"""Moved to the ``instructor`` package (``python -m instructor``); kept only while the graders move."""
import sys

from instructor.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
