"""The ``chathooks`` command line: above ``app`` and ``workers``, and free to use both."""
