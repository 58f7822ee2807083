"""Versions. The client follows the API: its major.minor are the API's (the server's OpenAPI
``info.version``), its patch number moves for client-only fixes."""

__version__ = "1.1.0"
API_VERSION = "1.1.0"
