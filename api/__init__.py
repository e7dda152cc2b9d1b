"""The parent-facing HTTP API (FastAPI). It imports the core from ``hub``; never the reverse."""
