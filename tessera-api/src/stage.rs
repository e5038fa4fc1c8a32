//! Chain stages: steps the pipeline runs in order on a token before it is written — a
//! transform, a privacy mechanism, an exporter. The host's own privacy and TBF export are
//! stages on this same interface.

use serde::{Deserialize, Serialize};

use crate::metadata::Metadata;

/// What a stage does, which fixes where it may stand in a chain.
///
/// New kinds may be added in a minor version: match with a wildcard arm.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StageKind {
    /// Changes the payload or metadata (runs before privacy). The default.
    #[default]
    Transform,
    /// Releases a privatised payload (runs once, after transforms).
    Privacy,
    /// Writes the token somewhere (runs last).
    Export,
}

/// The token as it moves through the chain. Built with [`StageToken::new`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct StageToken {
    /// The payload, row-major.
    #[serde(skip)]
    pub vector: Vec<f32>,
    /// The payload's shape: `[rows, width]` for per-record vectors before privacy, `[width]`
    /// for a released summary.
    pub shape: Vec<u64>,
    /// Custom metadata that ends up in the token (`x` in TBF); stages add their facts here.
    pub metadata: Metadata,
}

impl StageToken {
    /// The token with payload `vector` of shape `shape`, carrying `metadata`.
    pub fn new(vector: Vec<f32>, shape: Vec<u64>, metadata: Metadata) -> Self {
        Self {
            vector,
            shape,
            metadata,
        }
    }
}

/// What a stage is given besides the token. Built with [`StageContext::new`], then
/// [`with_output`](StageContext::with_output).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
#[non_exhaustive]
pub struct StageContext {
    /// The stage's settings (from `tessera.toml`, `[stages.<name>]`).
    pub parameters: Metadata,
    /// Where an exporter should write, if the pipeline names an output.
    pub output: Option<String>,
}

impl StageContext {
    /// The context of a stage configured with `parameters`, with no output.
    pub fn new(parameters: Metadata) -> Self {
        Self {
            parameters,
            output: None,
        }
    }

    /// The context with `output` as where an exporter should write.
    pub fn with_output(mut self, output: Option<String>) -> Self {
        self.output = output;
        self
    }
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
