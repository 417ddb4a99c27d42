"""The JIT access broker's domain package, shared by the broker and cleanup functions.

Layers: ``models`` (pydantic: input, output, domain), ``errors`` (typed failures, each one
HTTP status), logic (``access_policy``, ``identity``, ``naming``, ``documents``,
``grants``), ``adapters`` (one module per AWS service, clients injected), ``settings``
(the environment as a pydantic model) and ``observability`` (one Logger/Tracer/Metrics).
"""

__version__ = "0.1.0"
