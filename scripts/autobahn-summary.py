"""Summarise Autobahn report folders (index.json) as Markdown; exit 1 on failures.

usage: autobahn-summary.py OUTPUT.md MODE SHAPE=DIR[,DIR...]...
One section per compression shape, its cases gathered from its report folders. A case
passes when its behavior is OK, NON-STRICT or INFORMATIONAL and its close behaviour is OK
or INFORMATIONAL; the compression cases (12.*, 13.*) must have negotiated
permessage-deflate (UNIMPLEMENTED fails).
"""
import collections
import json
import pathlib
import sys

output, mode, runs = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3:]


def key(case_id):
    return [int(p) for p in case_id.split(".")]


good = {"OK", "NON-STRICT", "INFORMATIONAL"}
lines = [
    "# Autobahn TestSuite conformance",
    "",
    "The Autobahn fuzzing-client cases run through asyncgate (APIs deployed with an API",
    "key) by `scripts/autobahn` with the `kosoku` runner, once per compression shape:",
    "`auto` (no policy reads payloads, so permessage-deflate passes through between the",
    "client and the backend) and `terminate` (the gateway negotiates with each side and",
    "inflates and deflates every compressed message). Cases 1.* to 10.* run in front of",
    "`asyncgate echo-backend`; the compression cases 12.* and 13.* in front of an echo",
    "backend that speaks permessage-deflate (Python `websockets`). Regenerate with",
    "`scripts/autobahn` (all cases) — CI runs `--quick`, which leaves out 9.*",
    "(performance) and runs 40 of the compression cases (messages up to 4 KiB, and every",
    "offer of 13.*).",
    "",
    f"Mode: {mode}.",
]
failed = False
for run in runs:
    shape, dirs = run.split("=", 1)
    cases = {}
    for d in dirs.split(","):
        index = json.loads((pathlib.Path(d) / "index.json").read_text())
        for agent_cases in index.values():
            cases.update(agent_cases)
    by_behavior = collections.Counter()
    bad = []
    for case_id in sorted(cases, key=key):
        c = cases[case_id]
        behavior, close = c.get("behavior"), c.get("behaviorClose")
        by_behavior[behavior] += 1
        if behavior not in good or close not in ("OK", "INFORMATIONAL"):
            bad.append((case_id, behavior, close))
    lines += [
        "",
        f"## Compression {shape}",
        "",
        f"Cases: {len(cases)}.",
        "",
        "| behavior | cases |",
        "|---|---|",
    ]
    lines += [f"| {b} | {n} |" for b, n in sorted(by_behavior.items())]
    lines += [""]
    if bad:
        failed = True
        lines += ["Cases that did not pass:", "", "| case | behavior | close |", "|---|---|---|"]
        lines += [f"| {c} | {b} | {cl} |" for c, b, cl in bad]
    else:
        lines += ["Every case passed with a clean closing handshake."]
output.write_text("\n".join(lines) + "\n")
print("\n".join(lines))
sys.exit(1 if failed else 0)
