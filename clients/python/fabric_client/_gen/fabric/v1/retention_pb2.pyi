from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetRetentionRequest(_message.Message):
    __slots__ = ["organization_id"]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    def __init__(self, organization_id: _Optional[str] = ...) -> None: ...

class GetRetentionResponse(_message.Message):
    __slots__ = ["retention"]
    RETENTION_FIELD_NUMBER: _ClassVar[int]
    retention: RetentionSettings
    def __init__(self, retention: _Optional[_Union[RetentionSettings, _Mapping]] = ...) -> None: ...

class RetentionSettings(_message.Message):
    __slots__ = ["default_retention_seconds", "effective_retention_seconds", "organization_id", "retention_seconds"]
    DEFAULT_RETENTION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_RETENTION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    RETENTION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    default_retention_seconds: int
    effective_retention_seconds: int
    organization_id: str
    retention_seconds: int
    def __init__(self, organization_id: _Optional[str] = ..., retention_seconds: _Optional[int] = ..., default_retention_seconds: _Optional[int] = ..., effective_retention_seconds: _Optional[int] = ...) -> None: ...

class SetRetentionRequest(_message.Message):
    __slots__ = ["organization_id", "retention_seconds"]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    RETENTION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    retention_seconds: int
    def __init__(self, organization_id: _Optional[str] = ..., retention_seconds: _Optional[int] = ...) -> None: ...

class SetRetentionResponse(_message.Message):
    __slots__ = ["retention"]
    RETENTION_FIELD_NUMBER: _ClassVar[int]
    retention: RetentionSettings
    def __init__(self, retention: _Optional[_Union[RetentionSettings, _Mapping]] = ...) -> None: ...
