#!/usr/bin/env python3
"""Keepalive near misses of a recording, from the harness's own record.

    python3 tests/harness/near_misses.py OBS_JSON OUT_JSON

OBS_JSON is a recording's harness_observations.json (the delaying proxy's
HTTP/2 frames and the emulator's freeze/thaw/owner timeline per
environment); OUT_JSON (harness_near_misses.json) gets
{"source", "near_misses": [...], "ambiguous": [...], "excluded": [...],
"environments": [...]}, by h2truth.near_miss_truth (its docstring states
the rule). Never from log lines. Prints the count and margins per
environment.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import h2truth  # noqa: E402


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    obs_path, out_path = sys.argv[1:]
    obs = json.load(open(obs_path))
    doc = h2truth.near_miss_file(obs, "proxy+timeline: " + os.path.basename(obs_path))
    with open(out_path, "w") as f:
        json.dump(doc, f, indent=1)
    for e in doc["environments"]:
        print("%-28s %2d near misses, margins %s%s" % (
            e["name"], e["near_misses"], e["margins_ms"], ", %d ambiguous" % e["ambiguous"] if e["ambiguous"] else ""))


if __name__ == "__main__":
    main()
