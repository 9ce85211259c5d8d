"""Measurements, not tests: model speed and end-to-end throughput and latency."""
