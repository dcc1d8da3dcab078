#!/usr/bin/env bash
# The README's demo command: installs what is missing, builds, then runs a
# private mosquitto on loopback, the camera service (the best source here:
# a test pattern on a machine without a camera) and, once it exists, the web
# gateway. On the test pattern each frame carries the latency stamp, and the
# page shows the capture-to-display latency (docs/latency.md); a real camera
# streams without it. The camera sends a test tone as its audio and takes
# control data channels; the page opened with the printed control token
# (?control=T, the gateway's --control-token-file) has a control panel whose
# commands a toy robot (scripts/echo-robot) answers with its position.
# Ctrl-C stops everything.
set -euo pipefail
source "$(dirname "$0")/common.sh"

MQTT_PORT=${PICAMRTC_MQTT_PORT:-18830}
DEVICE=${PICAMRTC_DEVICE:-cam1}

install_missing_packages
build_project

run_dir="$BUILD_DIR/demo"
mkdir -p "$run_dir"
cat > "$run_dir/mosquitto.conf" <<CONF
listener $MQTT_PORT 127.0.0.1
allow_anonymous true
persistence false
CONF
[ "$(id -u)" -eq 0 ] && echo "user root" >> "$run_dir/mosquitto.conf"

pids=()
cleanup() {
  trap - INT TERM EXIT
  log "stopping"
  # The camera service first, so it can say bye and publish offline.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
}
trap cleanup INT TERM EXIT

log "starting mosquitto on 127.0.0.1:$MQTT_PORT"
mosquitto -c "$run_dir/mosquitto.conf" > "$run_dir/mosquitto.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do
  mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -t picamrtc/demo/ping -n \
    2>/dev/null && break
  sleep 0.1
done

ice_args=()
[ -n "${PICAMRTC_ICE_ADDRESS:-}" ] && ice_args=(--ice-address "$PICAMRTC_ICE_ADDRESS")
plugin_path="$BUILD_DIR/plugins/mqttwebrtc${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"
picamrtc="$BUILD_DIR/src/picamrtc/picamrtc"

# The latency stamp is off by default and on in the demo's test pattern: ask
# the service what --source auto picks here (--print-pipeline probes the
# cameras the same way) and, for the test pattern, keep that source so the
# stamp never lands on a camera plugged in meanwhile.
# PICAMRTC_LATENCY_STAMP=1 or 0 forces it on or off.
source_arg=auto
stamp_args=()
case "${PICAMRTC_LATENCY_STAMP:-auto}" in
  1 | on | yes | true) stamp_args=(--latency-stamp) ;;
  0 | off | no | false) ;;
  *)
    picked=$(GST_PLUGIN_PATH="$plugin_path" "$picamrtc" --source auto \
      --print-pipeline 2>/dev/null || true)
    if [ "${picked%% *}" = videotestsrc ]; then
      source_arg='test'
      stamp_args=(--latency-stamp)
    fi
    ;;
esac
if [ "$source_arg" = test ]; then
  log "starting the camera service (device $DEVICE): no camera here, the test pattern with the latency stamp"
elif [ ${#stamp_args[@]} -gt 0 ]; then
  log "starting the camera service (device $DEVICE, --source $source_arg, with the latency stamp)"
else
  log "starting the camera service (device $DEVICE, --source $source_arg)"
fi
# Recordings go to build/demo/recordings, when started from the page
# (docs/recording.md): the demo keeps at most 200 MB of them.
# A test tone as the audio, and control data channels accepted (only the
# gateway's control token gets one through, see below).
GST_PLUGIN_PATH="$plugin_path" "$picamrtc" --source "$source_arg" "${stamp_args[@]}" \
  --audio test --control \
  --broker "mqtt://127.0.0.1:$MQTT_PORT" --device "$DEVICE" "${ice_args[@]}" \
  --record-dir "$run_dir/recordings" --record-max-mb 200 &
pids+=($!)

# The toy robot behind the control panel: it answers each viewer's command
# (P/D/control/from-viewer) with its position (P/D/control/to-viewers).
log "starting the echo robot (answers the control panel of $DEVICE)"
python3 "$PICAMRTC_ROOT/scripts/echo-robot" --broker "127.0.0.1:$MQTT_PORT" \
  --device "$DEVICE" &
pids+=($!)

gateway="$BUILD_DIR/src/gateway/picamrtc-gateway"
if [ -x "$gateway" ]; then
  port=${PICAMRTC_HTTP_PORT:-8080}
  # A new control token each run: whoever has it drives the robot.
  (umask 077 && openssl rand -hex 16 > "$run_dir/control-token")
  control_token=$(cat "$run_dir/control-token")
  "$gateway" --broker "mqtt://127.0.0.1:$MQTT_PORT" --listen "127.0.0.1:$port" \
    --www "$PICAMRTC_ROOT/data/www" --device "$DEVICE" \
    --control-token-file "$run_dir/control-token" &
  pids+=($!)
  log "open http://127.0.0.1:$port/?control=$control_token to watch $DEVICE"
  log "  (with its sound: unmute it on the page; and the control panel: arrow keys"
  log "  or the buttons drive the echo robot, its position shows as telemetry)"
  log "http://127.0.0.1:$port/ watches without the control panel"
else
  log "camera $DEVICE is serving over mqtt://127.0.0.1:$MQTT_PORT; watch it with:"
  log "  $BUILD_DIR/tests/integration/pcr-test-viewer --broker mqtt://127.0.0.1:$MQTT_PORT --device $DEVICE --frames 300"
  log "(the web gateway and browser client are not built yet)"
fi
log "Ctrl-C stops everything"
wait -n "${pids[@]}" || true
