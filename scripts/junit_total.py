"""Add up the JUnit XML reports of every test cell and print one closing line."""

import sys
import xml.etree.ElementTree as ET

totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
for path in sys.argv[1:]:
    for suite in ET.parse(path).getroot().iter("testsuite"):
        for key in totals:
            totals[key] += int(suite.get(key, 0))
cells = len(sys.argv) - 1
failed = totals["failures"] + totals["errors"]
passed = totals["tests"] - failed - totals["skipped"]
print(f"\n{cells} cells, {totals['skipped']} skipped")
print(f"total: {passed} passed, {failed} failed")
sys.exit(1 if failed or not passed or cells == 0 else 0)
