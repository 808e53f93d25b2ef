"""The generated messages and stubs of ``proto/fabric/v1`` (and ``google.rpc``), under
stable names: import them from here, never from ``fabric_client._gen``.

The messages the client's methods take and return are also bound by name (``Run``,
``Event``, …). For the services ``Fabric`` does not wrap, use the modules with
``Fabric.channel``, which carries the credentials::

    from fabric_client.types import jobs_pb2, jobs_pb2_grpc
    stub = jobs_pb2_grpc.JobServiceStub(fabric.channel)
"""

from ._gen.fabric.v1 import (
    access_pb2,
    access_pb2_grpc,
    events_pb2,
    events_pb2_grpc,
    identity_pb2,
    identity_pb2_grpc,
    jobs_pb2,
    jobs_pb2_grpc,
    providers_pb2,
    providers_pb2_grpc,
    run_pb2,
    run_pb2_grpc,
    tenancy_pb2,
    tenancy_pb2_grpc,
    usage_pb2,
    usage_pb2_grpc,
    webhooks_pb2,
    webhooks_pb2_grpc,
    workflow_pb2,
    workflow_pb2_grpc,
)
from ._gen.google.rpc import error_details_pb2, status_pb2

Run = run_pb2.Run
RunNode = run_pb2.RunNode
RunError = run_pb2.RunError
Event = run_pb2.Event
WorkflowSpec = workflow_pb2.WorkflowSpec
WorkflowDefinition = workflow_pb2.WorkflowDefinition
ValidationIssue = workflow_pb2.ValidationIssue
ProviderCall = providers_pb2.ProviderCall
ExecuteResponse = providers_pb2.ExecuteResponse
TextDelta = providers_pb2.TextDelta

__all__ = [
    "access_pb2",
    "access_pb2_grpc",
    "error_details_pb2",
    "events_pb2",
    "events_pb2_grpc",
    "identity_pb2",
    "identity_pb2_grpc",
    "jobs_pb2",
    "jobs_pb2_grpc",
    "providers_pb2",
    "providers_pb2_grpc",
    "run_pb2",
    "run_pb2_grpc",
    "status_pb2",
    "tenancy_pb2",
    "tenancy_pb2_grpc",
    "usage_pb2",
    "usage_pb2_grpc",
    "webhooks_pb2",
    "webhooks_pb2_grpc",
    "workflow_pb2",
    "workflow_pb2_grpc",
    "Event",
    "ExecuteResponse",
    "ProviderCall",
    "Run",
    "RunError",
    "RunNode",
    "TextDelta",
    "ValidationIssue",
    "WorkflowDefinition",
    "WorkflowSpec",
]
