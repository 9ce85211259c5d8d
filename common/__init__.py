"""Pieces every service shares: connection settings, structured logging, bulk NamedTuples."""
