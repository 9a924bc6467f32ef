#!/usr/bin/env python3
"""Tabulates alternated runs of scripts/load.py: per scenario, requests/s and server CPU per
request for two setups A and B, and B/A of each, round by round.

    scripts/load-table.py DIR ROUNDS A B

reads DIR/A-<round>.json and DIR/B-<round>.json (written by scripts/load.py --json)."""

import json
import sys

SCENARIOS = ["healthz", "jwks", "token", "cc-refresh", "redeem"]


def main(out, rounds, a, b):
    print(f"{'round':<6} {'setup':<10} " + " ".join(f"{k:>17}" for k in SCENARIOS)
          + f" {'floor ratio':>12}")
    print(f"{'':<17} " + " ".join(f"{'req/s  CPU µs':>17}" for _ in SCENARIOS))
    for r in range(1, rounds + 1):
        ra, rb = (json.load(open(f"{out}/{s}-{r}.json")) for s in (a, b))
        for name, v in ((a, ra), (b, rb)):
            cells = (f"{v['runs'][k]['rps']:>9.0f} {v['runs'][k]['cpu_us']:>7.1f}" for k in SCENARIOS)
            print(f"{r:<6} {name:<10} " + " ".join(cells) + f" {v['floor_ratio']:>12.2f}")
        cells = (f"{rb['runs'][k]['rps'] / ra['runs'][k]['rps']:>9.2f} "
                 f"{rb['runs'][k]['cpu_us'] / ra['runs'][k]['cpu_us']:>7.2f}" for k in SCENARIOS)
        print(f"{r:<6} {b + '/' + a:<10} " + " ".join(cells))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4])
