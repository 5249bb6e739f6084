"""JSON format for metricache (a versioned, documented shape)."""
