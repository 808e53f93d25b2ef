"""``Fabric``: the Python client of Fabric's gRPC API.

Requests and responses are the generated messages of ``proto/fabric/v1`` (named in
``fabric_client.types``). Where a method takes request fields as keyword arguments, they
are the fields of the request message, checked against the contract, so a field the
contract gains works without a change here. JSON-like fields (``input``, ``metadata``, ``payload``, a workflow
spec) accept plain ``dict``/``list`` values.

Every failed call raises ``FabricError`` (see ``fabric_client.errors``).
"""

from __future__ import annotations

import collections
import random
import time
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence, Tuple, TypeVar, Union
from urllib.parse import urlsplit

import grpc
from google.protobuf import json_format, message

from ._gen.fabric.v1 import providers_pb2, providers_pb2_grpc, run_pb2, run_pb2_grpc, workflow_pb2, workflow_pb2_grpc
from .errors import FabricError

__all__ = ["Fabric", "TERMINAL_EVENT_KINDS", "TERMINAL_RUN_STATUSES"]

#: The run's last event: a watch ends after it.
TERMINAL_EVENT_KINDS = frozenset({"workflow.run.completed", "workflow.run.failed", "workflow.run.cancelled"})
#: Statuses a run never leaves.
TERMINAL_RUN_STATUSES = frozenset({"completed", "failed", "cancelled"})

_M = TypeVar("_M", bound=message.Message)


class _ClientDefault:
    """The client's default timeout (``Fabric(timeout=…)``), as opposed to ``None`` = no limit."""

    def __repr__(self) -> str:
        return "<the client's timeout>"


CLIENT_TIMEOUT: Any = _ClientDefault()

# Keepalive pings on the HTTP/2 connection, so a watch on a silently dead connection (a
# NAT or proxy dropped it) fails and reconnects instead of waiting forever.
_CHANNEL_OPTIONS: Tuple[Tuple[str, int], ...] = (
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
)


class Fabric:
    """A connection to Fabric's gRPC API (port 3002 by default).

    >>> with Fabric("http://127.0.0.1:3002", api_key) as fabric:
    ...     wf = fabric.workflows.upsert(spec)
    ...     run = fabric.runs.start(workflow_id=wf.id, input={"topic": "hello"})
    ...     done = fabric.runs.wait(run.id, timeout=60)

    ``url``: ``http://host:port`` (plain-text HTTP/2), ``https://host:port`` (TLS with the
    system's roots) or ``host:port`` (plain text). ``api_key``: a ``fab_…`` key (or any
    bearer token), sent as ``authorization: Bearer …`` on every call. ``timeout``: seconds
    each unary call may take (``None``: no limit); streams are not limited by it.
    ``options``: extra grpcio channel options.

    ``channel`` carries the credentials, so the generated stubs of services this class
    does not wrap work on it as they are::

        from fabric_client.types import jobs_pb2, jobs_pb2_grpc
        jobs_pb2_grpc.JobServiceStub(fabric.channel).CreateJob(jobs_pb2.CreateJobRequest(...))

    (Their errors are ``grpc.RpcError``; ``FabricError.from_rpc_error`` reads them.)
    """

    def __init__(
        self,
        url: str,
        api_key: str,
        *,
        timeout: Optional[float] = 30.0,
        options: Sequence[Tuple[str, Any]] = (),
    ) -> None:
        if not api_key:
            raise ValueError("api_key is required")
        target, secure = _target(url)
        channel_options = list(_CHANNEL_OPTIONS) + list(options)
        if secure:
            self._transport = grpc.secure_channel(target, grpc.ssl_channel_credentials(), channel_options)
        else:
            self._transport = grpc.insecure_channel(target, channel_options)
        self.url = url
        self.timeout = timeout
        self.channel: grpc.Channel = grpc.intercept_channel(self._transport, _BearerAuth(api_key))
        self.workflows = Workflows(self)
        self.runs = Runs(self)
        self.providers = Providers(self)

    def close(self) -> None:
        """Closes the connection; calls in flight fail."""
        self._transport.close()

    def __enter__(self) -> "Fabric":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: Callable[..., _M], request: message.Message, timeout: Optional[float]) -> _M:
        """One unary call; its failure as a FabricError."""
        try:
            return method(request, timeout=self.timeout if timeout is CLIENT_TIMEOUT else timeout)
        except grpc.RpcError as err:
            raise FabricError.from_rpc_error(err) from err


class Workflows:
    """Workflow definitions (``fabric.v1.WorkflowService``)."""

    def __init__(self, fabric: Fabric) -> None:
        self._fabric = fabric
        self._stub = workflow_pb2_grpc.WorkflowServiceStub(fabric.channel)

    def upsert(
        self, spec: Union[Mapping[str, Any], workflow_pb2.WorkflowSpec], *, timeout: Optional[float] = CLIENT_TIMEOUT
    ) -> workflow_pb2.WorkflowDefinition:
        """Registers a definition by name: returns the latest version when the spec is
        unchanged, else stores the next version. ``spec`` is a ``WorkflowSpec`` or its JSON
        form (e.g. ``json.load(open("examples/smoke.json"))``). An invalid spec raises
        ``FabricError`` ``invalid_argument`` with every problem in ``issues``."""
        request = workflow_pb2.UpsertWorkflowRequest(spec=_message(workflow_pb2.WorkflowSpec, spec))
        return self._fabric._call(self._stub.UpsertWorkflow, request, timeout).workflow

    def get(self, workflow_id: str, *, timeout: Optional[float] = CLIENT_TIMEOUT) -> workflow_pb2.WorkflowDefinition:
        """One stored definition version, by id."""
        return self._fabric._call(self._stub.GetWorkflow, workflow_pb2.GetWorkflowRequest(id=workflow_id), timeout).workflow


class Runs:
    """Workflow runs (``fabric.v1.RunService``)."""

    def __init__(self, fabric: Fabric) -> None:
        self._fabric = fabric
        self._stub = run_pb2_grpc.RunServiceStub(fabric.channel)

    def start(self, *, timeout: Optional[float] = CLIENT_TIMEOUT, **fields: Any) -> run_pb2.Run:
        """Starts a run; it is queued at once and executes asynchronously.

        ``fields`` are those of ``StartRunRequest``: ``workflow_id`` or ``workflow_name``
        (with ``workflow_version``), ``input`` (a dict: the initial context),
        ``idempotency_key`` (a repeated start returns the original run), ``priority``
        (0–100), ``state``, ``metadata``, ``fail_fast``, ``timeout_ms``.
        """
        request = _message(run_pb2.StartRunRequest, fields)
        return self._fabric._call(self._stub.StartRun, request, timeout).run

    def get(self, run_id: str, *, timeout: Optional[float] = CLIENT_TIMEOUT) -> run_pb2.Run:
        """A run with its context and nodes."""
        return self._fabric._call(self._stub.GetRun, run_pb2.GetRunRequest(id=run_id), timeout).run

    def cancel(self, run_id: str, reason: str = "", *, timeout: Optional[float] = CLIENT_TIMEOUT) -> run_pb2.Run:
        """Cancels a run: queued nodes are cancelled, in-flight steps aborted."""
        return self._fabric._call(self._stub.CancelRun, run_pb2.CancelRunRequest(id=run_id, reason=reason), timeout).run

    def signal(
        self,
        run_id: str,
        payload: Optional[Mapping[str, Any]] = None,
        *,
        node_key: str = "",
        timeout: Optional[float] = CLIENT_TIMEOUT,
    ) -> run_pb2.Run:
        """Signals a run waiting in a ``workflow.wait_signal`` node (``node_key`` may be
        empty when one node waits); ``payload`` becomes that node's output."""
        request = _message(run_pb2.SignalRunRequest, {"id": run_id, "node_key": node_key, "payload": payload or {}})
        return self._fabric._call(self._stub.SignalRun, request, timeout).run

    def watch(
        self,
        run_id: str,
        after_id: int = 0,
        *,
        timeout: Optional[float] = None,
        max_reconnects: int = 5,
    ) -> Iterator[run_pb2.Event]:
        """The run's events in id order: the history after ``after_id``, then live ones;
        the iterator ends after the terminal event (``workflow.run.completed|failed|cancelled``).

        A dropped connection or a retryable error (``FabricError.retryable``) is followed by
        a new ``WatchRun`` after the last event received, with exponential backoff, so the
        consumer sees no gap and no duplicate; after ``max_reconnects`` failures in a row
        (the count resets with every event) the last error is raised. Other errors
        (``not_found``, ``unauthenticated``, …) are raised at once. After ``timeout``
        seconds (``None``: no limit) a ``FabricError`` ``timeout`` is raised. Closing the
        iterator (``break``) cancels the call.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        gave_up = f"run {run_id} did not finish within {timeout} s"

        def run_is_over() -> bool:
            try:
                run = self.get(run_id, timeout=CLIENT_TIMEOUT if deadline is None else _remaining(deadline))
            except FabricError as err:
                if _expired(deadline):
                    raise _timeout(gave_up) from err
                raise
            return run.status in TERMINAL_RUN_STATUSES

        last_id = after_id
        failures = 0
        confirming_end = False
        while True:
            received = 0
            error: Optional[FabricError] = None
            call = self._stub.WatchRun(run_pb2.WatchRunRequest(id=run_id, after_id=last_id), timeout=_remaining(deadline))
            try:
                for response in call:
                    event = response.event
                    if event.id <= last_id:
                        continue  # never hand out an event twice, whatever the server replays
                    last_id = event.id
                    received += 1
                    failures = 0
                    confirming_end = False
                    yield event
                    if event.kind in TERMINAL_EVENT_KINDS:
                        return
            except grpc.RpcError as err:
                if _expired(deadline):
                    raise _timeout(gave_up) from err
                error = FabricError.from_rpc_error(err)
                if not error.retryable:
                    raise error from err
            finally:
                call.cancel()
            if error is None and received == 0:
                # A clean end that carried nothing: either we resumed past the terminal
                # event, or the server closed (shutting down) before sending it. When the
                # run is over, one more empty watch tells them apart.
                if run_is_over():
                    if confirming_end:
                        return
                    confirming_end = True
                    continue
            failures += 1
            if failures > max_reconnects:
                raise error or FabricError("network_error", f"the event stream of run {run_id} kept ending before the run did")
            pause = _backoff(failures)
            if deadline is not None and time.monotonic() + pause >= deadline:
                raise _timeout(gave_up) from error
            time.sleep(pause)

    def wait(self, run_id: str, *, timeout: Optional[float] = None) -> run_pb2.Run:
        """The run once it is over (completed, failed or cancelled: a failed run is
        returned, not raised), following its events rather than polling. After
        ``timeout`` seconds (``None``: no limit), ``FabricError`` ``timeout``; the run is
        unaffected."""
        for _ in self.watch(run_id, timeout=timeout):
            pass
        run = self.get(run_id)  # over: its terminal event was seen
        if run.status not in TERMINAL_RUN_STATUSES:
            raise FabricError("invalid_response", f"the event stream of run {run_id} ended but the run is {run.status}")
        return run


class Providers:
    """Direct provider calls (``fabric.v1.ProviderService``): routed, policy-checked and
    billed like the provider nodes of a workflow."""

    def __init__(self, fabric: Fabric) -> None:
        self._fabric = fabric
        self._stub = providers_pb2_grpc.ProviderServiceStub(fabric.channel)

    def execute(
        self, prompt: Optional[str] = None, *, timeout: Optional[float] = CLIENT_TIMEOUT, **fields: Any
    ) -> providers_pb2.ExecuteResponse:
        """One call, answered when it finishes: text (or embeddings), usage, cost, routing.

        ``fields`` are those of ``ProviderCall`` (``messages``, ``system``, ``model``,
        ``provider``, ``max_tokens``, ``temperature``, ``operation="ai.embed"`` with
        ``input``, …). Refusals raise ``FabricError`` ``rate_limited`` or
        ``budget_exceeded`` (with ``retry_after`` when waiting helps) or ``model_not_allowed``.
        """
        request = providers_pb2.ExecuteRequest(call=_provider_call(prompt, fields))
        return self._fabric._call(self._stub.Execute, request, timeout)

    def stream(
        self, prompt: Optional[str] = None, *, timeout: Optional[float] = None, **fields: Any
    ) -> Iterator[Union[providers_pb2.TextDelta, providers_pb2.ExecuteResponse]]:
        """One ``ai.generate`` call, streamed: ``TextDelta`` messages as text arrives (they
        concatenate to the result's text), then one ``ExecuteResponse`` (usage, cost,
        routing), after which the iterator ends. ``fields`` as for ``execute``.

        Never retried (the call may have been made and billed): a stream that ends before
        the result raises ``FabricError`` ``network_error``. Closing the iterator cancels
        the call, and so the provider request.
        """
        request = providers_pb2.ExecuteStreamRequest(call=_provider_call(prompt, fields))
        call = self._stub.ExecuteStream(request, timeout=timeout)
        try:
            for chunk in call:
                kind = chunk.WhichOneof("chunk")
                if kind == "delta":
                    yield chunk.delta
                elif kind == "result":
                    yield chunk.result
                    return
                # Any other kind (none today) is skipped: newer servers may add some.
        except grpc.RpcError as err:
            raise FabricError.from_rpc_error(err) from err
        finally:
            call.cancel()
        raise FabricError("network_error", "the provider stream ended before its result")


def _provider_call(prompt: Optional[str], fields: Mapping[str, Any]) -> providers_pb2.ProviderCall:
    return _message(providers_pb2.ProviderCall, {**fields, **({} if prompt is None else {"prompt": prompt})})


def _message(kind: Callable[[], _M], value: Union[Mapping[str, Any], message.Message]) -> _M:
    """A request message from a message of that type or from its JSON form (field names as
    in the proto or in camelCase; nested messages may be messages too). A value the
    contract does not allow raises ``FabricError`` ``invalid_argument`` before anything is sent."""
    target = kind()
    if isinstance(value, message.Message):
        if value.DESCRIPTOR is target.DESCRIPTOR:
            return value  # type: ignore[return-value]
        raise TypeError(f"expected {target.DESCRIPTOR.full_name} or a dict, got {value.DESCRIPTOR.full_name}")
    plain = {k: _json_value(v) for k, v in value.items() if v is not None}
    try:
        return json_format.ParseDict(plain, target)
    except json_format.ParseError as err:
        raise FabricError("invalid_argument", f"{target.DESCRIPTOR.full_name}: {err}") from err


def _json_value(value: Any) -> Any:
    if isinstance(value, message.Message):
        return json_format.MessageToDict(value, preserving_proto_field_name=True)
    return value


def _target(url: str) -> Tuple[str, bool]:
    """``(host:port, TLS?)`` from the client's URL."""
    if "://" not in url:
        return url, False
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected http://host:port, https://host:port or host:port, got {url!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"gRPC serves no path prefix: {url!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{host}:{port}", parts.scheme == "https"


def _remaining(deadline: Optional[float]) -> Optional[float]:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def _expired(deadline: Optional[float]) -> bool:
    return deadline is not None and time.monotonic() >= deadline


def _timeout(text: str) -> FabricError:
    return FabricError("timeout", text)


def _backoff(failures: int) -> float:
    """Seconds before reconnect ``failures`` (1-based): 0.25 s doubling up to 5 s, ±20 %
    jitter (the TypeScript SDK's schedule)."""
    return min(5.0, 0.25 * 2 ** (failures - 1)) * (0.8 + random.random() * 0.4)


class _CallDetails(
    collections.namedtuple("_CallDetails", ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression")),
    grpc.ClientCallDetails,
):
    pass


class _BearerAuth(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Adds ``authorization: Bearer <key>`` to every call on the channel."""

    def __init__(self, api_key: str) -> None:
        self._header = ("authorization", f"Bearer {api_key}")

    def _with_auth(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        return _CallDetails(
            details.method,
            details.timeout,
            [*(details.metadata or ()), self._header],
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._with_auth(details), request)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(self._with_auth(details), request)

    def intercept_stream_unary(self, continuation, details, request_iterator):
        return continuation(self._with_auth(details), request_iterator)

    def intercept_stream_stream(self, continuation, details, request_iterator):
        return continuation(self._with_auth(details), request_iterator)
