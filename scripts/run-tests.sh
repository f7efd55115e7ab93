#!/usr/bin/env bash
# Runs the compiled node:test files of a tier: unit | privileged | e2e | all.
#
# Each file runs in its own `node --test` under a per-file bound (TEST_FILE_TIMEOUT_S, default 600 s; the slowest
# files take ~1-2 min, the whole suite ~6 min), so one hung file is killed and named while the rest still run, and
# a hang cannot eat CI's budget. The bound is enforced from outside (coreutils timeout, which signals the file's
# whole process group) rather than by node:test's --test-timeout alone: a hang can be native (a spin inside an addon
# blocks the event loop) and a killed file's own children (agents, BIRD, etcd) must die with it. Ends with one
# summary over all files; exits non-zero when any test failed or any file failed, timed out or crashed.
set -euo pipefail
cd "$(dirname "$0")/.."
tier=${1:-all}
case "$tier" in
  all) dirs=(dist/test/unit dist/test/privileged dist/test/e2e) ;;
  unit|privileged|e2e) dirs=("dist/test/$tier") ;;
  *) echo "usage: $0 unit|privileged|e2e|all" >&2; exit 2 ;;
esac
bound=${TEST_FILE_TIMEOUT_S:-600}
if ! [[ "$bound" =~ ^[0-9]+$ ]] || ((bound < 10)); then
  echo "TEST_FILE_TIMEOUT_S: must be a whole number of seconds >= 10, got '$bound'" >&2
  exit 2
fi
files=()
for d in "${dirs[@]}"; do
  [ -d "$d" ] && while IFS= read -r f; do files+=("$f"); done < <(find "$d" -name '*.test.js' | sort)
done
if ((${#files[@]} == 0)); then echo "no test files for tier $tier" >&2; exit 1; fi

tap_dir=$(mktemp -d "${TMPDIR:-/tmp}/ot-run-tests.XXXXXX")
trap 'rm -rf "$tap_dir"' EXIT
declare -A total=([tests]=0 [pass]=0 [fail]=0 [cancelled]=0 [skipped]=0 [todo]=0)
failed_files=()
timed_out=()
start_all=$SECONDS
# Privileged tests share the kernel; files run one at a time so their namespaces never race.
for f in "${files[@]}"; do
  tap="$tap_dir/$(basename "$f").tap"
  start=$SECONDS
  rc=0
  # timeout (not --foreground) signals the file's whole process group: node --test, the file's own process and
  # whatever it spawned in that group. TERM first, KILL 20 s later for a process that ignores TERM.
  timeout -k 20 -s TERM "$bound" node --test --test-concurrency=1 \
    --test-reporter=spec --test-reporter-destination=stdout \
    --test-reporter=tap --test-reporter-destination="$tap" "$f" || rc=$?
  took=$((SECONDS - start))
  if ((rc == 124 || rc == 137)); then
    timed_out+=("$f")
    msg="TIMEOUT: $f did not finish within ${bound} s (TEST_FILE_TIMEOUT_S) and was killed; the next files still run."
    msg+=" Its after() hooks did not run: namespaces or processes it made may be left behind."
    echo "$msg"
    echo "$msg" >&2
  elif ((rc != 0)); then
    failed_files+=("$f (exit $rc, ${took} s)")
  fi
  echo "# file $f: exit $rc, ${took} s"
  for k in "${!total[@]}"; do
    n=$(sed -n "s/^# $k \([0-9]\+\)$/\1/p" "$tap" 2>/dev/null | tail -1)
    total[$k]=$((total[$k] + ${n:-0}))
  done
done

echo
echo "== run-tests $tier: ${#files[@]} files in $((SECONDS - start_all)) s (per-file bound ${bound} s)"
for k in tests pass fail cancelled skipped todo; do echo "# $k ${total[$k]}"; done
for f in "${failed_files[@]}"; do echo "FAILED: $f"; done
for f in "${timed_out[@]}"; do echo "TIMED OUT: $f (killed after ${bound} s)"; done
if ((${#failed_files[@]} + ${#timed_out[@]} > 0 || total[fail] > 0)); then
  echo "== FAIL: ${#failed_files[@]} file(s) failed, ${#timed_out[@]} timed out, ${total[fail]} test(s) failed"
  exit 1
fi
echo "== OK"
