"""The reference simulated toy: what firmware does, in Python, for development and tests."""
