"""The engine: ingest, match, start, run, emit."""
