"""The Python client against the real server with real media over SRT."""

import queue
import subprocess

import grpc
import pytest

from conftest import ADMIN_KEY, drain
from liveproc_client import AdminClient, Client, LiveprocError, pb, processing_pb


def thumbnails_every(seconds: int) -> processing_pb.ProcessingOptions:
    return processing_pb.ProcessingOptions(
        thumbnail=processing_pb.ThumbnailOptions(enabled=True, interval_seconds=seconds)
    )


def organization(server, live_processing=True):
    with AdminClient(server.grpc, ADMIN_KEY) as admin:
        return admin.create_organization("python", live_processing=live_processing)


def test_events_and_a_thumbnail_from_real_media(server, media):
    org = organization(server)
    client = Client(server.grpc, org.api_key)
    stream = client.create_stream("cam", "Camera", thumbnails_every(10))
    assert stream.state == pb.IDLE

    events, thumbnails = queue.Queue(), queue.Queue()
    drain(client.watch_stream("cam"), events)
    drain(client.subscribe_thumbnails("cam"), thumbnails)
    url = (f"srt://{server.srt}?streamid=publish:{stream.id}:"
           f"{stream.ingest.stream_key}&mode=caller")
    ffmpeg = subprocess.Popen(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-i", str(media),
         "-c", "copy", "-f", "mpegts", url])
    try:
        states = []
        while pb.LIVE not in states:
            event = events.get(timeout=30)
            assert not isinstance(event, Exception), event
            states.append(event.state)
        thumbnail = thumbnails.get(timeout=30)
        assert not isinstance(thumbnail, Exception), thumbnail
        assert thumbnail.sequence == 1
        assert (thumbnail.width, thumbnail.height) == (640, 360)
        assert thumbnail.format == processing_pb.JPEG
        assert thumbnail.data[:2] == b"\xff\xd8" and len(thumbnail.data) > 5000
        assert ffmpeg.wait(timeout=40) == 0
        while pb.ENDED not in states:
            states.append(events.get(timeout=30).state)
    finally:
        ffmpeg.kill()
    assert client.get_stream("cam").ingest_stats.video_codec == "H264"


def test_out_of_range_option_raises_with_the_field(server):
    client = Client(server.grpc, organization(server).api_key)
    with pytest.raises(LiveprocError) as raised:
        client.create_stream("cam", processing=thumbnails_every(9))
    error = raised.value
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in error.field_violations] == ["processing.thumbnail.interval_seconds"]
    assert "10" in error.field_violations[0].description


def test_package_not_enabled_raises_upgrade_needed(server):
    client = Client(server.grpc, organization(server, live_processing=False).api_key)
    with pytest.raises(LiveprocError) as raised:
        client.create_stream("cam", processing=thumbnails_every(10))
    assert raised.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert raised.value.reason == "UPGRADE_NEEDED"
    assert "Upgrade needed" in raised.value.message
    # Without processing the stream is allowed.
    assert client.create_stream("cam").id == "cam"


def test_wrong_key_and_other_organizations(server):
    with pytest.raises(LiveprocError) as raised:
        list(Client(server.grpc, "lp_wrong").list_streams())
    assert raised.value.code == grpc.StatusCode.UNAUTHENTICATED
    a = Client(server.grpc, organization(server).api_key)
    b = Client(server.grpc, organization(server).api_key)
    a.create_stream("cam")
    with pytest.raises(LiveprocError) as raised:
        b.get_stream("cam")
    assert raised.value.code == grpc.StatusCode.NOT_FOUND
    assert [s.id for s in a.list_streams()] == ["cam"]


def test_quotas_usage_and_the_audit_log(server):
    org = organization(server)
    with AdminClient(server.grpc, ADMIN_KEY) as admin:
        admin.set_quotas(org.id, streams=1)
    client = Client(server.grpc, org.api_key)
    stream = client.create_stream(
        "cam", srt_encryption=pb.SrtEncryption(key_length=32)
    )
    assert "&pbkeylen=32" in stream.ingest.srt_url
    assert len(stream.ingest.srt_encryption.passphrase) == 32
    with pytest.raises(LiveprocError) as raised:
        client.create_stream("cam2")
    error = raised.value
    assert error.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error.reason == "QUOTA_EXCEEDED"
    assert [v.subject for v in error.quota_violations] == [
        f"organizations/{org.id}/quotas/streams"
    ]
    usage = client.get_usage()
    assert (usage.quotas.streams, usage.usage.streams) == (1, 1)
    rotated = client.rotate_stream_key("cam")
    assert rotated.ingest.stream_key != stream.ingest.stream_key
    actions = [e.action for e in client.list_audit_events(page_size=2)]
    assert actions == [
        "stream.key.rotate",
        "stream.create",
        "organization.quotas.set",
        "organization.create",
    ]


def test_a_tls_server_is_reached_with_a_ca_file(tls_server):
    with AdminClient(tls_server.grpc, ADMIN_KEY, ca_file=tls_server.ca_file) as admin:
        org = admin.create_organization("tls", live_processing=True)
    with Client(tls_server.grpc, org.api_key, ca_file=tls_server.ca_file) as client:
        stream = client.create_stream(stream_id="cam")
        assert stream.id == "cam"
        assert [s.id for s in client.list_streams()] == ["cam"]
    # Without the CA the certificate is not trusted, and plaintext gets no answer.
    for channel in (grpc.secure_channel(tls_server.grpc, grpc.ssl_channel_credentials()),
                    grpc.insecure_channel(tls_server.grpc)):
        with AdminClient(tls_server.grpc, ADMIN_KEY, channel=channel) as admin:
            with pytest.raises(LiveprocError) as refused:
                admin.create_organization("untrusted")
            assert refused.value.code == grpc.StatusCode.UNAVAILABLE
