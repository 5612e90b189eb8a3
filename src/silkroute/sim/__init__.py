"""Generators of networks, sellers and demand from real cities, and the simulator."""
