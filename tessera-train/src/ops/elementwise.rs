//! Element-wise operators: arithmetic with ONNX (numpy) broadcasting, and unary functions.

use candle_core::{DType, Tensor};

use super::broadcast::{rows_broadcast, BroadcastOp};
use super::{input, single_value, Node};
use crate::node::{int_values, NodeResult};
use crate::Result;

fn binary(node: &Node<'_>, inputs: &[Option<Tensor>], op: BroadcastOp) -> Result<Vec<Tensor>> {
    let (a, b) = (input(node, inputs, 0)?, input(node, inputs, 1)?);
    Ok(vec![rows_broadcast(a, b, op).at(node)?])
}

/// Which side of a binary operation a constant number stands on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Left,
    Right,
}

/// A float tensor `x` and a constant number `c` (one element, nothing learns it, no larger a
/// rank than `x`) among the two inputs, with the side `c` is on. Arithmetic with such a number
/// is an `affine` map, whose gradient is one scaling: candle's broadcasting operations would
/// also compute a gradient for the constant and sum it over the whole tensor.
fn with_constant_number(
    a: &Tensor,
    b: &Tensor,
) -> candle_core::Result<Option<(Tensor, f64, Side)>> {
    let number = |x: &Tensor, c: &Tensor| {
        x.dtype().is_float()
            && c.dtype().is_float()
            && c.elem_count() == 1
            && !c.track_op()
            && c.rank() <= x.rank()
    };
    if number(a, b) {
        Ok(Some((a.clone(), single_value(b)?, Side::Right)))
    } else if number(b, a) {
        Ok(Some((b.clone(), single_value(a)?, Side::Left)))
    } else {
        Ok(None)
    }
}

fn unary(
    node: &Node<'_>,
    inputs: &[Option<Tensor>],
    op: fn(&Tensor) -> candle_core::Result<Tensor>,
) -> Result<Vec<Tensor>> {
    Ok(vec![op(input(node, inputs, 0)?).at(node)?])
}

/// `binary` with `op`, or `affine` with the `(scale, shift)` that `with_constant_number`'s
/// number and side give, where one input is such a number.
fn binary_or_affine(
    node: &Node<'_>,
    inputs: &[Option<Tensor>],
    op: BroadcastOp,
    affine: fn(f64, Side) -> Option<(f64, f64)>,
) -> Result<Vec<Tensor>> {
    let (a, b) = (input(node, inputs, 0)?, input(node, inputs, 1)?);
    if let Some((x, number, side)) = with_constant_number(a, b).at(node)? {
        if let Some((scale, shift)) = affine(number, side) {
            return Ok(vec![x.affine(scale, shift).at(node)?]);
        }
    }
    binary(node, inputs, op)
}

/// `Add`.
pub fn add(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    binary_or_affine(node, inputs, Tensor::broadcast_add, |c, _| Some((1.0, c)))
}

/// `Sub`.
pub fn sub(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    binary_or_affine(node, inputs, Tensor::broadcast_sub, |c, side| {
        Some(match side {
            Side::Right => (1.0, -c),
            Side::Left => (-1.0, c),
        })
    })
}

/// `Mul`.
pub fn mul(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    binary_or_affine(node, inputs, Tensor::broadcast_mul, |c, _| Some((c, 0.0)))
}

/// `Div` (integer division truncates, as ONNX specifies).
pub fn div(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    binary_or_affine(node, inputs, Tensor::broadcast_div, |c, side| {
        (side == Side::Right && c != 0.0).then(|| (1.0 / c, 0.0))
    })
}

/// `Pow`: a constant scalar exponent uses `powf`; a tensor exponent `exp(b · ln a)`.
pub fn pow(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    let (base, exponent) = (input(node, inputs, 0)?, input(node, inputs, 1)?);
    if exponent.elem_count() == 1 {
        let value = single_value(exponent).at(node)?;
        if value == 2.0 {
            return Ok(vec![base.sqr().at(node)?]);
        }
        return Ok(vec![base.powf(value).at(node)?]);
    }
    let result = base
        .log()
        .and_then(|log| log.broadcast_mul(&exponent.to_dtype(base.dtype())?))
        .and_then(|product| product.exp())
        .at(node)?;
    Ok(vec![result])
}

/// `Mod` on integers (the sign follows the divisor unless `fmod = 1`), as shape arithmetic
/// needs; float `Mod` with `fmod = 1` is the C remainder.
pub fn modulo(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    let (a, b) = (input(node, inputs, 0)?, input(node, inputs, 1)?);
    let fmod = node.int("fmod").unwrap_or(0) == 1;
    if a.dtype() == DType::I64 {
        let shape = a
            .shape()
            .broadcast_shape_binary_op(b.shape(), "Mod")
            .at(node)?;
        let left = int_values(&a.broadcast_as(shape.clone()).at(node)?, node)?;
        let right = int_values(&b.broadcast_as(shape.clone()).at(node)?, node)?;
        let values = left
            .iter()
            .zip(&right)
            .map(|(&x, &y)| {
                if y == 0 {
                    return Err(node.error("division by zero"));
                }
                // The C remainder, or (the default) the remainder with the divisor's sign.
                Ok(if fmod { x % y } else { ((x % y) + y) % y })
            })
            .collect::<Result<Vec<i64>>>()?;
        return Ok(vec![Tensor::from_vec(values, shape, a.device()).at(node)?]);
    }
    // Float remainder: a − trunc(a / b) · b.
    let quotient = a.broadcast_div(b).at(node)?;
    let truncated = quotient
        .sign()
        .and_then(|sign| sign.mul(&quotient.abs()?.floor()?))
        .at(node)?;
    Ok(vec![a
        .broadcast_sub(&truncated.broadcast_mul(b).at(node)?)
        .at(node)?])
}

/// `Neg`.
pub fn neg(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    unary(node, inputs, Tensor::neg)
}

/// `Sqrt`.
pub fn sqrt(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    unary(node, inputs, Tensor::sqrt)
}

/// `Exp`.
pub fn exp(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    unary(node, inputs, Tensor::exp)
}

/// `Log`.
pub fn log(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    unary(node, inputs, Tensor::log)
}

/// `Erf`.
pub fn erf(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    unary(node, inputs, Tensor::erf)
}

/// `Tanh`.
pub fn tanh(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    unary(node, inputs, Tensor::tanh)
}

/// The logistic function, from differentiable primitives.
pub fn logistic(x: &Tensor) -> candle_core::Result<Tensor> {
    x.neg()?.exp()?.affine(1.0, 1.0)?.recip()
}

/// `Sigmoid`.
pub fn sigmoid(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    unary(node, inputs, logistic)
}

/// `Relu`.
pub fn relu(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    unary(node, inputs, Tensor::relu)
}

/// `Gelu` (opset 20): exact, or the tanh approximation when `approximate = "tanh"`.
pub fn gelu(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    match node.string("approximate").as_deref() {
        Some("tanh") => unary(node, inputs, Tensor::gelu),
        _ => unary(node, inputs, super::fused_gelu::gelu_erf),
    }
}

/// `Identity`.
pub fn identity(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    Ok(vec![input(node, inputs, 0)?.clone()])
}

/// `Dropout` at inference: the input, and an all-true mask if asked for.
pub fn dropout(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    let x = input(node, inputs, 0)?;
    let mask = Tensor::ones(x.shape(), DType::I64, x.device()).at(node)?;
    Ok(vec![x.clone(), mask])
}

/// `Cast`: float types to float32, integer and boolean types to int64.
pub fn cast(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    use tessera_onnx::proto::tensor_proto::DataType;
    let x = input(node, inputs, 0)?;
    let to = node.int("to").unwrap_or(0) as i32;
    let dtype = match DataType::try_from(to) {
        Ok(DataType::Float | DataType::Double | DataType::Float16 | DataType::Bfloat16) => {
            DType::F32
        }
        Ok(
            DataType::Int64 | DataType::Int32 | DataType::Int8 | DataType::Uint8 | DataType::Bool,
        ) => DType::I64,
        _ => return Err(node.error(format!("casting to ONNX type {to} is not supported"))),
    };
    Ok(vec![x.to_dtype(dtype).at(node)?])
}

/// `x` bounded below by `low` and above by `high` where given. The gradient passes where `x`
/// lies inside the bounds.
fn bounded(x: &Tensor, low: Option<f64>, high: Option<f64>) -> candle_core::Result<Tensor> {
    let mut y = x.clone();
    if let Some(low) = low {
        y = y.maximum(low)?;
    }
    if let Some(high) = high {
        y = y.minimum(high)?;
    }
    Ok(y)
}

/// `Clip`: the bounds are inputs 1 and 2 from opset 11, the `min` and `max` attributes before.
pub fn clip(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    let x = input(node, inputs, 0)?;
    let (low, high) = if node.opset >= 11 {
        let bound = |index: usize| {
            super::optional(inputs, index)
                .map(single_value)
                .transpose()
                .at(node)
        };
        (bound(1)?, bound(2)?)
    } else {
        (
            node.float("min").map(f64::from),
            node.float("max").map(f64::from),
        )
    };
    Ok(vec![bounded(x, low, high).at(node)?])
}

/// `max(0, min(1, alpha · x + beta))`.
fn hard_sigmoid_of(x: &Tensor, alpha: f64, beta: f64) -> candle_core::Result<Tensor> {
    bounded(&x.affine(alpha, beta)?, Some(0.0), Some(1.0))
}

/// `HardSigmoid` (`alpha` 0.2 and `beta` 0.5 unless given).
pub fn hard_sigmoid(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    let alpha = f64::from(node.float("alpha").unwrap_or(0.2));
    let beta = f64::from(node.float("beta").unwrap_or(0.5));
    Ok(vec![
        hard_sigmoid_of(input(node, inputs, 0)?, alpha, beta).at(node)?
    ])
}

/// `HardSwish`: `x · HardSigmoid(x)` with `alpha` 1/6 and `beta` 0.5.
pub fn hard_swish(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    let x = input(node, inputs, 0)?;
    Ok(vec![hard_sigmoid_of(x, 1.0 / 6.0, 0.5)
        .and_then(|gate| x * gate)
        .at(node)?])
}
