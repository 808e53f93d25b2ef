from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Backoff(_message.Message):
    __slots__ = ["factor", "initial_ms", "jitter", "max_ms"]
    FACTOR_FIELD_NUMBER: _ClassVar[int]
    INITIAL_MS_FIELD_NUMBER: _ClassVar[int]
    JITTER_FIELD_NUMBER: _ClassVar[int]
    MAX_MS_FIELD_NUMBER: _ClassVar[int]
    factor: float
    initial_ms: int
    jitter: float
    max_ms: int
    def __init__(self, initial_ms: _Optional[int] = ..., factor: _Optional[float] = ..., max_ms: _Optional[int] = ..., jitter: _Optional[float] = ...) -> None: ...

class GetWorkflowRequest(_message.Message):
    __slots__ = ["id"]
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class GetWorkflowResponse(_message.Message):
    __slots__ = ["workflow"]
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    workflow: WorkflowDefinition
    def __init__(self, workflow: _Optional[_Union[WorkflowDefinition, _Mapping]] = ...) -> None: ...

class ListWorkflowsRequest(_message.Message):
    __slots__ = ["name", "page_size", "page_token"]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    name: str
    page_size: int
    page_token: str
    def __init__(self, name: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListWorkflowsResponse(_message.Message):
    __slots__ = ["next_page_token", "workflows"]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    WORKFLOWS_FIELD_NUMBER: _ClassVar[int]
    next_page_token: str
    workflows: _containers.RepeatedCompositeFieldContainer[WorkflowDefinition]
    def __init__(self, workflows: _Optional[_Iterable[_Union[WorkflowDefinition, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class NodePolicy(_message.Message):
    __slots__ = ["backoff", "max_attempts", "retry_on", "timeout_ms"]
    BACKOFF_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    RETRY_ON_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    backoff: Backoff
    max_attempts: int
    retry_on: _containers.RepeatedScalarFieldContainer[str]
    timeout_ms: int
    def __init__(self, timeout_ms: _Optional[int] = ..., max_attempts: _Optional[int] = ..., backoff: _Optional[_Union[Backoff, _Mapping]] = ..., retry_on: _Optional[_Iterable[str]] = ...) -> None: ...

class NodeSpec(_message.Message):
    __slots__ = ["config", "depends_on", "inputs", "key", "merge", "operation", "outputs", "policy", "runtime", "when"]
    class OutputsEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    DEPENDS_ON_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    MERGE_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_FIELD_NUMBER: _ClassVar[int]
    WHEN_FIELD_NUMBER: _ClassVar[int]
    config: _struct_pb2.Struct
    depends_on: _containers.RepeatedScalarFieldContainer[str]
    inputs: _struct_pb2.Struct
    key: str
    merge: str
    operation: str
    outputs: _containers.ScalarMap[str, str]
    policy: NodePolicy
    runtime: str
    when: str
    def __init__(self, key: _Optional[str] = ..., operation: _Optional[str] = ..., runtime: _Optional[str] = ..., config: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., inputs: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., outputs: _Optional[_Mapping[str, str]] = ..., depends_on: _Optional[_Iterable[str]] = ..., merge: _Optional[str] = ..., policy: _Optional[_Union[NodePolicy, _Mapping]] = ..., when: _Optional[str] = ...) -> None: ...

class UpsertWorkflowRequest(_message.Message):
    __slots__ = ["etag", "spec"]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    etag: str
    spec: WorkflowSpec
    def __init__(self, spec: _Optional[_Union[WorkflowSpec, _Mapping]] = ..., etag: _Optional[str] = ...) -> None: ...

class UpsertWorkflowResponse(_message.Message):
    __slots__ = ["created", "workflow"]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    created: bool
    workflow: WorkflowDefinition
    def __init__(self, workflow: _Optional[_Union[WorkflowDefinition, _Mapping]] = ..., created: bool = ...) -> None: ...

class ValidateWorkflowRequest(_message.Message):
    __slots__ = ["spec"]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    spec: WorkflowSpec
    def __init__(self, spec: _Optional[_Union[WorkflowSpec, _Mapping]] = ...) -> None: ...

class ValidateWorkflowResponse(_message.Message):
    __slots__ = ["issues", "valid"]
    ISSUES_FIELD_NUMBER: _ClassVar[int]
    VALID_FIELD_NUMBER: _ClassVar[int]
    issues: _containers.RepeatedCompositeFieldContainer[ValidationIssue]
    valid: bool
    def __init__(self, valid: bool = ..., issues: _Optional[_Iterable[_Union[ValidationIssue, _Mapping]]] = ...) -> None: ...

class ValidationIssue(_message.Message):
    __slots__ = ["code", "message", "path"]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    path: str
    def __init__(self, path: _Optional[str] = ..., code: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class WorkflowDefinition(_message.Message):
    __slots__ = ["create_time", "etag", "id", "name", "organization_id", "spec", "team_id", "version"]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    create_time: _timestamp_pb2.Timestamp
    etag: str
    id: str
    name: str
    organization_id: str
    spec: WorkflowSpec
    team_id: str
    version: int
    def __init__(self, id: _Optional[str] = ..., organization_id: _Optional[str] = ..., name: _Optional[str] = ..., version: _Optional[int] = ..., spec: _Optional[_Union[WorkflowSpec, _Mapping]] = ..., create_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., team_id: _Optional[str] = ..., etag: _Optional[str] = ...) -> None: ...

class WorkflowSpec(_message.Message):
    __slots__ = ["description", "name", "nodes", "run_timeout_ms", "team_id"]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    RUN_TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    description: str
    name: str
    nodes: _containers.RepeatedCompositeFieldContainer[NodeSpec]
    run_timeout_ms: int
    team_id: str
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., nodes: _Optional[_Iterable[_Union[NodeSpec, _Mapping]]] = ..., run_timeout_ms: _Optional[int] = ..., team_id: _Optional[str] = ...) -> None: ...
