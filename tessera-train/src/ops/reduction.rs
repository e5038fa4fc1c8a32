//! Reductions and softmax.

use candle_core::Tensor;

use super::fused_softmax::softmax_last;
use super::{input, optional, Node};
use crate::functional::log_softmax;
use crate::node::{axis, int_values, NodeResult};
use crate::Result;

/// The axes a reduction runs over: the `axes` input (opset 18) or attribute; none means all,
/// unless `noop_with_empty_axes` says to pass the input through.
fn reduced_axes(
    node: &Node<'_>,
    inputs: &[Option<Tensor>],
    rank: usize,
) -> Result<Option<Vec<usize>>> {
    let listed = match optional(inputs, 1) {
        Some(axes) => Some(int_values(axes, node)?),
        None => node.ints("axes"),
    };
    match listed {
        Some(axes) if !axes.is_empty() => axes
            .iter()
            .map(|&a| axis(a, rank, node))
            .collect::<Result<Vec<_>>>()
            .map(Some),
        _ if node.int("noop_with_empty_axes").unwrap_or(0) == 1 => Ok(None),
        _ => Ok(Some((0..rank).collect())),
    }
}

fn reduce(
    node: &Node<'_>,
    inputs: &[Option<Tensor>],
    keep: fn(&Tensor, &[usize]) -> candle_core::Result<Tensor>,
) -> Result<Vec<Tensor>> {
    let x = input(node, inputs, 0)?;
    let Some(mut axes) = reduced_axes(node, inputs, x.rank())? else {
        return Ok(vec![x.clone()]);
    };
    let mut y = keep(x, &axes).at(node)?;
    if node.int("keepdims").unwrap_or(1) == 0 {
        axes.sort_unstable();
        for &a in axes.iter().rev() {
            y = y.squeeze(a).at(node)?;
        }
    }
    Ok(vec![y])
}

/// `ReduceMean`.
pub fn reduce_mean(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    reduce(node, inputs, |x, axes| x.mean_keepdim(axes))
}

/// `ReduceSum`.
pub fn reduce_sum(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    reduce(node, inputs, |x, axes| x.sum_keepdim(axes))
}

/// `ReduceMax`: the gradient goes to the positions holding the maximum.
pub fn reduce_max(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    reduce(node, inputs, |x, axes| {
        reduce_each(x, axes, |y, a| y.max_keepdim(a))
    })
}

/// `ReduceMin`: the gradient goes to the positions holding the minimum.
pub fn reduce_min(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    reduce(node, inputs, |x, axes| {
        reduce_each(x, axes, |y, a| y.min_keepdim(a))
    })
}

/// `x` reduced by `one` along each of `axes` in turn (candle reduces extremes one axis at a
/// time).
fn reduce_each(
    x: &Tensor,
    axes: &[usize],
    one: fn(&Tensor, usize) -> candle_core::Result<Tensor>,
) -> candle_core::Result<Tensor> {
    axes.iter().try_fold(x.clone(), |y, &a| one(&y, a))
}

/// `LogSoftmax` of a node's input as its opset defines it. From opset 13 the normalisation
/// runs along `axis` (default -1). Before 13 the input is read as a matrix whose rows are its
/// first `axis` dimensions (default 1) flattened, and each row is normalised as one vector.
fn node_log_softmax(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Tensor> {
    let x = input(node, inputs, 0)?;
    if node.opset >= 13 {
        let a = axis(node.int("axis").unwrap_or(-1), x.rank(), node)?;
        return log_softmax(x, a).at(node);
    }
    let a = axis(node.int("axis").unwrap_or(1), x.rank(), node)?;
    let rows: usize = x.dims()[..a].iter().product();
    x.reshape((rows, ()))
        .and_then(|matrix| log_softmax(&matrix, 1))
        .and_then(|normalised| normalised.reshape(x.shape()))
        .at(node)
}

/// `Softmax`, stabilised by the maximum: one fused operation over the last axis (or, before
/// opset 13, the flattened trailing axes), composed along any other.
pub fn softmax(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    let x = input(node, inputs, 0)?;
    let last = x.rank().saturating_sub(1);
    if node.opset >= 13 {
        let a = axis(node.int("axis").unwrap_or(-1), x.rank(), node)?;
        if a == last {
            return Ok(vec![softmax_last(x).at(node)?]);
        }
        return Ok(vec![node_log_softmax(node, inputs)?.exp().at(node)?]);
    }
    let a = axis(node.int("axis").unwrap_or(1), x.rank(), node)?;
    let rows: usize = x.dims()[..a].iter().product();
    let y = x
        .reshape((rows, ()))
        .and_then(|matrix| softmax_last(&matrix))
        .and_then(|normalised| normalised.reshape(x.shape()))
        .at(node)?;
    Ok(vec![y])
}

/// `LogSoftmax`.
pub fn log_softmax_op(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    Ok(vec![node_log_softmax(node, inputs)?])
}
