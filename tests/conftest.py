"""Shared test configuration.

The fixtures and markers come from the ``dynamorm_async`` pytest plugin
(:mod:`dynamorm_async.testing.plugin`), loaded through its entry point.
"""

pytest_plugins = ["pytester"]
