"""The ``jit`` command line: SigV4-signed calls to the JIT access broker's HTTPS API."""
