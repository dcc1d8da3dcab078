#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, runs every
# test suite, and ends with one line "N passed, M failed".
set -euo pipefail
source "$(dirname "$0")/common.sh"

install_missing_packages
build_project

cd "$BUILD_DIR"
status=0
log "unit and element tests"
meson test --no-rebuild --print-errorlogs --suite unit --suite elements \
  --logbase quick || status=1
log "integration tests (real mosquitto and WebRTC peers, one at a time)"
meson test --no-rebuild --print-errorlogs --suite integration \
  --num-processes 1 --logbase integration || status=1

if python3 - meson-logs/quick.json meson-logs/integration.json <<'PY'
import json, sys
passed = failed = skipped = 0
for path in sys.argv[1:]:
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
print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
sys.exit(1 if failed or passed == 0 else 0)
PY
then
  :
else
  status=1
fi
exit $status
