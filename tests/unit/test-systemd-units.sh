#!/bin/sh
# Every unit meson configures from data/systemd/*.service.in passes
# `systemd-analyze verify`, with ExecStart pointed at the binaries of the
# build tree (the installed paths do not exist on a build machine).
set -eu
src=$PICAMRTC_SOURCE_ROOT
build=$PICAMRTC_BUILD_ROOT
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
for in_unit in "$src"/data/systemd/*.service.in; do
  name=$(basename "$in_unit" .in)
  unit=$build/data/systemd/$name
  [ -f "$unit" ] || { echo "$name: not configured in $build"; status=1; continue; }
  sed -e "s#^ExecStart=[^ ]*/picamrtc-gateway #ExecStart=$build/src/gateway/picamrtc-gateway #" \
      -e "s#^ExecStart=[^ ]*/picamrtc #ExecStart=$build/src/picamrtc/picamrtc #" \
      "$unit" > "$work/$name"
  grep -q '^Type=notify' "$work/$name" || { echo "$name: not Type=notify"; status=1; }
  grep -q '^WatchdogSec=' "$work/$name" || { echo "$name: no WatchdogSec"; status=1; }
  if out=$(systemd-analyze verify --man=no "$work/$name" 2>&1) && [ -z "$out" ]; then
    echo "ok: $name"
  else
    echo "systemd-analyze verify $name:"
    echo "$out"
    status=1
  fi
done
exit $status
