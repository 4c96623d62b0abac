#!/usr/bin/env bash
# Runs the whole suite again and again in a clone, the way a user does (`git pull`, `pnpm install
# --frozen-lockfile`, `pnpm test`), to find flakes under load. Usage (copy the script out of the clone
# first: `git pull` may change it while it runs):
#   cp scripts/suite-loop.sh /tmp/ && /tmp/suite-loop.sh CLONE OUT_DIR [FIRST_RUN_NUMBER] [LAST_START_HHMM]
# Per run N it writes OUT_DIR/runN.log (the whole output), OUT_DIR/runN.load (1-minute load average every
# 20 s) and one line in OUT_DIR/runs.txt: commit, start (UTC), load average (max), seconds, exit code,
# the `N passed, M failed` line, each step's seconds. Temp dirs of the run's test clusters go to
# /tmp/suite-runs/<OUT_DIR name>-runN (TMPDIR) and are kept (PAXKV_TEST_KEEP_DIRS=1) until the run passed: a failed run
# keeps every server's log and data. It stops when OUT_DIR/STOP exists, or before starting a run after
# LAST_START_HHMM (UTC, default 2359).
set -u
clone=$1 out=$2 n=${3:-1} last=${4:-2359}
mkdir -p "$out"
cd "$clone" || exit 1
while :; do
  [ -e "$out/STOP" ] && break
  [ "$(date -u +%H%M)" -gt "$last" ] && break
  git pull -q --ff-only || echo "git pull failed" >> "$out/runs.txt"
  commit=$(git log -1 --format=%h)
  log=$out/run$n.log load=$out/run$n.load tmp=/tmp/suite-runs/$(basename "$out")-run$n
  # Writable by every user, like /tmp (a test runs the server as nobody, and tsx keeps its cache in TMPDIR).
  mkdir -p "$tmp" && chmod 1777 "$tmp"
  t0=$(date -u +%s) start=$(date -u +%H:%M:%S)
  echo "run $n commit $commit start $start" > "$log"
  (while :; do echo "$(date -u +%H:%M:%S) $(cut -d' ' -f1 /proc/loadavg)" >> "$load"; sleep 20; done) &
  sampler=$!
  pnpm install --frozen-lockfile >> "$log" 2>&1
  TMPDIR=$tmp PAXKV_TEST_KEEP_DIRS=1 NO_COLOR=1 pnpm test >> "$log" 2>&1
  rc=$?
  kill "$sampler"; wait "$sampler" 2>/dev/null
  secs=$(($(date -u +%s) - t0))
  avg=$(awk '{s+=$2; if ($2>m) m=$2; c++} END {printf "%.1f (max %.1f)", s/c, m}' "$load")
  steps=$(grep -E '^(== (build|tests|package|typecheck|lint)|   \()' "$log" | tr '\n' ' ' | tr -s ' ')
  result=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -1)
  echo "run $n | $commit | $start | load $avg | $secs s | rc $rc | $result | $steps" >> "$out/runs.txt"
  case "$result" in *", 0 failed") rm -rf "$tmp" ;; esac
  n=$((n + 1))
done
echo "loop ended $(date -u +%H:%M:%S)" >> "$out/runs.txt"
