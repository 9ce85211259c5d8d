"""Pieces every service shares: connection settings and structured logging."""
