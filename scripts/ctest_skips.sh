#!/usr/bin/env bash
# Prints each test that ctest's last run in BUILD_DIR reported as skipped, with its output
# (the reasons it printed): ctest's summary names skipped tests but never shows why.
#
#   bash scripts/ctest_skips.sh build
set -euo pipefail
log="${1:?usage: $0 BUILD_DIR}/Testing/Temporary/LastTest.log"
[[ -f "$log" ]] || exit 0
awk '
    / Testing: /          { name = $NF }
    /^Output:/            { capture = 1; out = ""; next }
    /^<end of output>/    { capture = 0; next }
    capture               { out = out "    " $0 "\n"; next }
    /^Test Skipped\./     { printf "skipped: %s\n%s", name, out; skipped++ }
    END                   { if (skipped) printf "%d test(s) skipped, reasons above\n", skipped }
' "$log"
