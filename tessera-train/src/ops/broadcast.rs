//! Broadcasting that keeps gradients cheap. candle differentiates a broadcast by summing the
//! gradient over the repeated dimensions element by element; for a bias or scale repeated over
//! every row of a batch that sum costs more than the operation itself. Expanding such an
//! operand as a product with a column of ones gives the same values, and its gradient becomes
//! one matrix product.

use candle_core::{Shape, Tensor};

/// A binary operation with numpy broadcasting, in candle's `broadcast_*` form.
pub type BroadcastOp = fn(&Tensor, &Tensor) -> candle_core::Result<Tensor>;

/// `op(a, b)`, with an operand that learns and only repeats along leading dimensions expanded
/// to the result's shape first.
pub fn rows_broadcast(a: &Tensor, b: &Tensor, op: BroadcastOp) -> candle_core::Result<Tensor> {
    let shape = a
        .shape()
        .broadcast_shape_binary_op(b.shape(), "broadcast")?;
    op(&expand_rows(a, &shape)?, &expand_rows(b, &shape)?)
}

fn expand_rows(x: &Tensor, shape: &Shape) -> candle_core::Result<Tensor> {
    let width = x.elem_count();
    if width == 0
        || shape.elem_count() == width
        || !x.track_op()
        || !repeats_along_leading_dims(x.dims(), shape.dims())
    {
        return Ok(x.clone());
    }
    let ones = Tensor::ones((shape.elem_count() / width, 1), x.dtype(), x.device())?;
    ones.matmul(&x.reshape((1, width))?)?.reshape(shape)
}

/// Whether `dims` (less leading ones) are the trailing dimensions of `target`.
fn repeats_along_leading_dims(dims: &[usize], target: &[usize]) -> bool {
    let first = dims.iter().position(|&d| d != 1).unwrap_or(dims.len());
    let kept = &dims[first..];
    kept.len() <= target.len() && target[target.len() - kept.len()..] == *kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn only_operands_repeated_over_leading_dimensions_are_expanded() {
        assert!(repeats_along_leading_dims(&[4], &[2, 3, 4]));
        assert!(repeats_along_leading_dims(&[1, 1, 4], &[2, 3, 4]));
        assert!(repeats_along_leading_dims(&[3, 4], &[2, 3, 4]));
        assert!(!repeats_along_leading_dims(&[2, 1, 4], &[2, 3, 4]));
        assert!(!repeats_along_leading_dims(&[1, 3, 1], &[2, 3, 4]));
    }

    #[test]
    fn values_and_gradients_match_plain_broadcasting() {
        let device = Device::Cpu;
        let x = Tensor::arange(0f32, 24.0, &device)
            .unwrap()
            .reshape((2, 3, 4))
            .unwrap();
        let bias =
            Var::from_tensor(&Tensor::new(&[0.5f32, -1.0, 2.0, 3.0], &device).unwrap()).unwrap();
        let expanded = rows_broadcast(&x, bias.as_tensor(), Tensor::broadcast_mul).unwrap();
        let plain = x.broadcast_mul(bias.as_tensor()).unwrap();
        let difference = |a: &Tensor, b: &Tensor| {
            (a - b)
                .unwrap()
                .abs()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
        };
        assert_eq!(difference(&expanded, &plain), 0.0);
        let gradient = |y: &Tensor| {
            let grads = y.sqr().unwrap().sum_all().unwrap().backward().unwrap();
            grads.get(bias.as_tensor()).unwrap().clone()
        };
        assert!(difference(&gradient(&expanded), &gradient(&plain)) < 1e-3);
    }
}
