"""Benchmarks for the engine and the service (speed targets live here, never in timed tests)."""
