"""Plugins shipped inside the core distribution, registered through its entry points."""
