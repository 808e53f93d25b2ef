from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BudgetCheck(_message.Message):
    __slots__ = ["committed_usd", "fits", "limit_usd", "period", "scope"]
    COMMITTED_USD_FIELD_NUMBER: _ClassVar[int]
    FITS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_USD_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    committed_usd: str
    fits: bool
    limit_usd: str
    period: str
    scope: str
    def __init__(self, scope: _Optional[str] = ..., period: _Optional[str] = ..., limit_usd: _Optional[str] = ..., committed_usd: _Optional[str] = ..., fits: bool = ...) -> None: ...

class CallCost(_message.Message):
    __slots__ = ["actual_usd", "estimated_usd", "price_table", "unpriced_reason"]
    ACTUAL_USD_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_USD_FIELD_NUMBER: _ClassVar[int]
    PRICE_TABLE_FIELD_NUMBER: _ClassVar[int]
    UNPRICED_REASON_FIELD_NUMBER: _ClassVar[int]
    actual_usd: str
    estimated_usd: str
    price_table: str
    unpriced_reason: str
    def __init__(self, estimated_usd: _Optional[str] = ..., actual_usd: _Optional[str] = ..., price_table: _Optional[str] = ..., unpriced_reason: _Optional[str] = ...) -> None: ...

class ChatMessage(_message.Message):
    __slots__ = ["content", "role"]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    content: str
    role: str
    def __init__(self, role: _Optional[str] = ..., content: _Optional[str] = ...) -> None: ...

class Embedding(_message.Message):
    __slots__ = ["values"]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, values: _Optional[_Iterable[float]] = ...) -> None: ...

class EstimateCostRequest(_message.Message):
    __slots__ = ["call"]
    CALL_FIELD_NUMBER: _ClassVar[int]
    call: ProviderCall
    def __init__(self, call: _Optional[_Union[ProviderCall, _Mapping]] = ...) -> None: ...

class EstimateCostResponse(_message.Message):
    __slots__ = ["allowed", "budgets", "estimated_input_tokens", "estimated_usd", "max_output_tokens", "price_table", "refusal_code", "refusal_message", "routing"]
    ALLOWED_FIELD_NUMBER: _ClassVar[int]
    BUDGETS_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_USD_FIELD_NUMBER: _ClassVar[int]
    MAX_OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    PRICE_TABLE_FIELD_NUMBER: _ClassVar[int]
    REFUSAL_CODE_FIELD_NUMBER: _ClassVar[int]
    REFUSAL_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ROUTING_FIELD_NUMBER: _ClassVar[int]
    allowed: bool
    budgets: _containers.RepeatedCompositeFieldContainer[BudgetCheck]
    estimated_input_tokens: int
    estimated_usd: str
    max_output_tokens: int
    price_table: str
    refusal_code: str
    refusal_message: str
    routing: RoutingDecision
    def __init__(self, routing: _Optional[_Union[RoutingDecision, _Mapping]] = ..., estimated_usd: _Optional[str] = ..., estimated_input_tokens: _Optional[int] = ..., max_output_tokens: _Optional[int] = ..., price_table: _Optional[str] = ..., budgets: _Optional[_Iterable[_Union[BudgetCheck, _Mapping]]] = ..., allowed: bool = ..., refusal_code: _Optional[str] = ..., refusal_message: _Optional[str] = ...) -> None: ...

class ExecuteRequest(_message.Message):
    __slots__ = ["call"]
    CALL_FIELD_NUMBER: _ClassVar[int]
    call: ProviderCall
    def __init__(self, call: _Optional[_Union[ProviderCall, _Mapping]] = ...) -> None: ...

class ExecuteResponse(_message.Message):
    __slots__ = ["cost", "embeddings", "finish_reason", "model", "provider", "routing", "text", "usage", "usage_record_id"]
    COST_FIELD_NUMBER: _ClassVar[int]
    EMBEDDINGS_FIELD_NUMBER: _ClassVar[int]
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    ROUTING_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    USAGE_RECORD_ID_FIELD_NUMBER: _ClassVar[int]
    cost: CallCost
    embeddings: _containers.RepeatedCompositeFieldContainer[Embedding]
    finish_reason: str
    model: str
    provider: str
    routing: RoutingDecision
    text: str
    usage: TokenUsage
    usage_record_id: str
    def __init__(self, text: _Optional[str] = ..., finish_reason: _Optional[str] = ..., embeddings: _Optional[_Iterable[_Union[Embedding, _Mapping]]] = ..., provider: _Optional[str] = ..., model: _Optional[str] = ..., usage: _Optional[_Union[TokenUsage, _Mapping]] = ..., cost: _Optional[_Union[CallCost, _Mapping]] = ..., routing: _Optional[_Union[RoutingDecision, _Mapping]] = ..., usage_record_id: _Optional[str] = ...) -> None: ...

class ExecuteStreamRequest(_message.Message):
    __slots__ = ["call"]
    CALL_FIELD_NUMBER: _ClassVar[int]
    call: ProviderCall
    def __init__(self, call: _Optional[_Union[ProviderCall, _Mapping]] = ...) -> None: ...

class ExecuteStreamResponse(_message.Message):
    __slots__ = ["delta", "result"]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    delta: TextDelta
    result: ExecuteResponse
    def __init__(self, delta: _Optional[_Union[TextDelta, _Mapping]] = ..., result: _Optional[_Union[ExecuteResponse, _Mapping]] = ...) -> None: ...

class ListProvidersRequest(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class ListProvidersResponse(_message.Message):
    __slots__ = ["default_strategy", "price_table", "providers"]
    DEFAULT_STRATEGY_FIELD_NUMBER: _ClassVar[int]
    PRICE_TABLE_FIELD_NUMBER: _ClassVar[int]
    PROVIDERS_FIELD_NUMBER: _ClassVar[int]
    default_strategy: str
    price_table: str
    providers: _containers.RepeatedCompositeFieldContainer[ProviderInfo]
    def __init__(self, providers: _Optional[_Iterable[_Union[ProviderInfo, _Mapping]]] = ..., price_table: _Optional[str] = ..., default_strategy: _Optional[str] = ...) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ["breaker", "cached_input_usd_per_mtok", "input_usd_per_mtok", "latency_ms", "name", "operation", "output_usd_per_mtok", "quality"]
    BREAKER_FIELD_NUMBER: _ClassVar[int]
    CACHED_INPUT_USD_PER_MTOK_FIELD_NUMBER: _ClassVar[int]
    INPUT_USD_PER_MTOK_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_USD_PER_MTOK_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    breaker: str
    cached_input_usd_per_mtok: str
    input_usd_per_mtok: str
    latency_ms: float
    name: str
    operation: str
    output_usd_per_mtok: str
    quality: int
    def __init__(self, name: _Optional[str] = ..., operation: _Optional[str] = ..., input_usd_per_mtok: _Optional[str] = ..., output_usd_per_mtok: _Optional[str] = ..., cached_input_usd_per_mtok: _Optional[str] = ..., quality: _Optional[int] = ..., breaker: _Optional[str] = ..., latency_ms: _Optional[float] = ...) -> None: ...

class ProviderCall(_message.Message):
    __slots__ = ["input", "max_tokens", "messages", "model", "operation", "prompt", "provider", "strategy", "system", "team_id", "temperature", "tier"]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_FIELD_NUMBER: _ClassVar[int]
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    input: _containers.RepeatedScalarFieldContainer[str]
    max_tokens: int
    messages: _containers.RepeatedCompositeFieldContainer[ChatMessage]
    model: str
    operation: str
    prompt: str
    provider: str
    strategy: str
    system: str
    team_id: str
    temperature: float
    tier: str
    def __init__(self, operation: _Optional[str] = ..., prompt: _Optional[str] = ..., messages: _Optional[_Iterable[_Union[ChatMessage, _Mapping]]] = ..., system: _Optional[str] = ..., input: _Optional[_Iterable[str]] = ..., provider: _Optional[str] = ..., model: _Optional[str] = ..., strategy: _Optional[str] = ..., tier: _Optional[str] = ..., max_tokens: _Optional[int] = ..., temperature: _Optional[float] = ..., team_id: _Optional[str] = ...) -> None: ...

class ProviderInfo(_message.Message):
    __slots__ = ["health", "local", "modalities", "models", "name", "operations", "stub", "tier"]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    LOCAL_FIELD_NUMBER: _ClassVar[int]
    MODALITIES_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    OPERATIONS_FIELD_NUMBER: _ClassVar[int]
    STUB_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    health: str
    local: bool
    modalities: _containers.RepeatedScalarFieldContainer[str]
    models: _containers.RepeatedCompositeFieldContainer[ModelInfo]
    name: str
    operations: _containers.RepeatedScalarFieldContainer[str]
    stub: bool
    tier: str
    def __init__(self, name: _Optional[str] = ..., tier: _Optional[str] = ..., local: bool = ..., stub: bool = ..., operations: _Optional[_Iterable[str]] = ..., modalities: _Optional[_Iterable[str]] = ..., models: _Optional[_Iterable[_Union[ModelInfo, _Mapping]]] = ..., health: _Optional[str] = ...) -> None: ...

class RoutingAttempt(_message.Message):
    __slots__ = ["error", "model", "provider"]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    error: str
    model: str
    provider: str
    def __init__(self, provider: _Optional[str] = ..., model: _Optional[str] = ..., error: _Optional[str] = ...) -> None: ...

class RoutingCandidate(_message.Message):
    __slots__ = ["breaker", "eligible", "estimated_usd", "model", "provider", "rank", "reasons"]
    BREAKER_FIELD_NUMBER: _ClassVar[int]
    ELIGIBLE_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_USD_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    breaker: str
    eligible: bool
    estimated_usd: str
    model: str
    provider: str
    rank: int
    reasons: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, provider: _Optional[str] = ..., model: _Optional[str] = ..., eligible: bool = ..., reasons: _Optional[_Iterable[str]] = ..., rank: _Optional[int] = ..., estimated_usd: _Optional[str] = ..., breaker: _Optional[str] = ...) -> None: ...

class RoutingDecision(_message.Message):
    __slots__ = ["attempts", "candidates", "model", "provider", "strategy", "why"]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    WHY_FIELD_NUMBER: _ClassVar[int]
    attempts: _containers.RepeatedCompositeFieldContainer[RoutingAttempt]
    candidates: _containers.RepeatedCompositeFieldContainer[RoutingCandidate]
    model: str
    provider: str
    strategy: str
    why: str
    def __init__(self, strategy: _Optional[str] = ..., provider: _Optional[str] = ..., model: _Optional[str] = ..., why: _Optional[str] = ..., candidates: _Optional[_Iterable[_Union[RoutingCandidate, _Mapping]]] = ..., attempts: _Optional[_Iterable[_Union[RoutingAttempt, _Mapping]]] = ...) -> None: ...

class TextDelta(_message.Message):
    __slots__ = ["text"]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    text: str
    def __init__(self, text: _Optional[str] = ...) -> None: ...

class TokenUsage(_message.Message):
    __slots__ = ["cache_write_tokens", "cached_input_tokens", "input_tokens", "output_tokens"]
    CACHED_INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CACHE_WRITE_TOKENS_FIELD_NUMBER: _ClassVar[int]
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    cache_write_tokens: int
    cached_input_tokens: int
    input_tokens: int
    output_tokens: int
    def __init__(self, input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., cached_input_tokens: _Optional[int] = ..., cache_write_tokens: _Optional[int] = ...) -> None: ...
