"""Memcached store for metricache (distributed_basic)."""
