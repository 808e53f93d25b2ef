from fabric_client._gen.fabric.v1 import run_pb2 as _run_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StreamEventsRequest(_message.Message):
    __slots__ = ["after_id", "kinds", "run_id", "team_id"]
    AFTER_ID_FIELD_NUMBER: _ClassVar[int]
    KINDS_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    after_id: int
    kinds: str
    run_id: str
    team_id: str
    def __init__(self, kinds: _Optional[str] = ..., run_id: _Optional[str] = ..., team_id: _Optional[str] = ..., after_id: _Optional[int] = ...) -> None: ...

class StreamEventsResponse(_message.Message):
    __slots__ = ["event"]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: _run_pb2.Event
    def __init__(self, event: _Optional[_Union[_run_pb2.Event, _Mapping]] = ...) -> None: ...
