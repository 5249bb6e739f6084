"""CSV format for metricache (stable header, one row per sample)."""
