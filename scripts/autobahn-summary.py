"""Summarise an Autobahn report folder (index.json) as Markdown; exit 1 on failures.

usage: autobahn-summary.py REPORT_DIR OUTPUT.md MODE
A case passes when its behavior is OK, NON-STRICT or INFORMATIONAL (UNIMPLEMENTED is
accepted for the compression cases 12.* and 13.*, since the gateway strips
permessage-deflate on purpose) and its close behaviour is OK or INFORMATIONAL.
"""
import collections
import json
import pathlib
import sys

report_dir, output, mode = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3]
index = json.loads((report_dir / "index.json").read_text())
cases = {}
for agent_cases in index.values():
    cases.update(agent_cases)


def key(case_id):
    return [int(p) for p in case_id.split(".")]


good = {"OK", "NON-STRICT", "INFORMATIONAL"}
by_behavior = collections.Counter()
bad = []
for case_id in sorted(cases, key=key):
    c = cases[case_id]
    behavior, close = c.get("behavior"), c.get("behaviorClose")
    by_behavior[behavior] += 1
    compression = case_id.split(".")[0] in ("12", "13")
    ok = (behavior in good or (compression and behavior == "UNIMPLEMENTED")) and (
        close in ("OK", "INFORMATIONAL") or (compression and behavior == "UNIMPLEMENTED")
    )
    if not ok:
        bad.append((case_id, behavior, close))

lines = [
    "# Autobahn TestSuite conformance",
    "",
    "The Autobahn fuzzing-client cases run against asyncgate (an API deployed with an API",
    "key, in front of `asyncgate echo-backend`) by `scripts/autobahn` with the `kosoku`",
    "runner. Regenerate with `scripts/autobahn` (all cases) — CI runs `--quick`, which",
    "leaves out 9.* (performance), 12.* and 13.* (compression).",
    "",
    f"Mode: {mode}. Cases: {len(cases)}.",
    "",
    "| behavior | cases |",
    "|---|---|",
]
lines += [f"| {b} | {n} |" for b, n in sorted(by_behavior.items())]
lines += [""]
if bad:
    lines += ["## Cases that did not pass", "", "| case | behavior | close |", "|---|---|---|"]
    lines += [f"| {c} | {b} | {cl} |" for c, b, cl in bad]
else:
    lines += ["Every case passed with a clean closing handshake."]
lines += [
    "",
    "permessage-deflate is stripped on purpose (the gateway does not forward",
    "`Sec-WebSocket-Extensions`), so the compression cases 12.* and 13.* report",
    "UNIMPLEMENTED.",
]
output.write_text("\n".join(lines) + "\n")
print("\n".join(lines))
sys.exit(1 if bad else 0)
