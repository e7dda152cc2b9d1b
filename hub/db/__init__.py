"""Storage: the tables (``models``), engines and sessions (``engine``), migrations (``migrate``)."""
