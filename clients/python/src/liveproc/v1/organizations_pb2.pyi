import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PackageState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PACKAGE_STATE_UNSPECIFIED: _ClassVar[PackageState]
    ENABLED: _ClassVar[PackageState]
    UPGRADE_NEEDED: _ClassVar[PackageState]
PACKAGE_STATE_UNSPECIFIED: PackageState
ENABLED: PackageState
UPGRADE_NEEDED: PackageState

class Packages(_message.Message):
    __slots__ = ("live_processing",)
    LIVE_PROCESSING_FIELD_NUMBER: _ClassVar[int]
    live_processing: PackageState
    def __init__(self, live_processing: _Optional[_Union[PackageState, str]] = ...) -> None: ...

class Organization(_message.Message):
    __slots__ = ("id", "name", "packages", "api_key", "create_time", "quotas")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PACKAGES_FIELD_NUMBER: _ClassVar[int]
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    QUOTAS_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    packages: Packages
    api_key: str
    create_time: _timestamp_pb2.Timestamp
    quotas: Quotas
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., packages: _Optional[_Union[Packages, _Mapping]] = ..., api_key: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., quotas: _Optional[_Union[Quotas, _Mapping]] = ...) -> None: ...

class Quotas(_message.Message):
    __slots__ = ("streams", "live_sessions", "stored_bytes", "replay_memory_bytes")
    STREAMS_FIELD_NUMBER: _ClassVar[int]
    LIVE_SESSIONS_FIELD_NUMBER: _ClassVar[int]
    STORED_BYTES_FIELD_NUMBER: _ClassVar[int]
    REPLAY_MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    streams: int
    live_sessions: int
    stored_bytes: int
    replay_memory_bytes: int
    def __init__(self, streams: _Optional[int] = ..., live_sessions: _Optional[int] = ..., stored_bytes: _Optional[int] = ..., replay_memory_bytes: _Optional[int] = ...) -> None: ...

class Usage(_message.Message):
    __slots__ = ("streams", "live_sessions", "stored_bytes", "replay_memory_bytes")
    STREAMS_FIELD_NUMBER: _ClassVar[int]
    LIVE_SESSIONS_FIELD_NUMBER: _ClassVar[int]
    STORED_BYTES_FIELD_NUMBER: _ClassVar[int]
    REPLAY_MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    streams: int
    live_sessions: int
    stored_bytes: int
    replay_memory_bytes: int
    def __init__(self, streams: _Optional[int] = ..., live_sessions: _Optional[int] = ..., stored_bytes: _Optional[int] = ..., replay_memory_bytes: _Optional[int] = ...) -> None: ...

class OrganizationUsage(_message.Message):
    __slots__ = ("organization_id", "quotas", "usage")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    QUOTAS_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    quotas: Quotas
    usage: Usage
    def __init__(self, organization_id: _Optional[str] = ..., quotas: _Optional[_Union[Quotas, _Mapping]] = ..., usage: _Optional[_Union[Usage, _Mapping]] = ...) -> None: ...

class SetQuotasRequest(_message.Message):
    __slots__ = ("organization_id", "quotas")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    QUOTAS_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    quotas: Quotas
    def __init__(self, organization_id: _Optional[str] = ..., quotas: _Optional[_Union[Quotas, _Mapping]] = ...) -> None: ...

class GetUsageRequest(_message.Message):
    __slots__ = ("organization_id",)
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    def __init__(self, organization_id: _Optional[str] = ...) -> None: ...

class CreateOrganizationRequest(_message.Message):
    __slots__ = ("name", "live_processing")
    NAME_FIELD_NUMBER: _ClassVar[int]
    LIVE_PROCESSING_FIELD_NUMBER: _ClassVar[int]
    name: str
    live_processing: bool
    def __init__(self, name: _Optional[str] = ..., live_processing: _Optional[bool] = ...) -> None: ...

class GetOrganizationRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListOrganizationsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListOrganizationsResponse(_message.Message):
    __slots__ = ("organizations", "next_page_token")
    ORGANIZATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    organizations: _containers.RepeatedCompositeFieldContainer[Organization]
    next_page_token: str
    def __init__(self, organizations: _Optional[_Iterable[_Union[Organization, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class SetPackagesRequest(_message.Message):
    __slots__ = ("organization_id", "live_processing")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    LIVE_PROCESSING_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    live_processing: bool
    def __init__(self, organization_id: _Optional[str] = ..., live_processing: _Optional[bool] = ...) -> None: ...

class RotateApiKeyRequest(_message.Message):
    __slots__ = ("organization_id",)
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    def __init__(self, organization_id: _Optional[str] = ...) -> None: ...

class RevokeSignedUrlsRequest(_message.Message):
    __slots__ = ("organization_id",)
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    def __init__(self, organization_id: _Optional[str] = ...) -> None: ...

class AuditEvent(_message.Message):
    __slots__ = ("id", "time", "actor", "organization_id", "action", "resource", "details", "peer")
    ID_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    PEER_FIELD_NUMBER: _ClassVar[int]
    id: str
    time: _timestamp_pb2.Timestamp
    actor: str
    organization_id: str
    action: str
    resource: str
    details: str
    peer: str
    def __init__(self, id: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., actor: _Optional[str] = ..., organization_id: _Optional[str] = ..., action: _Optional[str] = ..., resource: _Optional[str] = ..., details: _Optional[str] = ..., peer: _Optional[str] = ...) -> None: ...

class ListAuditEventsRequest(_message.Message):
    __slots__ = ("organization_id", "page_size", "page_token")
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    organization_id: str
    page_size: int
    page_token: str
    def __init__(self, organization_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListAuditEventsResponse(_message.Message):
    __slots__ = ("events", "next_page_token")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[AuditEvent]
    next_page_token: str
    def __init__(self, events: _Optional[_Iterable[_Union[AuditEvent, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
