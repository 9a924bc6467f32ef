#!/usr/bin/env bash
# The load test of scripts/load.py on two builds, alternated in one run so the ratios hold on a
# noisy machine (BENCHMARKS.md): this working tree against an earlier revision, for example the
# commit before a change on the hot path.
#
#   scripts/load-vs.sh REV [seconds per run, default 8] [connections, default 64] [rounds, default 2]
#
# Builds REV in a temporary git worktree, into a target directory of its own kept under this
# checkout's (target/load-vs-base: Cargo names a workspace's own crates the same whatever the
# checkout, so the two builds must not share one), copies both release binaries aside, and
# removes the worktree at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
REV="${1:?usage: scripts/load-vs.sh REV [seconds] [connections] [rounds]}"
DURATION="${2:-8}"
CONNS="${3:-64}"
ROUNDS="${4:-2}"
TARGET="${CARGO_TARGET_DIR:-$PWD/target}"

OUT=$(mktemp -d)
TREE=$(mktemp -d)/base
trap 'git worktree remove --force "$TREE" 2>/dev/null || true; rm -rf "$OUT"' EXIT
cargo build --release --quiet
cp "$TARGET/release/tessera" "$OUT/tessera-new"
git worktree add --quiet --detach "$TREE" "$REV"
(cd "$TREE" && CARGO_TARGET_DIR="$TARGET/load-vs-base" cargo build --release --quiet)
cp "$TARGET/load-vs-base/release/tessera" "$OUT/tessera-base"

for round in $(seq 1 "$ROUNDS"); do
  for build in base new; do
    scripts/load.py --bin "$OUT/tessera-$build" --seconds "$DURATION" --conns "$CONNS" \
      --json "$OUT/$build-$round.json" >/dev/null
  done
done
echo "base = $REV, new = working tree"
scripts/load-table.py "$OUT" "$ROUNDS" base new
