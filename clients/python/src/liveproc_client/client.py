"""A thin, typed layer over the generated gRPC stubs of liveproc.v1."""

from __future__ import annotations

import dataclasses
from typing import Iterable, Iterator, Optional

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from liveproc.v1 import live_processing_pb2 as pb
from liveproc.v1 import live_processing_pb2_grpc as pb_grpc
from liveproc.v1 import organizations_pb2 as org_pb
from liveproc.v1 import organizations_pb2_grpc as org_grpc
from liveproc.v1 import processing_pb2 as processing_pb


@dataclasses.dataclass(frozen=True)
class QuotaViolation:
    """A quota reached: its subject (`organizations/{id}/quotas/{name}`)
    and its use (`"2 of 2 used"`)."""

    subject: str
    description: str


@dataclasses.dataclass(frozen=True)
class FieldViolation:
    """One invalid field of a request: its path and what is allowed."""

    field: str
    description: str


class LiveprocError(Exception):
    """A failed call: gRPC code, message and google.rpc details."""

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        field_violations: Optional[list] = None,
        reason: Optional[str] = None,
        metadata: Optional[dict] = None,
        quota_violations: Optional[list] = None,
    ):
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.field_violations = field_violations or []
        self.reason = reason
        self.metadata = metadata or {}
        self.quota_violations = quota_violations or []

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError) -> "LiveprocError":
        violations, reason, metadata, quotas = [], None, {}, []
        status = rpc_status.from_call(error)
        if status is not None:
            for detail in status.details:
                if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                    bad = error_details_pb2.BadRequest()
                    detail.Unpack(bad)
                    violations += [
                        FieldViolation(v.field, v.description) for v in bad.field_violations
                    ]
                elif detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                    info = error_details_pb2.ErrorInfo()
                    detail.Unpack(info)
                    reason, metadata = info.reason, dict(info.metadata)
                elif detail.Is(error_details_pb2.QuotaFailure.DESCRIPTOR):
                    failure = error_details_pb2.QuotaFailure()
                    detail.Unpack(failure)
                    quotas += [QuotaViolation(v.subject, v.description) for v in failure.violations]
        return cls(error.code(), error.details() or "", violations, reason, metadata, quotas)


def _unary(method, request, metadata):
    try:
        return method(request, metadata=metadata)
    except grpc.RpcError as error:
        raise LiveprocError.from_rpc_error(error) from None


def _stream(method, request, metadata) -> Iterator:
    try:
        for item in method(request, metadata=metadata):
            yield item
    except grpc.RpcError as error:
        raise LiveprocError.from_rpc_error(error) from None


def _channel(target: str, ca_file: Optional[str]) -> grpc.Channel:
    if ca_file is None:
        return grpc.insecure_channel(target)
    with open(ca_file, "rb") as pem:
        roots = pem.read()
    return grpc.secure_channel(target, grpc.ssl_channel_credentials(root_certificates=roots))


class _Base:
    def __init__(
        self,
        target: str,
        key: str,
        channel: Optional[grpc.Channel] = None,
        ca_file: Optional[str] = None,
    ):
        """`target` is `host:port`; `key` the API (or admin) key.

        With `ca_file` (PEM) the channel is TLS, trusting those
        certificates: a server started with `--tls-cert`. Without it the
        channel is plaintext, unless `channel` is given.
        """
        self._channel = channel or _channel(target, ca_file)
        self._metadata = (("authorization", f"Bearer {key}"),)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class AdminClient(_Base):
    """The operator's client: organizations, packages, API keys."""

    def __init__(
        self,
        target: str,
        admin_key: str,
        channel: Optional[grpc.Channel] = None,
        ca_file: Optional[str] = None,
    ):
        super().__init__(target, admin_key, channel, ca_file)
        self._stub = org_grpc.OrganizationsStub(self._channel)

    def create_organization(self, name: str, live_processing: bool = False) -> org_pb.Organization:
        request = org_pb.CreateOrganizationRequest(name=name, live_processing=live_processing)
        return _unary(self._stub.CreateOrganization, request, self._metadata)

    def get_organization(self, organization_id: str) -> org_pb.Organization:
        request = org_pb.GetOrganizationRequest(id=organization_id)
        return _unary(self._stub.GetOrganization, request, self._metadata)

    def list_organizations(self, page_size: int = 100) -> Iterator[org_pb.Organization]:
        token = ""
        while True:
            request = org_pb.ListOrganizationsRequest(page_size=page_size, page_token=token)
            page = _unary(self._stub.ListOrganizations, request, self._metadata)
            yield from page.organizations
            if not page.next_page_token:
                return
            token = page.next_page_token

    def set_packages(self, organization_id: str, live_processing: bool) -> org_pb.Organization:
        request = org_pb.SetPackagesRequest(
            organization_id=organization_id, live_processing=live_processing
        )
        return _unary(self._stub.SetPackages, request, self._metadata)

    def rotate_api_key(self, organization_id: str) -> org_pb.Organization:
        request = org_pb.RotateApiKeyRequest(organization_id=organization_id)
        return _unary(self._stub.RotateApiKey, request, self._metadata)

    def revoke_signed_urls(self, organization_id: str) -> org_pb.Organization:
        request = org_pb.RevokeSignedUrlsRequest(organization_id=organization_id)
        return _unary(self._stub.RevokeSignedUrls, request, self._metadata)

    def set_quotas(self, organization_id: str, **quotas: int) -> org_pb.Organization:
        """Replaces every quota (`streams`, `live_sessions`, `stored_bytes`,
        `replay_memory_bytes`; one not given, or 0, is no limit)."""
        request = org_pb.SetQuotasRequest(
            organization_id=organization_id, quotas=org_pb.Quotas(**quotas)
        )
        return _unary(self._stub.SetQuotas, request, self._metadata)

    def get_usage(self, organization_id: str) -> org_pb.OrganizationUsage:
        request = org_pb.GetUsageRequest(organization_id=organization_id)
        return _unary(self._stub.GetUsage, request, self._metadata)

    def list_audit_events(
        self, organization_id: str = "", page_size: int = 100
    ) -> Iterator[org_pb.AuditEvent]:
        """The audit log, newest first: every organization's, or one's."""
        yield from _audit_events(self._stub, self._metadata, organization_id, page_size)


def _audit_events(stub, metadata, organization_id: str, page_size: int) -> Iterator:
    token = ""
    while True:
        request = org_pb.ListAuditEventsRequest(
            organization_id=organization_id, page_size=page_size, page_token=token
        )
        page = _unary(stub.ListAuditEvents, request, metadata)
        yield from page.events
        if not page.next_page_token:
            return
        token = page.next_page_token


class Client(_Base):
    """An organization's client: streams, processing, outputs."""

    def __init__(
        self,
        target: str,
        api_key: str,
        channel: Optional[grpc.Channel] = None,
        ca_file: Optional[str] = None,
    ):
        super().__init__(target, api_key, channel, ca_file)
        self._stub = pb_grpc.LiveProcessingStub(self._channel)
        self._organizations = org_grpc.OrganizationsStub(self._channel)

    # ----- streams -----------------------------------------------------------

    def create_stream(
        self,
        stream_id: str = "",
        name: str = "",
        processing: Optional[processing_pb.ProcessingOptions] = None,
        source_uri: str = "",
        srt_encryption: Optional[pb.SrtEncryption] = None,
    ) -> pb.Stream:
        """`srt_encryption`: SRT publishers must then encrypt (an empty
        passphrase is made by the server; key_length 16, 24, 32 or 0)."""
        request = pb.CreateStreamRequest(
            stream_id=stream_id,
            name=name,
            processing=processing,
            source_uri=source_uri,
            srt_encryption=srt_encryption,
        )
        return _unary(self._stub.CreateStream, request, self._metadata)

    def rotate_stream_key(self, stream_id: str) -> pb.Stream:
        """A new publish key; the old one and its live publisher stop."""
        request = pb.RotateStreamKeyRequest(stream_id=stream_id)
        return _unary(self._stub.RotateStreamKey, request, self._metadata)

    # ----- the organization itself -------------------------------------------

    def revoke_signed_urls(self) -> org_pb.Organization:
        request = org_pb.RevokeSignedUrlsRequest()
        return _unary(self._organizations.RevokeSignedUrls, request, self._metadata)

    def get_usage(self) -> org_pb.OrganizationUsage:
        """The organization's quotas and what it uses of each."""
        return _unary(self._organizations.GetUsage, org_pb.GetUsageRequest(), self._metadata)

    def list_audit_events(self, page_size: int = 100) -> Iterator[org_pb.AuditEvent]:
        """The organization's audit log, newest first."""
        yield from _audit_events(self._organizations, self._metadata, "", page_size)

    def get_stream(self, stream_id: str) -> pb.Stream:
        return _unary(self._stub.GetStream, pb.GetStreamRequest(stream_id=stream_id), self._metadata)

    def list_streams(self, page_size: int = 100) -> Iterator[pb.Stream]:
        token = ""
        while True:
            request = pb.ListStreamsRequest(page_size=page_size, page_token=token)
            page = _unary(self._stub.ListStreams, request, self._metadata)
            yield from page.streams
            if not page.next_page_token:
                return
            token = page.next_page_token

    def delete_stream(self, stream_id: str) -> None:
        _unary(self._stub.DeleteStream, pb.DeleteStreamRequest(stream_id=stream_id), self._metadata)

    def update_processing(
        self, stream_id: str, processing: processing_pb.ProcessingOptions
    ) -> pb.Stream:
        request = pb.UpdateProcessingRequest(stream_id=stream_id, processing=processing)
        return _unary(self._stub.UpdateProcessing, request, self._metadata)

    def watch_stream(self, stream_id: str) -> Iterator[pb.StreamEvent]:
        request = pb.WatchStreamRequest(stream_id=stream_id)
        return _stream(self._stub.WatchStream, request, self._metadata)

    def push_media(self, stream_id: str, stream_key: str, chunks: Iterable[bytes]) -> int:
        """Publishes MPEG-TS chunks; returns the bytes the server received."""

        def requests():
            yield pb.PushMediaRequest(stream_id=stream_id, stream_key=stream_key)
            for chunk in chunks:
                yield pb.PushMediaRequest(data=chunk)

        return _unary(self._stub.PushMedia, requests(), self._metadata).bytes_received

    # ----- outputs -----------------------------------------------------------

    def subscribe_thumbnails(self, stream_id: str, send_latest: bool = True) -> Iterator[pb.Thumbnail]:
        request = pb.SubscribeThumbnailsRequest(stream_id=stream_id, send_latest=send_latest)
        return _stream(self._stub.SubscribeThumbnails, request, self._metadata)

    def get_thumbnail(self, stream_id: str) -> pb.Thumbnail:
        request = pb.GetThumbnailRequest(stream_id=stream_id)
        return _unary(self._stub.GetThumbnail, request, self._metadata)

    def subscribe_motion_clips(self, stream_id: str, send_latest: bool = False) -> Iterator[pb.MotionClip]:
        request = pb.SubscribeMotionClipsRequest(stream_id=stream_id, send_latest=send_latest)
        return _stream(self._stub.SubscribeMotionClips, request, self._metadata)

    def subscribe_replay(
        self, stream_id: str, start: Optional[pb.ReplayStart] = None, fmp4: bool = False
    ) -> Iterator[pb.ReplaySegment]:
        request = pb.SubscribeReplayRequest(
            stream_id=stream_id,
            start=start,
            format=pb.FMP4 if fmp4 else pb.MPEG_TS,
        )
        return _stream(self._stub.SubscribeReplay, request, self._metadata)

    def create_replay_clip(
        self, stream_id: str, seconds_before_live: int, duration_seconds: int, title: str = ""
    ) -> pb.ReplayClip:
        request = pb.CreateReplayClipRequest(
            stream_id=stream_id,
            seconds_before_live=seconds_before_live,
            duration_seconds=duration_seconds,
            title=title,
        )
        return _unary(self._stub.CreateReplayClip, request, self._metadata)

    def list_replay_clips(self, stream_id: str) -> Iterator[pb.ReplayClip]:
        token = ""
        while True:
            request = pb.ListReplayClipsRequest(stream_id=stream_id, page_token=token)
            page = _unary(self._stub.ListReplayClips, request, self._metadata)
            yield from page.clips
            if not page.next_page_token:
                return
            token = page.next_page_token

    def download_replay_clip(self, clip_id: str, offset: int = 0) -> bytes:
        request = pb.DownloadReplayClipRequest(clip_id=clip_id, offset=offset)
        return b"".join(c.data for c in _stream(self._stub.DownloadReplayClip, request, self._metadata))

    def list_recordings(self, stream_id: str) -> Iterator[pb.Recording]:
        token = ""
        while True:
            request = pb.ListRecordingsRequest(stream_id=stream_id, page_token=token)
            page = _unary(self._stub.ListRecordings, request, self._metadata)
            yield from page.recordings
            if not page.next_page_token:
                return
            token = page.next_page_token

    def download_recording(self, recording_id: str, offset: int = 0) -> bytes:
        request = pb.DownloadRecordingRequest(recording_id=recording_id, offset=offset)
        return b"".join(c.data for c in _stream(self._stub.DownloadRecording, request, self._metadata))
