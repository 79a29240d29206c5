"""The asyncrt version this binding was written against: the package's
version, and what it asks the loaded library for (asyncrt_check_version).
A literal, so packaging reads it without importing the package."""

__version__ = "0.7.0"
VERSION = tuple(int(part) for part in __version__.split("."))
