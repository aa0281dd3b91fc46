#!/usr/bin/env bash
# Checks the crate's layering where the compiler cannot: media/ and
# container/ are pure bytes and know nothing of GStreamer (caps and
# buffers are made from typed media in src/gst_format.rs only).
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
if grep -rnE '\bgst(reamer)?(_app)?::|use gstreamer' src/media src/container; then
  echo "error: src/media and src/container must not use GStreamer (see src/gst_format.rs)" >&2
  status=1
fi
exit $status
