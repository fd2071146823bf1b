#!/usr/bin/env bash
# Reproduce a reference entry of the synthetic board: one `memgym eval` per split, then submit.
#   bash leaderboards/synthetic/reproduce.sh oracle     # agents/scripted_oracle.yaml, no model
#   bash leaderboards/synthetic/reproduce.sh embedded   # agents/memagent.yaml on the embedded model
# The env kwargs are the board's (`memgym leaderboard show synthetic` prints them).
set -euo pipefail
agent=${1:?usage: reproduce.sh oracle|embedded}
out=${OUT:-runs/synthetic-$agent}
common="chunk_tokens=32 memory_tokens=48 memory_overflow=truncate tokenizer=embedded num_keys=3
        num_updates=1 num_distractor_facts=1 filler_sentences=8 combine=false similar_keys=true"
declare -A split=([in_domain]="seed=1001" [ood_longer]="filler_sentences=28 seed=1002"
                  [ood_two_updates]="num_updates=2 seed=1004" [ood_two_keys]="num_keys=4 combine=true seed=1003")
case $agent in
  oracle) run=(--agent agents/scripted_oracle.yaml); model=none; name=memgym-scripted-oracle ;;
  embedded) run=(--agent agents/memagent.yaml --agent-overrides memory_max_new_tokens=48
                 answer_max_new_tokens=16 --backend transformers --model embedded --threads 1)
            model=embedded; name=memgym-embedded-memagent ;;
  *) echo "unknown agent $agent (oracle or embedded)" >&2; exit 2 ;;
esac
for s in in_domain ood_longer ood_two_updates ood_two_keys; do
  # shellcheck disable=SC2086  # the kwargs are meant to split
  memgym eval --env MemAgent-Synthetic-v0 --env-kwargs $common ${split[$s]} "${run[@]}" \
    --episodes 128 --out "$out/$s" --no-progress
done
memgym leaderboard submit "$out" --board leaderboards/synthetic --name "$name" --model "$model" \
  --command "bash leaderboards/synthetic/reproduce.sh $agent" ${SUBMIT_FLAGS:-}
