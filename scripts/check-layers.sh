#!/usr/bin/env bash
# Checks the crate's layering where the compiler cannot: media/ and
# container/ are pure bytes and know nothing of GStreamer (caps and
# buffers are made from typed media in src/gst_format.rs only); the two
# adapters, src/api (gRPC) and src/http, never call each other: what both
# need is in src/service; the layers below the service (ingest, pipeline,
# features, registry, webhooks, media, container) never reach up to it or
# to the adapters and the server.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
if grep -rnE '\bgst(reamer)?(_app)?::|use gstreamer' src/media src/container; then
  echo "error: src/media and src/container must not use GStreamer (see src/gst_format.rs)" >&2
  status=1
fi
if grep -rnE 'crate::api\b' src/http; then
  echo "error: src/http must not use src/api (put what both need in src/service)" >&2
  status=1
fi
if grep -rnE 'crate::http\b' src/api; then
  echo "error: src/api must not use src/http (put what both need in src/service)" >&2
  status=1
fi
if grep -rnE 'crate::(service|api|http|server)\b' src/ingest src/pipeline src/features \
  src/registry src/webhooks src/media src/container; then
  echo "error: the layers below src/service must not use it, the adapters or the server (see src/lib.rs)" >&2
  status=1
fi
exit $status
