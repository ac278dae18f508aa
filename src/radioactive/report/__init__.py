"""Reports from a results store: tables, figures, overlays, a leaderboard and one HTML file.

Everything here reads only from a results directory (``results.duckdb`` and saved predictions).
"""
