"""The runner: typed experiments, the work plan, executors and the DuckDB result store.

Heavy modules load on use; ``radioactive run`` is the command-line entry point.
"""
