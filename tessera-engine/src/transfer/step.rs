//! The gradients of one fine-tuning step, with the batch split into shards that run on the
//! cores side by side. The trainable graph's operations are too small to share among threads
//! one by one, but a whole forward or backward pass over half a batch is not.
//!
//! The loss is the batch's, not a sum of the shards' own: output matching is a sum over rows,
//! so each shard contributes its rows; hub alignment compares every row with every other row
//! of the batch, so it is computed once on the shards' features put together, and its gradient
//! with respect to each shard's features is carried back through that shard's pass (the
//! gradient of `Σ features · ∂hub/∂features`). The gradients equal the whole batch's up to
//! the order floats are added in, and do not depend on how many cores there are.

use candle_core::backprop::GradStore;
use candle_core::{Tensor as GraphTensor, Var};
use ndarray::{Array2, ArrayView2, Axis};

use super::absorb::ReceiverGraph;
use super::objective::{Objective, Targets};
use super::FINE_TUNING;
use crate::parallel::in_parallel;
use crate::uhs::HubSide;
use crate::{Error, Result};
use tessera_tensor::tensor::Tensor;

/// Shards a batch is split into: the cores of the machines this runs on.
const SHARDS: usize = 2;
/// Fewest rows a shard holds; smaller batches run whole.
const MIN_SHARD_ROWS: usize = 8;

/// What one step learns from: rows `batch` of `inputs`, with the transmitter's soft targets
/// (and hub vectors, for the hub term) of every row of `inputs`.
pub(super) struct StepBatch<'a> {
    pub inputs: &'a Tensor,
    pub targets: ArrayView2<'a, f32>,
    pub hub_targets: Option<&'a Array2<f32>>,
    pub batch: &'a [usize],
    pub outputs_agree: bool,
}

/// The batch's loss and its gradients for the receiver's (and the hub encoder's) variables.
/// The receiver's batch normalisations, if any, move their running statistics as the step
/// measured them (a statistic, not a weight: no optimiser step is needed for it).
pub(super) fn gradients(
    receiver: &ReceiverGraph,
    objective: &Objective,
    hub_side: Option<&HubSide>,
    step: &StepBatch,
) -> Result<(f32, GradStore)> {
    let compute = Error::compute(FINE_TUNING);
    let device = receiver.device();
    let shards: Vec<&[usize]> = if step.batch.len() >= SHARDS * MIN_SHARD_ROWS {
        step.batch
            .chunks(step.batch.len().div_ceil(SHARDS))
            .collect()
    } else {
        vec![step.batch]
    };
    let (forwards, statistics): (Vec<_>, Vec<_>) = in_parallel(&shards, |shard| {
        receiver.forward_training(&step.inputs.select_rows(shard))
    })?
    .into_iter()
    .unzip();
    receiver.update_statistics(&statistics)?;

    // Hub alignment on the whole batch, and its gradient at each shard's features.
    let hub_rows = step
        .hub_targets
        .map(|vectors| vectors.select(Axis(0), step.batch));
    let hub = Targets::new(
        objective,
        step.targets.select(Axis(0), step.batch).view(),
        hub_rows.as_ref().map(|rows| rows.view()),
        false,
        device,
    )?
    .hub;
    let (mut loss, hub_gradients, feature_gradients) = match (hub, hub_side) {
        (Some(hub), Some(side)) => {
            let parts: Vec<GraphTensor> = forwards.iter().map(|(_, f)| f.detach()).collect();
            let features = Var::from_tensor(&GraphTensor::cat(&parts, 0).map_err(&compute)?)
                .map_err(&compute)?;
            let term = objective
                .hub_term(features.as_tensor(), Some(side), Some(&hub))
                .map_err(&compute)?
                .expect("both the hub targets and the hub side are given");
            let gradients = term.backward().map_err(&compute)?;
            let at_features = gradients
                .get(features.as_tensor())
                .ok_or_else(|| Error::Shape("the hub term does not reach the features".into()))?;
            let mut start = 0;
            let mut split = Vec::with_capacity(shards.len());
            for shard in &shards {
                split.push(Some(
                    at_features
                        .narrow(0, start, shard.len())
                        .map_err(&compute)?
                        .detach(),
                ));
                start += shard.len();
            }
            let value = term.to_scalar::<f32>().map_err(&compute)?;
            (value, Some(gradients), split)
        }
        _ => (0.0, None, vec![None; shards.len()]),
    };

    // Each shard's output term, and the hub gradient carried back through its pass.
    let passes: Vec<(usize, &[usize])> = shards.iter().copied().enumerate().collect();
    let backward = in_parallel(&passes, |&(index, shard)| -> Result<(f32, GradStore)> {
        let (logits, features) = &forwards[index];
        let targets = Targets::new(
            objective,
            step.targets.select(Axis(0), shard).view(),
            None,
            step.outputs_agree,
            device,
        )?;
        let outputs = objective
            .output_term(logits, targets.outputs.as_ref(), step.batch.len())
            .map_err(&compute)?;
        let value = outputs.to_scalar::<f32>().map_err(&compute)?;
        let surrogate = match &feature_gradients[index] {
            Some(gradient) => (features * gradient)
                .and_then(|carried| carried.sum_all())
                .and_then(|carried| outputs + carried)
                .map_err(&compute)?,
            None => outputs,
        };
        Ok((value, surrogate.backward().map_err(&compute)?))
    })?;
    let mut merged: Option<GradStore> = hub_gradients;
    for (value, gradients) in backward {
        loss += value;
        merged = Some(match merged {
            Some(mut store) => {
                store.extend(gradients).map_err(&compute)?;
                store
            }
            None => gradients,
        });
    }
    Ok((loss, merged.expect("a batch has at least one shard")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::{summarise, FallbackAdapter};
    use crate::transfer::emit::log_softmax_rows;
    use crate::transfer::Participant;
    use crate::uhs::{train_hub, HubOptions};
    use candle_core::Device;
    use tessera_api::ArchitectureAdapter;
    use tessera_onnx::OnnxModel;
    use tessera_tensor::dataset::Dataset;
    use tessera_train::to_matrix;

    fn zoo(file: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../onnx-models")
            .join(file)
    }

    #[test]
    fn sharded_gradients_are_the_whole_batch_gradients() {
        let model = OnnxModel::load(&zoo("digits/conv_64d_2L.rx.torchscript.onnx")).unwrap();
        let plan = FallbackAdapter
            .analyse(&summarise(&model))
            .unwrap()
            .unwrap();
        let participant = Participant::new(&model, plan).unwrap();
        let receiver = ReceiverGraph::new(&participant, Device::Cpu).unwrap();
        let inputs = Dataset::load(&zoo("digits/val_inputs.npy"), None)
            .unwrap()
            .inputs
            .slice_axis(0, 0..40);
        let rows = 40;
        let logits =
            Array2::from_shape_fn((rows, 10), |(r, c)| ((r * 7 + c * 3) % 11) as f32 - 5.0);
        let targets = log_softmax_rows(logits.view(), 2.0);
        let hub_targets =
            Array2::from_shape_fn((rows, 16), |(r, c)| ((r * 5 + c) % 7) as f32 - 3.0);
        let hub_targets = &hub_targets
            / &hub_targets
                .map_axis(Axis(1), |row| row.dot(&row).sqrt())
                .insert_axis(Axis(1));
        let (_, features) = receiver.forward(&inputs).unwrap();
        let options = HubOptions {
            dim: 16,
            epochs: 1,
            ..HubOptions::default()
        };
        let (side, _) = train_hub(
            hub_targets.view(),
            to_matrix(&features.detach()).unwrap().view(),
            &options,
            &Device::Cpu,
            &mut |_| Ok(()),
        )
        .unwrap();
        let objective = Objective::FULL;
        let batch: Vec<usize> = (3..35).collect();

        // The whole batch at once, as one loss.
        let whole_targets = Targets::new(
            &objective,
            targets.select(Axis(0), &batch).view(),
            Some(hub_targets.select(Axis(0), &batch).view()),
            true,
            &Device::Cpu,
        )
        .unwrap();
        let (logits, features) = receiver.forward(&inputs.select_rows(&batch)).unwrap();
        let loss = objective
            .loss(&logits, &features, Some(&side), &whole_targets)
            .unwrap();
        let expected = loss.backward().unwrap();

        let (value, sharded) = gradients(
            &receiver,
            &objective,
            Some(&side),
            &StepBatch {
                inputs: &inputs,
                targets: targets.view(),
                hub_targets: Some(&hub_targets),
                batch: &batch,
                outputs_agree: true,
            },
        )
        .unwrap();
        assert!((value - loss.to_scalar::<f32>().unwrap()).abs() < 1e-4);
        let mut variables: Vec<Var> = receiver
            .graph
            .variables()
            .iter()
            .map(|(_, var)| var.clone())
            .collect();
        variables.extend(side.encoder_variables());
        for var in &variables {
            let (a, b) = (
                expected.get(var.as_tensor()).unwrap(),
                sharded.get(var.as_tensor()).unwrap(),
            );
            let largest = |t: &GraphTensor| {
                t.abs()
                    .and_then(|t| t.max_all())
                    .and_then(|t| t.to_scalar::<f32>())
                    .unwrap()
            };
            let (scale, difference) = (largest(a), largest(&(a - b).unwrap()));
            assert!(
                difference <= 1e-4 * scale.max(1e-3),
                "gradient differs by {difference} (scale {scale})"
            );
        }
    }
}
