"""Dramatiq actors: thin wrappers above the domain, declared on the broker by `registry`."""
