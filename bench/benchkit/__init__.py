"""The parts of bench/suite.py: toolchains (this checkout, or a baseline revision with its own venv), scratch projects,
alternating timed runs, one module per row of issue 25's table, and the verdict table."""
