"""Temporal activities: thin I/O wrappers around the domain."""
