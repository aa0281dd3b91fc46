#!/usr/bin/env bash
# CPU of keyframe-only thumbnails versus decoding every frame, on the same
# 60 s 1080p30 H.264 (4 Mbit/s, GOP 2 s) + AAC input.
#
# liveproc pulls the file (file:// source: as fast as it can be parsed)
# once without processing and once with a thumbnail every 10 s; the
# difference in the server's CPU time is what thumbnails cost. The
# reference decodes every frame with GStreamer (avdec_h264), the way a
# thumbnailer that decodes the stream would.
#
# Needs: a release build (make build), ffmpeg, grpcurl, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
work=bench/work
mkdir -p "$work"
media="$work/1080p30_4M_gop2_60s.ts"
if [ ! -f "$media" ]; then
  ffmpeg -v error -y -f lavfi -i testsrc2=size=1920x1080:rate=30 \
    -f lavfi -i sine=frequency=440:sample_rate=48000 -t 60 \
    -c:v libx264 -preset veryfast -b:v 4M -maxrate 4M -bufsize 8M \
    -g 60 -keyint_min 60 -sc_threshold 0 -pix_fmt yuv420p \
    -c:a aac -b:a 128k -f mpegts "$media"
fi
media_abs="$(cd "$(dirname "$media")" && pwd)/$(basename "$media")"

data=$(mktemp -d)
admin="lpadmin_bench_$$"
LIVEPROC_ADMIN_KEY=$admin ./target/release/liveproc serve --data-dir "$data" \
  --listen 127.0.0.1:0 --srt-listen 127.0.0.1:0 > "$data/out" 2> "$data/err" &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 100); do grep -q "liveproc ready" "$data/out" && break; sleep 0.1; done
grpc=$(sed -n 's/.*grpc=\([^ ]*\).*/\1/p' "$data/out")

call() { grpcurl -plaintext -H "authorization: Bearer $1" -d "$2" "$grpc" "liveproc.v1.$3"; }
key=$(call "$admin" '{"name":"bench","live_processing":true}' Organizations/CreateOrganization |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["apiKey"])')

cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)

# Runs one pulled stream to its end; prints the server CPU seconds it took.
run_stream() {
  local id=$1 processing=$2 before after state
  before=$(cpu_ticks)
  call "$key" "{\"stream_id\":\"$id\",\"source_uri\":\"file://$media_abs\",\"processing\":$processing}" \
    LiveProcessing/CreateStream > /dev/null
  for _ in $(seq 600); do
    state=$(call "$key" "{\"stream_id\":\"$id\"}" LiveProcessing/GetStream |
      python3 -c 'import json,sys; print(json.load(sys.stdin).get("state",""))')
    [ "$state" = "ENDED" ] && break
    sleep 0.2
  done
  sleep 1 # let the last thumbnail job finish
  after=$(cpu_ticks)
  python3 -c "print(round(($after - $before) / $hz, 3))"
}

parse_only=$(run_stream plain '{}')
with_thumbs=$(run_stream thumbs '{"thumbnail":{"enabled":true,"interval_seconds":10}}')
thumbs=$(call "$key" '{"stream_id":"thumbs"}' LiveProcessing/GetThumbnail |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["sequence"])')

full_decode=$( { /usr/bin/time -f "%U %S" gst-launch-1.0 -q filesrc location="$media" ! tsdemux ! \
  h264parse ! avdec_h264 ! fakesink sync=false > /dev/null; } 2>&1 | tail -1 |
  awk '{print $1 + $2}')

python3 - "$parse_only" "$with_thumbs" "$full_decode" "$thumbs" <<'PY'
import json, sys
parse_only, with_thumbs, full_decode, thumbs = map(float, sys.argv[1:])
thumb_cost = max(with_thumbs - parse_only, 0.0)
result = {
    "input": "60 s 1080p30 H.264 4 Mbit/s GOP 2 s + AAC",
    "thumbnails_made": int(thumbs),
    "cpu_s_demux_parse_only": parse_only,
    "cpu_s_demux_parse_plus_thumbnails_every_10s": with_thumbs,
    "cpu_s_thumbnails_alone": round(thumb_cost, 3),
    "cpu_s_full_decode_every_frame": full_decode,
    "core_percent_per_live_stream_thumbnails": round(100 * with_thumbs / 60, 2),
    "core_percent_per_live_stream_full_decode": round(100 * full_decode / 60, 2),
    "full_decode_over_keyframe_thumbnails": round(full_decode / max(with_thumbs, 1e-3), 1),
}
print(json.dumps(result, indent=2))
PY
