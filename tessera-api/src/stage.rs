//! Chain stages: steps the pipeline runs in order on a token before it is written — a
//! transform, a privacy mechanism, an exporter. The host's own privacy and TBF export are
//! stages on this same interface.

use serde::{Deserialize, Serialize};

/// What a stage does, which fixes where it may stand in a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageKind {
    /// Changes the payload or metadata (runs before privacy).
    Transform,
    /// Releases a privatised payload (runs once, after transforms).
    Privacy,
    /// Writes the token somewhere (runs last).
    Export,
}

/// The token as it moves through the chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageToken {
    /// The payload, row-major.
    #[serde(skip)]
    pub vector: Vec<f32>,
    /// The payload's shape: `[rows, width]` for per-record vectors before privacy, `[width]`
    /// for a released summary.
    pub shape: Vec<u64>,
    /// Custom metadata that ends up in the token (`x` in TBF); stages add their facts here.
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

/// What a stage is given besides the token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct StageContext {
    /// The stage's settings (from `tessera.toml`, `[stages.<name>]`).
    pub parameters: serde_json::Map<String, serde_json::Value>,
    /// Where an exporter should write, if the pipeline names an output.
    pub output: Option<String>,
}

/// One step of the chain.
pub trait TokenStage: Send + Sync {
    /// A short unique name, e.g. `privacy` or `tbf-export`.
    fn name(&self) -> &str;

    /// What the stage does.
    fn kind(&self) -> StageKind;

    /// Runs the stage, returning the token for the next one.
    fn process(&self, token: StageToken, context: &StageContext) -> Result<StageToken, String>;
}
