"""Resumable runs: the SQLite run store, the recording engine, the runner and metrics."""
