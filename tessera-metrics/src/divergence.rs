//! Divergences: the KL divergence between two models' output distributions, and the
//! predecessor's (`tessera-core` 0.1.0) drift and round-trip error, kept for comparison.

use ndarray::{ArrayView1, ArrayView2, Axis};

use super::{check_matrix, check_same_shape};
use crate::{Error, Result};

/// The mean over samples of KL(softmax(t / T) ‖ softmax(r / T)), in nats, where `t` and `r` are
/// the rows of `transmitter_logits` and `receiver_logits` (`[samples, classes]`, same shape,
/// finite) and `T` is `temperature` (finite, > 0).
///
/// Why: the KL divergence sees what top-1 agreement cannot — how confident the receiver is and
/// how it ranks the other classes — and is the quantity distillation minimises, so a transfer
/// can be judged on the scale it was trained on. Computed in `f64` with log-sum-exp, so large
/// logits neither overflow nor underflow into NaN. Each row's divergence is clamped at 0, which
/// it can only undercut by rounding.
pub fn output_kl(
    transmitter_logits: ArrayView2<f32>,
    receiver_logits: ArrayView2<f32>,
    temperature: f64,
) -> Result<f64> {
    check_matrix("transmitter_logits", transmitter_logits)?;
    check_matrix("receiver_logits", receiver_logits)?;
    check_same_shape(
        "transmitter_logits",
        transmitter_logits,
        "receiver_logits",
        receiver_logits,
    )?;
    if !(temperature.is_finite() && temperature > 0.0) {
        return Err(Error::Shape(format!(
            "temperature must be a finite number above 0, found {temperature}"
        )));
    }
    let mut total = 0.0;
    for (t, r) in transmitter_logits
        .axis_iter(Axis(0))
        .zip(receiver_logits.axis_iter(Axis(0)))
    {
        let log_p = log_softmax(t, temperature);
        let log_q = log_softmax(r, temperature);
        let row: f64 = log_p
            .iter()
            .zip(&log_q)
            .map(|(&lp, &lq)| lp.exp() * (lp - lq))
            .sum();
        total += row.max(0.0);
    }
    Ok(total / transmitter_logits.nrows() as f64)
}

/// log softmax(`logits` / `temperature`) in `f64`, shifted by the maximum (log-sum-exp).
fn log_softmax(logits: ArrayView1<f32>, temperature: f64) -> Vec<f64> {
    let scaled: Vec<f64> = logits.iter().map(|&v| f64::from(v) / temperature).collect();
    let max = scaled.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let log_sum = scaled.iter().map(|&v| (v - max).exp()).sum::<f64>().ln() + max;
    scaled.iter().map(|&v| v - log_sum).collect()
}

/// The epsilon of `tessera-core` 0.1.0's drift: added to every variance, and the floor under it.
const DRIFT_EPSILON: f64 = 1e-8;

/// The predecessor's drift, reproduced exactly and **kept only for comparison** with
/// `tessera-core` 0.1.0's reports: KL(P ‖ Q) between diagonal Gaussians fitted to the columns
/// of `a` (transmitter activations, P) and `b` (receiver activations, Q), one layer pair.
///
/// As in `tessera/drift.py`: each column's mean and population variance (ddof 0) plus `1e-8`
/// are taken over the rows, in `f64`; both models are truncated to the first
/// `d = min(width_a, width_b)` columns; variances are floored at `1e-8`; then
/// `KL = 0.5 · (Σ var_p/var_q + Σ (μ_q − μ_p)²/var_q − d + Σ ln(var_q/var_p))`, and the result is
/// `max(0, KL)`. The predecessor's score averaged this over layer pairs matched by position in
/// sorted name order; this function computes one pair. Each model's statistics are its own, so
/// the row counts may differ (the predecessor flattened token positions into rows).
///
/// Why it is not a fidelity measure: it compares neuron `i` of one model with neuron `i` of the
/// other, and neuron `i` of one network is unrelated to neuron `i` of another — of a different
/// architecture, or even of the same one trained again, whose neurons come in arbitrary order.
/// Permuting the receiver's neurons changes the drift without changing the receiver, the columns
/// past the smaller width are ignored, and a perfect transfer can score badly while an unrelated
/// model with matching per-neuron statistics scores 0. Use [`super::output_kl`],
/// [`super::top1_agreement`] and [`super::debiased_linear_cka`] to judge a transfer.
///
/// Both arrays need at least one row and one column, and finite values.
pub fn diagonal_gaussian_drift(a: ArrayView2<f32>, b: ArrayView2<f32>) -> Result<f64> {
    check_matrix("a", a)?;
    check_matrix("b", b)?;
    let d = a.ncols().min(b.ncols());
    let (mu_p, var_p) = column_mean_variance(a, d);
    let (mu_q, var_q) = column_mean_variance(b, d);
    // `np.maximum(var, 1e-8)`, as the predecessor did (a no-op after adding 1e-8, kept to match).
    let var_p: Vec<f64> = var_p.iter().map(|&v| v.max(DRIFT_EPSILON)).collect();
    let var_q: Vec<f64> = var_q.iter().map(|&v| v.max(DRIFT_EPSILON)).collect();
    // Three separate sums, combined in the predecessor's order.
    let term1: f64 = var_p.iter().zip(&var_q).map(|(p, q)| p / q).sum();
    let term2: f64 = mu_p
        .iter()
        .zip(&mu_q)
        .zip(&var_q)
        .map(|((mp, mq), q)| (mq - mp).powi(2) / q)
        .sum();
    let term3: f64 = var_p.iter().zip(&var_q).map(|(p, q)| (q / p).ln()).sum();
    let kl = 0.5 * (term1 + term2 - d as f64 + term3);
    Ok(kl.max(0.0))
}

/// Per-column mean and population variance plus [`DRIFT_EPSILON`] of the first `d` columns of
/// `x`, in `f64` (`H.mean(axis=0)`, `H.var(axis=0) + 1e-8`).
fn column_mean_variance(x: ArrayView2<f32>, d: usize) -> (Vec<f64>, Vec<f64>) {
    let n = x.nrows() as f64;
    x.axis_iter(Axis(1))
        .take(d)
        .map(|column| {
            let mean = column.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
            let variance = column
                .iter()
                .map(|&v| (f64::from(v) - mean).powi(2))
                .sum::<f64>()
                / n;
            (mean, variance + DRIFT_EPSILON)
        })
        .unzip()
}

/// The predecessor's relative round-trip error, `‖x̂ − x‖_F / (‖x‖_F + 1e-8)`, where `x` is
/// `original` and `x̂` is `reconstructed` (same shape, non-empty, finite).
///
/// Why: it says how much of a vector an encode → decode round trip (through the hub space)
/// loses — 0 is perfect, 1 is as bad as returning zeros. The formula is `tessera-core` 0.1.0's
/// `UniversalHubSpace.round_trip_error`, behind its `tx_round_trip_error` and
/// `rx_round_trip_error`, with the same `1e-8` in the denominator (so an all-zero `original`
/// gives a large finite number, not a division by zero); the predecessor computed it in `f32`
/// on the first 100 samples, this computes it in `f64` on whatever it is given.
pub fn relative_round_trip_error(
    original: ArrayView2<f32>,
    reconstructed: ArrayView2<f32>,
) -> Result<f64> {
    check_matrix("original", original)?;
    check_matrix("reconstructed", reconstructed)?;
    check_same_shape("original", original, "reconstructed", reconstructed)?;
    let difference: f64 = original
        .iter()
        .zip(reconstructed.iter())
        .map(|(&x, &y)| (f64::from(y) - f64::from(x)).powi(2))
        .sum::<f64>()
        .sqrt();
    let norm: f64 = original
        .iter()
        .map(|&x| f64::from(x).powi(2))
        .sum::<f64>()
        .sqrt();
    Ok(difference / (norm + 1e-8))
}

#[cfg(test)]
mod tests {
    use ndarray::{array, Array2};

    use super::*;

    fn close(found: f64, expected: f64, tolerance: f64) {
        assert!(
            (found - expected).abs() <= tolerance * expected.abs().max(1.0),
            "found {found}, expected {expected}"
        );
    }

    /// Direct KL of two probability vectors, for checking.
    fn kl(p: &[f64], q: &[f64]) -> f64 {
        p.iter().zip(q).map(|(p, q)| p * (p / q).ln()).sum()
    }

    fn softmax(logits: &[f64]) -> Vec<f64> {
        let total: f64 = logits.iter().map(|v| v.exp()).sum();
        logits.iter().map(|v| v.exp() / total).collect()
    }

    #[test]
    fn output_kl_matches_direct_formula() {
        let t = array![[1.0f32, 2.0, 0.5], [0.0, -1.0, 3.0]];
        let r = array![[0.5f32, 2.5, 0.0], [1.0, 1.0, 1.0]];
        for temperature in [1.0, 2.0, 0.5] {
            let expected = (0..2)
                .map(|i| {
                    let p: Vec<f64> = t
                        .row(i)
                        .iter()
                        .map(|&v| f64::from(v) / temperature)
                        .collect();
                    let q: Vec<f64> = r
                        .row(i)
                        .iter()
                        .map(|&v| f64::from(v) / temperature)
                        .collect();
                    kl(&softmax(&p), &softmax(&q))
                })
                .sum::<f64>()
                / 2.0;
            close(
                output_kl(t.view(), r.view(), temperature).unwrap(),
                expected,
                1e-12,
            );
        }
    }

    #[test]
    fn output_kl_is_zero_for_identical_and_shifted_logits() {
        let t = array![[1.0f32, 2.0, 0.5], [0.0, -1.0, 3.0]];
        assert_eq!(output_kl(t.view(), t.view(), 1.0).unwrap(), 0.0);
        let shifted = t.mapv(|v| v + 10.0);
        assert!(output_kl(t.view(), shifted.view(), 1.0).unwrap() < 1e-12);
    }

    #[test]
    fn output_kl_is_stable_for_huge_logits() {
        let t = array![[1.0e30f32, 0.0], [-3.0e38, 3.0e38]];
        let r = array![[0.0f32, 1.0e30], [3.0e38, -3.0e38]];
        let value = output_kl(t.view(), r.view(), 1.0).unwrap();
        assert!(value.is_finite() && value > 1e29, "{value}");
        let same = output_kl(t.view(), t.view(), 1.0).unwrap();
        assert_eq!(same, 0.0);
    }

    #[test]
    fn output_kl_rejects_bad_inputs() {
        let t = Array2::<f32>::zeros((2, 3));
        let message = output_kl(t.view(), Array2::<f32>::zeros((3, 3)).view(), 1.0)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("[2, 3]") && message.contains("[3, 3]"),
            "{message}"
        );
        for temperature in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let message = output_kl(t.view(), t.view(), temperature)
                .unwrap_err()
                .to_string();
            assert!(message.contains("temperature"), "{message}");
        }
        let mut with_nan = t.clone();
        with_nan[[0, 0]] = f32::NAN;
        let message = output_kl(with_nan.view(), t.view(), 1.0)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("transmitter_logits") && message.contains("NaN"),
            "{message}"
        );
        let empty = Array2::<f32>::zeros((0, 3));
        assert!(output_kl(empty.view(), empty.view(), 1.0).is_err());
    }

    // The expected drifts below came from tessera-core 0.1.0 itself: its
    // `DriftMeasure._collect_statistics` run on a one-layer identity model fed these arrays (as
    // float32 tensors), then `DriftMeasure.compute`, with torch 2.15 and numpy 2.4.

    #[test]
    fn drift_matches_tessera_core_0_1_0() {
        let a = array![
            [0.5f32, -1.25, 2.0],
            [1.5, 0.25, -0.75],
            [-0.5, 1.0, 0.0],
            [2.25, -0.5, 1.25]
        ];
        let b = array![[0.0f32, 1.0], [1.0, -2.0], [0.5, 0.5], [-1.5, 0.75]];
        // Widths 3 and 2: the predecessor truncated to the first 2 columns.
        close(
            diagonal_gaussian_drift(a.view(), b.view()).unwrap(),
            0.6298484847068173,
            1e-12,
        );
        close(
            diagonal_gaussian_drift(b.view(), a.view()).unwrap(),
            0.6128591007212889,
            1e-12,
        );
        assert_eq!(diagonal_gaussian_drift(a.view(), a.view()).unwrap(), 0.0);
    }

    #[test]
    fn drift_matches_tessera_core_0_1_0_on_a_constant_column() {
        // A constant column of `c` has variance 0, so the 1e-8 epsilon decides the value.
        let c = array![[1.0f32, 2.0], [1.0, 3.0], [1.0, 5.0]];
        let d = array![[0.0f32, 2.5], [0.5, 3.5], [1.0, 4.0]];
        close(
            diagonal_gaussian_drift(c.view(), d.view()).unwrap(),
            9.371313442873639,
            1e-12,
        );
        close(
            diagonal_gaussian_drift(d.view(), c.view()).unwrap(),
            20833325.33701984,
            1e-12,
        );
    }

    #[test]
    fn drift_depends_on_neuron_order() {
        // The same activations with the two neurons swapped: nothing about the model changed,
        // yet the predecessor's drift does — why it is kept for comparison only.
        let a = array![[0.0f32, 10.0], [1.0, 20.0], [2.0, 30.0]];
        let swapped = array![[10.0f32, 0.0], [20.0, 1.0], [30.0, 2.0]];
        assert!(diagonal_gaussian_drift(a.view(), swapped.view()).unwrap() > 1.0);
    }

    #[test]
    fn drift_allows_different_row_counts_and_rejects_bad_inputs() {
        let a = array![[0.0f32, 1.0], [1.0, 2.0], [2.0, 4.0]];
        let b = array![[0.0f32, 1.0], [2.0, 2.0]];
        assert!(diagonal_gaussian_drift(a.view(), b.view())
            .unwrap()
            .is_finite());
        let empty = Array2::<f32>::zeros((0, 2));
        let message = diagonal_gaussian_drift(empty.view(), b.view())
            .unwrap_err()
            .to_string();
        assert!(message.contains("[0, 2]"), "{message}");
        let narrow = Array2::<f32>::zeros((3, 0));
        assert!(diagonal_gaussian_drift(a.view(), narrow.view()).is_err());
        let inf = array![[f32::INFINITY, 0.0]];
        let message = diagonal_gaussian_drift(a.view(), inf.view())
            .unwrap_err()
            .to_string();
        assert!(message.contains("inf"), "{message}");
    }

    #[test]
    fn round_trip_error_matches_predecessor_formula() {
        let x = array![[1.0f32, 2.0], [-3.0, 0.5], [0.0, 4.0]];
        let x_hat = array![[1.5f32, 2.0], [-2.5, 0.0], [0.25, 4.0]];
        // ‖x̂ − x‖ = sqrt(0.8125), ‖x‖ = sqrt(30.25) = 5.5. tessera-core's own torch formula on
        // these tensors in float64 gave 0.1638886940412928.
        close(
            relative_round_trip_error(x.view(), x_hat.view()).unwrap(),
            0.1638886940412928,
            1e-12,
        );
        assert_eq!(relative_round_trip_error(x.view(), x.view()).unwrap(), 0.0);
        let zeros = Array2::<f32>::zeros((3, 2));
        close(
            relative_round_trip_error(x.view(), zeros.view()).unwrap(),
            1.0,
            1e-8,
        );
        // An all-zero original divides by the epsilon only.
        let ones = Array2::<f32>::ones((1, 1));
        close(
            relative_round_trip_error(ones.view(), ones.mapv(|_| 0.0).view()).unwrap(),
            1.0,
            1e-8,
        );
        close(
            relative_round_trip_error(zeros.view(), Array2::<f32>::ones((3, 2)).view()).unwrap(),
            6f64.sqrt() / 1e-8,
            1e-12,
        );
    }

    #[test]
    fn round_trip_error_rejects_bad_inputs() {
        let x = Array2::<f32>::zeros((3, 2));
        let message = relative_round_trip_error(x.view(), Array2::<f32>::zeros((3, 3)).view())
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("[3, 2]") && message.contains("[3, 3]"),
            "{message}"
        );
        let mut with_nan = x.clone();
        with_nan[[2, 1]] = f32::NAN;
        let message = relative_round_trip_error(x.view(), with_nan.view())
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("reconstructed") && message.contains("row 2"),
            "{message}"
        );
        let empty = Array2::<f32>::zeros((0, 0));
        assert!(relative_round_trip_error(empty.view(), empty.view()).is_err());
    }
}
