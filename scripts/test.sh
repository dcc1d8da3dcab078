#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, runs every
# test suite, and ends with one line "N passed, M failed".
#
# Three builds: $BUILD_DIR (the normal one, every suite), $BUILD_DIR-asan
# (the unit, element and integration suites under AddressSanitizer,
# UndefinedBehaviorSanitizer and LeakSanitizer, the gateway suite under the
# first two) and $BUILD_DIR-fuzz (clang,
# the libFuzzer targets of tests/fuzz for $PICAMRTC_FUZZ_SECONDS each,
# default 60). PICAMRTC_SANITIZERS=no skips the last two.
set -euo pipefail
source "$(dirname "$0")/common.sh"

install_missing_packages
build_project

status=0
# every meson JSON log this run wrote, for the summary line
logs=()

# run_suites DIR LOGBASE MESON-TEST-ARGS...
run_suites() {
  local dir=$1 base=$2
  shift 2
  rm -f "$dir/meson-logs/$base.json"
  logs+=("$dir/meson-logs/$base.json")
  (cd "$dir" && meson test --print-errorlogs --logbase "$base" "$@") ||
    status=1
}

log "unit and element tests"
run_suites "$BUILD_DIR" quick --no-rebuild --suite unit --suite elements
log "integration tests (real mosquitto and WebRTC peers, one at a time)"
run_suites "$BUILD_DIR" integration --no-rebuild --suite integration \
  --num-processes 1
log "gateway tests (HTTP and WHEP over MQTT to a real camera service)"
run_suites "$BUILD_DIR" gateway --no-rebuild --suite gateway --num-processes 1
log "browser tests (Debian's Chromium through the gateway)"
run_suites "$BUILD_DIR" browser --no-rebuild --suite browser --num-processes 1
log "latency benchmark, 10 s smoke run (the full run: docs/benchmarks.md)"
run_suites "$BUILD_DIR" bench --no-rebuild --suite bench --num-processes 1

# Programs we do not build but that load our ASan-built plugin (the registry
# scanner, gst-launch-1.0) need the ASan runtime first in their library
# list: small wrappers that preload it, found through PATH and
# GST_PLUGIN_SCANNER.
write_asan_wrappers() {
  local dir=$1 runtime scanner
  runtime=$(gcc -print-file-name=libasan.so)
  scanner=$(pkg-config --variable=pluginscannerdir gstreamer-1.0)
  scanner=$scanner/gst-plugin-scanner
  mkdir -p "$dir"
  # Memory errors only: LSan's tracer crashed now and then at the exit of
  # a preloaded gst-launch-1.0 ("Tracer caught signal 11"), and the scanner
  # loads every plugin of the system. Our leaks show in the programs we
  # build (the service, the viewer, the gst-check tests).
  for tool in "$scanner" "$(command -v gst-launch-1.0)" \
    "$(command -v gst-inspect-1.0)"; do
    printf '#!/bin/sh\nASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}%s" %s exec %s "$@"\n' \
      detect_leaks=0 "LD_PRELOAD=$runtime" "$tool" >"$dir/$(basename "$tool")"
  done
  chmod +x "$dir"/*
}

sanitizer_logs=
if [ "${PICAMRTC_SANITIZERS:-yes}" != no ]; then
  asan_dir=$BUILD_DIR-asan
  if [ ! -f "$asan_dir/build.ninja" ]; then
    log "configuring $asan_dir"
    meson setup "$asan_dir" "$PICAMRTC_ROOT" -Db_sanitize=address,undefined \
      -Db_lundef=false >/dev/null
  fi
  log "building with ASan/UBSan"
  ninja -C "$asan_dir" >/dev/null || ninja -C "$asan_dir"
  write_asan_wrappers "$asan_dir/asan-wrappers"
  # a registry written without the wrappers has our plugin blacklisted
  find "$asan_dir/tests" -name 'registry*.bin' -delete
  sanitizer_logs=$asan_dir/sanitizer-logs
  rm -rf "$sanitizer_logs"
  mkdir -p "$sanitizer_logs"
  # Reports go to files, one per process (a service stopped with SIGTERM
  # reports its leaks where no test reads its exit code); the summary below
  # counts them. Slow unwinding: Debian's GLib has no frame pointers, and
  # the suppressions match on the frames below g_malloc.
  (
    export PATH=$asan_dir/asan-wrappers:$PATH
    export GST_PLUGIN_SCANNER=$asan_dir/asan-wrappers/gst-plugin-scanner
    # GLib 2.74's slice allocator keeps freed and leaked GObjects in its
    # magazines, where LSan takes them for reachable
    export G_SLICE=always-malloc
    # handle_abort: a process that aborts (G_DEBUG=fatal-criticals turns a
    # GLib critical into abort()) leaves its stack in the report, so a
    # critical seen once in CI names its caller
    export ASAN_OPTIONS="detect_leaks=1:handle_abort=1:fast_unwind_on_malloc=0:log_path=$sanitizer_logs/asan:log_exe_name=1"
    export LSAN_OPTIONS="suppressions=$PICAMRTC_ROOT/tests/lsan.supp:print_suppressions=0"
    export UBSAN_OPTIONS="print_stacktrace=1:log_path=$sanitizer_logs/ubsan:log_exe_name=1"
    # ASan makes everything about twice as slow, three times with the slow
    # unwinding: longer timeouts, same assertions
    log "unit and element tests under ASan/UBSan/LSan"
    run_suites "$asan_dir" asan-quick --no-rebuild --suite unit \
      --suite elements --timeout-multiplier 3
    # Not here: churn asserts the service's RSS growth, which ASan's
    # quarantine of freed memory makes meaningless (LSan sees the leaks
    # themselves), and three-viewers' 3 s first-frame limit, which three
    # ASan decoders and an ASan encoder on two cores come close to; nor
    # relay-cost, which measures the camera's CPU and its viewers' frame
    # rates with 10 ASan peers beside an ASan camera and Janus on two cores
    # (in CI31 the nine peers of one process got 13-18 frames/s of 30: the
    # machine measured, not the camera; relay-on-demand holds leases and
    # relay-plays the relay's media under ASan).
    mapfile -t cases < <(cd "$asan_dir" &&
      meson test --list --no-rebuild --suite integration 2>/dev/null |
      sed 's|.* / ||' |
      grep -vxF -e integration-churn -e integration-three-viewers \
        -e integration-relay-cost)
    log "integration tests under ASan/UBSan/LSan"
    run_suites "$asan_dir" asan-integration --no-rebuild --num-processes 1 \
      --timeout-multiplier 3 "${cases[@]}"
    # Memory errors only: at exit libsoup 3.2 leaks the address objects of
    # soup_server_get_uris() and the client sockets still open, which LSan
    # reports for every case. The gateway's request handling is leak-checked
    # by the fuzz-request target (tests/fuzz) instead.
    log "gateway tests under ASan/UBSan (no leak checking)"
    ASAN_OPTIONS="$ASAN_OPTIONS:detect_leaks=0" \
      run_suites "$asan_dir" asan-gateway --no-rebuild --suite gateway \
      --num-processes 1 --timeout-multiplier 3
    exit $status
  ) || status=1
  logs+=("$asan_dir/meson-logs/asan-quick.json"
    "$asan_dir/meson-logs/asan-integration.json"
    "$asan_dir/meson-logs/asan-gateway.json")

  fuzz_dir=$BUILD_DIR-fuzz
  if [ ! -f "$fuzz_dir/build.ninja" ]; then
    log "configuring $fuzz_dir"
    CC=clang meson setup "$fuzz_dir" "$PICAMRTC_ROOT" -Dfuzzing=true \
      >/dev/null
  fi
  log "fuzzing, ${PICAMRTC_FUZZ_SECONDS:-60} s per target"
  # meson test builds only what the fuzz tests need
  PICAMRTC_FUZZ_SECONDS=${PICAMRTC_FUZZ_SECONDS:-60} \
    run_suites "$fuzz_dir" fuzz --suite fuzz
fi

# Last, as it installs and purges system packages: the Debian packages
# built, installed, the installed service run with a viewer, purged (root
# only; skipped otherwise)
log "Debian packages (dpkg-buildpackage, lintian, install, run, purge)"
PCR_TEST_PACKAGES=1 run_suites "$BUILD_DIR" packages --no-rebuild \
  --suite packages --num-processes 1

if python3 - "$sanitizer_logs" "${logs[@]}" <<'PY'
import glob, json, os, sys
passed = failed = skipped = 0
for path in sys.argv[2:]:
    try:
        lines = open(path).read().splitlines()
    except OSError:
        continue
    for line in lines:
        r = json.loads(line)["result"]
        if r in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif r == "SKIP":
            skipped += 1
        else:
            failed += 1
# Sanitizer reports of processes no test judged by exit code (a service
# stopped with SIGTERM at the end of an integration case): one more check.
if sys.argv[1]:
    reports = sorted(glob.glob(os.path.join(sys.argv[1], "*san.*")))
    for report in reports:
        print(f"----- sanitizer report {report}")
        with open(report, errors="replace") as f:
            print("".join(f.readlines()[:80]))
    if reports:
        failed += 1
        print(f"{len(reports)} sanitizer reports in {sys.argv[1]}")
    else:
        passed += 1
print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
sys.exit(1 if failed or passed == 0 else 0)
PY
then
  :
else
  status=1
fi
exit $status
