#!/usr/bin/env bash
# CPU per live stream of each feature, on the same 60 s 1080p30 H.264
# (4 Mbit/s, GOP 2 s) + AAC input, against decoding every frame.
#
# liveproc pulls the file (a file:// source is played at real-time pace,
# like a live stream) once per configuration; the server's CPU time over
# the run is what that stream cost. The reference decodes every frame with
# GStreamer (avdec_h264), the way a thumbnailer that decodes the stream
# would. Also reports recording bytes written versus bytes ingested.
#
# Needs: a release build (make build), ffmpeg, python3 (grpcurl comes from
# the project's venv when it is not on the PATH).
# LIVEPROC_BIN picks another server binary (to compare two builds).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/common.sh
ensure_grpcurl
work=bench/work
media=$(bench_media)
media_abs="$(cd "$(dirname "$media")" && pwd)/$(basename "$media")"

data=$(mktemp -d)
admin="lpadmin_bench_$$"
bin=${LIVEPROC_BIN:-./target/release/liveproc}
# The operator allows pulling the benchmark's own media folder.
LIVEPROC_PULL_ALLOW_FILE_DIRS="$(cd "$work" && pwd)" \
LIVEPROC_ADMIN_KEY=$admin "$bin" serve --data-dir "$data" \
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
with_clips=$(run_stream clips '{"motion_clip":{"enabled":true,"duration_seconds":3,"interval_seconds":10}}')
with_recording=$(run_stream rec '{"recording":{"enabled":true,"entire_stream":true}}')
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }
rss_before_replay=$(rss_kb)
with_replay=$(run_stream replay '{"replay":{"enabled":true,"duration_seconds":120}}')
rss_after_replay=$(rss_kb)
replay_bytes=$(call "$key" '{"stream_id":"replay"}' LiveProcessing/GetStream |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["replayWindow"]["bytes"])')
call "$key" '{"stream_id":"replay","seconds_before_live":60,"duration_seconds":60}' \
  LiveProcessing/CreateReplayClip > /dev/null
clip_ms=$(grep "replay clip created" "$data/err" | tail -1 | sed -n 's/.*took_ms=\([0-9.]*\).*/\1/p')
recorded_bytes=$(find "$data/recordings" -name '*.mp4' -printf '%s\n' | awk '{s += $1} END {print s + 0}')
ingested_bytes=$(stat -c %s "$media")
thumbs=$(call "$key" '{"stream_id":"thumbs"}' LiveProcessing/GetThumbnail |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["sequence"])')

full_decode=$( { /usr/bin/time -f "%U %S" gst-launch-1.0 -q filesrc location="$media" ! tsdemux ! \
  h264parse ! avdec_h264 ! fakesink sync=false > /dev/null; } 2>&1 | tail -1 |
  awk '{print $1 + $2}')

python3 - "$parse_only" "$with_thumbs" "$with_clips" "$with_recording" "$full_decode" "$thumbs" \
  "$recorded_bytes" "$ingested_bytes" "$with_replay" "$rss_before_replay" "$rss_after_replay" \
  "$replay_bytes" "$clip_ms" <<'PY' | tee "${FEATURE_CPU_OUT:-bench/feature_cpu.json}"
import json, sys
(parse_only, with_thumbs, with_clips, with_recording, full_decode, thumbs,
 recorded, ingested, with_replay, rss0, rss1, replay_bytes, clip_ms) = map(float, sys.argv[1:])
rss_growth = (rss1 - rss0) * 1024
pct = lambda cpu: round(100 * cpu / 60, 2)
result = {
    "input": "60 s 1080p30 H.264 4 Mbit/s GOP 2 s + AAC, paced in real time",
    "server_cpu_s": {
        "demux_parse_only": parse_only,
        "thumbnails_every_10s": with_thumbs,
        "motion_clips_3s_every_10s_mp4": with_clips,
        "recording_entire_stream": with_recording,
        "replay_buffer_120s": with_replay,
    },
    "core_percent_per_stream": {
        "demux_parse_only": pct(parse_only),
        "thumbnails_every_10s": pct(with_thumbs),
        "motion_clips_3s_every_10s_mp4": pct(with_clips),
        "recording_entire_stream": pct(with_recording),
        "replay_buffer_120s": pct(with_replay),
        "reference_full_decode_every_frame": pct(full_decode),
    },
    "replay_media_bytes_held": int(replay_bytes),
    "replay_server_rss_growth_bytes": int(rss_growth),
    "replay_rss_growth_over_media_held": round(rss_growth / max(replay_bytes, 1), 3),
    "replay_clip_60s_create_ms": clip_ms,
    "thumbnails_made": int(thumbs),
    "full_decode_over_keyframe_thumbnails": round(full_decode / max(with_thumbs, 1e-3), 1),
    "recording_bytes_written_over_ingested": round(recorded / max(ingested, 1), 3),
}
print(json.dumps(result, indent=2))
PY
