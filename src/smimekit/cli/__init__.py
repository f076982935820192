"""The ``smimekit`` command line: thin click commands over the library.

Each command family lives in its own module (``mime_cmds``, ``demo``, ...) and is registered by name in
:mod:`smimekit.cli.main`; errors are turned into one line and an exit code in :mod:`smimekit.cli._errors`.
"""
