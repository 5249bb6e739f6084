"""Conformance suite for metricache store plugins."""
