#!/usr/bin/env bash
# `make test` several times in a row beside busy neighbours, checking after each run that no process it started
# is left behind (issue 19: a hung torchrun rank once outlived pytest by 22 minutes).
#
#   tools/test_under_load.sh [RUNS=3] [BUSY=2]   # BUSY spinning processes load the cores meanwhile
#   TEST_CMD="python -m pytest -q tests/train" tools/test_under_load.sh 1 2   # another command than make test
#
# Prints one line per run (exit code, seconds, load average) and the processes left behind (none expected);
# exits non-zero if a run failed or left anything. The busy processes are killed on every path.
set -uo pipefail
runs="${1:-3}"; busy="${2:-2}"; test_cmd="${TEST_CMD:-make test}"
pids=()
cleanup() { [ "${#pids[@]}" -gt 0 ] && kill "${pids[@]}" 2>/dev/null; }
trap cleanup EXIT INT TERM
for _ in $(seq "$busy"); do python3 -c "while True: pass" & pids+=($!); done
# what the suite may start: browsers, torchrun ranks, pytest workers, spawned pools, meshsim commands
pattern="chrom|torchrun|pytest|multiprocessing|meshsim"
before=$(pgrep -f "$pattern" | sort || true)
status=0
for i in $(seq "$runs"); do
  start=$(date +%s)
  bash -c "$test_cmd" > "test_under_load.$i.log" 2>&1; rc=$?
  sleep 5  # teardown of the last test's processes
  left=$(comm -13 <(echo "$before") <(pgrep -f "$pattern" | sort) | grep -v "^$" || true)
  echo "run $i: rc $rc, $(( $(date +%s) - start )) s, load $(cut -d' ' -f1-3 /proc/loadavg), $(tail -n 1 "test_under_load.$i.log")"
  if [ -n "$left" ]; then echo "  left behind:"; ps -o pid,etimes,args -p "$(tr '\n' ',' <<< "$left" | sed 's/,$//')"; status=1; fi
  [ "$rc" -eq 0 ] || status=1
done
exit "$status"
