import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from liveproc.v1 import processing_pb2 as _processing_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StreamState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STREAM_STATE_UNSPECIFIED: _ClassVar[StreamState]
    IDLE: _ClassVar[StreamState]
    LIVE: _ClassVar[StreamState]
    ERROR: _ClassVar[StreamState]
    ENDED: _ClassVar[StreamState]

class SegmentFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SEGMENT_FORMAT_UNSPECIFIED: _ClassVar[SegmentFormat]
    MPEG_TS: _ClassVar[SegmentFormat]
    FMP4: _ClassVar[SegmentFormat]

class RecordingState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RECORDING_STATE_UNSPECIFIED: _ClassVar[RecordingState]
    RECORDING: _ClassVar[RecordingState]
    COMPLETE: _ClassVar[RecordingState]
    RECOVERED: _ClassVar[RecordingState]
    FAILED: _ClassVar[RecordingState]
STREAM_STATE_UNSPECIFIED: StreamState
IDLE: StreamState
LIVE: StreamState
ERROR: StreamState
ENDED: StreamState
SEGMENT_FORMAT_UNSPECIFIED: SegmentFormat
MPEG_TS: SegmentFormat
FMP4: SegmentFormat
RECORDING_STATE_UNSPECIFIED: RecordingState
RECORDING: RecordingState
COMPLETE: RecordingState
RECOVERED: RecordingState
FAILED: RecordingState

class IngestInfo(_message.Message):
    __slots__ = ("srt_url", "stream_key", "rtmp_url", "rtmp_server", "rtmp_stream_key", "rtmps_url", "rtmps_server", "srt_encryption")
    SRT_URL_FIELD_NUMBER: _ClassVar[int]
    STREAM_KEY_FIELD_NUMBER: _ClassVar[int]
    RTMP_URL_FIELD_NUMBER: _ClassVar[int]
    RTMP_SERVER_FIELD_NUMBER: _ClassVar[int]
    RTMP_STREAM_KEY_FIELD_NUMBER: _ClassVar[int]
    RTMPS_URL_FIELD_NUMBER: _ClassVar[int]
    RTMPS_SERVER_FIELD_NUMBER: _ClassVar[int]
    SRT_ENCRYPTION_FIELD_NUMBER: _ClassVar[int]
    srt_url: str
    stream_key: str
    rtmp_url: str
    rtmp_server: str
    rtmp_stream_key: str
    rtmps_url: str
    rtmps_server: str
    srt_encryption: SrtEncryption
    def __init__(self, srt_url: _Optional[str] = ..., stream_key: _Optional[str] = ..., rtmp_url: _Optional[str] = ..., rtmp_server: _Optional[str] = ..., rtmp_stream_key: _Optional[str] = ..., rtmps_url: _Optional[str] = ..., rtmps_server: _Optional[str] = ..., srt_encryption: _Optional[_Union[SrtEncryption, _Mapping]] = ...) -> None: ...

class Stream(_message.Message):
    __slots__ = ("id", "name", "organization_id", "state", "processing", "ingest", "create_time", "source_uri", "ingest_stats", "replay_window", "node_id")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PROCESSING_FIELD_NUMBER: _ClassVar[int]
    INGEST_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    SOURCE_URI_FIELD_NUMBER: _ClassVar[int]
    INGEST_STATS_FIELD_NUMBER: _ClassVar[int]
    REPLAY_WINDOW_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    organization_id: str
    state: StreamState
    processing: _processing_pb2.ProcessingOptions
    ingest: IngestInfo
    create_time: _timestamp_pb2.Timestamp
    source_uri: str
    ingest_stats: IngestStats
    replay_window: ReplayWindow
    node_id: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., organization_id: _Optional[str] = ..., state: _Optional[_Union[StreamState, str]] = ..., processing: _Optional[_Union[_processing_pb2.ProcessingOptions, _Mapping]] = ..., ingest: _Optional[_Union[IngestInfo, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., source_uri: _Optional[str] = ..., ingest_stats: _Optional[_Union[IngestStats, _Mapping]] = ..., replay_window: _Optional[_Union[ReplayWindow, _Mapping]] = ..., node_id: _Optional[str] = ...) -> None: ...

class ReplayWindow(_message.Message):
    __slots__ = ("earliest_time", "duration", "gops", "bytes", "disk_bytes")
    EARLIEST_TIME_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    GOPS_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    DISK_BYTES_FIELD_NUMBER: _ClassVar[int]
    earliest_time: _timestamp_pb2.Timestamp
    duration: _duration_pb2.Duration
    gops: int
    bytes: int
    disk_bytes: int
    def __init__(self, earliest_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., gops: _Optional[int] = ..., bytes: _Optional[int] = ..., disk_bytes: _Optional[int] = ...) -> None: ...

class IngestStats(_message.Message):
    __slots__ = ("session_start_time", "video_codec", "width", "height", "audio_codec", "video_frames", "video_keyframes", "audio_frames", "bytes_received", "thumbnail_frames_decoded", "session_id")
    SESSION_START_TIME_FIELD_NUMBER: _ClassVar[int]
    VIDEO_CODEC_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    AUDIO_CODEC_FIELD_NUMBER: _ClassVar[int]
    VIDEO_FRAMES_FIELD_NUMBER: _ClassVar[int]
    VIDEO_KEYFRAMES_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FRAMES_FIELD_NUMBER: _ClassVar[int]
    BYTES_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    THUMBNAIL_FRAMES_DECODED_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_start_time: _timestamp_pb2.Timestamp
    video_codec: str
    width: int
    height: int
    audio_codec: str
    video_frames: int
    video_keyframes: int
    audio_frames: int
    bytes_received: int
    thumbnail_frames_decoded: int
    session_id: str
    def __init__(self, session_start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., video_codec: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., audio_codec: _Optional[str] = ..., video_frames: _Optional[int] = ..., video_keyframes: _Optional[int] = ..., audio_frames: _Optional[int] = ..., bytes_received: _Optional[int] = ..., thumbnail_frames_decoded: _Optional[int] = ..., session_id: _Optional[str] = ...) -> None: ...

class CreateStreamRequest(_message.Message):
    __slots__ = ("stream_id", "name", "processing", "source_uri", "srt_encryption")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROCESSING_FIELD_NUMBER: _ClassVar[int]
    SOURCE_URI_FIELD_NUMBER: _ClassVar[int]
    SRT_ENCRYPTION_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    name: str
    processing: _processing_pb2.ProcessingOptions
    source_uri: str
    srt_encryption: SrtEncryption
    def __init__(self, stream_id: _Optional[str] = ..., name: _Optional[str] = ..., processing: _Optional[_Union[_processing_pb2.ProcessingOptions, _Mapping]] = ..., source_uri: _Optional[str] = ..., srt_encryption: _Optional[_Union[SrtEncryption, _Mapping]] = ...) -> None: ...

class SrtEncryption(_message.Message):
    __slots__ = ("passphrase", "key_length")
    PASSPHRASE_FIELD_NUMBER: _ClassVar[int]
    KEY_LENGTH_FIELD_NUMBER: _ClassVar[int]
    passphrase: str
    key_length: int
    def __init__(self, passphrase: _Optional[str] = ..., key_length: _Optional[int] = ...) -> None: ...

class GetStreamRequest(_message.Message):
    __slots__ = ("stream_id",)
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    def __init__(self, stream_id: _Optional[str] = ...) -> None: ...

class ListStreamsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListStreamsResponse(_message.Message):
    __slots__ = ("streams", "next_page_token")
    STREAMS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    streams: _containers.RepeatedCompositeFieldContainer[Stream]
    next_page_token: str
    def __init__(self, streams: _Optional[_Iterable[_Union[Stream, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class RotateStreamKeyRequest(_message.Message):
    __slots__ = ("stream_id",)
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    def __init__(self, stream_id: _Optional[str] = ...) -> None: ...

class DeleteStreamRequest(_message.Message):
    __slots__ = ("stream_id",)
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    def __init__(self, stream_id: _Optional[str] = ...) -> None: ...

class DeleteStreamResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class UpdateProcessingRequest(_message.Message):
    __slots__ = ("stream_id", "processing")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    PROCESSING_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    processing: _processing_pb2.ProcessingOptions
    def __init__(self, stream_id: _Optional[str] = ..., processing: _Optional[_Union[_processing_pb2.ProcessingOptions, _Mapping]] = ...) -> None: ...

class WatchStreamRequest(_message.Message):
    __slots__ = ("stream_id",)
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    def __init__(self, stream_id: _Optional[str] = ...) -> None: ...

class StreamEvent(_message.Message):
    __slots__ = ("sequence", "time", "state", "message", "processing", "kind")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[StreamEvent.Kind]
        SNAPSHOT: _ClassVar[StreamEvent.Kind]
        STATE_CHANGED: _ClassVar[StreamEvent.Kind]
        PROCESSING_CHANGED: _ClassVar[StreamEvent.Kind]
        EVENTS_SKIPPED: _ClassVar[StreamEvent.Kind]
        FEATURE_ERROR: _ClassVar[StreamEvent.Kind]
        TIMELINE_DISCONTINUITY: _ClassVar[StreamEvent.Kind]
    KIND_UNSPECIFIED: StreamEvent.Kind
    SNAPSHOT: StreamEvent.Kind
    STATE_CHANGED: StreamEvent.Kind
    PROCESSING_CHANGED: StreamEvent.Kind
    EVENTS_SKIPPED: StreamEvent.Kind
    FEATURE_ERROR: StreamEvent.Kind
    TIMELINE_DISCONTINUITY: StreamEvent.Kind
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PROCESSING_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    time: _timestamp_pb2.Timestamp
    state: StreamState
    message: str
    processing: _processing_pb2.ProcessingOptions
    kind: StreamEvent.Kind
    def __init__(self, sequence: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., state: _Optional[_Union[StreamState, str]] = ..., message: _Optional[str] = ..., processing: _Optional[_Union[_processing_pb2.ProcessingOptions, _Mapping]] = ..., kind: _Optional[_Union[StreamEvent.Kind, str]] = ...) -> None: ...

class PushMediaRequest(_message.Message):
    __slots__ = ("stream_id", "stream_key", "data")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    STREAM_KEY_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    stream_key: str
    data: bytes
    def __init__(self, stream_id: _Optional[str] = ..., stream_key: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class PushMediaResponse(_message.Message):
    __slots__ = ("bytes_received",)
    BYTES_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    bytes_received: int
    def __init__(self, bytes_received: _Optional[int] = ...) -> None: ...

class SubscribeThumbnailsRequest(_message.Message):
    __slots__ = ("stream_id", "send_latest")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    SEND_LATEST_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    send_latest: bool
    def __init__(self, stream_id: _Optional[str] = ..., send_latest: _Optional[bool] = ...) -> None: ...

class GetThumbnailRequest(_message.Message):
    __slots__ = ("stream_id", "at")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    at: _timestamp_pb2.Timestamp
    def __init__(self, stream_id: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Thumbnail(_message.Message):
    __slots__ = ("stream_id", "sequence", "pts", "capture_time", "width", "height", "format", "data")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    PTS_FIELD_NUMBER: _ClassVar[int]
    CAPTURE_TIME_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    sequence: int
    pts: _duration_pb2.Duration
    capture_time: _timestamp_pb2.Timestamp
    width: int
    height: int
    format: _processing_pb2.ImageFormat
    data: bytes
    def __init__(self, stream_id: _Optional[str] = ..., sequence: _Optional[int] = ..., pts: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., capture_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., format: _Optional[_Union[_processing_pb2.ImageFormat, str]] = ..., data: _Optional[bytes] = ...) -> None: ...

class SubscribeMotionClipsRequest(_message.Message):
    __slots__ = ("stream_id", "send_latest")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    SEND_LATEST_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    send_latest: bool
    def __init__(self, stream_id: _Optional[str] = ..., send_latest: _Optional[bool] = ...) -> None: ...

class MotionClip(_message.Message):
    __slots__ = ("stream_id", "sequence", "start_pts", "duration", "format", "width", "height", "data", "start_time")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    START_PTS_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    sequence: int
    start_pts: _duration_pb2.Duration
    duration: _duration_pb2.Duration
    format: _processing_pb2.ClipFormat
    width: int
    height: int
    data: bytes
    start_time: _timestamp_pb2.Timestamp
    def __init__(self, stream_id: _Optional[str] = ..., sequence: _Optional[int] = ..., start_pts: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., format: _Optional[_Union[_processing_pb2.ClipFormat, str]] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., data: _Optional[bytes] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ReplayStart(_message.Message):
    __slots__ = ("earliest", "live_edge", "seconds_before_live", "time")
    EARLIEST_FIELD_NUMBER: _ClassVar[int]
    LIVE_EDGE_FIELD_NUMBER: _ClassVar[int]
    SECONDS_BEFORE_LIVE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    earliest: bool
    live_edge: bool
    seconds_before_live: int
    time: _timestamp_pb2.Timestamp
    def __init__(self, earliest: _Optional[bool] = ..., live_edge: _Optional[bool] = ..., seconds_before_live: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SubscribeReplayRequest(_message.Message):
    __slots__ = ("stream_id", "start", "format")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    start: ReplayStart
    format: SegmentFormat
    def __init__(self, stream_id: _Optional[str] = ..., start: _Optional[_Union[ReplayStart, _Mapping]] = ..., format: _Optional[_Union[SegmentFormat, str]] = ...) -> None: ...

class ReplaySegment(_message.Message):
    __slots__ = ("stream_id", "sequence", "start_pts", "start_time", "duration", "format", "data", "skipped", "discontinuity")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    START_PTS_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    DISCONTINUITY_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    sequence: int
    start_pts: _duration_pb2.Duration
    start_time: _timestamp_pb2.Timestamp
    duration: _duration_pb2.Duration
    format: SegmentFormat
    data: bytes
    skipped: int
    discontinuity: bool
    def __init__(self, stream_id: _Optional[str] = ..., sequence: _Optional[int] = ..., start_pts: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., format: _Optional[_Union[SegmentFormat, str]] = ..., data: _Optional[bytes] = ..., skipped: _Optional[int] = ..., discontinuity: _Optional[bool] = ...) -> None: ...

class CreateReplayClipRequest(_message.Message):
    __slots__ = ("stream_id", "start_time", "seconds_before_live", "duration_seconds", "title", "end_time")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    SECONDS_BEFORE_LIVE_FIELD_NUMBER: _ClassVar[int]
    DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    start_time: _timestamp_pb2.Timestamp
    seconds_before_live: int
    duration_seconds: int
    title: str
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, stream_id: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., seconds_before_live: _Optional[int] = ..., duration_seconds: _Optional[int] = ..., title: _Optional[str] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateSessionClipRequest(_message.Message):
    __slots__ = ("stream_id", "session_id", "start_time", "end_time", "title")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    session_id: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    title: str
    def __init__(self, stream_id: _Optional[str] = ..., session_id: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., title: _Optional[str] = ...) -> None: ...

class ReplayClip(_message.Message):
    __slots__ = ("id", "stream_id", "start_time", "duration", "size_bytes", "create_time", "title", "start_pts")
    ID_FIELD_NUMBER: _ClassVar[int]
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    START_PTS_FIELD_NUMBER: _ClassVar[int]
    id: str
    stream_id: str
    start_time: _timestamp_pb2.Timestamp
    duration: _duration_pb2.Duration
    size_bytes: int
    create_time: _timestamp_pb2.Timestamp
    title: str
    start_pts: _duration_pb2.Duration
    def __init__(self, id: _Optional[str] = ..., stream_id: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., size_bytes: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., title: _Optional[str] = ..., start_pts: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class GetReplayClipRequest(_message.Message):
    __slots__ = ("clip_id",)
    CLIP_ID_FIELD_NUMBER: _ClassVar[int]
    clip_id: str
    def __init__(self, clip_id: _Optional[str] = ...) -> None: ...

class ListReplayClipsRequest(_message.Message):
    __slots__ = ("stream_id", "page_size", "page_token")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    page_size: int
    page_token: str
    def __init__(self, stream_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListReplayClipsResponse(_message.Message):
    __slots__ = ("clips", "next_page_token")
    CLIPS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    clips: _containers.RepeatedCompositeFieldContainer[ReplayClip]
    next_page_token: str
    def __init__(self, clips: _Optional[_Iterable[_Union[ReplayClip, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DownloadReplayClipRequest(_message.Message):
    __slots__ = ("clip_id", "offset")
    CLIP_ID_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    clip_id: str
    offset: int
    def __init__(self, clip_id: _Optional[str] = ..., offset: _Optional[int] = ...) -> None: ...

class DeleteReplayClipRequest(_message.Message):
    __slots__ = ("clip_id",)
    CLIP_ID_FIELD_NUMBER: _ClassVar[int]
    clip_id: str
    def __init__(self, clip_id: _Optional[str] = ...) -> None: ...

class DeleteReplayClipResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DataChunk(_message.Message):
    __slots__ = ("offset", "data")
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    offset: int
    data: bytes
    def __init__(self, offset: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class Recording(_message.Message):
    __slots__ = ("id", "stream_id", "start_time", "end_time", "duration", "size_bytes", "state", "format", "start_pts", "session_id")
    ID_FIELD_NUMBER: _ClassVar[int]
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    START_PTS_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    stream_id: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    duration: _duration_pb2.Duration
    size_bytes: int
    state: RecordingState
    format: str
    start_pts: _duration_pb2.Duration
    session_id: str
    def __init__(self, id: _Optional[str] = ..., stream_id: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., size_bytes: _Optional[int] = ..., state: _Optional[_Union[RecordingState, str]] = ..., format: _Optional[str] = ..., start_pts: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., session_id: _Optional[str] = ...) -> None: ...

class ListRecordingsRequest(_message.Message):
    __slots__ = ("stream_id", "page_size", "page_token")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    page_size: int
    page_token: str
    def __init__(self, stream_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListRecordingsResponse(_message.Message):
    __slots__ = ("recordings", "next_page_token")
    RECORDINGS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    recordings: _containers.RepeatedCompositeFieldContainer[Recording]
    next_page_token: str
    def __init__(self, recordings: _Optional[_Iterable[_Union[Recording, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetRecordingRequest(_message.Message):
    __slots__ = ("recording_id",)
    RECORDING_ID_FIELD_NUMBER: _ClassVar[int]
    recording_id: str
    def __init__(self, recording_id: _Optional[str] = ...) -> None: ...

class DownloadRecordingRequest(_message.Message):
    __slots__ = ("recording_id", "offset")
    RECORDING_ID_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    recording_id: str
    offset: int
    def __init__(self, recording_id: _Optional[str] = ..., offset: _Optional[int] = ...) -> None: ...

class DeleteRecordingRequest(_message.Message):
    __slots__ = ("recording_id",)
    RECORDING_ID_FIELD_NUMBER: _ClassVar[int]
    recording_id: str
    def __init__(self, recording_id: _Optional[str] = ...) -> None: ...

class DeleteRecordingResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SignUrlRequest(_message.Message):
    __slots__ = ("path", "ttl_seconds")
    PATH_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    path: str
    ttl_seconds: int
    def __init__(self, path: _Optional[str] = ..., ttl_seconds: _Optional[int] = ...) -> None: ...

class SignUrlResponse(_message.Message):
    __slots__ = ("url", "expire_time")
    URL_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    url: str
    expire_time: _timestamp_pb2.Timestamp
    def __init__(self, url: _Optional[str] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
