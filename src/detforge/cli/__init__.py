"""The ``detforge`` command line: one module per subcommand, listed in :mod:`detforge.cli.main`."""
