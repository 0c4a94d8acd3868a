#!/bin/bash
# The demo camera: renders the clip (cars carrying the plates in ANPR_DEMO_PLATES crossing a road,
# 1280x720 H.264 in MPEG-TS; cached in $ANPR_TEST_CLIPS, a volume, so a restart reuses it), then
# serves it looped at rtsp://<this container>:$ANPR_RTSP_PORT$ANPR_RTSP_MOUNT until stopped.
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")
echo "demo-camera: rendering the clip with plates ${ANPR_DEMO_PLATES} (first start only)" >&2
clip=$(anpr-render-clip --plates "${ANPR_DEMO_PLATES}" --out "${ANPR_TEST_CLIPS}")
echo "demo-camera: serving ${clip} at rtsp://${ANPR_RTSP_BIND}:${ANPR_RTSP_PORT}${ANPR_RTSP_MOUNT}" >&2
exec /usr/bin/python3 "$here/serve.py" "$clip" "${ANPR_RTSP_MOUNT}" "${ANPR_RTSP_PORT}"
