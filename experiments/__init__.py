"""Studies that answered their question, run from a checkout (``python -m experiments.NAME``); not installed.

Each module remakes a committed results file under ``docs/figures/`` (its command is in the module's docstring and
beside the numbers in docs/); the conclusion is in the docs. Nothing in the product or the benchmarks uses them.
"""
