#!/usr/bin/env bash
# The README's demo command: installs what is missing, builds, then runs a
# private mosquitto on loopback, the camera service (the best source here:
# a test pattern on a machine without a camera) and, once it exists, the web
# gateway. Ctrl-C stops everything.
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
log "starting the camera service (device $DEVICE, --source auto)"
GST_PLUGIN_PATH="$BUILD_DIR/plugins/mqttwebrtc${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}" \
  "$BUILD_DIR/src/picamrtc/picamrtc" --source auto \
  --broker "mqtt://127.0.0.1:$MQTT_PORT" --device "$DEVICE" "${ice_args[@]}" &
pids+=($!)

gateway="$BUILD_DIR/src/gateway/picamrtc-gateway"
if [ -x "$gateway" ]; then
  port=${PICAMRTC_HTTP_PORT:-8080}
  "$gateway" --broker "mqtt://127.0.0.1:$MQTT_PORT" --listen "127.0.0.1:$port" \
    --www "$PICAMRTC_ROOT/data/www" --device "$DEVICE" &
  pids+=($!)
  log "open http://127.0.0.1:$port/ to watch $DEVICE"
else
  log "camera $DEVICE is serving over mqtt://127.0.0.1:$MQTT_PORT; watch it with:"
  log "  $BUILD_DIR/tests/integration/pcr-test-viewer --broker mqtt://127.0.0.1:$MQTT_PORT --device $DEVICE --frames 300"
  log "(the web gateway and browser client are not built yet)"
fi
log "Ctrl-C stops everything"
wait -n "${pids[@]}" || true
