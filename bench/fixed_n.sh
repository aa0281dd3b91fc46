#!/usr/bin/env bash
# Server CPU per stream at a fixed number of live streams, liveproc
# against what an expert runs instead, in one run on one machine:
#
#   liveproc             all four features (thumbnail 10 s, motion clip
#                        3 s every 10 s, recording, replay 60 s), over SRT
#   liveproc_rtmp        the same over RTMP (ffmpeg -f flv publishers)
#   ffmpeg_keyframe      one ffmpeg per stream, keyframe-only decoding
#                        (-skip_frame nokey): thumbnail every 10 s + copy
#                        recording (the expert's setup)
#   ffmpeg_full_decode   the same outputs decoding every frame (reference)
#
# The same N publishers (ffmpeg -re -c copy, 1080p30 H.264 4 Mbit/s GOP 2 s
# + AAC, looped) feed each side over SRT. Only the receiving side's CPU is
# counted (utime + stime from /proc over the window, after a warm-up); the
# publishers' CPU is reported apart.
#
# Usage: bench/fixed_n.sh [N] [WINDOW_SECONDS]   (default 8 and 30)
# Output: JSON on stdout and in ${FIXED_N_OUT:-bench/fixed_n.json}.
# LIVEPROC_BIN picks another server binary (to compare two builds);
# LIVEPROC_SERVE_FLAGS adds flags to `liveproc serve` (e.g. the
# PostgreSQL registry and object storage); FIXED_N_SERVER_LOG keeps the
# server's log there; FIXED_N_PERF=file records a perf profile (call
# graphs, 999 Hz) of the SRT server over the window (perf's own cost then
# counts in that row).
# FIXED_N_LIVEPROC_ONLY=1 runs the SRT row alone and prints it.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-8}
window=${2:-30}
warmup=10
. bench/common.sh
ensure_grpcurl
media=$(bench_media)
hz=$(getconf CLK_TCK)
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# CPU ticks (utime + stime) of the given processes, summed.
ticks() { for p in "$@"; do awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0; done |
  awk '{s += $1} END {print s + 0}'; }
rss_kb() { for p in "$@"; do awk '/VmRSS/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0; done |
  awk '{s += $1} END {print s + 0}'; }

# Publishes the media in a loop to each URL (after the format, mpegts or
# flv); prints the publishers' pids.
publish() {
  local format=$1 url
  shift
  for url in "$@"; do
    ffmpeg -nostdin -v error -re -stream_loop -1 -i "$media" -c copy -f "$format" "$url" \
      > /dev/null 2>&1 &
    echo $!
  done
}

# CPU ticks of each thread of process $1, as "name ticks" lines (the
# number of a thread's name dropped: srt-receive-0 counts as srt-receive).
thread_ticks() {
  for t in /proc/"$1"/task/*; do
    echo "$(sed 's/[-0-9]*$//' "$t/comm" 2>/dev/null) $(awk '{print $14 + $15}' "$t/stat" 2>/dev/null || echo 0)"
  done
}

# Measures the receivers ($@) and publishers ($publishers) over the window;
# prints "receiver_percent_per_stream receiver_rss_mib publisher_percent".
measure() {
  sleep "$warmup"
  local r0 p0 r1 p1
  r0=$(ticks "$@"); p0=$(ticks $publishers)
  sleep "$window"
  r1=$(ticks "$@"); p1=$(ticks $publishers)
  python3 -c "
n, w, hz = $n, $window, $hz
print(round(100 * ($r1 - $r0) / hz / w / n, 3), round($(rss_kb "$@") / 1024, 1),
      round(100 * ($p1 - $p0) / hz / w, 1))"
}

# --- liveproc, all four features, over SRT or RTMP ($1) ---------------
# Prints "percent_per_stream rss_mib publisher_percent streams_live".
run_liveproc() {
local protocol=$1
data="$tmp/liveproc-$protocol"
mkdir -p "$data"
admin="lpadmin_fixed_$$"
bin=${LIVEPROC_BIN:-./target/release/liveproc}
# shellcheck disable=SC2086  # the flags are words
LIVEPROC_ADMIN_KEY=$admin "$bin" serve --data-dir "$data" \
  --listen 127.0.0.1:0 --srt-listen 127.0.0.1:0 --rtmp-listen 127.0.0.1:0 \
  ${LIVEPROC_SERVE_FLAGS:-} > "$data/out" 2> "$data/err" &
server=$!
pids+=("$server")
for _ in $(seq 100); do grep -q "liveproc ready" "$data/out" && break; sleep 0.1; done
grpc=$(sed -n 's/.*grpc=\([^ ]*\).*/\1/p' "$data/out")
call() { grpcurl -plaintext -H "authorization: Bearer $1" -d "$2" "$grpc" "liveproc.v1.$3"; }
key=$(call "$admin" '{"name":"bench","live_processing":true}' Organizations/CreateOrganization |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["apiKey"])')
processing='{"thumbnail":{"enabled":true,"interval_seconds":10},
  "motion_clip":{"enabled":true,"duration_seconds":3,"interval_seconds":10},
  "recording":{"enabled":true,"entire_stream":true},
  "replay":{"enabled":true,"duration_seconds":60}}'
urls=()
for i in $(seq "$n"); do
  stream=$(call "$key" "{\"stream_id\":\"s$i\",\"processing\":$processing}" LiveProcessing/CreateStream)
  if [ "$protocol" = rtmp ]; then
    urls+=("$(python3 -c 'import json,sys; print(json.load(sys.stdin)["ingest"]["rtmpUrl"])' <<< "$stream")")
  else
    urls+=("$(python3 -c 'import json,sys; print(json.load(sys.stdin)["ingest"]["srtUrl"])' <<< "$stream")&latency=200000")
  fi
done
local format=mpegts
if [ "$protocol" = rtmp ]; then format=flv; fi
publishers=$(publish "$format" "${urls[@]}" | tr '\n' ' ')
pids+=($publishers)
if [ "$protocol" = srt ]; then
  # Where the server's CPU goes, by thread kind, over the same window.
  (sleep "$warmup"; thread_ticks "$server" > "$tmp/threads-before"; sleep "$window"
   thread_ticks "$server" > "$tmp/threads-after") &
  sampler=$!
fi
if [ -n "${FIXED_N_PERF:-}" ] && [ "$protocol" = srt ]; then
  (sleep "$warmup"; perf record -q -F 999 -g -p "$server" -o "$FIXED_N_PERF" -- sleep "$window" \
    > /dev/null 2>&1) &
fi
read -r cpu rss pub < <(measure "$server")
if [ "$protocol" = srt ]; then wait "$sampler" || true; fi
live=$(for i in $(seq "$n"); do call "$key" "{\"stream_id\":\"s$i\"}" LiveProcessing/GetStream |
  python3 -c 'import json,sys; print(json.load(sys.stdin).get("state",""))'; done | grep -c LIVE || true)
kill $publishers "$server" 2>/dev/null || true
wait $publishers "$server" 2>/dev/null || true
if [ -n "${FIXED_N_SERVER_LOG:-}" ]; then cp "$data/err" "$FIXED_N_SERVER_LOG.$protocol"; fi
echo "$cpu $rss $pub $live"
}
read -r lp_cpu lp_rss lp_pub live < <(run_liveproc srt)
if [ -n "${FIXED_N_LIVEPROC_ONLY:-}" ]; then
  # The SRT row alone (to compare builds quickly): no JSON written.
  echo "liveproc srt: $lp_cpu % of a core per stream, $live live, rss $lp_rss MiB"
  awk 'NR == FNR {b[$1] += $2; next} {a[$1] += $2}
       END {for (k in a) if (a[k] > b[k]) printf "  %s %.3f\n", k, 100 * (a[k] - b[k]) / '"$hz"' / '"$window"' / '"$n"'}' \
    "$tmp/threads-before" "$tmp/threads-after"
  exit 0
fi
read -r rt_cpu rt_rss rt_pub rt_live < <(run_liveproc rtmp)

# --- ffmpeg per stream ------------------------------------------------
# Each listens on its own SRT port and writes a thumbnail every 10 s and a
# copy of the stream, like liveproc's thumbnail and recording.
baseline() {
  local decode=$1 ports=() receivers=() i port dir
  for i in $(seq "$n"); do
    port=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    dir="$tmp/ffmpeg-$decode-$i"
    mkdir -p "$dir"
    # shellcheck disable=SC2086
    ffmpeg -nostdin -v error $decode -i "srt://127.0.0.1:$port?mode=listener&latency=200000" \
      -map 0:v:0 -vf fps=1/10 -q:v 3 -f image2 "$dir/thumb-%05d.jpg" \
      -map 0 -c copy -f mpegts "$dir/recording.ts" > /dev/null 2>&1 &
    receivers+=($!)
    ports+=("$port")
  done
  pids+=("${receivers[@]}")
  sleep 1
  local urls=()
  for port in "${ports[@]}"; do urls+=("srt://127.0.0.1:$port?latency=200000"); done
  publishers=$(publish mpegts "${urls[@]}" | tr '\n' ' ')
  pids+=($publishers)
  measure "${receivers[@]}"
  kill $publishers "${receivers[@]}" 2>/dev/null || true
  wait $publishers "${receivers[@]}" 2>/dev/null || true
}
read -r kf_cpu kf_rss kf_pub < <(baseline "-skip_frame nokey")
read -r fd_cpu fd_rss fd_pub < <(baseline "")

python3 - <<PY | tee "${FIXED_N_OUT:-bench/fixed_n.json}"
import collections, json
lp, rt, kf, fd = $lp_cpu, $rt_cpu, $kf_cpu, $fd_cpu
def ticks(path):
    out = collections.Counter()
    for line in open(path):
        name, _, value = line.rstrip().rpartition(" ")
        out[name] += int(value or 0)
    return out
before, after = ticks("$tmp/threads-before"), ticks("$tmp/threads-after")
threads = {name: round(100 * (after[name] - before[name]) / $hz / $window / $n, 3)
           for name in sorted(after) if after[name] > before[name]}
print(json.dumps({
    "streams": $n,
    "window_seconds": $window,
    "input": "1080p30 H.264 4 Mbit/s GOP 2 s + AAC over SRT (and RTMP for the rtmp row; ffmpeg -re -c copy, looped)",
    "liveproc_streams_live": $live,
    "liveproc_rtmp_streams_live": $rt_live,
    "core_percent_per_stream": {
        "liveproc_all_four_features": lp,
        "liveproc_rtmp_all_four_features": rt,
        "ffmpeg_keyframe_only": kf,
        "ffmpeg_full_decode": fd,
    },
    "liveproc_core_percent_per_stream_by_thread": threads,
    "receiver_rss_mib": {"liveproc": $lp_rss, "liveproc_rtmp": $rt_rss, "ffmpeg_keyframe_only": $kf_rss, "ffmpeg_full_decode": $fd_rss},
    "publishers_core_percent": {"liveproc": $lp_pub, "liveproc_rtmp": $rt_pub, "ffmpeg_keyframe_only": $kf_pub, "ffmpeg_full_decode": $fd_pub},
    "cpu_per_stream_ratio_vs_keyframe_baseline": round(kf / lp, 2) if lp else None,
    "rtmp_vs_srt_cpu_per_stream": round(rt / lp, 2) if lp else None,
}, indent=2))
PY
