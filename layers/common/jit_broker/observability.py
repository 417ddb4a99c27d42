"""One Logger, Tracer and Metrics for the package (Powertools).

The event is never logged; the Tracer does not capture responses or errors (they may hold
credentials); the correlation id is the API request id. Library loggers that would write
request or response bodies at DEBUG (botocore logs STS responses with the secret key; the
Powertools resolver logs route arguments and responses) are held at WARNING whatever the
root level is, so turning on debug logging in Lambda cannot leak a credential.
"""

from __future__ import annotations

import logging
import warnings

from aws_lambda_powertools import Logger, Metrics, Tracer

QUIET_LIBRARIES = ("aws_lambda_powertools", "botocore", "boto3", "urllib3", "s3transfer")
for _name in QUIET_LIBRARIES:
    logging.getLogger(_name).setLevel(logging.WARNING)

# Routes like whoami publish no metric; that is expected, not worth a warning per request.
warnings.filterwarnings("ignore", message="No application metrics to publish")

# The service is POWERTOOLS_SERVICE_NAME, read by Powertools: the template sets the stack's
# name (each stack's metrics carry their own `service` dimension, which its alarms select),
# the local stack and the tests "jit-broker".
logger = Logger()
tracer = Tracer(patch_modules=("botocore",))  # only the AWS SDK is traced
metrics = Metrics(namespace="JitBroker")
