//! Normalisations.

use candle_core::{DType, Tensor};

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

/// `BatchNormalization` at inference: running mean and variance, per channel (axis 1).
pub fn batch_normalization(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    let x = input(node, inputs, 0)?;
    if node.int("training_mode").unwrap_or(0) == 1 {
        return Err(
            node.error("training-mode BatchNormalization is not supported; export in eval mode")
        );
    }
    let epsilon = f64::from(node.float("epsilon").unwrap_or(1e-5));
    let mut per_channel = vec![1usize; x.rank()];
    per_channel[1] = x.dim(1).at(node)?;
    let channel = |index: usize| -> Result<Tensor> {
        input(node, inputs, index)?
            .to_dtype(DType::F32)
            .and_then(|t| t.reshape(per_channel.as_slice()))
            .at(node)
    };
    let (scale, bias, mean, variance) = (channel(1)?, channel(2)?, channel(3)?, channel(4)?);
    let y = x
        .broadcast_sub(&mean)
        .and_then(|c| c.broadcast_div(&variance.affine(1.0, epsilon)?.sqrt()?))
        .and_then(|n| n.broadcast_mul(&scale))
        .and_then(|s| s.broadcast_add(&bias))
        .at(node)?;
    Ok(vec![y])
}
