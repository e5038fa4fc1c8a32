//! The label-free objective the receiver is fine-tuned with, and its loss on one batch.

use candle_core::{Device, Tensor};
use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};

use crate::uhs::{info_nce, normalise_rows, HubSide};
use crate::{Error, Result};
use tessera_train::from_matrix;
use tessera_train::functional::log_softmax_last;

/// The label-free fine-tuning objective: a weighted sum of output matching and hub alignment.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Objective {
    /// Weight of output matching: T²·KL(softmax(t/T) ‖ softmax(r/T)) between the
    /// transmitter's and the receiver's outputs (Hinton et al. 2015). Used only where the two
    /// output spaces agree (same width).
    pub output_weight: f64,
    /// Weight of hub alignment: symmetric InfoNCE between the receiver's hub vectors (through
    /// its trainable hub encoder) and the transmitter's, positives = same input (CRD).
    pub hub_weight: f64,
    /// Softening temperature T of output matching.
    pub temperature: f64,
}

impl Objective {
    /// Both terms: what `tessera transfer` uses unless told otherwise.
    pub const FULL: Objective = Objective {
        output_weight: 1.0,
        hub_weight: 0.1,
        temperature: 2.0,
    };

    /// Output matching alone (plain knowledge distillation), an ablation.
    pub const OUTPUT_ONLY: Objective = Objective {
        output_weight: 1.0,
        hub_weight: 0.0,
        temperature: 2.0,
    };

    /// Hub alignment alone, an ablation (the receiver's head learns nothing from it).
    pub const HUB_ONLY: Objective = Objective {
        output_weight: 0.0,
        hub_weight: 1.0,
        temperature: 2.0,
    };
}

impl Objective {
    /// A short name for reports: `full`, `output-only`, `hub-only` or the weights.
    pub fn name(&self) -> String {
        match (self.output_weight > 0.0, self.hub_weight > 0.0) {
            (true, true) if *self == Objective::FULL => "full".into(),
            (true, false) => "output-only".into(),
            (false, true) => "hub-only".into(),
            _ => format!("output {} + hub {}", self.output_weight, self.hub_weight),
        }
    }
}

/// The transmitter's side of one batch, fixed while the receiver learns.
pub(super) struct Targets {
    /// softmax(t/T) and its logarithm, `[B, classes]`, when outputs are matched.
    pub outputs: Option<(Tensor, Tensor)>,
    /// The transmitter's unit-norm hub vectors `[B, hub]`, when the hub term is on.
    pub hub: Option<Tensor>,
}

impl Targets {
    /// Targets from the transmitter's soft targets (log-probabilities at the objective's
    /// temperature) and (when the hub term is on) hub vectors of the batch's inputs. A batch
    /// of one has no negatives for the hub term and skips it.
    pub(super) fn new(
        objective: &Objective,
        log_probs: ArrayView2<f32>,
        hub: Option<ArrayView2<f32>>,
        match_outputs: bool,
        device: &Device,
    ) -> Result<Self> {
        let outputs = if match_outputs && objective.output_weight > 0.0 {
            let log_probs = from_matrix(log_probs, device)?;
            let probs = log_probs
                .exp()
                .map_err(Error::compute(super::FINE_TUNING))?;
            Some((probs, log_probs))
        } else {
            None
        };
        let hub = hub
            .filter(|vectors| vectors.nrows() > 1)
            .map(|vectors| from_matrix(vectors, device))
            .transpose()?;
        Ok(Self { outputs, hub })
    }
}

impl Objective {
    /// The batch loss of a receiver with `logits` and pooled deepest representation
    /// `features`, encoded into the hub by `hub_side` (the hub term needs both it and the
    /// targets' hub vectors).
    pub(super) fn loss(
        &self,
        logits: &Tensor,
        features: &Tensor,
        hub_side: Option<&HubSide>,
        targets: &Targets,
    ) -> candle_core::Result<Tensor> {
        let outputs = self.output_term(logits, targets.outputs.as_ref(), logits.dim(0)?)?;
        match self.hub_term(features, hub_side, targets.hub.as_ref())? {
            Some(hub) => outputs + hub,
            None => Ok(outputs),
        }
    }

    /// The output-matching term of rows `logits` of a batch of `batch_rows` rows (a part of a
    /// batch contributes its share of the batch's mean): w·T²·KL summed over the rows, over
    /// `batch_rows`. Zero without output targets.
    pub(super) fn output_term(
        &self,
        logits: &Tensor,
        targets: Option<&(Tensor, Tensor)>,
        batch_rows: usize,
    ) -> candle_core::Result<Tensor> {
        let Some((probs, log_probs)) = targets else {
            return Tensor::zeros((), logits.dtype(), logits.device());
        };
        let receiver = log_softmax_last(&(logits / self.temperature)?)?;
        let kl = (probs * (log_probs - receiver)?)?.sum_all()?;
        kl * (self.output_weight * self.temperature * self.temperature / batch_rows as f64)
    }

    /// The hub-alignment term of a whole batch's `features` against the transmitter's `hub`
    /// vectors, when both it and `hub_side` are given.
    pub(super) fn hub_term(
        &self,
        features: &Tensor,
        hub_side: Option<&HubSide>,
        hub: Option<&Tensor>,
    ) -> candle_core::Result<Option<Tensor>> {
        let (Some(hub), Some(hub_side)) = (hub, hub_side) else {
            return Ok(None);
        };
        let receiver = normalise_rows(&hub_side.encode(features)?)?;
        let alignment = info_nce(&receiver, hub, hub_side.temperature())?;
        Ok(Some((alignment * self.hub_weight)?))
    }
}
