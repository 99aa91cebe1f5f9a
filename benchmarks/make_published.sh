#!/usr/bin/env bash
# Regenerate compmech/published/published_numbers.json: each experiment over seeds 0..SEEDS-1 (default 5) trained
# together, every command timed (/usr/bin/time -v into runs/published-times/<budget>-<name>.txt). Finished runs are
# reused: a second pass only re-reads them, and SEEDS=5 after SEEDS=3 trains only seeds 3 and 4 (together).
# Usage (from the checkout's root):
#
#     benchmarks/make_published.sh quick  mess3 post_quantum rrxor z1r   # the quick budgets (a tenth of the steps)
#     benchmarks/make_published.sh full   mess3 post_quantum             # the configs' own budgets
#
# COMPMECH (default: compmech) is the command that runs compmech, e.g. "python -m compmech.runs.cli".
set -euo pipefail
budget=${1:?usage: make_published.sh quick|full NAME...}; shift
case $budget in quick) flag=--quick ;; full) flag= ;; *) echo "budget must be quick or full" >&2; exit 2 ;; esac
file=compmech/published/published_numbers.json
mkdir -p runs/published-times
for name in "$@"; do
    /usr/bin/time -v -o "runs/published-times/$budget-$name.txt" \
        ${COMPMECH:-compmech} reproduce $flag --seeds "${SEEDS:-5}" --only "$name" --publish "$file" \
        > "runs/published-times/$budget-$name.log" 2>&1
    grep -E "Elapsed|Maximum resident" "runs/published-times/$budget-$name.txt" | sed "s/^/$budget $name: /"
done
# the tables in docs/reproducibility.md, from the file just written
${COMPMECH:-compmech} check --tables --update docs/reproducibility.md
