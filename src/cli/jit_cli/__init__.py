"""The ``jit`` command line: SigV4-signed calls to the JIT access broker's HTTPS API."""

# The one place the version is written: the package metadata (src/cli/pyproject.toml reads it
# here), `jit --version` and the user agent say it, and CHANGELOG.md's latest release matches it
# (tests/unit/test_packaging.py).
__version__ = "0.2.0"
