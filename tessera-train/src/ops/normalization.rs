//! Normalisations.

use candle_core::Tensor;

use super::fused_batch_norm::{batch_norm, Statistics};
use super::fused_layer_norm::layer_norm;
use super::{input, optional, Node};
use crate::node::{axis, NodeResult};
use crate::Result;

/// `LayerNormalization` over the axes from `axis` to the last, with scale and optional bias
/// (each broadcast to the normalised axes).
pub fn layer_normalization(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    let x = input(node, inputs, 0)?;
    let first = axis(node.int("axis").unwrap_or(-1), x.rank(), node)?;
    let epsilon = f64::from(node.float("epsilon").unwrap_or(1e-5));
    let normalised_dims = &x.dims()[first..];
    let width: usize = normalised_dims.iter().product();
    let per_feature = |value: &Tensor| {
        value
            .broadcast_as(normalised_dims)
            .and_then(|value| value.flatten_all())
            .at(node)
    };
    let scale = per_feature(input(node, inputs, 1)?)?;
    let bias = match optional(inputs, 2) {
        Some(bias) => per_feature(bias)?,
        None => scale.zeros_like().at(node)?,
    };
    Ok(vec![layer_norm(x, &scale, &bias, width, epsilon).at(node)?])
}

/// A `BatchNormalization`'s input and its per-channel inputs (scale, bias, mean, variance).
fn operands<'t>(
    node: &Node<'_>,
    inputs: &'t [Option<Tensor>],
) -> Result<(&'t Tensor, [&'t Tensor; 4])> {
    let x = input(node, inputs, 0)?;
    if x.rank() < 2 {
        return Err(node.error(format!(
            "the input has rank {}; channels are axis 1",
            x.rank()
        )));
    }
    let channels = x.dim(1).at(node)?;
    let channel = |index: usize| -> Result<&'t Tensor> {
        let value = input(node, inputs, index)?;
        if value.elem_count() != channels {
            return Err(node.error(format!(
                "input {index} holds {} values for {channels} channels",
                value.elem_count()
            )));
        }
        Ok(value)
    };
    Ok((x, [channel(1)?, channel(2)?, channel(3)?, channel(4)?]))
}

/// `BatchNormalization`: at inference (the default) with the running mean and variance; in
/// training mode (`training_mode = 1`) as [`batch_normalization_training`].
pub fn batch_normalization(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    if node.int("training_mode").unwrap_or(0) == 1 {
        return batch_normalization_training(node, inputs);
    }
    let (x, channels) = operands(node, inputs)?;
    let epsilon = f64::from(node.float("epsilon").unwrap_or(1e-5));
    let (y, _, _) = batch_norm(x, channels, Statistics::Running, epsilon).at(node)?;
    Ok(vec![y])
}

/// `BatchNormalization` in training mode, as ONNX defines it: normalised with the batch's
/// mean and (population) variance per channel, which the gradient flows through, and the
/// running mean and variance moved towards them, `running · momentum + batch · (1 −
/// momentum)` (`momentum` 0.9 unless given), as its second and third outputs (no gradient).
pub fn batch_normalization_training(
    node: &Node<'_>,
    inputs: &[Option<Tensor>],
) -> Result<Vec<Tensor>> {
    let (x, channels) = operands(node, inputs)?;
    let epsilon = f64::from(node.float("epsilon").unwrap_or(1e-5));
    let momentum = f64::from(node.float("momentum").unwrap_or(0.9));
    let (y, mean, variance) = batch_norm(x, channels, Statistics::Batch, epsilon).at(node)?;
    let moved = |running: &Tensor, batch: &Tensor| {
        running
            .flatten_all()?
            .to_dtype(batch.dtype())?
            .affine(momentum, 0.0)?
            + batch.affine(1.0 - momentum, 0.0)?
    };
    let running_mean = moved(channels[2], &mean).at(node)?;
    let running_var = moved(channels[3], &variance).at(node)?;
    Ok(vec![y, running_mean, running_var])
}
