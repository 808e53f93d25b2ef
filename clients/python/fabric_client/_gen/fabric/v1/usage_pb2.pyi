from fabric_client._gen.fabric.v1 import providers_pb2 as _providers_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Budget(_message.Message):
    __slots__ = ["daily_limit_usd", "etag", "monthly_limit_usd", "organization_id", "periods", "team_id", "update_time", "updated_by"]
    DAILY_LIMIT_USD_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    MONTHLY_LIMIT_USD_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    PERIODS_FIELD_NUMBER: _ClassVar[int]
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    UPDATED_BY_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    daily_limit_usd: str
    etag: str
    monthly_limit_usd: str
    organization_id: str
    periods: _containers.RepeatedCompositeFieldContainer[BudgetPeriod]
    team_id: str
    update_time: _timestamp_pb2.Timestamp
    updated_by: str
    def __init__(self, organization_id: _Optional[str] = ..., team_id: _Optional[str] = ..., daily_limit_usd: _Optional[str] = ..., monthly_limit_usd: _Optional[str] = ..., periods: _Optional[_Iterable[_Union[BudgetPeriod, _Mapping]]] = ..., update_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., updated_by: _Optional[str] = ..., etag: _Optional[str] = ...) -> None: ...

class BudgetPeriod(_message.Message):
    __slots__ = ["committed_usd", "limit_usd", "period", "period_start_time", "remaining_usd", "reset_time"]
    COMMITTED_USD_FIELD_NUMBER: _ClassVar[int]
    LIMIT_USD_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    PERIOD_START_TIME_FIELD_NUMBER: _ClassVar[int]
    REMAINING_USD_FIELD_NUMBER: _ClassVar[int]
    RESET_TIME_FIELD_NUMBER: _ClassVar[int]
    committed_usd: str
    limit_usd: str
    period: str
    period_start_time: _timestamp_pb2.Timestamp
    remaining_usd: str
    reset_time: _timestamp_pb2.Timestamp
    def __init__(self, period: _Optional[str] = ..., limit_usd: _Optional[str] = ..., committed_usd: _Optional[str] = ..., remaining_usd: _Optional[str] = ..., period_start_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., reset_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetBudgetRequest(_message.Message):
    __slots__ = ["organization_id", "team_id"]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    team_id: str
    def __init__(self, organization_id: _Optional[str] = ..., team_id: _Optional[str] = ...) -> None: ...

class GetBudgetResponse(_message.Message):
    __slots__ = ["budget"]
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    budget: Budget
    def __init__(self, budget: _Optional[_Union[Budget, _Mapping]] = ...) -> None: ...

class GetPolicyRequest(_message.Message):
    __slots__ = ["organization_id", "team_id"]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    team_id: str
    def __init__(self, organization_id: _Optional[str] = ..., team_id: _Optional[str] = ...) -> None: ...

class GetPolicyResponse(_message.Message):
    __slots__ = ["policy"]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    policy: Policy
    def __init__(self, policy: _Optional[_Union[Policy, _Mapping]] = ...) -> None: ...

class ListUsageRecordsRequest(_message.Message):
    __slots__ = ["api_key_id", "end_time", "model", "organization_id", "page_size", "page_token", "principal_id", "provider", "run_id", "start_time", "team_id"]
    API_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    api_key_id: str
    end_time: _timestamp_pb2.Timestamp
    model: str
    organization_id: str
    page_size: int
    page_token: str
    principal_id: str
    provider: str
    run_id: str
    start_time: _timestamp_pb2.Timestamp
    team_id: str
    def __init__(self, organization_id: _Optional[str] = ..., start_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., team_id: _Optional[str] = ..., principal_id: _Optional[str] = ..., api_key_id: _Optional[str] = ..., run_id: _Optional[str] = ..., provider: _Optional[str] = ..., model: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListUsageRecordsResponse(_message.Message):
    __slots__ = ["next_page_token", "records"]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    next_page_token: str
    records: _containers.RepeatedCompositeFieldContainer[UsageRecord]
    def __init__(self, records: _Optional[_Iterable[_Union[UsageRecord, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class Policy(_message.Message):
    __slots__ = ["allowed_models", "allowed_providers", "etag", "max_run_cost_usd", "organization_id", "price_overrides", "requests_per_minute_per_key", "team_id", "update_time", "updated_by"]
    ALLOWED_MODELS_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_PROVIDERS_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    MAX_RUN_COST_USD_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    PRICE_OVERRIDES_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_PER_MINUTE_PER_KEY_FIELD_NUMBER: _ClassVar[int]
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    UPDATED_BY_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    allowed_models: _containers.RepeatedScalarFieldContainer[str]
    allowed_providers: _containers.RepeatedScalarFieldContainer[str]
    etag: str
    max_run_cost_usd: str
    organization_id: str
    price_overrides: _containers.RepeatedCompositeFieldContainer[PriceOverride]
    requests_per_minute_per_key: int
    team_id: str
    update_time: _timestamp_pb2.Timestamp
    updated_by: str
    def __init__(self, organization_id: _Optional[str] = ..., team_id: _Optional[str] = ..., allowed_providers: _Optional[_Iterable[str]] = ..., allowed_models: _Optional[_Iterable[str]] = ..., max_run_cost_usd: _Optional[str] = ..., requests_per_minute_per_key: _Optional[int] = ..., price_overrides: _Optional[_Iterable[_Union[PriceOverride, _Mapping]]] = ..., update_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., updated_by: _Optional[str] = ..., etag: _Optional[str] = ...) -> None: ...

class PriceOverride(_message.Message):
    __slots__ = ["cache_write_usd_per_mtok", "cached_input_usd_per_mtok", "input_usd_per_mtok", "model", "output_usd_per_mtok", "provider"]
    CACHED_INPUT_USD_PER_MTOK_FIELD_NUMBER: _ClassVar[int]
    CACHE_WRITE_USD_PER_MTOK_FIELD_NUMBER: _ClassVar[int]
    INPUT_USD_PER_MTOK_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_USD_PER_MTOK_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    cache_write_usd_per_mtok: str
    cached_input_usd_per_mtok: str
    input_usd_per_mtok: str
    model: str
    output_usd_per_mtok: str
    provider: str
    def __init__(self, provider: _Optional[str] = ..., model: _Optional[str] = ..., input_usd_per_mtok: _Optional[str] = ..., output_usd_per_mtok: _Optional[str] = ..., cached_input_usd_per_mtok: _Optional[str] = ..., cache_write_usd_per_mtok: _Optional[str] = ...) -> None: ...

class QueryUsageRequest(_message.Message):
    __slots__ = ["api_key_id", "end_time", "group_by", "model", "organization_id", "principal_id", "provider", "run_id", "start_time", "team_id"]
    API_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    GROUP_BY_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    api_key_id: str
    end_time: _timestamp_pb2.Timestamp
    group_by: str
    model: str
    organization_id: str
    principal_id: str
    provider: str
    run_id: str
    start_time: _timestamp_pb2.Timestamp
    team_id: str
    def __init__(self, organization_id: _Optional[str] = ..., group_by: _Optional[str] = ..., start_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., team_id: _Optional[str] = ..., principal_id: _Optional[str] = ..., api_key_id: _Optional[str] = ..., run_id: _Optional[str] = ..., provider: _Optional[str] = ..., model: _Optional[str] = ...) -> None: ...

class QueryUsageResponse(_message.Message):
    __slots__ = ["groups", "total"]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    groups: _containers.RepeatedCompositeFieldContainer[UsageGroup]
    total: UsageGroup
    def __init__(self, groups: _Optional[_Iterable[_Union[UsageGroup, _Mapping]]] = ..., total: _Optional[_Union[UsageGroup, _Mapping]] = ...) -> None: ...

class SetBudgetRequest(_message.Message):
    __slots__ = ["daily_limit_usd", "etag", "monthly_limit_usd", "organization_id", "team_id"]
    DAILY_LIMIT_USD_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    MONTHLY_LIMIT_USD_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    daily_limit_usd: str
    etag: str
    monthly_limit_usd: str
    organization_id: str
    team_id: str
    def __init__(self, organization_id: _Optional[str] = ..., team_id: _Optional[str] = ..., daily_limit_usd: _Optional[str] = ..., monthly_limit_usd: _Optional[str] = ..., etag: _Optional[str] = ...) -> None: ...

class SetBudgetResponse(_message.Message):
    __slots__ = ["budget"]
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    budget: Budget
    def __init__(self, budget: _Optional[_Union[Budget, _Mapping]] = ...) -> None: ...

class SetPolicyRequest(_message.Message):
    __slots__ = ["allowed_models", "allowed_providers", "etag", "max_run_cost_usd", "organization_id", "price_overrides", "requests_per_minute_per_key", "team_id"]
    ALLOWED_MODELS_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_PROVIDERS_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    MAX_RUN_COST_USD_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    PRICE_OVERRIDES_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_PER_MINUTE_PER_KEY_FIELD_NUMBER: _ClassVar[int]
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    allowed_models: _containers.RepeatedScalarFieldContainer[str]
    allowed_providers: _containers.RepeatedScalarFieldContainer[str]
    etag: str
    max_run_cost_usd: str
    organization_id: str
    price_overrides: _containers.RepeatedCompositeFieldContainer[PriceOverride]
    requests_per_minute_per_key: int
    team_id: str
    def __init__(self, organization_id: _Optional[str] = ..., team_id: _Optional[str] = ..., allowed_providers: _Optional[_Iterable[str]] = ..., allowed_models: _Optional[_Iterable[str]] = ..., max_run_cost_usd: _Optional[str] = ..., requests_per_minute_per_key: _Optional[int] = ..., price_overrides: _Optional[_Iterable[_Union[PriceOverride, _Mapping]]] = ..., etag: _Optional[str] = ...) -> None: ...

class SetPolicyResponse(_message.Message):
    __slots__ = ["policy"]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    policy: Policy
    def __init__(self, policy: _Optional[_Union[Policy, _Mapping]] = ...) -> None: ...

class UsageGroup(_message.Message):
    __slots__ = ["api_key_id", "calls", "cost_usd", "day", "failed_calls", "model", "operation", "principal_id", "provider", "reserved_usd", "run_id", "team_id", "usage", "workflow_name"]
    API_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    CALLS_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    DAY_FIELD_NUMBER: _ClassVar[int]
    FAILED_CALLS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    RESERVED_USD_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_NAME_FIELD_NUMBER: _ClassVar[int]
    api_key_id: str
    calls: int
    cost_usd: str
    day: str
    failed_calls: int
    model: str
    operation: str
    principal_id: str
    provider: str
    reserved_usd: str
    run_id: str
    team_id: str
    usage: _providers_pb2.TokenUsage
    workflow_name: str
    def __init__(self, team_id: _Optional[str] = ..., principal_id: _Optional[str] = ..., api_key_id: _Optional[str] = ..., run_id: _Optional[str] = ..., provider: _Optional[str] = ..., model: _Optional[str] = ..., operation: _Optional[str] = ..., day: _Optional[str] = ..., calls: _Optional[int] = ..., failed_calls: _Optional[int] = ..., usage: _Optional[_Union[_providers_pb2.TokenUsage, _Mapping]] = ..., cost_usd: _Optional[str] = ..., reserved_usd: _Optional[str] = ..., workflow_name: _Optional[str] = ...) -> None: ...

class UsageRecord(_message.Message):
    __slots__ = ["actual_usd", "api_key_id", "create_time", "error_code", "estimated_usd", "id", "latency_ms", "model", "node_key", "operation", "organization_id", "price_table", "principal_id", "provider", "run_id", "settle_time", "status", "team_id", "usage"]
    ACTUAL_USD_FIELD_NUMBER: _ClassVar[int]
    API_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_USD_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    NODE_KEY_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    PRICE_TABLE_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    SETTLE_TIME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    actual_usd: str
    api_key_id: str
    create_time: _timestamp_pb2.Timestamp
    error_code: str
    estimated_usd: str
    id: str
    latency_ms: int
    model: str
    node_key: str
    operation: str
    organization_id: str
    price_table: str
    principal_id: str
    provider: str
    run_id: str
    settle_time: _timestamp_pb2.Timestamp
    status: str
    team_id: str
    usage: _providers_pb2.TokenUsage
    def __init__(self, id: _Optional[str] = ..., organization_id: _Optional[str] = ..., team_id: _Optional[str] = ..., principal_id: _Optional[str] = ..., api_key_id: _Optional[str] = ..., run_id: _Optional[str] = ..., node_key: _Optional[str] = ..., provider: _Optional[str] = ..., model: _Optional[str] = ..., operation: _Optional[str] = ..., status: _Optional[str] = ..., usage: _Optional[_Union[_providers_pb2.TokenUsage, _Mapping]] = ..., estimated_usd: _Optional[str] = ..., actual_usd: _Optional[str] = ..., price_table: _Optional[str] = ..., error_code: _Optional[str] = ..., latency_ms: _Optional[int] = ..., create_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., settle_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
