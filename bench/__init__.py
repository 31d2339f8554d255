"""The performance benchmark: `python bench/run.py --help`."""
