#!/usr/bin/env python3
"""Saves each new thumbnail of a stream to a folder.

    python3 save_thumbnails.py --server 127.0.0.1:50051 --api-key lp_... \
        --stream demo --out ./thumbnails [--count N]
"""

import argparse
import pathlib
import sys

from liveproc_client import Client, LiveprocError, processing_pb

EXTENSIONS = {
    processing_pb.JPEG: "jpg",
    processing_pb.PNG: "png",
    processing_pb.WEBP: "webp",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--server", default="127.0.0.1:50051")
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--stream", required=True)
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("thumbnails"))
    parser.add_argument("--count", type=int, default=0, help="stop after N (0: never)")
    args = parser.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    saved = 0
    with Client(args.server, args.api_key) as client:
        try:
            for thumbnail in client.subscribe_thumbnails(args.stream, send_latest=True):
                ext = EXTENSIONS.get(thumbnail.format, "bin")
                path = args.out / f"{args.stream}-{thumbnail.sequence:06d}.{ext}"
                path.write_bytes(thumbnail.data)
                print(f"{path} {thumbnail.width}x{thumbnail.height}", flush=True)
                saved += 1
                if args.count and saved >= args.count:
                    break
        except LiveprocError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
