"""Routers per actor: buyers, sellers, operators, and an account's own tokens."""
