#!/usr/bin/env bash
# The Debian packages, end to end, on this machine: builds them with
# dpkg-buildpackage from a clean copy of the source tree, runs lintian
# (errors fail), installs them with apt-get, checks what a user gets
# (the files, the units, `gst-inspect-1.0 mqttwebrtcsink` without
# GST_PLUGIN_PATH, the installed /usr/bin/picamrtc streaming the test
# pattern to a viewer: installed.py), then purges them and checks that
# nothing is left. Root only: it installs and removes system packages.
# Runs only with PCR_TEST_PACKAGES=1 (scripts/test.sh sets it, so a plain
# `meson test` never touches the system's packages).
# Exit 77 (skipped) when not root, when a tool is missing, or when this
# machine has picamrtc installed already (the test would replace and purge
# it).
set -euo pipefail

SKIP=77
PACKAGES=(picamrtc picamrtc-gateway gstreamer1.0-picamrtc)
src=${PICAMRTC_SOURCE_ROOT:?PICAMRTC_SOURCE_ROOT is not set}
here=$(cd "$(dirname "$0")" && pwd)

step() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }
fail() { printf 'FAIL packages: %s\n' "$*"; exit 1; }

if [ "${PCR_TEST_PACKAGES:-}" != 1 ]; then
  echo "SKIP: installs and purges Debian packages on this machine; only with PCR_TEST_PACKAGES=1 (scripts/test.sh sets it)"
  exit $SKIP
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "SKIP: installs and purges Debian packages on this machine; run as root"
  exit $SKIP
fi
for tool in dpkg-buildpackage dh lintian apt-get gst-inspect-1.0 \
  systemd-analyze python3; do
  command -v "$tool" >/dev/null ||
    { echo "SKIP: $tool is not installed (scripts/common.sh lists it)"; exit $SKIP; }
done
for pkg in "${PACKAGES[@]}"; do
  if dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null | grep -q '^[a-z][^n]'; then
    echo "SKIP: $pkg is installed on this machine; the test would replace and purge it"
    exit $SKIP
  fi
done
for path in /etc/picamrtc /usr/bin/picamrtc /usr/bin/picamrtc-gateway; do
  if [ -e "$path" ]; then
    echo "SKIP: $path exists (a picamrtc installed without the packages); the test would overwrite and purge it"
    exit $SKIP
  fi
done

work=$(mktemp -d /tmp/pcr-packages-XXXXXX)
installed=no
policy=
passed=no
cleanup() {
  if [ "$installed" = yes ]; then
    step "cleaning up: purging ${PACKAGES[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get purge -y -q "${PACKAGES[@]}" \
      >>"$work/purge.log" 2>&1 || true
  fi
  [ -n "$policy" ] && rm -f "$policy"
  if [ "$passed" = yes ] && [ -z "${PCR_KEEP_LOGS:-}" ]; then
    rm -rf "$work"
  else
    echo "----- logs kept in $work"
  fi
}
trap cleanup EXIT

# --- build --------------------------------------------------------------
# The working tree as git sees it (tracked files and new ones not ignored:
# no build directories), or the whole tree without build* and .git.
tree=$work/picamrtc
mkdir -p "$tree"
if git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
  (cd "$src" && git ls-files -z -co --exclude-standard |
    while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
    tar --null -T - -cf -) | tar -xf - -C "$tree"
else
  tar -C "$src" --exclude='./build*' --exclude=./.git -cf - . |
    tar -xf - -C "$tree"
fi
step "building the packages in $tree (dpkg-buildpackage -b -us -uc)"
t0=$SECONDS
if ! (cd "$tree" && DEB_BUILD_OPTIONS=nocheck \
      dpkg-buildpackage -b -us -uc -J"$(nproc)") >"$work/build.log" 2>&1; then
  tail -40 "$work/build.log"
  fail "dpkg-buildpackage failed (log: $work/build.log)"
fi
debs=()
for pkg in "${PACKAGES[@]}"; do
  deb=$(ls "$work/${pkg}"_*.deb 2>/dev/null | head -1)
  [ -n "$deb" ] || fail "dpkg-buildpackage made no ${pkg}_*.deb"
  debs+=("./$(basename "$deb")")
done
step "built in $((SECONDS - t0)) s: ${debs[*]}"

# --- lintian ---------------------------------------------------------------
step "lintian"
lintian_rc=0
lintian --fail-on error "$work"/picamrtc_*.changes >"$work/lintian.log" 2>&1 ||
  lintian_rc=$?
grep -v '^running with root privileges' "$work/lintian.log" || true
[ $lintian_rc -eq 0 ] || fail "lintian reports errors (exit $lintian_rc)"

# --- install -----------------------------------------------------------------
# Nothing downloaded (the dependencies are scripts/common.sh's packages), no
# service started by the install (a policy-rc.d that refuses, as
# scripts/common.sh does; the units are not enabled or started anyway).
step "installing: apt-get install ${debs[*]}"
if [ ! -e /usr/sbin/policy-rc.d ]; then
  policy=/usr/sbin/policy-rc.d
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod +x "$policy"
fi
# apt-get's --no-download fails on ./file.deb arguments: a dry run first,
# which must install our three packages and nothing else.
extra=$(cd "$work" && apt-get -s install -q --no-install-recommends \
  "${debs[@]}" 2>&1 | sed -n 's/^Inst \([^ ]*\).*/\1/p' |
  grep -vxF -e picamrtc -e picamrtc-gateway -e gstreamer1.0-picamrtc || true)
[ -z "$extra" ] ||
  fail "installing the packages would download $(echo $extra) (missing from scripts/common.sh?)"
installed=yes
if ! (cd "$work" && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
      --no-install-recommends "${debs[@]}") >"$work/install.log" 2>&1; then
  tail -20 "$work/install.log"
  fail "apt-get install of the packages failed"
fi

multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
plugin=/usr/lib/$multiarch/gstreamer-1.0/libgstmqttwebrtc.so
for f in /usr/bin/picamrtc /usr/bin/picamrtc-gateway "$plugin" \
  /lib/systemd/system/picamrtc.service \
  /lib/systemd/system/picamrtc-gateway.service \
  /etc/picamrtc/picamrtc.conf /etc/picamrtc/gateway.conf \
  /usr/share/picamrtc/www/index.html /usr/share/picamrtc/pipelines/pi4.pipeline; do
  [ -e "$f" ] || fail "$f is missing after the install"
done
mode=$(stat -c %a /etc/picamrtc/picamrtc.conf)
[ "$mode" = 600 ] ||
  fail "/etc/picamrtc/picamrtc.conf has mode $mode, not 600 (it holds the MQTT password)"
for unit in picamrtc.service picamrtc-gateway.service; do
  out=$(systemd-analyze verify --man=no "/lib/systemd/system/$unit" 2>&1) &&
    [ -z "$out" ] || fail "systemd-analyze verify $unit: $out"
  exe=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "/lib/systemd/system/$unit")
  [ -x "$exe" ] || fail "$unit runs $exe, which is not installed"
done
state=$(systemctl is-enabled picamrtc.service 2>/dev/null || true)
[ "$state" != enabled ] || fail "picamrtc.service is enabled by the install"
step "installed: binaries, units (verified), configs, web client, plugin $plugin"

# --- the installed programs ---------------------------------------------------
# Only the system plugin path: no GST_PLUGIN_PATH, a registry of our own.
unset GST_PLUGIN_PATH PCR_PLUGIN_DIR PICAMRTC_BUILD_ROOT
export GST_REGISTRY=$work/registry.bin
inspect=$(gst-inspect-1.0 mqttwebrtcsink 2>&1) ||
  fail "gst-inspect-1.0 mqttwebrtcsink without GST_PLUGIN_PATH: $inspect"
# /lib/... on a merged-/usr system: the same file
loaded=$(sed -n 's/^ *Filename *//p' <<<"$inspect")
[ "$(readlink -f "$loaded")" = "$(readlink -f "$plugin")" ] ||
  fail "gst-inspect-1.0 mqttwebrtcsink loaded '$loaded', not $plugin"
step "gst-inspect-1.0 mqttwebrtcsink: $loaded"

/usr/bin/picamrtc --help >/dev/null 2>&1 || fail "/usr/bin/picamrtc --help failed"
/usr/bin/picamrtc-gateway --help >/dev/null 2>&1 ||
  fail "/usr/bin/picamrtc-gateway --help failed"
step "running the installed /usr/bin/picamrtc on the test pattern with a viewer"
PCR_SERVICE=/usr/bin/picamrtc PYTHONPATH=$src/tests \
  python3 "$here/installed.py" installed-service ||
  fail "the installed service did not stream to a viewer"

# --- purge --------------------------------------------------------------------
step "purging: apt-get purge ${PACKAGES[*]}"
DEBIAN_FRONTEND=noninteractive apt-get purge -y -q "${PACKAGES[@]}" \
  >"$work/purge.log" 2>&1 || { tail -20 "$work/purge.log"; fail "apt-get purge failed"; }
installed=no
for pkg in "${PACKAGES[@]}"; do
  st=$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)
  case $st in
    ''|un*|pn*) ;;
    *) fail "dpkg -l still lists $pkg after the purge: $st" ;;
  esac
done
for f in /usr/bin/picamrtc /usr/bin/picamrtc-gateway "$plugin" \
  /lib/systemd/system/picamrtc.service \
  /lib/systemd/system/picamrtc-gateway.service /etc/picamrtc \
  /usr/share/picamrtc /usr/share/doc/picamrtc; do
  [ ! -e "$f" ] || fail "$f is left after the purge"
done
step "purged: no package listed, no file left"
passed=yes
echo "PASS packages: built, lintian clean of errors, installed, the installed service streamed, purged"
