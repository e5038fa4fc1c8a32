//! Knowledge as a TBF v1.1 token: the matrices one after another in the payload, and under the
//! custom metadata key [`KNOWLEDGE_KEY`] the header and where each matrix lies. Any v1.1 reader
//! (`tessera-core` 0.1.0 included) loads such a token as a flat vector.

use std::path::Path;

use ndarray::Array2;
use serde::{Deserialize, Serialize};
use tessera_tbf::{
    self as tbf, json_to_meta_value, meta_value_to_json, KnowledgeType, LoadOptions, Metadata,
    SaveOptions, Token,
};

use super::knowledge::{HubVectors, Knowledge, KnowledgeHeader};
use crate::{Error, Result};

/// Custom metadata key of the knowledge's description.
pub const KNOWLEDGE_KEY: &str = "tessera_knowledge";

/// Version of the knowledge layout this build writes and reads.
pub const KNOWLEDGE_FORMAT: u64 = 1;

/// The payload's matrices, in order.
const SECTIONS: [&str; 5] = [
    "train-targets",
    "validation-targets",
    "synthetic-targets",
    "hub-train",
    "hub-validation",
];

/// One matrix of the payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Section {
    name: String,
    rows: usize,
    columns: usize,
}

/// What the custom metadata key holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Layout {
    format: u64,
    sections: Vec<Section>,
    header: KnowledgeHeader,
}

fn malformed(message: impl std::fmt::Display) -> Error {
    Error::KnowledgeMismatch(format!(
        "the token does not hold valid knowledge ({message}); it may be damaged, or not have been \
         written by `tessera emit`"
    ))
}

impl Knowledge {
    fn matrices(&self) -> Vec<&Array2<f32>> {
        let mut matrices = vec![
            &self.train_targets,
            &self.validation_targets,
            &self.synthetic_targets,
        ];
        if let Some(hub) = &self.hub {
            matrices.extend([&hub.train, &hub.validation]);
        }
        matrices
    }

    /// The knowledge as a token (knowledge type BEHAVIOUR; `pe`/`pd` state the privacy spent,
    /// ε = +∞ when nothing was privatised).
    pub fn to_token(&self) -> Result<Token> {
        let matrices = self.matrices();
        let layout = Layout {
            format: KNOWLEDGE_FORMAT,
            sections: matrices
                .iter()
                .zip(SECTIONS)
                .map(|(matrix, name)| Section {
                    name: name.into(),
                    rows: matrix.nrows(),
                    columns: matrix.ncols(),
                })
                .collect(),
            header: self.header.clone(),
        };
        let described = serde_json::to_value(&layout).map_err(|source| Error::Serialize {
            context: "the knowledge's description",
            source,
        })?;
        let mut metadata = Metadata::new(KnowledgeType::Behaviour);
        let (epsilon, delta) = self.privacy_spent();
        metadata.privacy_epsilon = epsilon;
        metadata.privacy_delta = delta;
        metadata.source_model_id = self.header.transmitter.name.clone();
        metadata
            .modality_weights
            .insert("B".into(), if self.hub.is_some() { 0.9 } else { 1.0 });
        if self.hub.is_some() {
            metadata.modality_weights.insert("A".into(), 0.1);
        }
        metadata
            .custom
            .insert(KNOWLEDGE_KEY.into(), json_to_meta_value(&described));
        let vector = matrices
            .iter()
            .flat_map(|matrix| matrix.iter().copied())
            .collect();
        Ok(Token::with_metadata(metadata, vector))
    }

    /// The (ε, δ) the privacy reports add up to under basic composition; (+∞, 0) when the
    /// knowledge was not privatised.
    pub fn privacy_spent(&self) -> (f64, f64) {
        if self.header.privacy.is_empty() {
            return (f64::INFINITY, 0.0);
        }
        self.header
            .privacy
            .iter()
            .fold((0.0, 0.0), |(e, d), report| {
                let epsilon = report["epsilon"].as_f64().unwrap_or(f64::INFINITY);
                (e + epsilon, d + report["delta"].as_f64().unwrap_or(0.0))
            })
    }

    /// The knowledge a token carries; refuses a token without knowledge, of a newer layout, or
    /// whose matrices do not agree with its description.
    pub fn from_token(token: &Token) -> Result<Self> {
        let described = token
            .metadata
            .custom
            .get(KNOWLEDGE_KEY)
            .ok_or_else(|| malformed(format!("no custom metadata key {KNOWLEDGE_KEY:?}")))?;
        let layout: Layout =
            serde_json::from_value(meta_value_to_json(described)).map_err(malformed)?;
        if layout.format != KNOWLEDGE_FORMAT {
            return Err(Error::KnowledgeMismatch(format!(
                "the token holds knowledge of layout {}, this build reads layout \
                 {KNOWLEDGE_FORMAT}; use the Tessera version that emitted it",
                layout.format
            )));
        }
        let names: Vec<&str> = layout.sections.iter().map(|s| s.name.as_str()).collect();
        if names != SECTIONS[..3] && names != SECTIONS[..] {
            return Err(malformed(format!("unexpected sections {names:?}")));
        }
        let vector = token.vector();
        let mut offset = 0usize;
        let mut matrices = Vec::with_capacity(layout.sections.len());
        for section in &layout.sections {
            let length = section
                .rows
                .checked_mul(section.columns)
                .filter(|length| offset + length <= vector.len())
                .ok_or_else(|| {
                    malformed(format!(
                        "section {} ({} × {}) runs past the payload's {} values",
                        section.name,
                        section.rows,
                        section.columns,
                        vector.len()
                    ))
                })?;
            let values = vector[offset..offset + length].to_vec();
            matrices.push(
                Array2::from_shape_vec((section.rows, section.columns), values)
                    .map_err(malformed)?,
            );
            offset += length;
        }
        if offset != vector.len() {
            return Err(malformed(format!(
                "the sections hold {offset} values, the payload {}",
                vector.len()
            )));
        }
        let mut matrices = matrices.into_iter();
        let mut next = || matrices.next().unwrap_or_default();
        let (train_targets, validation_targets, synthetic_targets) = (next(), next(), next());
        let hub = (layout.sections.len() == SECTIONS.len()).then(|| HubVectors {
            train: next(),
            validation: next(),
        });
        let knowledge = Self {
            header: layout.header,
            train_targets,
            validation_targets,
            synthetic_targets,
            hub,
        };
        knowledge.validate()?;
        Ok(knowledge)
    }

    /// Writes the knowledge as a token at `path` (atomically); returns the bytes written.
    pub fn save(&self, path: &Path, options: &SaveOptions) -> Result<u64> {
        Ok(tbf::save(path, &self.to_token()?, options)?)
    }

    /// Reads the knowledge of the token at `path`, checked as `options` say.
    pub fn load(path: &Path, options: &LoadOptions) -> Result<Self> {
        Self::from_token(&tbf::load(path, options)?.token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transfer::knowledge::{InputFingerprint, Split, TransmitterSummary};
    use crate::transfer::TransferOptions;
    use tessera_tensor::tensor::Tensor;

    fn knowledge(hub: bool) -> Knowledge {
        let fingerprint =
            |rows| InputFingerprint::of(&Tensor::I64(ndarray::ArrayD::zeros(vec![rows, 4])));
        let targets =
            |rows: usize| Array2::from_shape_fn((rows, 3), |(r, c)| -((r + c) as f32) / 10.0 - 0.1);
        Knowledge {
            header: KnowledgeHeader {
                transmitter: TransmitterSummary::three_class_sample(),
                recipe: TransferOptions {
                    hub: crate::uhs::HubOptions {
                        dim: 5,
                        ..Default::default()
                    },
                    ..Default::default()
                },
                inputs: fingerprint(6),
                train: fingerprint(4),
                validation: fingerprint(2),
                split: Split::HoldOut {
                    share: 0.3,
                    seed: 1,
                },
                synthetic_sets: 2,
                privacy: Vec::new(),
                quantised_receiver: None,
            },
            train_targets: targets(4),
            validation_targets: targets(2),
            synthetic_targets: targets(8),
            hub: hub.then(|| HubVectors {
                train: Array2::from_elem((4, 5), 0.2),
                validation: Array2::from_elem((2, 5), -0.2),
            }),
        }
    }

    #[test]
    fn knowledge_survives_a_token_both_ways() {
        for hub in [false, true] {
            let original = knowledge(hub);
            let bytes =
                tbf::encode(&original.to_token().unwrap(), &SaveOptions::default()).unwrap();
            let loaded = tbf::decode(&bytes, &LoadOptions::default()).unwrap();
            assert_eq!(Knowledge::from_token(&loaded.token).unwrap(), original);
            assert_eq!(loaded.token.metadata.privacy_epsilon, f64::INFINITY);
        }
    }

    #[test]
    fn a_token_whose_sections_do_not_fit_is_refused() {
        let mut token = knowledge(false).to_token().unwrap();
        let mut shorter = token.vector().to_vec();
        shorter.pop();
        token.set_vector(shorter);
        let message = Knowledge::from_token(&token).unwrap_err().to_string();
        assert!(
            message.contains("runs past") || message.contains("sections hold"),
            "{message}"
        );
        let plain = Token::new(KnowledgeType::Activation, vec![1.0]);
        let message = Knowledge::from_token(&plain).unwrap_err().to_string();
        assert!(message.contains(KNOWLEDGE_KEY), "{message}");
    }

    #[test]
    fn non_finite_targets_are_refused() {
        let mut token = knowledge(false).to_token().unwrap();
        let mut values = token.vector().to_vec();
        values[3] = f32::NAN;
        token.set_vector(values);
        let message = Knowledge::from_token(&token).unwrap_err().to_string();
        assert!(message.contains("NaN"), "{message}");
    }
}
