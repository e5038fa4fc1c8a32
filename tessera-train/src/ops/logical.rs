//! Comparisons, boolean logic and selection. Booleans travel as int64 0 and 1, as every integer
//! tensor of the graph does; comparisons and logic need no gradient, `Where`, `Max` and `Min`
//! pass it to the inputs they pick.

use candle_core::{DType, Shape, Tensor};

use super::{input, Node};
use crate::node::NodeResult;
use crate::Result;

/// Two tensors of one dtype: an integer and a float operand meet as float32.
fn common_dtype(a: &Tensor, b: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
    if a.dtype() == b.dtype() {
        return Ok((a.clone(), b.clone()));
    }
    Ok((a.to_dtype(DType::F32)?, b.to_dtype(DType::F32)?))
}

/// The numpy broadcast of every shape in `shapes`.
fn broadcast_shape(shapes: &[&Shape]) -> candle_core::Result<Shape> {
    let mut shape = shapes[0].clone();
    for next in &shapes[1..] {
        shape = shape.broadcast_shape_binary_op(next, "broadcast")?;
    }
    Ok(shape)
}

/// A comparison of two broadcast inputs, as 0 and 1.
fn compare(
    node: &Node<'_>,
    inputs: &[Option<Tensor>],
    op: fn(&Tensor, &Tensor) -> candle_core::Result<Tensor>,
) -> Result<Vec<Tensor>> {
    let (a, b) = common_dtype(input(node, inputs, 0)?, input(node, inputs, 1)?).at(node)?;
    let (a, b) = (a.detach(), b.detach());
    Ok(vec![op(&a, &b)
        .and_then(|mask| mask.to_dtype(DType::I64))
        .at(node)?])
}

/// `Equal`.
pub fn equal(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    compare(node, inputs, Tensor::broadcast_eq)
}

/// `Less`.
pub fn less(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    compare(node, inputs, Tensor::broadcast_lt)
}

/// `LessOrEqual`.
pub fn less_or_equal(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    compare(node, inputs, Tensor::broadcast_le)
}

/// `Greater`.
pub fn greater(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    compare(node, inputs, Tensor::broadcast_gt)
}

/// `GreaterOrEqual`.
pub fn greater_or_equal(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    compare(node, inputs, Tensor::broadcast_ge)
}

/// A boolean input as 0 and 1 (any non-zero value is true).
fn truth(node: &Node<'_>, inputs: &[Option<Tensor>], index: usize) -> Result<Tensor> {
    input(node, inputs, index)?
        .detach()
        .ne(0u32)
        .and_then(|mask| mask.to_dtype(DType::I64))
        .at(node)
}

/// `Not`.
pub fn not(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    let x = truth(node, inputs, 0)?;
    Ok(vec![x
        .eq(0u32)
        .and_then(|mask| mask.to_dtype(DType::I64))
        .at(node)?])
}

/// `And`.
pub fn and(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    let (a, b) = (truth(node, inputs, 0)?, truth(node, inputs, 1)?);
    Ok(vec![a.broadcast_mul(&b).at(node)?])
}

/// `Or`.
pub fn or(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    let (a, b) = (truth(node, inputs, 0)?, truth(node, inputs, 1)?);
    Ok(vec![a.broadcast_maximum(&b).at(node)?])
}

/// `Where(condition, x, y)`: `x` where the condition holds, else `y`, all three broadcast.
/// Each of `x` and `y` receives the gradient of the positions it supplied.
pub fn where_(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    let condition = truth(node, inputs, 0)?;
    let (x, y) = common_dtype(input(node, inputs, 1)?, input(node, inputs, 2)?).at(node)?;
    let shape = broadcast_shape(&[condition.shape(), x.shape(), y.shape()]).at(node)?;
    let picked = condition
        .broadcast_as(&shape)
        .and_then(|c| c.contiguous())
        .and_then(|c| c.where_cond(&x.broadcast_as(&shape)?, &y.broadcast_as(&shape)?))
        .at(node)?;
    Ok(vec![picked])
}

/// The element-wise extreme of any number of broadcast inputs.
fn extreme(
    node: &Node<'_>,
    inputs: &[Option<Tensor>],
    op: fn(&Tensor, &Tensor) -> candle_core::Result<Tensor>,
) -> Result<Vec<Tensor>> {
    let mut operands = inputs.iter().flatten();
    let mut result = operands
        .next()
        .ok_or_else(|| node.error("at least one input is required"))?
        .clone();
    for next in operands {
        let (a, b) = common_dtype(&result, next).at(node)?;
        result = op(&a, &b).at(node)?;
    }
    Ok(vec![result])
}

/// `Max` of any number of inputs.
pub fn max(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    extreme(node, inputs, Tensor::broadcast_maximum)
}

/// `Min` of any number of inputs.
pub fn min(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    extreme(node, inputs, Tensor::broadcast_minimum)
}
