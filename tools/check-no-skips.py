"""Fail when a pytest JUnit report has skipped tests (in CI, a missing component is a failure)."""

import sys
import xml.etree.ElementTree as ET

total = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
skipped_names = []
for path in sys.argv[1:]:
    root = ET.parse(path).getroot()
    for suite in root.iter("testsuite"):
        for key in total:
            total[key] += int(suite.get(key, 0))
    for case in root.iter("testcase"):
        if case.find("skipped") is not None:
            skipped_names.append(f"{path}: {case.get('classname')}::{case.get('name')}")

passed = total["tests"] - total["failures"] - total["errors"] - total["skipped"]
print(f"{passed} passed, {total['failures'] + total['errors']} failed, {total['skipped']} skipped")
if skipped_names:
    print("Skipped tests are failures here (install the missing component instead):")
    print("\n".join("  " + n for n in skipped_names))
    sys.exit(1)
if total["failures"] or total["errors"] or total["tests"] == 0:
    sys.exit(1)
