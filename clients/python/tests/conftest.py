"""Starts the real liveproc server for the client tests, and makes real
H.264/AAC MPEG-TS with ffmpeg."""

import os
import pathlib
import queue
import subprocess
import tempfile
import threading

import pytest

REPO = pathlib.Path(__file__).resolve().parents[3]
ADMIN_KEY = "lpadmin_python_client_tests_0123456789"


def server_binary() -> pathlib.Path:
    path = pathlib.Path(os.environ.get("LIVEPROC_BIN", REPO / "target/release/liveproc"))
    if not path.exists():
        raise RuntimeError(f"liveproc binary not found at {path}: run cargo build first")
    return path


class Server:
    def __init__(self, data_dir: pathlib.Path, flags=()):
        env = dict(os.environ, LIVEPROC_ADMIN_KEY=ADMIN_KEY, LIVEPROC_LOG="warn")
        self.log = open(data_dir.parent / "server.log", "w")
        self.process = subprocess.Popen(
            [str(server_binary()), "serve", "--listen", "127.0.0.1:0",
             "--srt-listen", "127.0.0.1:0", "--data-dir", str(data_dir), *flags],
            stdout=subprocess.PIPE, stderr=self.log, env=env, text=True,
        )
        for line in self.process.stdout:
            if line.startswith("liveproc ready:"):
                fields = dict(w.split("=", 1) for w in line.split()[2:])
                self.grpc, self.srt = fields["grpc"], fields["srt"]
                break
        else:
            raise RuntimeError("liveproc exited before it was ready")
        threading.Thread(target=lambda: [None for _ in self.process.stdout], daemon=True).start()

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()


@pytest.fixture
def server():
    with tempfile.TemporaryDirectory() as tmp:
        srv = Server(pathlib.Path(tmp) / "data")
        yield srv
        srv.stop()


@pytest.fixture
def tls_server():
    """A server over TLS, with a CA made for the test (scripts/test-certs.sh);
    its `ca_file` is what clients trust."""
    with tempfile.TemporaryDirectory() as tmp:
        certs = pathlib.Path(tmp) / "certs"
        subprocess.run(["bash", str(REPO / "scripts/test-certs.sh"), str(certs)], check=True)
        srv = Server(pathlib.Path(tmp) / "data",
                     ["--tls-cert", str(certs / "server.crt"), "--tls-key", str(certs / "server.key")])
        srv.ca_file = str(certs / "ca.pem")
        yield srv
        srv.stop()


@pytest.fixture(scope="session")
def media(tmp_path_factory) -> pathlib.Path:
    """12 s of 640x360 H.264 (GOP 1 s) + AAC in MPEG-TS."""
    path = tmp_path_factory.mktemp("media") / "h264_aac_12s.ts"
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
         "-t", "12", "-c:v", "libx264", "-preset", "veryfast", "-g", "30",
         "-keyint_min", "30", "-sc_threshold", "0", "-pix_fmt", "yuv420p",
         "-c:a", "aac", "-f", "mpegts", str(path)],
        check=True,
    )
    return path


def drain(iterator, into: "queue.Queue"):
    """Reads a streaming call in a thread so the test can wait with a timeout."""

    def run():
        try:
            for item in iterator:
                into.put(item)
        except Exception as error:  # the call ending is part of the test
            into.put(error)

    threading.Thread(target=run, daemon=True).start()
