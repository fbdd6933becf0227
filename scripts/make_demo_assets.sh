#!/usr/bin/env bash
# Remake every shipped demo file under assets/: the three checkpoints, their results and the
# reproduced ablation table(s). About 70 minutes for Table II on 2 CPU cores (7 rows of about
# 10 minutes); add TABLES="2 3" for Table III as well (3 more rows).
#
#   bash scripts/make_demo_assets.sh            # -> assets/checkpoints, assets/results
#   RUNS=/tmp/ablation bash scripts/make_demo_assets.sh
#
# The rows are trained by `python -m cycletrans ablate` (the demo preset, seed 0, one process);
# finished rows in $RUNS are reused, a killed row resumes. The shipped checkpoints are the rows
# `baseline`, `dmm` (CycleTrans without cycle construction) and `full`, as trained (last epoch:
# the demo preset holds no validation identities out, so nothing is chosen on the test set).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-runs/ablation/demo}
TABLES=${TABLES:-2}

table_flags=()
for t in $TABLES; do table_flags+=(--table "$t"); done
python -m cycletrans ablate --preset demo "${table_flags[@]}" --output "$RUNS" --no-progress

mkdir -p assets/checkpoints assets/results/ablation
for pair in baseline:baseline nocycle:dmm full:full; do
  name=${pair%%:*}
  row=${pair##*:}
  cp "$RUNS/$row/last.safetensors" "assets/checkpoints/$name.safetensors"
  cp "$RUNS/$row/last.json" "assets/checkpoints/$name.json"
  python -m cycletrans evaluate --checkpoint "assets/checkpoints/$name.safetensors" \
    --intra-modality --output "assets/results/$name.json"
done
for t in $TABLES; do
  cp "$RUNS/table$t.csv" "$RUNS/table$t.json" assets/results/ablation/
done
python scripts/training_times.py "$RUNS" > assets/results/training_times.md
python scripts/results_markdown.py > assets/results/README-tables.md
python scripts/chance_level.py > assets/results/chance_level.txt
