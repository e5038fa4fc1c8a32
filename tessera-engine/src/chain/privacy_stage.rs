//! The built-in `privacy` stage: releases the mean of the token's per-record vectors with
//! (ε, δ)-differential privacy (see [`crate::privacy`]).

use ndarray::ArrayView2;
use tessera_api::{StageContext, StageKind, StageToken, TokenStage};

use tessera_privacy::{release_mean, secure_rng, seeded_rng, Neighbouring, ReleaseOptions};

/// The stage's name.
pub const PRIVACY_STAGE: &str = "privacy";

/// Clip each record, average, add analytic-Gaussian noise. Parameters (all optional):
/// `epsilon` (1.0; `inf` for no noise), `delta` (1e-5), `clip_norm` (1.0), `neighbouring`
/// (`replace-one` or `add-remove-one`), and `seed` — for reproducible tests only, never for a
/// real release, since predictable noise protects nothing.
pub struct PrivacyStage;

fn number(parameters: &tessera_api::Metadata, key: &str, default: f64) -> Result<f64, String> {
    match parameters.get(key) {
        None | Some(serde_json::Value::Null) => Ok(default),
        Some(serde_json::Value::String(text)) if text.eq_ignore_ascii_case("inf") => {
            Ok(f64::INFINITY)
        }
        Some(value) => value
            .as_f64()
            .ok_or_else(|| format!("parameter {key} must be a number, found {value}")),
    }
}

impl TokenStage for PrivacyStage {
    fn name(&self) -> &str {
        PRIVACY_STAGE
    }

    fn kind(&self) -> StageKind {
        StageKind::Privacy
    }

    fn process(&self, token: StageToken, context: &StageContext) -> Result<StageToken, String> {
        let parameters = &context.parameters;
        let neighbouring = match parameters
            .get("neighbouring")
            .and_then(|value| value.as_str())
        {
            None | Some("replace-one") => Neighbouring::ReplaceOne,
            Some("add-remove-one") => Neighbouring::AddRemoveOne,
            Some(other) => {
                return Err(format!(
                    "unknown neighbouring relation {other:?}; use replace-one or add-remove-one"
                ))
            }
        };
        let options = ReleaseOptions {
            epsilon: number(parameters, "epsilon", 1.0)?,
            delta: number(parameters, "delta", 1e-5)?,
            clip_norm: number(parameters, "clip_norm", 1.0)?,
            neighbouring,
        };
        let [rows, width] = token.shape.as_slice() else {
            return Err(format!(
                "expects per-record vectors of shape [records, width], found shape {:?}",
                token.shape
            ));
        };
        let records = ArrayView2::from_shape((*rows as usize, *width as usize), &token.vector)
            .map_err(|error| format!("payload does not match shape {:?}: {error}", token.shape))?;
        let release = match parameters.get("seed").and_then(|seed| seed.as_u64()) {
            Some(seed) => release_mean(records, &options, &mut seeded_rng(seed)),
            None => release_mean(
                records,
                &options,
                &mut secure_rng().map_err(|e| e.to_string())?,
            ),
        }
        .map_err(|error| error.to_string())?;
        let mut metadata = token.metadata;
        metadata.insert(
            "privacy".into(),
            serde_json::to_value(&release.report).map_err(|error| error.to_string())?,
        );
        let shape = vec![release.vector.len() as u64];
        Ok(StageToken::new(release.vector, shape, metadata))
    }
}
