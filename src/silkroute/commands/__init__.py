"""CLI commands that live beside their part of the system and register themselves."""
