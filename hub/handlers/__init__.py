"""Handlers by message family; each registers itself on a dispatcher."""
