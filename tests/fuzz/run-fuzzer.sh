#!/bin/sh
# Runs one libFuzzer target as a meson test: for $PICAMRTC_FUZZ_SECONDS
# (default 60) seconds, from a fresh copy of its seed corpus in the build
# tree (the source tree is never written), crash inputs kept in the build
# tree. Fails (exit 1, never 77, which meson reads as "skipped") on any
# crash, sanitizer report, leak, per-input timeout or oracle abort.
# usage: run-fuzzer.sh FUZZER WORKDIR DICT MAX_LEN SEED_DIR_OR_GLOB...
set -u
fuzzer=$1 work=$2 dict=$3 max_len=$4
shift 4
seconds=${PICAMRTC_FUZZ_SECONDS:-60}
name=$(basename "$fuzzer")

rm -rf "$work"
mkdir -p "$work/corpus" "$work/artifacts" || exit 1
# globs like .../fixtures/sdp/*.sdp expand here; no splitting on blanks
IFS='
'
for seed in "$@"; do
  [ -d "$seed" ] && seed=$seed/'*'
  for f in $seed; do
    [ -f "$f" ] && cp "$f" "$work/corpus/"
  done
done
unset IFS
echo "$name: $(ls "$work/corpus" | wc -l) seed inputs, $seconds s"

# -error_exitcode/-timeout_exitcode: libFuzzer's own default, 77, would
# make meson report a crash as a skip. The outer timeout only guards
# against a fuzzer that hangs outside an input.
timeout -k 10 $((seconds + 600)) "$fuzzer" \
  -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
  -error_exitcode=1 -timeout_exitcode=1 -max_len="$max_len" \
  -dict="$dict" -artifact_prefix="$work/artifacts/" -print_final_stats=1 \
  "$work/corpus"
status=$?
[ $status -eq 0 ] && exit 0

echo "$name: FAILED (exit $status)"
fuzzer=$(cd "$(dirname "$fuzzer")" && pwd)/$name
for f in "$work"/artifacts/*; do
  [ -f "$f" ] || continue
  echo "reproducer: $f"
  echo "  replay:  $fuzzer $f"
  echo "  keep it as a regression input in tests/fuzz/corpus/$name/"
  # again with the slow unwinder: Debian's GLib has no frame pointers, so
  # the fast one stops a leak's stack at g_malloc
  echo "----- replay of $f" >&2
  ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}fast_unwind_on_malloc=0 \
    "$fuzzer" "$f" >&2
done
exit 1
