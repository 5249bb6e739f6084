"""The ``metricache`` command: one module per subcommand, wired in :mod:`.main`."""
