"""posterflow core library: everything the Lambda functions share.

Handlers in ``functions/<name>/handler.py`` stay thin and call into this package,
which is shipped to Lambda as the ``core`` layer.
"""

__version__ = "0.1.0"
