"""pydantic models: ``input`` (request bodies), ``output`` (responses), ``domain`` (records)."""
