//! What a transmitter ships to a receiver: its answers on a set of reference inputs both sides
//! hold, and the recipe that turns those answers into a tuned receiver. Emitting knowledge
//! needs only the transmitter ([`Emitter`](super::Emitter)); absorbing it needs only the
//! receiver and the same inputs ([`Absorber`](super::Absorber)).

use ndarray::{s, Array2, ArrayView2, Axis};
use rand::rngs::ChaCha8Rng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::inputs::{mix, mix_partners, sample_domain};
use super::options::{Augmentation, TransferOptions};
use super::report::ModelSummary;
use crate::{Error, Result};
use tessera_tensor::dataset::Dataset;
use tessera_tensor::tensor::Tensor;

/// Mixed into the seed of each synthetic input set, so that they differ from the batch order.
const SYNTHETIC_SEED: u64 = 0x7e55_e2a0_5e70_0000;

/// Identifies a set of inputs without revealing them: SHA-256 over the element type, the shape
/// and the elements' little-endian bytes. The same array gives the same fingerprint whether it
/// was read from `.npy` or built in memory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputFingerprint {
    /// The SHA-256 digest, hex.
    pub sha256: String,
    /// Samples (rows).
    pub rows: usize,
    /// Element type, `float32` or `int64`.
    pub dtype: String,
    /// Shape of one sample.
    pub sample_shape: Vec<usize>,
}

impl InputFingerprint {
    /// The fingerprint of `inputs`.
    pub fn of(inputs: &Tensor) -> Self {
        let mut hasher = Sha256::new();
        let dtype = match inputs {
            Tensor::F32(_) => "float32",
            Tensor::I64(_) => "int64",
        };
        hasher.update(dtype.as_bytes());
        hasher.update((inputs.shape().len() as u64).to_le_bytes());
        for &dim in inputs.shape() {
            hasher.update((dim as u64).to_le_bytes());
        }
        match inputs {
            Tensor::F32(array) => array
                .iter()
                .for_each(|value| hasher.update(value.to_le_bytes())),
            Tensor::I64(array) => array
                .iter()
                .for_each(|value| hasher.update(value.to_le_bytes())),
        }
        Self {
            sha256: hex::encode(hasher.finalize()),
            rows: inputs.shape()[0],
            dtype: dtype.into(),
            sample_shape: inputs.shape()[1..].to_vec(),
        }
    }

    /// Refuses `inputs` unless they are the ones this fingerprint was taken of; `what` names
    /// them in the message.
    pub fn check(&self, inputs: &Dataset, what: &str) -> Result<()> {
        let given = Self::of(&inputs.inputs);
        if given == *self {
            return Ok(());
        }
        Err(Error::KnowledgeMismatch(format!(
            "{} are not the {what} the knowledge was emitted for: they hold {} {} samples of \
             shape {:?} with fingerprint {}, the knowledge expects {} {} samples of shape {:?} \
             with fingerprint {}; give the transmitter's owner's exact reference inputs",
            inputs.source.display(),
            given.rows,
            given.dtype,
            given.sample_shape,
            &given.sha256[..16],
            self.rows,
            self.dtype,
            self.sample_shape,
            &self.sha256[..16],
        )))
    }
}

/// How the reference inputs were divided into the inputs the receiver learns from and the
/// held-out inputs it is measured on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Split {
    /// A seeded share of the reference inputs was held out ([`hold_out`]).
    HoldOut {
        /// The share held out.
        share: f64,
        /// The seed of the shuffle that chose them.
        seed: u64,
    },
    /// The held-out inputs are a separate set (`--val-inputs`); every reference input trains.
    Separate,
}

/// The share of the reference inputs held out to measure on when no separate held-out inputs
/// are given.
pub const DEFAULT_HOLD_OUT: f64 = 0.2;

/// `inputs` divided into training and held-out inputs: a shuffle seeded by `seed` picks
/// round(`share` · N) of them (at least one, and one fewer than all) to hold out.
pub fn hold_out(inputs: &Dataset, share: f64, seed: u64) -> Result<(Dataset, Dataset)> {
    if !(share > 0.0 && share < 1.0) {
        return Err(Error::InvalidOption(format!(
            "the held-out share must lie strictly between 0 and 1, got {share}"
        )));
    }
    let rows = inputs.len();
    if rows < 2 {
        return Err(Error::InvalidOption(format!(
            "{}: {rows} input(s) cannot be split into training and held-out inputs; give \
             separate held-out inputs",
            inputs.source.display()
        )));
    }
    let held = ((rows as f64 * share).round() as usize).clamp(1, rows - 1);
    let mut order: Vec<usize> = (0..rows).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let (validation, train) = order.split_at(held);
    let part = |rows: &[usize]| {
        Dataset::new(
            inputs.inputs.select_rows(rows),
            inputs
                .labels
                .as_ref()
                .map(|labels| labels.select(Axis(0), rows)),
            inputs.source.clone(),
        )
    };
    Ok((part(train)?, part(validation)?))
}

/// The synthetic input sets the receiver also learns from: made from the training inputs by the
/// recipe's augmentation, each with a seed derived from the recipe's, so that both sides build
/// exactly the same inputs.
pub fn synthetic_inputs(
    augmentation: Augmentation,
    seed: u64,
    set: usize,
    train: &Tensor,
) -> Result<Option<Tensor>> {
    let mut rng = synthetic_rng(seed, set);
    Ok(match augmentation {
        Augmentation::None => None,
        Augmentation::Mix => Some(mix(train, &mut rng)?),
        Augmentation::SampleDomain => Some(sample_domain(train, &mut rng)?),
    })
}

/// For each row of synthetic set `set` (of `rows` training inputs), the other training input
/// it copies values from, when the augmentation copies any (mixing).
pub fn synthetic_partners(
    augmentation: Augmentation,
    seed: u64,
    set: usize,
    rows: usize,
) -> Option<Vec<usize>> {
    (augmentation == Augmentation::Mix).then(|| mix_partners(rows, &mut synthetic_rng(seed, set)))
}

/// The generator synthetic set `set` is drawn with.
fn synthetic_rng(seed: u64, set: usize) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed ^ SYNTHETIC_SEED ^ set as u64)
}

/// The transmitter's unit-norm hub vectors of the training and held-out inputs.
#[derive(Debug, Clone, PartialEq)]
pub struct HubVectors {
    /// `[train rows, hub width]`.
    pub train: Array2<f32>,
    /// `[held-out rows, hub width]`.
    pub validation: Array2<f32>,
}

/// Everything about the knowledge except its matrices: what a token's metadata records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KnowledgeHeader {
    /// The transmitter, as its adapter read it.
    pub transmitter: TransmitterSummary,
    /// The recipe that worked: objective (its temperature is the soft targets'), augmentation,
    /// hub and schedule. Where the receiver trains is its own choice, not part of it.
    pub recipe: TransferOptions,
    /// The reference inputs as given to the transmitter.
    pub inputs: InputFingerprint,
    /// The inputs the receiver learns from.
    pub train: InputFingerprint,
    /// The held-out inputs the receiver is measured on.
    pub validation: InputFingerprint,
    /// How `train` and `validation` came from the inputs.
    pub split: Split,
    /// Synthetic input sets answered (0 without augmentation).
    pub synthetic_sets: usize,
    /// What the privacy stage did to each released matrix (empty: nothing was privatised).
    #[serde(default)]
    pub privacy: Vec<serde_json::Value>,
    /// What the receiver of a one-process quantisation-aware transfer (ModeAQ) achieved once
    /// quantised; absent from emitted knowledge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantised_receiver: Option<super::quantise::QuantisedSummary>,
}

/// The transmitter as the knowledge names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransmitterSummary {
    /// Its name (file name).
    pub name: String,
    /// The family its adapter recognised.
    pub family: String,
    /// The width of its pooled representation.
    pub width: u64,
    /// Tap points its adapter reads.
    pub layers: usize,
    /// Classes it outputs: the width of the soft targets.
    pub output_width: usize,
}

impl TransmitterSummary {
    /// The summary of a transmitter whose adapter read `model` and which outputs
    /// `output_width` classes.
    pub fn new(model: ModelSummary, output_width: usize) -> Self {
        Self {
            name: model.name,
            family: model.family,
            width: model.width,
            layers: model.layers,
            output_width,
        }
    }

    /// A three-class MLP transmitter, for tests of what is built around a summary.
    #[cfg(test)]
    pub(super) fn three_class_sample() -> Self {
        Self {
            name: "tx.onnx".into(),
            family: "mlp".into(),
            width: 8,
            layers: 2,
            output_width: 3,
        }
    }

    /// Back to the summary a report shows.
    pub fn model(&self) -> ModelSummary {
        ModelSummary {
            name: self.name.clone(),
            family: self.family.clone(),
            width: self.width,
            layers: self.layers,
        }
    }
}

/// What a transmitter knows about a set of reference inputs, ready to travel.
#[derive(Debug, Clone, PartialEq)]
pub struct Knowledge {
    /// Everything but the matrices.
    pub header: KnowledgeHeader,
    /// Soft targets of the training inputs: the transmitter's log-probabilities at the
    /// objective's temperature, `[train rows, classes]`.
    pub train_targets: Array2<f32>,
    /// Soft targets of the held-out inputs, `[held-out rows, classes]`.
    pub validation_targets: Array2<f32>,
    /// Soft targets of the synthetic sets, set after set, `[sets · train rows, classes]`.
    pub synthetic_targets: Array2<f32>,
    /// The transmitter's hub vectors, when the knowledge carries them.
    pub hub: Option<HubVectors>,
}

impl Knowledge {
    /// The soft targets of synthetic set `set`.
    pub fn synthetic_set(&self, set: usize) -> ArrayView2<'_, f32> {
        let rows = self.header.train.rows;
        self.synthetic_targets
            .slice(s![set * rows..(set + 1) * rows, ..])
    }

    /// Checks that the matrices agree with the header and hold only finite values, so that a
    /// token decoded from untrusted bytes is either sound or refused.
    pub fn validate(&self) -> Result<()> {
        let header = &self.header;
        let classes = header.transmitter.output_width;
        let bad = |message: String| Err(Error::KnowledgeMismatch(message));
        let expect = |name: &str, matrix: ArrayView2<f32>, rows: usize, columns: usize| {
            if matrix.dim() != (rows, columns) {
                return bad(format!(
                    "the {name} are {:?}, but the knowledge describes {rows} × {columns}",
                    matrix.dim()
                ));
            }
            if matrix.iter().any(|value| !value.is_finite()) {
                return bad(format!(
                    "the {name} contain NaN or infinite values; the knowledge is corrupt"
                ));
            }
            Ok(())
        };
        if classes == 0 {
            return bad("the transmitter outputs no classes".into());
        }
        expect(
            "training soft targets",
            self.train_targets.view(),
            header.train.rows,
            classes,
        )?;
        expect(
            "held-out soft targets",
            self.validation_targets.view(),
            header.validation.rows,
            classes,
        )?;
        expect(
            "synthetic soft targets",
            self.synthetic_targets.view(),
            header.synthetic_sets * header.train.rows,
            classes,
        )?;
        if header.synthetic_sets > 0 && header.recipe.augmentation == Augmentation::None {
            return bad("the knowledge has synthetic sets but its recipe makes none".into());
        }
        if let Some(hub) = &self.hub {
            let dim = header.recipe.hub.dim;
            expect(
                "training hub vectors",
                hub.train.view(),
                header.train.rows,
                dim,
            )?;
            expect(
                "held-out hub vectors",
                hub.validation.view(),
                header.validation.rows,
                dim,
            )?;
        }
        Ok(())
    }

    /// The training and held-out inputs the receiver uses, from the reference `inputs` it
    /// holds (and the separate held-out inputs, when the knowledge was emitted with them).
    /// Refuses reference inputs whose fingerprint differs from the knowledge's.
    pub fn datasets(
        &self,
        inputs: &Dataset,
        validation: Option<&Dataset>,
    ) -> Result<(Dataset, Dataset)> {
        let header = &self.header;
        header.inputs.check(inputs, "reference inputs")?;
        let (train, held_out) = match (header.split, validation) {
            (Split::HoldOut { share, seed }, None) => hold_out(inputs, share, seed)?,
            (Split::HoldOut { .. }, Some(given)) => {
                return Err(Error::KnowledgeMismatch(format!(
                    "the knowledge holds out a share of the reference inputs, so it has no soft \
                     targets for {}; leave out the separate held-out inputs",
                    given.source.display()
                )))
            }
            (Split::Separate, Some(given)) => (inputs.clone(), given.clone()),
            (Split::Separate, None) => {
                return Err(Error::KnowledgeMismatch(format!(
                    "the knowledge was emitted with separate held-out inputs ({} samples, \
                     fingerprint {}); give them too",
                    header.validation.rows,
                    &header.validation.sha256[..16]
                )))
            }
        };
        // The shares are checked against their own fingerprints where they are used
        // (`Absorber::absorb`), not twice.
        Ok((train, held_out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::ArrayD;

    fn dataset(values: Vec<i64>) -> Dataset {
        let rows = values.len() / 4;
        Dataset::new(
            Tensor::I64(ArrayD::from_shape_vec(vec![rows, 4], values).unwrap()),
            None,
            "inputs.npy".into(),
        )
        .unwrap()
    }

    #[test]
    fn fingerprints_see_every_element_and_the_shape() {
        let base = dataset((0..40).collect());
        let fingerprint = InputFingerprint::of(&base.inputs);
        assert_eq!(fingerprint, InputFingerprint::of(&base.inputs.clone()));
        assert_eq!(
            (fingerprint.rows, fingerprint.sample_shape.clone()),
            (10, vec![4])
        );
        let mut changed: Vec<i64> = (0..40).collect();
        changed[17] += 1;
        let other = dataset(changed);
        let message = fingerprint.check(&other, "reference inputs").unwrap_err();
        assert!(message.to_string().contains("fingerprint"), "{message}");
        let reshaped = Tensor::I64(ArrayD::from_shape_vec(vec![20, 2], (0..40).collect()).unwrap());
        assert_ne!(InputFingerprint::of(&reshaped), fingerprint);
    }

    #[test]
    fn the_split_and_the_synthetic_sets_are_reproducible() {
        let inputs = dataset((0..400).map(|v| v % 256).collect());
        let (train, validation) = hold_out(&inputs, 0.2, 3).unwrap();
        assert_eq!((train.len(), validation.len()), (80, 20));
        let (again, _) = hold_out(&inputs, 0.2, 3).unwrap();
        assert_eq!(again.inputs, train.inputs);
        let first = synthetic_inputs(Augmentation::Mix, 3, 0, &train.inputs).unwrap();
        assert_eq!(
            first,
            synthetic_inputs(Augmentation::Mix, 3, 0, &train.inputs).unwrap()
        );
        assert_ne!(
            first,
            synthetic_inputs(Augmentation::Mix, 3, 1, &train.inputs).unwrap()
        );
        assert!(synthetic_inputs(Augmentation::None, 3, 0, &train.inputs)
            .unwrap()
            .is_none());
        assert!(hold_out(&inputs, 1.0, 0).is_err());
    }
}
