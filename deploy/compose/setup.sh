#!/bin/bash
# One-shot setup of the docker-compose demo, run by the `setup` service (image anpr) with
# ANPR_CONFIG_URL pointing at anpr-config: registers the simulated VMS twice (Detect over HTTP,
# Lost over HTTPS), the analytic settings and the demo camera. Safe to run again: a record that
# exists is updated instead of added. The VMS password comes from ANPR_VMS_PASSWORD (compose
# passes ANPR_DEMO_VMS_PASSWORD), never from a command line.
set -euo pipefail

vms_host=${ANPR_DEMO_VMS_HOST:-vms-sim}
vms_port=${ANPR_DEMO_VMS_PORT:-7001}
camera_url=${ANPR_DEMO_CAMERA_URL:-rtsp://demo-camera:8554/plate}
: "${ANPR_VMS_PASSWORD:?ANPR_VMS_PASSWORD must hold the VMS password}"

echo "setup: waiting for anpr-config at ${ANPR_CONFIG_URL}"
for attempt in $(seq 1 60); do
  anprctl vms list >/dev/null 2>&1 && break
  [ "$attempt" -eq 60 ] && { anprctl vms list; exit 1; }
  sleep 2
done

# vms NAME ARGS...: add the target, or update it (password too) when it exists.
vms() {
  local name=$1; shift
  if anprctl vms show "$name" >/dev/null 2>&1; then
    anprctl vms update "$name" "$@" --password-from-env
  else
    anprctl vms add "$name" "$@"
  fi
}
vms nx-main --host "$vms_host" --port "$vms_port" --login admin --events detect
vms nx-archive --host "$vms_host" --port "$vms_port" --ssl --tls-trust insecure --login admin --events lost

anprctl analytic set --skip-first 1 --min-confidence 0.7 --lost-timeout-ms 1500

# The simulated VMS knows "Gate 1" as IP 192.168.1.21: the bridge finds the VMS camera by that IP.
camera=(--url "$camera_url" --ip 192.168.1.21 --name "Gate 1 entry" --fps 5)
if anprctl camera show gate-1 >/dev/null 2>&1; then
  anprctl camera update gate-1 "${camera[@]}"
else
  anprctl camera add gate-1 "${camera[@]}"
fi

anprctl vms list
anprctl camera list
echo "setup: done; Generic Events arrive in the VMS simulator (http://127.0.0.1:${vms_port}/_fake/bookmarks on the host)"
