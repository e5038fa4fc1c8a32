//! What a token or a model file holds, as JSON: `tessera inspect`, `validate` and
//! `inspect-model --json` print it, the MCP server and the Python package return it.

use std::path::Path;

use tessera_api::GraphSummary;
use tessera_engine::plugin::{summarise, AdapterChoice, PluginRegistry};
use tessera_engine::{Error, Result};
use tessera_onnx::{ModelSummary, OnnxModel};
use tessera_tbf::{self as tbf, LoadOptions, Loaded, VectorStats};

/// `value` as JSON; `context` names the report it goes into if that fails.
fn json_of(value: &impl serde::Serialize, context: &'static str) -> Result<serde_json::Value> {
    serde_json::to_value(value).map_err(|source| Error::Serialize { context, source })
}

/// A token's header, metadata and vector statistics (`full`: every element too).
pub fn inspect_token(path: &Path, options: &LoadOptions, full: bool) -> Result<serde_json::Value> {
    let info = tbf::info(path)?;
    let loaded = tbf::load(path, options)?;
    let stats = VectorStats::of(loaded.token.vector());
    let context = "the token report";
    let mut report = json_of(&info, context)?;
    report["file"] = path.display().to_string().into();
    report["crc_variant"] = json_of(&loaded.crc, context)?;
    report["hmac"] = json_of(&loaded.hmac, context)?;
    report["shape"] = json_of(&loaded.token.shape()?, context)?;
    report["metadata"] = loaded.token.metadata.to_json();
    report["statistics"] = json_of(&stats, context)?;
    if full {
        report["vector"] = loaded.token.vector().into();
    }
    Ok(report)
}

/// The verdict on a token that passed every structural, checksum and HMAC check, with the
/// token as read.
pub fn validate_token(path: &Path, options: &LoadOptions) -> Result<(serde_json::Value, Loaded)> {
    let loaded = tbf::load(path, options)?;
    let verdict = serde_json::json!({
        "file": path.display().to_string(),
        "valid": true,
        "version": format!("{}.{}", loaded.version.0, loaded.version.1),
        "quantisation": loaded.quant,
        "crc_variant": loaded.crc,
        "hmac": loaded.hmac,
        "vector_count": loaded.token.vector().len(),
        "shape": loaded.token.shape()?,
    });
    Ok((verdict, loaded))
}

/// The verdict on a token [`validate_token`] refused with `error`.
pub fn invalid_token_verdict(path: &Path, error: &Error) -> serde_json::Value {
    serde_json::json!({
        "file": path.display().to_string(),
        "valid": false,
        "error": error.to_string(),
    })
}

/// A model file as adapters see it: its summary, the graph summary adapters receive, and the
/// adapter that claims it with its tap plan.
#[derive(Debug, Clone)]
pub struct ModelInspection {
    /// Inputs, outputs, opsets, operators and parameters.
    pub summary: ModelSummary,
    /// What adapters receive.
    pub graph: GraphSummary,
    /// The adapter chosen, its plan and every adapter's verdict.
    pub choice: AdapterChoice,
}

impl ModelInspection {
    /// Inspects the model at `path`, with `adapter` instead of the best-scoring one if given.
    pub fn of(path: &Path, registry: &PluginRegistry, adapter: Option<&str>) -> Result<Self> {
        let model = OnnxModel::load(path)?;
        let summary = ModelSummary::of(&model);
        let graph = summarise(&model);
        let choice = registry.choose_for_summary(&graph, model.name(), adapter)?;
        Ok(Self {
            summary,
            graph,
            choice,
        })
    }

    /// The inferred shape of `tensor`, if known.
    pub fn shape_of(&self, tensor: &str) -> serde_json::Value {
        self.graph
            .shapes
            .get(tensor)
            .map_or(serde_json::Value::Null, |shape| serde_json::json!(shape))
    }

    /// The inspection as JSON (`tessera inspect-model --json`); `path` names the model.
    pub fn to_json(&self, path: &Path) -> Result<serde_json::Value> {
        let mut report = json_of(&self.summary, "the model report")?;
        report["model"] = path.display().to_string().into();
        report["op_histogram"] = self
            .summary
            .op_histogram
            .iter()
            .map(|(op, count)| (op.clone(), serde_json::Value::from(*count)))
            .collect::<serde_json::Map<_, _>>()
            .into();
        let mut adapter = json_of(&self.choice, "the model report")?;
        for (tap, json) in self
            .choice
            .plan
            .taps
            .iter()
            .zip(adapter["plan"]["taps"].as_array_mut().into_iter().flatten())
        {
            json["shape"] = self.shape_of(&tap.tensor);
        }
        report["adapter"] = adapter;
        Ok(report)
    }
}
