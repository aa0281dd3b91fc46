from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ImageFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    IMAGE_FORMAT_UNSPECIFIED: _ClassVar[ImageFormat]
    JPEG: _ClassVar[ImageFormat]
    PNG: _ClassVar[ImageFormat]
    WEBP: _ClassVar[ImageFormat]

class ClipFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CLIP_FORMAT_UNSPECIFIED: _ClassVar[ClipFormat]
    MP4: _ClassVar[ClipFormat]
    MP4_PREVIEW: _ClassVar[ClipFormat]
    GIF: _ClassVar[ClipFormat]
IMAGE_FORMAT_UNSPECIFIED: ImageFormat
JPEG: ImageFormat
PNG: ImageFormat
WEBP: ImageFormat
CLIP_FORMAT_UNSPECIFIED: ClipFormat
MP4: ClipFormat
MP4_PREVIEW: ClipFormat
GIF: ClipFormat

class ProcessingOptions(_message.Message):
    __slots__ = ("thumbnail", "motion_clip", "recording", "replay")
    THUMBNAIL_FIELD_NUMBER: _ClassVar[int]
    MOTION_CLIP_FIELD_NUMBER: _ClassVar[int]
    RECORDING_FIELD_NUMBER: _ClassVar[int]
    REPLAY_FIELD_NUMBER: _ClassVar[int]
    thumbnail: ThumbnailOptions
    motion_clip: MotionClipOptions
    recording: RecordingOptions
    replay: ReplayOptions
    def __init__(self, thumbnail: _Optional[_Union[ThumbnailOptions, _Mapping]] = ..., motion_clip: _Optional[_Union[MotionClipOptions, _Mapping]] = ..., recording: _Optional[_Union[RecordingOptions, _Mapping]] = ..., replay: _Optional[_Union[ReplayOptions, _Mapping]] = ...) -> None: ...

class ThumbnailOptions(_message.Message):
    __slots__ = ("enabled", "interval_seconds", "format", "width", "height")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    interval_seconds: int
    format: ImageFormat
    width: int
    height: int
    def __init__(self, enabled: _Optional[bool] = ..., interval_seconds: _Optional[int] = ..., format: _Optional[_Union[ImageFormat, str]] = ..., width: _Optional[int] = ..., height: _Optional[int] = ...) -> None: ...

class MotionClipOptions(_message.Message):
    __slots__ = ("enabled", "duration_seconds", "interval_seconds", "format", "width")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    duration_seconds: int
    interval_seconds: int
    format: ClipFormat
    width: int
    def __init__(self, enabled: _Optional[bool] = ..., duration_seconds: _Optional[int] = ..., interval_seconds: _Optional[int] = ..., format: _Optional[_Union[ClipFormat, str]] = ..., width: _Optional[int] = ...) -> None: ...

class RecordingOptions(_message.Message):
    __slots__ = ("enabled", "duration_seconds", "entire_stream")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ENTIRE_STREAM_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    duration_seconds: int
    entire_stream: bool
    def __init__(self, enabled: _Optional[bool] = ..., duration_seconds: _Optional[int] = ..., entire_stream: _Optional[bool] = ...) -> None: ...

class ReplayOptions(_message.Message):
    __slots__ = ("enabled", "duration_seconds", "entire_stream")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ENTIRE_STREAM_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    duration_seconds: int
    entire_stream: bool
    def __init__(self, enabled: _Optional[bool] = ..., duration_seconds: _Optional[int] = ..., entire_stream: _Optional[bool] = ...) -> None: ...
