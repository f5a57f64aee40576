"""Dramatiq actors, the broker set-up and the periodic schedule."""
