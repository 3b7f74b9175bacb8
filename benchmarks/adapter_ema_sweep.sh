#!/bin/bash
# Moving-average sweep: 6 configs in parallel on one GPU, each killed at LIMIT seconds.
# Run on the GPU machine from the checkout, after `listener train adapter --export-bundle .gpu/bundle.safetensors`;
# OUT names the folder for logs and adapters (the device tool sets it).
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
LIMIT=${LIMIT:-470}
python3 -c "import torch, transformers, peft; print('torch', torch.__version__, 'transformers', transformers.__version__, 'peft', peft.__version__, 'cuda', torch.cuda.is_available())"
run() {
  name=$1; shift
  mkdir -p "$OUT/$name"
  timeout "$LIMIT" python3 -m listener.nlp.adapter --bundle ${BUNDLE:-.gpu/bundle.safetensors} --output "$OUT/$name" \
    --device cuda --epochs 7 "$@" > "$OUT/$name/log.txt" 2>&1
  echo "$name exit $? args: $*" >> "$OUT/summary.txt"
}
start=$(date +%s)
run E1 --ema 0.999 &
run E2 --ema 0.999 --seed 1 &
run E3 --ema 0.999 --label-smoothing 0.1 &
run E4 --ema 0.999 --lr 1e-3 &
run E5 --ema 0.998 --lr 1e-3 --label-smoothing 0.1 &
run E6 --ema 0.999 --rank 32 --alpha 64 &
sleep 90; nvidia-smi 2>/dev/null | tail -10
wait
echo "all done in $(( $(date +%s) - start )) s" >> "$OUT/summary.txt"
for name in E1 E2 E3 E4 E5 E6; do
  { echo "== $name"; grep -E "^epoch [0-9]+:|best|Error|error" "$OUT/$name/log.txt"; grep "steps/s" "$OUT/$name/log.txt" | tail -1; } >> "$OUT/summary.txt"
  tar -C "$OUT" -cf "$OUT/$name.tar" "$name" && rm -rf "${OUT:?}/$name"
done
cat "$OUT/summary.txt"
