from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

CANCELLED: JobState
DESCRIPTOR: _descriptor.FileDescriptor
EXPIRED: JobState
FAILED: JobState
JOB_STATE_UNSPECIFIED: JobState
QUEUED: JobState
RESUMING: JobState
RUNNING: JobState
SCHEDULED: JobState
STDERR: LogStream
STDOUT: LogStream
SUCCEEDED: JobState

class BundleChunk(_message.Message):
    __slots__ = ["data", "total_bytes"]
    DATA_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    total_bytes: int
    def __init__(self, data: _Optional[bytes] = ..., total_bytes: _Optional[int] = ...) -> None: ...

class CancelJobRequest(_message.Message):
    __slots__ = ["job_id"]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class CancelJobResponse(_message.Message):
    __slots__ = ["job"]
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: Job
    def __init__(self, job: _Optional[_Union[Job, _Mapping]] = ...) -> None: ...

class CheckpointKeyRequest(_message.Message):
    __slots__ = ["job_id"]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class CheckpointKeyResponse(_message.Message):
    __slots__ = ["key"]
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: bytes
    def __init__(self, key: _Optional[bytes] = ...) -> None: ...

class CheckpointSettings(_message.Message):
    __slots__ = ["s3_prefix"]
    S3_PREFIX_FIELD_NUMBER: _ClassVar[int]
    s3_prefix: str
    def __init__(self, s3_prefix: _Optional[str] = ...) -> None: ...

class CreateJoinTokenRequest(_message.Message):
    __slots__ = ["expires_s", "orchestrator_url"]
    EXPIRES_S_FIELD_NUMBER: _ClassVar[int]
    ORCHESTRATOR_URL_FIELD_NUMBER: _ClassVar[int]
    expires_s: float
    orchestrator_url: str
    def __init__(self, expires_s: _Optional[float] = ..., orchestrator_url: _Optional[str] = ...) -> None: ...

class CreateJoinTokenResponse(_message.Message):
    __slots__ = ["ca_fingerprint", "command", "expires_at_ms", "token"]
    CA_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_MS_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    ca_fingerprint: str
    command: str
    expires_at_ms: int
    token: str
    def __init__(self, token: _Optional[str] = ..., expires_at_ms: _Optional[int] = ..., command: _Optional[str] = ..., ca_fingerprint: _Optional[str] = ...) -> None: ...

class CreateTokenRequest(_message.Message):
    __slots__ = ["admin", "expires_in_s", "user"]
    ADMIN_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_IN_S_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    admin: bool
    expires_in_s: float
    user: str
    def __init__(self, user: _Optional[str] = ..., admin: bool = ..., expires_in_s: _Optional[float] = ...) -> None: ...

class CreateTokenResponse(_message.Message):
    __slots__ = ["secret", "token"]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    secret: str
    token: Token
    def __init__(self, token: _Optional[_Union[Token, _Mapping]] = ..., secret: _Optional[str] = ...) -> None: ...

class DrainWorkerRequest(_message.Message):
    __slots__ = ["name", "now"]
    NAME_FIELD_NUMBER: _ClassVar[int]
    NOW_FIELD_NUMBER: _ClassVar[int]
    name: str
    now: bool
    def __init__(self, name: _Optional[str] = ..., now: bool = ...) -> None: ...

class DrainWorkerResponse(_message.Message):
    __slots__ = ["node_id"]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    def __init__(self, node_id: _Optional[str] = ...) -> None: ...

class FetchBundleRequest(_message.Message):
    __slots__ = ["job_id"]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class FetchFunctionRequest(_message.Message):
    __slots__ = ["job_id"]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ["job_id"]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class GetResultRequest(_message.Message):
    __slots__ = ["job_id"]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class Gpu(_message.Message):
    __slots__ = ["allocated", "free", "index", "memory_bytes", "name", "partitions", "pci_bus_id", "uuid", "vendor"]
    ALLOCATED_FIELD_NUMBER: _ClassVar[int]
    FREE_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    PCI_BUS_ID_FIELD_NUMBER: _ClassVar[int]
    UUID_FIELD_NUMBER: _ClassVar[int]
    VENDOR_FIELD_NUMBER: _ClassVar[int]
    allocated: float
    free: float
    index: int
    memory_bytes: int
    name: str
    partitions: int
    pci_bus_id: str
    uuid: str
    vendor: str
    def __init__(self, index: _Optional[int] = ..., name: _Optional[str] = ..., memory_bytes: _Optional[int] = ..., allocated: _Optional[float] = ..., free: _Optional[float] = ..., partitions: _Optional[int] = ..., uuid: _Optional[str] = ..., pci_bus_id: _Optional[str] = ..., vendor: _Optional[str] = ...) -> None: ...

class Job(_message.Message):
    __slots__ = ["attempts", "bundle_bytes", "created_at_ms", "deadline_ms", "exit_code", "finished_at_ms", "function_bytes", "gpu_device", "gpu_devices", "has_exit_code", "has_result", "id", "last_checkpoint_at_ms", "last_checkpoint_step", "last_checkpoint_tier", "log_seq", "node_id", "partition_id", "partition_ids", "reason", "reason_code", "result_removed_at_ms", "service_id", "spec", "started_at_ms", "state"]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    BUNDLE_BYTES_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_MS_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_BYTES_FIELD_NUMBER: _ClassVar[int]
    GPU_DEVICES_FIELD_NUMBER: _ClassVar[int]
    GPU_DEVICE_FIELD_NUMBER: _ClassVar[int]
    HAS_EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    HAS_RESULT_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    LAST_CHECKPOINT_AT_MS_FIELD_NUMBER: _ClassVar[int]
    LAST_CHECKPOINT_STEP_FIELD_NUMBER: _ClassVar[int]
    LAST_CHECKPOINT_TIER_FIELD_NUMBER: _ClassVar[int]
    LOG_SEQ_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    PARTITION_IDS_FIELD_NUMBER: _ClassVar[int]
    PARTITION_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_CODE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    RESULT_REMOVED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    attempts: int
    bundle_bytes: int
    created_at_ms: int
    deadline_ms: int
    exit_code: int
    finished_at_ms: int
    function_bytes: int
    gpu_device: int
    gpu_devices: _containers.RepeatedScalarFieldContainer[int]
    has_exit_code: bool
    has_result: bool
    id: str
    last_checkpoint_at_ms: int
    last_checkpoint_step: int
    last_checkpoint_tier: str
    log_seq: int
    node_id: str
    partition_id: str
    partition_ids: _containers.RepeatedScalarFieldContainer[str]
    reason: str
    reason_code: str
    result_removed_at_ms: int
    service_id: str
    spec: JobSpec
    started_at_ms: int
    state: JobState
    def __init__(self, id: _Optional[str] = ..., spec: _Optional[_Union[JobSpec, _Mapping]] = ..., state: _Optional[_Union[JobState, str]] = ..., has_exit_code: bool = ..., exit_code: _Optional[int] = ..., reason: _Optional[str] = ..., created_at_ms: _Optional[int] = ..., started_at_ms: _Optional[int] = ..., finished_at_ms: _Optional[int] = ..., attempts: _Optional[int] = ..., node_id: _Optional[str] = ..., service_id: _Optional[str] = ..., log_seq: _Optional[int] = ..., has_result: bool = ..., bundle_bytes: _Optional[int] = ..., partition_id: _Optional[str] = ..., gpu_device: _Optional[int] = ..., deadline_ms: _Optional[int] = ..., last_checkpoint_step: _Optional[int] = ..., last_checkpoint_tier: _Optional[str] = ..., last_checkpoint_at_ms: _Optional[int] = ..., function_bytes: _Optional[int] = ..., result_removed_at_ms: _Optional[int] = ..., partition_ids: _Optional[_Iterable[str]] = ..., gpu_devices: _Optional[_Iterable[int]] = ..., reason_code: _Optional[str] = ...) -> None: ...

class JobSpec(_message.Message):
    __slots__ = ["checkpoint", "command", "constraints", "cpu", "duration", "env", "function", "gpu_count", "gpu_memory", "gpu_memory_size", "image", "image_user", "memory", "name", "result_retention", "retry", "user", "workdir"]
    class EnvEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    CONSTRAINTS_FIELD_NUMBER: _ClassVar[int]
    CPU_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_FIELD_NUMBER: _ClassVar[int]
    GPU_COUNT_FIELD_NUMBER: _ClassVar[int]
    GPU_MEMORY_FIELD_NUMBER: _ClassVar[int]
    GPU_MEMORY_SIZE_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    IMAGE_USER_FIELD_NUMBER: _ClassVar[int]
    MEMORY_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    RESULT_RETENTION_FIELD_NUMBER: _ClassVar[int]
    RETRY_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    WORKDIR_FIELD_NUMBER: _ClassVar[int]
    checkpoint: CheckpointSettings
    command: _containers.RepeatedScalarFieldContainer[str]
    constraints: _containers.RepeatedScalarFieldContainer[str]
    cpu: float
    duration: float
    env: _containers.ScalarMap[str, str]
    function: bytes
    gpu_count: int
    gpu_memory: float
    gpu_memory_size: str
    image: str
    image_user: bool
    memory: str
    name: str
    result_retention: float
    retry: RetryPolicy
    user: str
    workdir: str
    def __init__(self, image: _Optional[str] = ..., command: _Optional[_Iterable[str]] = ..., function: _Optional[bytes] = ..., env: _Optional[_Mapping[str, str]] = ..., gpu_memory: _Optional[float] = ..., duration: _Optional[float] = ..., gpu_count: _Optional[int] = ..., constraints: _Optional[_Iterable[str]] = ..., retry: _Optional[_Union[RetryPolicy, _Mapping]] = ..., checkpoint: _Optional[_Union[CheckpointSettings, _Mapping]] = ..., user: _Optional[str] = ..., name: _Optional[str] = ..., workdir: _Optional[str] = ..., gpu_memory_size: _Optional[str] = ..., result_retention: _Optional[float] = ..., cpu: _Optional[float] = ..., memory: _Optional[str] = ..., image_user: bool = ...) -> None: ...

class JoinWorkerRequest(_message.Message):
    __slots__ = ["join_token", "name", "ssh_host_key", "ssh_target"]
    JOIN_TOKEN_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SSH_HOST_KEY_FIELD_NUMBER: _ClassVar[int]
    SSH_TARGET_FIELD_NUMBER: _ClassVar[int]
    join_token: str
    name: str
    ssh_host_key: str
    ssh_target: str
    def __init__(self, join_token: _Optional[str] = ..., name: _Optional[str] = ..., ssh_target: _Optional[str] = ..., ssh_host_key: _Optional[str] = ...) -> None: ...

class JoinWorkerResponse(_message.Message):
    __slots__ = ["manager_address", "orchestrator_ssh_key", "registry", "registry_ca_pem", "swarm_join_token"]
    MANAGER_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    ORCHESTRATOR_SSH_KEY_FIELD_NUMBER: _ClassVar[int]
    REGISTRY_CA_PEM_FIELD_NUMBER: _ClassVar[int]
    REGISTRY_FIELD_NUMBER: _ClassVar[int]
    SWARM_JOIN_TOKEN_FIELD_NUMBER: _ClassVar[int]
    manager_address: str
    orchestrator_ssh_key: str
    registry: str
    registry_ca_pem: str
    swarm_join_token: str
    def __init__(self, swarm_join_token: _Optional[str] = ..., manager_address: _Optional[str] = ..., orchestrator_ssh_key: _Optional[str] = ..., registry: _Optional[str] = ..., registry_ca_pem: _Optional[str] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ["page_size", "page_token", "states", "user"]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATES_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    states: _containers.RepeatedScalarFieldContainer[JobState]
    user: str
    def __init__(self, states: _Optional[_Iterable[_Union[JobState, str]]] = ..., user: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListJobsResponse(_message.Message):
    __slots__ = ["jobs", "next_page_token"]
    JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[Job]
    next_page_token: str
    def __init__(self, jobs: _Optional[_Iterable[_Union[Job, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListPartitionsRequest(_message.Message):
    __slots__ = ["node_id"]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    def __init__(self, node_id: _Optional[str] = ...) -> None: ...

class ListPartitionsResponse(_message.Message):
    __slots__ = ["partitions"]
    PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    partitions: _containers.RepeatedCompositeFieldContainer[Partition]
    def __init__(self, partitions: _Optional[_Iterable[_Union[Partition, _Mapping]]] = ...) -> None: ...

class ListTokensRequest(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class ListTokensResponse(_message.Message):
    __slots__ = ["tokens"]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    tokens: _containers.RepeatedCompositeFieldContainer[Token]
    def __init__(self, tokens: _Optional[_Iterable[_Union[Token, _Mapping]]] = ...) -> None: ...

class ListWorkersRequest(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class ListWorkersResponse(_message.Message):
    __slots__ = ["workers"]
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    workers: _containers.RepeatedCompositeFieldContainer[Worker]
    def __init__(self, workers: _Optional[_Iterable[_Union[Worker, _Mapping]]] = ...) -> None: ...

class LogAck(_message.Message):
    __slots__ = ["accepted"]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    accepted: int
    def __init__(self, accepted: _Optional[int] = ...) -> None: ...

class LogBatch(_message.Message):
    __slots__ = ["attempt", "data", "exit_code", "first_index", "job_id", "last", "streams", "texts", "time_ms"]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    FIRST_INDEX_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    STREAMS_FIELD_NUMBER: _ClassVar[int]
    TEXTS_FIELD_NUMBER: _ClassVar[int]
    TIME_MS_FIELD_NUMBER: _ClassVar[int]
    attempt: int
    data: bytes
    exit_code: int
    first_index: int
    job_id: str
    last: bool
    streams: bytes
    texts: _containers.RepeatedScalarFieldContainer[str]
    time_ms: int
    def __init__(self, job_id: _Optional[str] = ..., attempt: _Optional[int] = ..., first_index: _Optional[int] = ..., texts: _Optional[_Iterable[str]] = ..., streams: _Optional[bytes] = ..., time_ms: _Optional[int] = ..., data: _Optional[bytes] = ..., last: bool = ..., exit_code: _Optional[int] = ...) -> None: ...

class LogLine(_message.Message):
    __slots__ = ["seq", "stream", "text", "time_ms"]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    TIME_MS_FIELD_NUMBER: _ClassVar[int]
    seq: int
    stream: LogStream
    text: str
    time_ms: int
    def __init__(self, seq: _Optional[int] = ..., stream: _Optional[_Union[LogStream, str]] = ..., time_ms: _Optional[int] = ..., text: _Optional[str] = ...) -> None: ...

class Partition(_message.Message):
    __slots__ = ["device", "expires_at_ms", "id", "job_id", "memory", "node_id", "owner"]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_MS_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    MEMORY_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    device: int
    expires_at_ms: int
    id: str
    job_id: str
    memory: float
    node_id: str
    owner: str
    def __init__(self, id: _Optional[str] = ..., node_id: _Optional[str] = ..., device: _Optional[int] = ..., memory: _Optional[float] = ..., owner: _Optional[str] = ..., job_id: _Optional[str] = ..., expires_at_ms: _Optional[int] = ...) -> None: ...

class PresignCheckpointRequest(_message.Message):
    __slots__ = ["job_id", "requests"]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    requests: _containers.RepeatedCompositeFieldContainer[S3RequestToSign]
    def __init__(self, job_id: _Optional[str] = ..., requests: _Optional[_Iterable[_Union[S3RequestToSign, _Mapping]]] = ...) -> None: ...

class PresignCheckpointResponse(_message.Message):
    __slots__ = ["expires_unix_ms", "urls"]
    EXPIRES_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    URLS_FIELD_NUMBER: _ClassVar[int]
    expires_unix_ms: int
    urls: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, urls: _Optional[_Iterable[str]] = ..., expires_unix_ms: _Optional[int] = ...) -> None: ...

class RemoveWorkerRequest(_message.Message):
    __slots__ = ["name"]
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class RemoveWorkerResponse(_message.Message):
    __slots__ = ["node_id"]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    def __init__(self, node_id: _Optional[str] = ...) -> None: ...

class ReportCheckpointRequest(_message.Message):
    __slots__ = ["job_id", "location", "step", "tier"]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    location: str
    step: int
    tier: str
    def __init__(self, job_id: _Optional[str] = ..., step: _Optional[int] = ..., tier: _Optional[str] = ..., location: _Optional[str] = ...) -> None: ...

class ReportCheckpointResponse(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class ReportResultRequest(_message.Message):
    __slots__ = ["chunk", "header"]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    HEADER_FIELD_NUMBER: _ClassVar[int]
    chunk: bytes
    header: ResultHeader
    def __init__(self, header: _Optional[_Union[ResultHeader, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class ReportResultResponse(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class ResultChunk(_message.Message):
    __slots__ = ["data", "kind", "total_bytes"]
    DATA_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    kind: str
    total_bytes: int
    def __init__(self, data: _Optional[bytes] = ..., total_bytes: _Optional[int] = ..., kind: _Optional[str] = ...) -> None: ...

class ResultHeader(_message.Message):
    __slots__ = ["job_id", "kind", "total_bytes"]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    kind: str
    total_bytes: int
    def __init__(self, job_id: _Optional[str] = ..., kind: _Optional[str] = ..., total_bytes: _Optional[int] = ...) -> None: ...

class RetryPolicy(_message.Message):
    __slots__ = ["max_attempts", "resume", "resume_on_expiry"]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    RESUME_FIELD_NUMBER: _ClassVar[int]
    RESUME_ON_EXPIRY_FIELD_NUMBER: _ClassVar[int]
    max_attempts: int
    resume: bool
    resume_on_expiry: bool
    def __init__(self, resume: bool = ..., max_attempts: _Optional[int] = ..., resume_on_expiry: bool = ...) -> None: ...

class RevokeTokenRequest(_message.Message):
    __slots__ = ["id_or_user"]
    ID_OR_USER_FIELD_NUMBER: _ClassVar[int]
    id_or_user: str
    def __init__(self, id_or_user: _Optional[str] = ...) -> None: ...

class RevokeTokenResponse(_message.Message):
    __slots__ = ["revoked"]
    REVOKED_FIELD_NUMBER: _ClassVar[int]
    revoked: _containers.RepeatedCompositeFieldContainer[Token]
    def __init__(self, revoked: _Optional[_Iterable[_Union[Token, _Mapping]]] = ...) -> None: ...

class S3RequestToSign(_message.Message):
    __slots__ = ["headers", "key", "method", "query"]
    class HeadersEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class QueryEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    headers: _containers.ScalarMap[str, str]
    key: str
    method: str
    query: _containers.ScalarMap[str, str]
    def __init__(self, method: _Optional[str] = ..., key: _Optional[str] = ..., query: _Optional[_Mapping[str, str]] = ..., headers: _Optional[_Mapping[str, str]] = ...) -> None: ...

class SubmitJobRequest(_message.Message):
    __slots__ = ["chunk", "spec"]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    chunk: bytes
    spec: JobSpec
    def __init__(self, spec: _Optional[_Union[JobSpec, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class SubmitJobResponse(_message.Message):
    __slots__ = ["job", "job_id"]
    JOB_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job: Job
    job_id: str
    def __init__(self, job_id: _Optional[str] = ..., job: _Optional[_Union[Job, _Mapping]] = ...) -> None: ...

class Token(_message.Message):
    __slots__ = ["admin", "created_at_ms", "expires_at_ms", "id", "revoked_at_ms", "user"]
    ADMIN_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_MS_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    admin: bool
    created_at_ms: int
    expires_at_ms: int
    id: str
    revoked_at_ms: int
    user: str
    def __init__(self, id: _Optional[str] = ..., user: _Optional[str] = ..., admin: bool = ..., created_at_ms: _Optional[int] = ..., expires_at_ms: _Optional[int] = ..., revoked_at_ms: _Optional[int] = ...) -> None: ...

class WatchJobEvent(_message.Message):
    __slots__ = ["job", "lines"]
    JOB_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    job: Job
    lines: _containers.RepeatedCompositeFieldContainer[LogLine]
    def __init__(self, lines: _Optional[_Iterable[_Union[LogLine, _Mapping]]] = ..., job: _Optional[_Union[Job, _Mapping]] = ...) -> None: ...

class WatchJobRequest(_message.Message):
    __slots__ = ["after_seq", "job_id", "no_follow", "no_logs"]
    AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    NO_FOLLOW_FIELD_NUMBER: _ClassVar[int]
    NO_LOGS_FIELD_NUMBER: _ClassVar[int]
    after_seq: int
    job_id: str
    no_follow: bool
    no_logs: bool
    def __init__(self, job_id: _Optional[str] = ..., after_seq: _Optional[int] = ..., no_logs: bool = ..., no_follow: bool = ...) -> None: ...

class WhoAmIRequest(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class WhoAmIResponse(_message.Message):
    __slots__ = ["admin", "token_id", "user"]
    ADMIN_FIELD_NUMBER: _ClassVar[int]
    TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    admin: bool
    token_id: str
    user: str
    def __init__(self, user: _Optional[str] = ..., admin: bool = ..., token_id: _Optional[str] = ...) -> None: ...

class Worker(_message.Message):
    __slots__ = ["address", "agent", "availability", "device_access", "gpus", "hostname", "labels", "node_id", "role", "running_jobs", "state"]
    class LabelsEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    AGENT_FIELD_NUMBER: _ClassVar[int]
    AVAILABILITY_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ACCESS_FIELD_NUMBER: _ClassVar[int]
    GPUS_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    RUNNING_JOBS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    address: str
    agent: str
    availability: str
    device_access: str
    gpus: _containers.RepeatedCompositeFieldContainer[Gpu]
    hostname: str
    labels: _containers.ScalarMap[str, str]
    node_id: str
    role: str
    running_jobs: int
    state: str
    def __init__(self, node_id: _Optional[str] = ..., hostname: _Optional[str] = ..., state: _Optional[str] = ..., availability: _Optional[str] = ..., role: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., address: _Optional[str] = ..., running_jobs: _Optional[int] = ..., agent: _Optional[str] = ..., gpus: _Optional[_Iterable[_Union[Gpu, _Mapping]]] = ..., device_access: _Optional[str] = ...) -> None: ...

class JobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class LogStream(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []
