"""metricache-dramatiq."""
