#!/usr/bin/env bash
# Fan-out benchmark: CPU of the picamrtc service with 0 (on-demand, camera
# off), 1 and 4 viewers, at 1280x720 30 fps from the test pattern with
# x264enc. Encode once means 4 viewers cost about what 1 costs.
#
#   bash tests/bench/fanout-cpu.sh [BUILD_DIR] [SECONDS]
#
# Runs in a private network namespace holding only loopback, with its own
# mosquitto; prints a markdown table. CPU is (utime+stime) of the service
# over the window, in % of one core; the viewers are separate processes and
# are not counted (they decode, which the service does not).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
window=${2:-10}

if [ -z "${PCR_IN_NETNS:-}" ]; then
  exec env PCR_IN_NETNS=1 unshare -rn bash -c \
    'ip link set lo up && exec bash "$0" "$@"' "$0" "$build" "$window"
fi

work=$(mktemp -d)
port=18831
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

printf 'listener %s 127.0.0.1\nallow_anonymous true\nuser root\npersistence false\n' \
  "$port" > "$work/mosquitto.conf"
mosquitto -c "$work/mosquitto.conf" > "$work/mosquitto.log" 2>&1 &
pids+=($!)
sleep 0.5

GST_PLUGIN_PATH="$build/plugins/mqttwebrtc" "$build/src/picamrtc/picamrtc" \
  --source test --broker "mqtt://127.0.0.1:$port" --device bench \
  --ice-address 127.0.0.1 --idle-stop-seconds 2 > "$work/service.log" 2>&1 &
svc=$!
pids+=($svc)
sleep 2

hz=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
measure() {   # prints "cpu% rss_mb" over the window
  local t0 t1
  t0=$(cpu_ticks "$svc")
  sleep "$window"
  t1=$(cpu_ticks "$svc")
  awk -v a="$t0" -v b="$t1" -v hz="$hz" -v w="$window" -v rss="$(rss_kb "$svc")" \
    'BEGIN { printf "%.1f %.1f", 100 * (b - a) / hz / w, rss / 1024 }'
}
start_viewers() {
  local i
  for ((i = 0; i < $1; i++)); do
    "$build/tests/integration/pcr-test-viewer" --broker "mqtt://127.0.0.1:$port" \
      --device bench --ice-address 127.0.0.1 --trickle --frames 1 \
      --hold $((window + 20)) --timeout $((window + 40)) > "$work/viewer-$2-$i.log" 2>&1 &
    pids+=($!)
  done
}

read -r idle_cpu idle_rss <<< "$(measure)"

start_viewers 1 one
sleep 4
read -r one_cpu one_rss <<< "$(measure)"

start_viewers 3 four
sleep 4
read -r four_cpu four_rss <<< "$(measure)"

viewers=$(mosquitto_sub -p "$port" -t picamrtc/bench/status -C 1 -W 3 | sed 's/.*"viewers":\([0-9]*\).*/\1/')
ratio=$(awk -v a="$one_cpu" -v b="$four_cpu" 'BEGIN { printf "%.2f", (a > 0) ? b / a : 0 }')

echo "| viewers | service CPU (% of one core) | service RSS (MB) |"
echo "| --- | --- | --- |"
echo "| 0 (on demand, camera off) | $idle_cpu | $idle_rss |"
echo "| 1 | $one_cpu | $one_rss |"
echo "| 4 | $four_cpu | $four_rss |"
echo
echo "CPU with 4 viewers / CPU with 1 viewer: $ratio (viewers connected at the end: $viewers)"
