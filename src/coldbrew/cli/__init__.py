"""The ``coldbrew`` command line: thin commands over the library."""
