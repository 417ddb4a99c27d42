"""One module per AWS service; boto3 clients are injected, never created at import time."""
