"""A webhook receiver for the tests, and an independent check of what it got.

serve PORT LOG [--fail-first N] [--delay SECONDS]
    Answers POSTs on 127.0.0.1:PORT: 500 to the first N, then 204 (after
    DELAY seconds each). Every request is appended to LOG as one JSON line:
    its headers, its body and the status it was answered.

verify LOG SECRET
    Checks every logged request with the `standardwebhooks` package (the
    reference implementation of Standard Webhooks, not liveproc's code) and
    prints, as JSON, the requests answered 2xx: [{"id", "type", "payload"}].
    Exits 1 at the first request whose signature does not verify.
"""

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def serve(port, log_path, fail_first, delay):
    lock = threading.Lock()
    seen = [0]

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            with lock:
                seen[0] += 1
                status = 500 if seen[0] <= fail_first else 204
            time.sleep(delay)
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()
            entry = {
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode("utf-8"),
                "status": status,
            }
            with lock, open(log_path, "a", encoding="utf-8") as log:
                log.write(json.dumps(entry) + "\n")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print("listening", flush=True)
    server.serve_forever()


def verify(log_path, secret):
    from standardwebhooks import Webhook

    hook = Webhook(secret)
    delivered = []
    with open(log_path, encoding="utf-8") as log:
        for line in log:
            entry = json.loads(line)
            headers = entry["headers"]
            try:
                payload = hook.verify(entry["body"], headers)
            except Exception as e:  # noqa: BLE001 - any failure is a bad signature
                print(f"signature of {headers.get('webhook-id')} does not verify: {e}", file=sys.stderr)
                sys.exit(1)
            if 200 <= entry["status"] < 300:
                delivered.append(
                    {"id": headers["webhook-id"], "type": payload["type"], "payload": payload}
                )
    json.dump(delivered, sys.stdout)


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "serve":
        args = sys.argv[2:]
        fail_first = int(args[args.index("--fail-first") + 1]) if "--fail-first" in args else 0
        delay = float(args[args.index("--delay") + 1]) if "--delay" in args else 0.0
        serve(int(args[0]), args[1], fail_first, delay)
    elif command == "verify":
        verify(sys.argv[2], sys.argv[3])
    else:
        sys.exit(f"unknown command {command}")
