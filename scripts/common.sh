# Shared by scripts/test.sh and scripts/demo.sh: install what is missing from
# Debian, then configure and build into build/. Sourced, not run.

PICAMRTC_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$PICAMRTC_ROOT/build}

DEBIAN_PACKAGES="
  gcc pkg-config meson ninja-build python3
  clang libclang-rt-14-dev
  libglib2.0-dev libjson-glib-dev libsoup-3.0-dev libmosquitto-dev
  libssl-dev
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  libgstreamer-plugins-bad1.0-dev
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-base-apps
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-nice
  gstreamer1.0-libav gstreamer1.0-libcamera gstreamer1.0-x
  mosquitto mosquitto-clients coturn nftables
  libsystemd-dev systemd
  iproute2 util-linux procps openssl
  chromium nodejs
  python3-aiortc python3-aiohttp python3-numpy gnuplot-nox
  debhelper dpkg-dev lintian
  prometheus janus
"

log() { printf '==> %s\n' "$*" >&2; }

install_missing_packages() {
  local missing=() pkg
  for pkg in $DEBIAN_PACKAGES; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
      missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${#missing[@]} Debian packages: ${missing[*]}"
  local sudo=
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  # Installing mosquitto and coturn must not start a system broker or TURN
  # server we did not ask for:
  # a policy-rc.d that refuses service starts, for the install only.
  local policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' | $sudo tee $policy >/dev/null
    $sudo chmod +x $policy
  fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
  $sudo env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null ||
    { [ -n "$policy" ] && $sudo rm -f $policy; return 1; }
  [ -n "$policy" ] && $sudo rm -f $policy
  return 0
}

build_project() {
  if [ ! -f "$BUILD_DIR/build.ninja" ]; then
    log "configuring $BUILD_DIR"
    meson setup "$BUILD_DIR" "$PICAMRTC_ROOT" "$@" >/dev/null
  fi
  log "building"
  ninja -C "$BUILD_DIR" >/dev/null || ninja -C "$BUILD_DIR"
}
