"""The ``mu2`` command line: a thin layer over the library (one module per sub-command group)."""
