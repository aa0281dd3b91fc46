"""Python client for liveproc, the live video processing server.

`Client` speaks for an organization (its API key), `AdminClient` for the
server operator (the admin key). Every call raises `LiveprocError` on
failure, with the gRPC status code, the message and the `google.rpc`
details (field violations, quota violations, error reason). Streaming calls are iterators.
"""

from .client import AdminClient, Client, FieldViolation, LiveprocError, QuotaViolation
from liveproc.v1 import live_processing_pb2 as pb
from liveproc.v1 import organizations_pb2 as org_pb
from liveproc.v1 import processing_pb2 as processing_pb

__all__ = [
    "AdminClient",
    "Client",
    "FieldViolation",
    "LiveprocError",
    "QuotaViolation",
    "pb",
    "org_pb",
    "processing_pb",
]
