#!/usr/bin/env bash
# Overload probe: a release server held to QUOTA % of one core by a CPU
# cgroup, N SRT publishers (ffmpeg, 640x360 H.264 + AAC in a loop, outside
# the cgroup) on streams with all four features, and every 3 s the SRT
# socket's kernel queue and drops (/proc/net/udp) and the number of live
# sessions. Shows whether the server degrades or every session ends
# together when it cannot keep up. Needs root (the cgroup).
#
#   N=16 QUOTA=5 SECS=60 bash bench/overload_probe.sh
#   RENICE=19 ...   also runs the job threads (liveproc-job-*) at that nice
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-16}
QUOTA=${QUOTA:-5}
SECS=${SECS:-60}
ADMIN_KEY=lpadmin_overload_probe_0123456789
PY=target/py/bin/python
work=bench/work/overload
mkdir -p "$work"
rm -rf "$work/data"
media=bench/work/360p30_gop1_10s.ts
if [ ! -f "$media" ]; then
  ffmpeg -v error -y -f lavfi -i testsrc2=size=640x360:rate=30 \
    -f lavfi -i sine=frequency=440:sample_rate=48000 -t 10 \
    -g 30 -keyint_min 30 -sc_threshold 0 -pix_fmt yuv420p \
    -c:v libx264 -preset veryfast -c:a aac -b:a 96k -f mpegts "$media"
fi

LIVEPROC_ADMIN_KEY=$ADMIN_KEY LIVEPROC_LOG=info target/release/liveproc serve \
  --data-dir "$work/data" --listen 127.0.0.1:0 --srt-listen 127.0.0.1:0 \
  --srt-receive-threads 1 > "$work/out" 2> "$work/log" &
server=$!
publishers=()
group=""
cleanup() {
  kill "${publishers[@]}" 2>/dev/null || true
  kill "$server" 2>/dev/null || true
  wait 2>/dev/null || true
  [ -n "$group" ] && rmdir "$group" 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 100); do grep -q "liveproc ready" "$work/out" && break; sleep 0.1; done
grpc=$(sed -n 's/.*grpc=\([^ ]*\).*/\1/p' "$work/out")
srt=$(sed -n 's/.*srt=\([^ ]*\).*/\1/p' "$work/out")

# The server's threads into a CPU cgroup of QUOTA % of one core (v1's
# cpu controller, or v2's cpu.max).
if [ -d /sys/fs/cgroup/cpu ]; then
  group=/sys/fs/cgroup/cpu/liveproc-overload-probe
  mkdir -p "$group"
  echo 100000 > "$group/cpu.cfs_period_us"
  echo $((QUOTA * 1000)) > "$group/cpu.cfs_quota_us"
  for task in /proc/"$server"/task/*; do echo "${task##*/}" > "$group/tasks"; done
else
  group=/sys/fs/cgroup/liveproc-overload-probe
  mkdir -p "$group"
  echo "$((QUOTA * 1000)) 100000" > "$group/cpu.max"
  echo "$server" > "$group/cgroup.procs"
fi
if [ -n "${RENICE:-}" ]; then
  for task in /proc/"$server"/task/*; do
    case "$(cat "$task/comm")" in liveproc-job-*) renice -n "$RENICE" -p "${task##*/}" >/dev/null ;; esac
  done
fi

# An organization and N streams with every feature; their SRT URLs.
PYTHONPATH=clients/python/src "$PY" - "$grpc" "$N" "$ADMIN_KEY" > "$work/streams" <<'PYTHON'
import sys
from liveproc_client import AdminClient, Client, processing_pb as p
grpc, n, admin_key = sys.argv[1], int(sys.argv[2]), sys.argv[3]
org = AdminClient(grpc, admin_key).create_organization("overload", True)
client = Client(grpc, org.api_key)
options = p.ProcessingOptions(
    thumbnail=p.ThumbnailOptions(enabled=True, interval_seconds=10),
    motion_clip=p.MotionClipOptions(enabled=True, duration_seconds=2, interval_seconds=10),
    recording=p.RecordingOptions(enabled=True, duration_seconds=10),
    replay=p.ReplayOptions(enabled=True, duration_seconds=60),
)
print(org.api_key)
for i in range(n):
    print(client.create_stream(f"s{i:03}", processing=options).ingest.srt_url)
PYTHON
key=$(head -1 "$work/streams")
while read -r url; do
  ffmpeg -nostdin -loglevel quiet -re -stream_loop -1 -i "$media" -c copy -f mpegts "$url" &
  publishers+=($!)
done < <(tail -n +2 "$work/streams")

port=$(printf '%04X' "${srt##*:}")
echo "N=$N quota=${QUOTA}% of a core renice=${RENICE:-none}"
for second in $(seq 3 3 "$SECS"); do
  sleep 3
  line=$(grep ":$port " /proc/net/udp | head -1)
  queue=$(awk '{split($5, q, ":"); print q[2]}' <<<"$line")
  drops=$(awk '{print $NF}' <<<"$line")
  live=$(PYTHONPATH=clients/python/src "$PY" -c "
from liveproc_client import Client
print(sum(s.state == 2 for s in Client('$grpc', '$key').list_streams()))")
  echo "t=${second}s socket_queue_bytes=$((16#${queue:-0})) socket_drops=$drops live=$live"
done
echo "server log: $work/log ($(grep -c 'fell behind' "$work/log" || true) 'fell behind' warnings)"
