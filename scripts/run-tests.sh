#!/usr/bin/env bash
# Runs the compiled node:test files of a tier: unit | privileged | e2e | all.
set -euo pipefail
cd "$(dirname "$0")/.."
tier=${1:-all}
case "$tier" in
  all) dirs=(dist/test/unit dist/test/privileged dist/test/e2e) ;;
  unit|privileged|e2e) dirs=("dist/test/$tier") ;;
  *) echo "usage: $0 unit|privileged|e2e|all" >&2; exit 2 ;;
esac
files=()
for d in "${dirs[@]}"; do
  [ -d "$d" ] && while IFS= read -r f; do files+=("$f"); done < <(find "$d" -name '*.test.js' | sort)
done
if ((${#files[@]} == 0)); then echo "no test files for tier $tier" >&2; exit 1; fi
# Privileged tests share the kernel; files run one at a time so their namespaces never race.
exec node --test --test-concurrency=1 --test-reporter=spec "${files[@]}"
