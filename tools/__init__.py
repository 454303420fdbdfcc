"""Helpers for the tests and the benchmarks alike (not part of the service): ``procs`` starts
and stops the real processes (gunicorn from the Procfile, redis-server) on loopback ports."""
