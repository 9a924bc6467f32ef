#!/usr/bin/env python3
"""Tabulates alternated runs of scripts/load.sh: rates per scenario for two setups A and B,
B/A per scenario, and token/healthz for each, round by round.

    scripts/load-table.py DIR ROUNDS A B

reads DIR/A-<round>.txt and DIR/B-<round>.txt (the output of scripts/load.sh)."""

import re
import sys

ROWS = {
    "healthz": "GET  /healthz",
    "token": "POST token: access token only",
    "cc-refresh": "POST token: + refresh token (durable)",
    "redeem": "POST token: refresh redemption (durable)",
}


def rates(path):
    text = open(path).read()
    return {
        k: float(re.search(re.escape(label) + r"\s+(\d+) req/s", text).group(1))
        for k, label in ROWS.items()
    }


def main(out, rounds, a, b):
    print(f"{'round':<6} {'setup':<10} " + " ".join(f"{k:>11}" for k in ROWS))
    for r in range(1, rounds + 1):
        ra, rb = rates(f"{out}/{a}-{r}.txt"), rates(f"{out}/{b}-{r}.txt")
        for name, v in ((a, ra), (b, rb)):
            print(f"{r:<6} {name:<10} " + " ".join(f"{v[k]:>11.0f}" for k in ROWS))
        print(f"{r:<6} {b + '/' + a:<10} " + " ".join(f"{rb[k] / ra[k]:>11.2f}" for k in ROWS))
        print(
            f"{r:<6} {'token/hz':<10} {a} {ra['token'] / ra['healthz']:.2f}"
            f"  {b} {rb['token'] / rb['healthz']:.2f}"
        )


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4])
