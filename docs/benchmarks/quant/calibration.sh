#!/usr/bin/env bash
# Calibration methods side by side: ModeAQ INT8 with no epochs on the grid (calibration alone)
# and with the default 6, on six pairs of both tasks (needs a release build: target/release/tessera).
set -u
cd "$(dirname "$0")/../../.."
out=${OUT:-calibration-runs}; mkdir -p $out
export TESSERA_PRIVACY_LEDGER=$out/ledger.json
pairs="digits:conv_64d_2L:mlp_64d_2L digits:mlp_64d_2L:transformer_64d_2L digits:lstm_64d_2L:conv_64d_2L toy:transformer_64d_2L:mlp_128d_4L toy:conv_64d_2L:lstm_64d_2L toy:mlp_128d_4L:transformer_128d_4L"
for pair in $pairs; do
  IFS=: read task tx rx <<< "$pair"
  d=onnx-models/$task
  for qat in 0 6; do
    for cal in mse minmax percentile:99.99; do
      name="$task-$tx-$rx-$qat-${cal/:/_}"
      frozen=$([ $qat = 0 ] && echo 0 || echo 2)
      ./target/release/tessera transfer --json --mode aq --calibration $cal --qat-epochs $qat --frozen-epochs $frozen \
        --transmitter $d/$tx.tx.torchscript.onnx --receiver $d/$rx.rx.torchscript.onnx \
        --inputs $d/train_inputs.npy --val-inputs $d/val_inputs.npy --val-labels $d/val_labels.npy \
        --epsilon inf --out $out/$name.tbf --receiver-out $out/$name.onnx > $out/$name.json 2> $out/$name.err
      echo "$name $?"
    done
  done
done
