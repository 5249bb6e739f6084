"""The checks, one module per area; :mod:`metricache_conformance.catalogue` orders them."""
