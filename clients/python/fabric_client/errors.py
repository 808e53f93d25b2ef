"""``FabricError``: the one exception the client raises, whatever failed.

A gRPC error of Fabric is read from the standard places first, then from Fabric's own:

* **code** (stable, machine-readable, e.g. ``not_found``, ``rate_limited``): the
  ``google.rpc.ErrorInfo`` detail's ``reason``, else the ``fabric-error-code`` metadata,
  else the gRPC status name in lower case (``unavailable``, ``deadline_exceeded``, …);
* **request_id**: the ``google.rpc.RequestInfo`` detail, else the ``x-request-id`` metadata;
* **retry_after** (seconds): the ``google.rpc.RetryInfo`` detail, else the ``retry-after``
  metadata (delay-seconds or an HTTP date);
* **issues** (what was wrong with the request, one per field): Fabric's
  ``fabric.v1.ValidationIssue`` details (paths are JSON pointers, ``/nodes/0/operation``, as
  in REST's problem ``issues``), else the ``google.rpc.BadRequest`` field violations (paths
  are protobuf field paths, ``nodes[0].operation``; Fabric sends both, in the same order).

The details travel in the ``grpc-status-details-bin`` trailer as a ``google.rpc.Status``,
which is what gRPC's status helpers read in every language.

Failures of the client itself carry codes of their own: ``network_error`` (no Fabric server
answered: refused, reset, unreachable — a gRPC ``UNAVAILABLE`` without Fabric's code) and
``timeout`` (``runs.wait``/``runs.watch`` gave up after their ``timeout``).
"""

from __future__ import annotations

import email.utils
import math
import time
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Optional, Sequence, Tuple

import grpc
from google.protobuf import any_pb2, message

from ._gen.fabric.v1 import workflow_pb2
from ._gen.google.rpc import error_details_pb2, status_pb2

__all__ = ["FabricError", "Issue", "parse_retry_after"]

#: Trailer holding the serialized ``google.rpc.Status`` (gRPC's convention in every language).
STATUS_DETAILS_KEY = "grpc-status-details-bin"
#: Fabric's stable error code, sent on every error (before ``google.rpc.ErrorInfo`` existed).
ERROR_CODE_KEY = "fabric-error-code"
REQUEST_ID_KEY = "x-request-id"
RETRY_AFTER_KEY = "retry-after"

# Detail types the client unpacks; any other detail stays in ``FabricError.details`` packed.
_KNOWN_DETAILS: Tuple[type, ...] = (
    error_details_pb2.ErrorInfo,
    error_details_pb2.RequestInfo,
    error_details_pb2.RetryInfo,
    error_details_pb2.BadRequest,
    error_details_pb2.ResourceInfo,
    error_details_pb2.QuotaFailure,
    error_details_pb2.PreconditionFailure,
    error_details_pb2.Help,
    error_details_pb2.LocalizedMessage,
    error_details_pb2.DebugInfo,
    workflow_pb2.ValidationIssue,
)

# Worth retrying as is: the server or the way to it failed, not the request.
_RETRYABLE_STATUSES = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DEADLINE_EXCEEDED}
)


@dataclass(frozen=True)
class Issue:
    """One thing wrong with a request.

    From a ``fabric.v1.ValidationIssue`` (``path`` is a JSON pointer into the request, e.g.
    ``/nodes/1/depends_on/0``) or, from a server that sends none, a ``google.rpc.BadRequest``
    field violation (``path`` = its ``field``, ``code`` = its ``reason``, ``message`` = its
    ``description``).
    """

    path: str
    code: str
    message: str


@dataclass(eq=False)  # exceptions compare (and hash) by identity
class FabricError(Exception):
    """A failed call to Fabric. See the module documentation for where each field comes from."""

    #: The stable, machine-readable code, e.g. ``not_found``, ``invalid_argument``, ``rate_limited``.
    code: str
    #: The server's human-readable message (or the client's, for ``network_error`` and ``timeout``).
    message: str
    #: The gRPC status of the failed call; ``None`` for ``timeout``.
    grpc_status: Optional[grpc.StatusCode] = None
    #: The server's request id, for its logs; ``None`` when no server answered.
    request_id: Optional[str] = None
    #: Seconds to wait before the same call may succeed, when the server said so
    #: (``rate_limited``: the next minute; ``budget_exceeded``: the budget period's end).
    retry_after: Optional[float] = None
    #: For invalid requests (an invalid workflow, say): every problem found.
    issues: Sequence[Issue] = field(default_factory=tuple)
    #: ``google.rpc.ErrorInfo.domain`` when sent (the service that produced the code).
    domain: Optional[str] = None
    #: ``google.rpc.ErrorInfo.metadata`` when sent (facts about the error, e.g. a limit).
    metadata: Mapping[str, str] = field(default_factory=dict)
    #: Every detail of the ``google.rpc.Status``: known types unpacked, others as ``Any``.
    details: Sequence[message.Message] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        text = f"{self.code}: {self.message}"
        if self.issues:
            text += " (" + "; ".join(f"{i.path or '/'}: {i.message}" for i in self.issues) + ")"
        if self.request_id:
            text += f" [request {self.request_id}]"
        return text

    def __reduce__(self):  # pickling (multiprocessing, concurrent.futures): every field, not just args
        return (self.__class__, (self.code, self.message), self.__dict__.copy())

    @property
    def retryable(self) -> bool:
        """True when the same call may succeed later (after ``retry_after``, when given).

        The network, ``UNAVAILABLE``, ``INTERNAL``, ``DEADLINE_EXCEEDED``, and
        ``RESOURCE_EXHAUSTED`` refusals — except a ``budget_exceeded`` that names no time
        to wait (a per-run cost cap), which no retry cures.
        """
        if self.code == "network_error":
            return True
        if self.grpc_status == grpc.StatusCode.RESOURCE_EXHAUSTED:
            return not (self.code == "budget_exceeded" and self.retry_after is None)
        return self.grpc_status in _RETRYABLE_STATUSES

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError) -> "FabricError":
        """Reads a failed gRPC call (``grpc.RpcError``, as raised by grpcio stubs)."""
        status: grpc.StatusCode = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
        text: str = (error.details() if hasattr(error, "details") else None) or ""
        # Headers and trailers both: a trailers-only response carries everything in trailers.
        metadata = _metadata(getattr(error, "initial_metadata", None), getattr(error, "trailing_metadata", None))

        details = _status_details(metadata.get(STATUS_DETAILS_KEY))
        info = _first(details, error_details_pb2.ErrorInfo)
        request_info = _first(details, error_details_pb2.RequestInfo)
        retry_info = _first(details, error_details_pb2.RetryInfo)
        bad_requests = [d for d in details if isinstance(d, error_details_pb2.BadRequest)]

        code = (info.reason if info else "") or _text(metadata.get(ERROR_CODE_KEY))
        if not code:
            # UNAVAILABLE without Fabric's code: no Fabric server answered (Fabric's own
            # `unavailable` errors always carry their code).
            code = "network_error" if status == grpc.StatusCode.UNAVAILABLE else status.name.lower()

        issues = [Issue(d.path, d.code, d.message) for d in details if isinstance(d, workflow_pb2.ValidationIssue)]
        if not issues:
            issues = [Issue(v.field, v.reason, v.description) for b in bad_requests for v in b.field_violations]

        if retry_info is not None and retry_info.HasField("retry_delay"):
            retry_after: Optional[float] = retry_info.retry_delay.ToTimedelta().total_seconds()
        else:
            retry_after = parse_retry_after(_text(metadata.get(RETRY_AFTER_KEY)))

        return cls(
            code=code,
            message=text,
            grpc_status=status,
            request_id=(request_info.request_id if request_info else "") or _text(metadata.get(REQUEST_ID_KEY)) or None,
            retry_after=retry_after,
            issues=tuple(issues),
            domain=(info.domain or None) if info else None,
            metadata=dict(info.metadata) if info else {},
            details=tuple(details),
        )


def parse_retry_after(value: Optional[str], now: Optional[float] = None) -> Optional[float]:
    """``Retry-After`` (RFC 9110 §10.2.3): delay-seconds, or an HTTP date (seconds from
    ``now``, rounded up, never negative). Anything else: ``None``."""
    text = (value or "").strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        seconds = None
    if seconds is not None:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        at = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if at is None or at.tzinfo is None:
        return None
    return float(max(0, math.ceil(at.timestamp() - (time.time() if now is None else now))))


def _metadata(*sources: object) -> dict:
    """The first value of every key, from ``initial_metadata()`` then ``trailing_metadata()``."""
    merged: dict = {}
    for source in sources:
        try:
            pairs: Iterable = (source() if callable(source) else source) or ()
        except Exception:  # a call that never got an answer has no metadata to read
            pairs = ()
        for key, value in pairs:
            merged.setdefault(key.lower(), value)
    return merged


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else ""


def _status_details(raw: object) -> list:
    if not isinstance(raw, bytes) or not raw:
        return []
    try:
        status = status_pb2.Status.FromString(raw)
    except message.DecodeError:
        return []  # a proxy's garbage must not hide the error itself
    return [_unpack(d) for d in status.details]


def _unpack(detail: any_pb2.Any) -> message.Message:
    for kind in _KNOWN_DETAILS:
        if detail.Is(kind.DESCRIPTOR):
            unpacked = kind()
            if detail.Unpack(unpacked):
                return unpacked
    return detail


def _first(details: Sequence[message.Message], kind: type):
    return next((d for d in details if isinstance(d, kind)), None)
