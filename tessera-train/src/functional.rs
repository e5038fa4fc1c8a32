//! Differentiable functions on candle tensors that the operators, the losses and the hub share.

use candle_core::Tensor;

/// `log(softmax(x))` along `axis`, stabilised by subtracting the maximum (which carries no
/// gradient: the result does not depend on it).
pub fn log_softmax(x: &Tensor, axis: usize) -> candle_core::Result<Tensor> {
    let shifted = x.broadcast_sub(&x.max_keepdim(axis)?.detach())?;
    shifted.broadcast_sub(&shifted.exp()?.sum_keepdim(axis)?.log()?)
}

/// `log_softmax` along the last axis.
pub fn log_softmax_last(x: &Tensor) -> candle_core::Result<Tensor> {
    log_softmax(x, x.rank().saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn rows_exponentiate_to_one_and_shifts_do_not_matter() {
        let x = Tensor::new(&[[1f32, 2.0, 3.0], [1000.0, 1001.0, 1002.0]], &Device::Cpu).unwrap();
        let rows: Vec<Vec<f32>> = log_softmax_last(&x).unwrap().to_vec2().unwrap();
        let expected = [-2.407_606_f32, -1.407_606, -0.407_606];
        for row in &rows {
            for (value, want) in row.iter().zip(expected) {
                assert!((value - want).abs() < 1e-5, "{row:?}");
            }
        }
    }
}
