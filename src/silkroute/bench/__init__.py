"""Benchmarks that print figures: silkroute side by side with what a user would otherwise use."""
