#!/usr/bin/env bash
# The GPU figures of the scale-out issue, in one command (about 5 minutes on an H100/H200):
#   1. exact top-100 of 100,000 queries x 1,000,000 items x 512 dims (models.search.topk, fp16 on CUDA);
#   2. ViT-B-32 image embedding (random weights: speed only, fp16 autocast) end to end over 20,000
#      generated 500 x 500 JPEGs with grain (photo-sized files), DataLoader decode on all cores,
#      next to the forward-pass ceiling on already decoded tensors.
# Needs only this repo, torch with CUDA and open_clip_torch (+ ftfy, wcwidth). Where pip cannot
# reach an index, put their wheels in .whl/ (git-ignored) and they are installed to /tmp/site.
# Figures are appended to bench/RESULTS.md; with $OUT set (a device run) the table and the log are
# copied there too.
#
#   bash bench/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1

if compgen -G ".whl/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device: this check needs a GPU')"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
echo "CPUs: $(nproc)"

save() { if [ -n "${OUT:-}" ]; then cp bench/RESULTS.md "$OUT/RESULTS.md"; fi; }
trap save EXIT

"$PY" bench/bench_rank.py --device cuda --queries 100000 --pool 1000000 --dim 512 --k 100 --no-faiss --repeats 3
"$PY" bench/bench_embed.py --model ViT-B-32 --random-weights --device cuda --precision fp16 \
    --n 20000 --image-size 500 --grain 10 --repeats 3 --ceiling-sample 4096
