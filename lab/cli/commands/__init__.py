"""The subcommands of ``python -m lab``, one module each: ``HELP``, ``add_arguments(parser)`` and
``run(args) -> exit status``. ``lab.cli.main`` lists them in ``COMMANDS``."""
