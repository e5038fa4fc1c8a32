//! The alignment loss: symmetric InfoNCE between two sets of unit-norm vectors whose rows
//! correspond (positives on the diagonal, every other row of the batch a negative).

use candle_core::{Tensor, D};
use tessera_train::functional::log_softmax_last;

/// Symmetric InfoNCE of `a` and `b` (`[B, H]`, rows unit-norm, row i of each describing the
/// same input) at temperature `temperature`: the mean of the cross-entropies of picking the
/// matching row of `b` for each row of `a`, and vice versa.
pub fn info_nce(a: &Tensor, b: &Tensor, temperature: f64) -> candle_core::Result<Tensor> {
    let logits = (a.matmul(&b.t()?)? / temperature)?;
    let rows = logits.dim(0)?;
    let targets = Tensor::arange(0u32, rows as u32, a.device())?;
    let forward = diagonal_cross_entropy(&logits, &targets)?;
    let backward = diagonal_cross_entropy(&logits.t()?, &targets)?;
    (forward + backward)? / 2.0
}

fn diagonal_cross_entropy(logits: &Tensor, targets: &Tensor) -> candle_core::Result<Tensor> {
    log_softmax_last(logits)?
        .gather(&targets.unsqueeze(1)?.contiguous()?, D::Minus1)?
        .mean_all()?
        .neg()
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn matches_a_hand_computation() {
        // Two pairs at 90° apart: the logits are [[1, 0], [0, 1]] / τ.
        let a = Tensor::new(&[[1f32, 0.0], [0.0, 1.0]], &Device::Cpu).unwrap();
        let loss = info_nce(&a, &a, 0.5).unwrap().to_scalar::<f32>().unwrap();
        let expected = -(2f64.exp() / (2f64.exp() + 1.0)).ln();
        assert!(
            (f64::from(loss) - expected).abs() < 1e-6,
            "{loss} vs {expected}"
        );
    }

    #[test]
    fn mismatched_rows_cost_more() {
        let a = Tensor::new(&[[1f32, 0.0], [0.0, 1.0]], &Device::Cpu).unwrap();
        let swapped = Tensor::new(&[[0f32, 1.0], [1.0, 0.0]], &Device::Cpu).unwrap();
        let aligned = info_nce(&a, &a, 0.1).unwrap().to_scalar::<f32>().unwrap();
        let crossed = info_nce(&a, &swapped, 0.1)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(aligned < 0.01 && crossed > 5.0, "{aligned} {crossed}");
    }
}
