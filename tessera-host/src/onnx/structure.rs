//! Candidate tap points read off the graph's structure: where blocks of a network end.
//!
//! Without knowing the architecture, the tensors most likely to carry a block's representation
//! are the outputs of residual additions (both operands computed, not constants), of
//! normalisation layers, and of recurrent layers. Architecture adapters refine this.

use std::collections::HashSet;

use super::OnnxModel;

/// Operators whose first output is a normalised representation.
const NORMALISATIONS: [&str; 4] = [
    "LayerNormalization",
    "RMSNormalization",
    "SimplifiedLayerNormalization",
    "SkipLayerNormalization",
];
/// Operators whose first output is a recurrent layer's sequence of hidden states.
const RECURRENT: [&str; 3] = ["LSTM", "GRU", "RNN"];

/// One tensor that may serve as a tap point.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TapCandidate {
    /// The tensor's name.
    pub tensor: String,
    /// The operator that produces it.
    pub op_type: String,
    /// The producing node's name.
    pub node: String,
    /// Why it is a candidate: `residual`, `normalisation` or `recurrent`.
    pub kind: &'static str,
}

/// Candidate tap points of `model`, in graph (depth) order.
pub fn candidate_taps(model: &OnnxModel) -> Vec<TapCandidate> {
    let graph = model.graph();
    let mut constant: HashSet<&str> = graph
        .initializer
        .iter()
        .map(|init| init.name.as_str())
        .collect();
    let mut candidates = Vec::new();
    for node in &graph.node {
        let inputs_constant = node
            .input
            .iter()
            .filter(|input| !input.is_empty())
            .all(|input| constant.contains(input.as_str()));
        if node.op_type == "Constant" || (inputs_constant && !node.input.is_empty()) {
            constant.extend(node.output.iter().map(String::as_str));
            continue;
        }
        let kind = match node.op_type.as_str() {
            "Add"
                if node.input.len() == 2
                    && node
                        .input
                        .iter()
                        .all(|input| !constant.contains(input.as_str())) =>
            {
                Some("residual")
            }
            op if NORMALISATIONS.contains(&op) => Some("normalisation"),
            op if RECURRENT.contains(&op) => Some("recurrent"),
            _ => None,
        };
        if let (Some(kind), Some(output)) = (kind, node.output.first()) {
            if !output.is_empty() {
                candidates.push(TapCandidate {
                    tensor: output.clone(),
                    op_type: node.op_type.clone(),
                    node: node.name.clone(),
                    kind,
                });
            }
        }
    }
    candidates
}
