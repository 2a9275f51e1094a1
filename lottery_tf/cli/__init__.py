"""The ``lottery_tf`` command line: ``lottery_tf COMMAND --flag=... ``."""
