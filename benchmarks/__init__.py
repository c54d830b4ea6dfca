"""Benchmarks: one importable package beside ``tests``.

Run each from the repository root as a module, e.g. ``python -m benchmarks.load --help``; the
modules import each other as ``benchmarks.<name>`` and the test helpers as ``tests.<name>``, so
neither package edits ``sys.path``.
"""
