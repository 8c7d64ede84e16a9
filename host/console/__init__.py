"""The staff web console (``/console``): head office, branches and partners."""
