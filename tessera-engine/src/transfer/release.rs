//! Knowledge through the privacy stage before it leaves the transmitter's owner: every matrix
//! computed from the reference inputs is released with (ε, δ)-differential privacy per record.

use ndarray::{concatenate, s, Array2, ArrayView2, Axis};
use rand::CryptoRng;
use tessera_privacy::{release_rows, Neighbouring, ReleaseOptions, ReleaseReport};

use super::emit::log_softmax_rows;
use super::knowledge::Knowledge;
use super::options::Augmentation;
use crate::{Error, Result};

/// How knowledge is privatised.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KnowledgePrivacy {
    /// ε of the whole release (+∞: no noise, no clipping — recorded as such).
    pub epsilon: f64,
    /// δ of the whole release.
    pub delta: f64,
    /// C: each soft-target row, as centred logits at the objective's temperature, is clipped
    /// to this L2 norm. Scaling centred logits down keeps their order (the top class stays
    /// the top class) and only softens the distribution, so a small C costs little; the
    /// noise grows with C.
    pub clip_norm: f64,
    /// Which reference sets count as neighbours.
    pub neighbouring: Neighbouring,
}

impl Default for KnowledgePrivacy {
    fn default() -> Self {
        Self {
            epsilon: 8.0,
            delta: 1e-5,
            clip_norm: 1.0,
            neighbouring: Neighbouring::ReplaceOne,
        }
    }
}

fn stack(parts: &[ArrayView2<f32>]) -> Result<Array2<f32>> {
    concatenate(Axis(0), parts).map_err(|error| Error::Shape(error.to_string()))
}

/// `matrix`'s rows split back into consecutive blocks of `rows` rows.
fn unstack(matrix: &Array2<f32>, rows: &[usize]) -> Vec<Array2<f32>> {
    let mut start = 0;
    rows.iter()
        .map(|&count| {
            let block = matrix.slice(s![start..start + count, ..]).to_owned();
            start += count;
            block
        })
        .collect()
}

fn centred(log_probs: &Array2<f32>) -> Array2<f32> {
    let mut rows = log_probs.clone();
    for mut row in rows.outer_iter_mut() {
        let mean = row.mean().unwrap_or(0.0);
        row -= mean;
    }
    rows
}

fn report_json(report: &ReleaseReport, matrix: &str) -> Result<serde_json::Value> {
    let mut value = serde_json::to_value(report).map_err(|source| Error::Serialize {
        context: "the privacy report",
        source,
    })?;
    if let Some(object) = value.as_object_mut() {
        object.insert("matrix".into(), matrix.into());
    }
    Ok(value)
}

impl Knowledge {
    /// How many released rows one reference record can change: its own soft-target row, and
    /// in every mixed set its own row and the row it lends a span to.
    pub fn rows_per_record(&self) -> usize {
        match self.header.recipe.augmentation {
            Augmentation::Mix => 1 + 2 * self.header.synthetic_sets,
            Augmentation::None | Augmentation::SampleDomain => 1,
        }
    }

    /// The knowledge released through the privacy stage with `privacy`, and one report per
    /// released matrix (also recorded in the header). Soft targets are released as centred
    /// logits, each row clipped to C and noised with the analytic Gaussian mechanism at the
    /// sensitivity of [`rows_per_record`](Self::rows_per_record) rows, then turned back into
    /// log-probabilities. Hub vectors (unit norm, C = 1) are a second release; ε and δ are then
    /// split evenly between the two. `rng` must be [`tessera_privacy::secure_rng`] for anything
    /// that leaves the machine.
    pub fn release(
        mut self,
        privacy: &KnowledgePrivacy,
        rng: &mut impl CryptoRng,
    ) -> Result<(Knowledge, Vec<ReleaseReport>)> {
        let header = &self.header;
        if privacy.epsilon.is_finite()
            && header.recipe.augmentation == Augmentation::SampleDomain
            && header.synthetic_sets > 0
        {
            return Err(Error::InvalidOption(
                "sample-domain inputs are drawn from the range of all reference inputs, which \
                 any one record can move, so no per-record sensitivity bounds them; emit with \
                 --augmentation mix or none for a finite epsilon"
                    .into(),
            ));
        }
        let parts = if self.hub.is_some() { 2.0 } else { 1.0 };
        let options = |clip_norm| ReleaseOptions {
            epsilon: privacy.epsilon / parts,
            delta: privacy.delta / parts,
            clip_norm,
            neighbouring: privacy.neighbouring,
        };
        let rows = [
            self.train_targets.nrows(),
            self.validation_targets.nrows(),
            self.synthetic_targets.nrows(),
        ];
        let logits = stack(&[
            centred(&self.train_targets).view(),
            centred(&self.validation_targets).view(),
            centred(&self.synthetic_targets).view(),
        ])?;
        let released = release_rows(
            logits.view(),
            &options(privacy.clip_norm),
            self.rows_per_record(),
            rng,
        )?;
        let mut targets = unstack(&log_softmax_rows(released.rows.view(), 1.0), &rows).into_iter();
        self.train_targets = targets.next().unwrap_or_default();
        self.validation_targets = targets.next().unwrap_or_default();
        self.synthetic_targets = targets.next().unwrap_or_default();
        let mut reports = vec![released.report];
        let mut recorded = vec![report_json(&reports[0], "soft-targets")?];
        if let Some(hub) = &mut self.hub {
            let rows = [hub.train.nrows(), hub.validation.nrows()];
            let vectors = stack(&[hub.train.view(), hub.validation.view()])?;
            let released = release_rows(vectors.view(), &options(1.0), 1, rng)?;
            let mut normalised = released.rows;
            for mut row in normalised.outer_iter_mut() {
                let norm = row.dot(&row).sqrt().max(1e-12);
                row /= norm;
            }
            let mut blocks = unstack(&normalised, &rows).into_iter();
            hub.train = blocks.next().unwrap_or_default();
            hub.validation = blocks.next().unwrap_or_default();
            recorded.push(report_json(&released.report, "hub-vectors")?);
            reports.push(released.report);
        }
        self.header.privacy = recorded;
        self.validate()?;
        Ok((self, reports))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transfer::knowledge::{
        InputFingerprint, KnowledgeHeader, Split, TransmitterSummary,
    };
    use crate::transfer::TransferOptions;
    use tessera_privacy::seeded_rng;
    use tessera_tensor::tensor::Tensor;

    fn knowledge(sets: usize) -> Knowledge {
        let fingerprint =
            |rows| InputFingerprint::of(&Tensor::I64(ndarray::ArrayD::zeros(vec![rows, 4])));
        let targets = |rows: usize| {
            log_softmax_rows(
                Array2::from_shape_fn((rows, 3), |(r, c)| ((r * 7 + c * 3) % 5) as f32).view(),
                2.0,
            )
        };
        Knowledge {
            header: KnowledgeHeader {
                transmitter: TransmitterSummary::three_class_sample(),
                recipe: TransferOptions::default(),
                inputs: fingerprint(60),
                train: fingerprint(50),
                validation: fingerprint(10),
                split: Split::Separate,
                synthetic_sets: sets,
                privacy: Vec::new(),
                quantised_receiver: None,
            },
            train_targets: targets(50),
            validation_targets: targets(10),
            synthetic_targets: targets(50 * sets),
            hub: None,
        }
    }

    #[test]
    fn no_noise_is_exact_and_recorded() {
        let exact = knowledge(2);
        let privacy = KnowledgePrivacy {
            epsilon: f64::INFINITY,
            ..KnowledgePrivacy::default()
        };
        let (released, reports) = exact.clone().release(&privacy, &mut seeded_rng(1)).unwrap();
        assert_eq!(reports.len(), 1);
        assert_eq!(reports[0].sigma, 0.0);
        assert_eq!(released.header.privacy.len(), 1);
        let largest = (&released.train_targets - &exact.train_targets)
            .iter()
            .fold(0.0f32, |m, d| m.max(d.abs()));
        assert!(largest < 1e-5, "{largest}");
    }

    #[test]
    fn noise_is_calibrated_to_every_row_a_record_touches() {
        let exact = knowledge(3);
        assert_eq!(exact.rows_per_record(), 7);
        let (released, reports) = exact
            .clone()
            .release(&KnowledgePrivacy::default(), &mut seeded_rng(2))
            .unwrap();
        let report = &reports[0];
        assert_eq!(report.rows_per_record, 7);
        assert!((report.sensitivity - 7f64.sqrt() * 2.0).abs() < 1e-9);
        assert!(report.sigma > 0.0);
        assert_ne!(released.train_targets, exact.train_targets);
        // Still log-probabilities: each row's probabilities sum to one.
        for row in released.synthetic_targets.rows() {
            let total: f32 = row.iter().map(|v| v.exp()).sum();
            assert!((total - 1.0).abs() < 1e-4, "{total}");
        }
        let mut sampled = exact;
        sampled.header.recipe.augmentation = Augmentation::SampleDomain;
        let message = sampled
            .release(&KnowledgePrivacy::default(), &mut seeded_rng(3))
            .unwrap_err();
        assert!(message.to_string().contains("sample-domain"), "{message}");
    }
}
