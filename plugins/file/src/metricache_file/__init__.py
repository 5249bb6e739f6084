"""File store for metricache (local_only, survives restarts)."""
