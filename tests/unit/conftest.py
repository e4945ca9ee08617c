"""Fixtures of the fast suite (the tiny models are the root conftest's: the end-to-end tests
serve them too)."""
