"""The four workshop services."""
