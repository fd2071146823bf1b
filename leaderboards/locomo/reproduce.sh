#!/usr/bin/env bash
# Reproduce a reference entry of the LoCoMo board: one `memgym eval` on the test split, then submit.
#   bash leaderboards/locomo/reproduce.sh oracle-embedded   # agents/dialogue_oracle.yaml, embedded model
#   bash leaderboards/locomo/reproduce.sh oracle-smollm2    # the same with SmolLM2-135M-Instruct
#   bash leaderboards/locomo/reproduce.sh rag-embedded      # agents/rag_turns.yaml (BM25), embedded model
# Needs locomo10.json: `memgym data get locomo` (or set $MEMGYM_LOCOMO_DIR to its folder).
set -euo pipefail
agent=${1:?usage: reproduce.sh oracle-embedded|oracle-smollm2|rag-embedded}
data=${MEMGYM_LOCOMO_DIR:-$(dirname "$(memgym data path locomo)")}
out=${OUT:-runs/locomo-$agent}
case $agent in
  oracle-embedded) recipe=agents/dialogue_oracle.yaml; model=embedded ;;
  oracle-smollm2) recipe=agents/dialogue_oracle.yaml; model=smollm2-135m-instruct ;;
  rag-embedded) recipe=agents/rag_turns.yaml; model=embedded ;;
  *) echo "unknown agent $agent" >&2; exit 2 ;;
esac
memgym eval --env MemoryR1-LoCoMo-v0 --env-kwargs "data_path=$data/locomo10.json" split=test \
  --agent "$recipe" --backend transformers --model "$model" --out "$out/test" --no-progress
memgym leaderboard submit "$out" --board leaderboards/locomo --name "memgym-$agent" \
  --model "$model" --command "bash leaderboards/locomo/reproduce.sh $agent" ${SUBMIT_FLAGS:-}
