//! Fidelity of a receiver to its transmitter on held-out inputs: the measures to trust
//! (agreement, output KL, CKA at matched depths) and the predecessor's drift for comparison.

use ndarray::{Array1, Array2};
use serde::Serialize;

use crate::Result;
use tessera_metrics as metrics;

/// One model's view of the held-out inputs: its outputs and its pooled taps, shallow to deep.
pub struct Observed {
    /// Output logits `[N, classes]`.
    pub logits: Array2<f32>,
    /// Pooled activations `[N, width]` of every tap, in depth order, with the tap's name.
    pub taps: Vec<(String, Array2<f32>)>,
}

/// CKA between one receiver tap and the transmitter tap at the same relative depth.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DepthCka {
    /// The transmitter's tap.
    pub transmitter_tap: String,
    /// The receiver's tap.
    pub receiver_tap: String,
    /// Debiased linear CKA between their pooled activations.
    pub cka: f64,
}

/// How closely a receiver follows its transmitter, measured on held-out inputs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fidelity {
    /// Share of inputs where the receiver's top-1 class is the transmitter's (when the output
    /// spaces agree).
    pub agreement: Option<f64>,
    /// Mean KL(transmitter ‖ receiver) of the output distributions, nats (same condition).
    pub output_kl: Option<f64>,
    /// The receiver's accuracy, when labels were given (used for nothing else).
    pub accuracy: Option<f64>,
    /// Debiased linear CKA at matched relative depths, shallow to deep (empty when the
    /// transmitter's representations were not available, as when absorbing a token).
    pub cka: Vec<DepthCka>,
    /// The predecessor's drift between the deepest taps (diagonal-Gaussian KL of neuron i
    /// against neuron i) — kept for comparison only; it is not meaningful across architectures.
    pub predecessor_drift: f64,
}

/// The transmitter tap index matched to receiver tap `index` of `receiver_taps` by relative depth.
/// `transmitter_taps` must be at least 1.
fn matched_depth(index: usize, receiver_taps: usize, transmitter_taps: usize) -> usize {
    let deepest = transmitter_taps.saturating_sub(1);
    if receiver_taps <= 1 {
        return deepest;
    }
    let position = index as f64 / (receiver_taps - 1) as f64;
    (position * deepest as f64).round() as usize
}

/// Measures `receiver` against `transmitter` (same inputs, same order); `labels` only score.
pub fn fidelity(
    transmitter: &Observed,
    receiver: &Observed,
    labels: Option<&Array1<i64>>,
) -> Result<Fidelity> {
    let outputs_agree = transmitter.logits.ncols() == receiver.logits.ncols();
    let (agreement, output_kl) = if outputs_agree {
        (
            Some(metrics::top1_agreement(
                transmitter.logits.view(),
                receiver.logits.view(),
            )?),
            Some(metrics::output_kl(
                transmitter.logits.view(),
                receiver.logits.view(),
                1.0,
            )?),
        )
    } else {
        (None, None)
    };
    let accuracy = labels
        .map(|labels| metrics::accuracy(receiver.logits.view(), labels.view()))
        .transpose()?;
    // Without the transmitter's taps (knowledge from a token carries none) no depth is compared.
    let compared = if transmitter.taps.is_empty() {
        &[][..]
    } else {
        &receiver.taps[..]
    };
    let mut cka = Vec::with_capacity(compared.len());
    for (index, (receiver_tap, receiver_values)) in compared.iter().enumerate() {
        let (transmitter_tap, transmitter_values) =
            &transmitter.taps[matched_depth(index, receiver.taps.len(), transmitter.taps.len())];
        cka.push(DepthCka {
            transmitter_tap: transmitter_tap.clone(),
            receiver_tap: receiver_tap.clone(),
            cka: metrics::debiased_linear_cka(transmitter_values.view(), receiver_values.view())?,
        });
    }
    let predecessor_drift = match (transmitter.taps.last(), receiver.taps.last()) {
        (Some((_, a)), Some((_, b))) => metrics::diagonal_gaussian_drift(a.view(), b.view())?,
        _ => f64::NAN,
    };
    Ok(Fidelity {
        agreement,
        output_kl,
        accuracy,
        cka,
        predecessor_drift,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depths_are_matched_proportionally() {
        assert_eq!(matched_depth(0, 2, 4), 0);
        assert_eq!(matched_depth(1, 2, 4), 3);
        assert_eq!(matched_depth(2, 5, 3), 1);
        assert_eq!(matched_depth(0, 1, 3), 2);
        assert_eq!(matched_depth(3, 4, 2), 1);
    }

    #[test]
    fn a_transmitter_without_taps_compares_outputs_only() {
        let observed = |taps: Vec<(String, ndarray::Array2<f32>)>| Observed {
            logits: ndarray::Array2::zeros((4, 2)),
            taps,
        };
        let tap = ("t".to_string(), ndarray::Array2::zeros((4, 3)));
        let measured = fidelity(&observed(Vec::new()), &observed(vec![tap]), None).unwrap();
        assert!(measured.cka.is_empty());
        assert!(measured.predecessor_drift.is_nan());
        assert_eq!(measured.agreement, Some(1.0));
    }
}
