#!/usr/bin/env bash
# Prints each test that a ctest run reported as skipped, with its output (the reasons it
# printed): ctest's summary names skipped tests but never shows why. Reads the JUnit file
# that ctest wrote with --output-junit.
#
#   ctest --test-dir build --output-junit ctest-junit.xml && bash scripts/ctest_skips.sh build/ctest-junit.xml
set -euo pipefail
junit="${1:?usage: $0 JUNIT_XML}"
[[ -f "$junit" ]] || { echo "ctest_skips.sh: $junit not found" >&2; exit 1; }
python3 - "$junit" <<'PY'
import sys
import xml.etree.ElementTree as ET

skipped = [t for t in ET.parse(sys.argv[1]).getroot().iter("testcase") if t.find("skipped") is not None]
for t in skipped:
    print(f"skipped: {t.get('name')}")
    for line in (t.findtext("system-out") or "").splitlines():
        print(f"    {line}")
if skipped:
    print(f"{len(skipped)} test(s) skipped, reasons above")
PY
