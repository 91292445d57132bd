"""Benchmarks: ``python -m bench NAME [--json]``; ``python -m bench --list`` names them.

Each benchmark is a module ``bench/<name>.py`` (``-`` in NAME becomes ``_``) with ``DESCRIPTION``,
an optional ``add_arguments(parser)`` and ``run(args) -> dict`` returning its figures. Targets
are printed beside the figures, never asserted in tests: this machine is noisy, so figures are
given as ratios where they can be.
"""
