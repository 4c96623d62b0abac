#!/usr/bin/env bash
# Prepares a built copy of paxkv at a git ref, for `pnpm bench:cluster --baseline <ref>` (the "before"
# figures of the same run): exports the commit's tree with `git archive` (no worktree is registered,
# nothing in this checkout changes), installs its dependencies with its own lockfile and builds it.
# Prints the directory on the last line of stdout; everything else goes to stderr. Reuses a directory
# already prepared for the same commit. Directory: $PAXKV_BASELINE_DIR, default
# ${TMPDIR:-/tmp}/paxkv-baseline-<commit>.
set -euo pipefail
if [ $# -ne 1 ]; then
  echo "usage: $0 <git ref>   (e.g. e4ba261, milestone 1)" >&2
  exit 2
fi
root="$(git rev-parse --show-toplevel)"
if ! sha="$(git -C "$root" rev-parse --verify --quiet "$1^{commit}")"; then
  echo "prepare-baseline: $1 is not a commit of $root (git fetch it first)" >&2
  exit 2
fi
short="${sha:0:12}"
dir="${PAXKV_BASELINE_DIR:-${TMPDIR:-/tmp}/paxkv-baseline-$short}"
if [ ! -f "$dir/.paxkv-baseline-built" ]; then
  rm -rf "$dir"
  mkdir -p "$dir"
  echo "prepare-baseline: exporting $short into $dir" >&2
  git -C "$root" archive "$sha" | tar -x -C "$dir"
  echo "prepare-baseline: pnpm install (its own lockfile)" >&2
  (cd "$dir" && pnpm install --frozen-lockfile --prefer-offline >&2)
  echo "prepare-baseline: building" >&2
  (cd "$dir" && pnpm exec turbo run build --output-logs=errors-only >&2)
  touch "$dir/.paxkv-baseline-built"
fi
echo "$dir"
