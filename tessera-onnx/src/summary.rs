//! A model at a glance: what goes in and out, which operators it uses, how many parameters.

use std::collections::HashMap;

use super::{dtype_of, OnnxModel};
use tessera_tensor::tensor::{DType, TensorSpec};

/// One opset a model imports.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OpsetImport {
    /// Operator domain (`ai.onnx` for the default domain).
    pub domain: String,
    /// Opset version.
    pub version: i64,
}

/// The facts `tessera inspect-model` reports.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ModelSummary {
    /// Tool that wrote the model, with its version.
    pub producer: String,
    /// ONNX IR version.
    pub ir_version: i64,
    /// Imported opsets.
    pub opsets: Vec<OpsetImport>,
    /// Inputs fed at run time.
    pub inputs: Vec<TensorSpec>,
    /// Declared outputs.
    pub outputs: Vec<TensorSpec>,
    /// Number of nodes in the main graph.
    pub node_count: usize,
    /// Operator types with how often each occurs, most frequent first (ties by name).
    pub op_histogram: Vec<(String, usize)>,
    /// Elements of all floating-point initializers: the model's parameters.
    pub parameter_count: u64,
    /// Number of initializers of any type.
    pub initializer_count: usize,
}

impl ModelSummary {
    /// Summarises `model`.
    pub fn of(model: &OnnxModel) -> Self {
        let proto = model.proto();
        let graph = model.graph();
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for node in &graph.node {
            *counts.entry(node.op_type.as_str()).or_default() += 1;
        }
        let mut op_histogram: Vec<(String, usize)> = counts
            .into_iter()
            .map(|(op, count)| (op.to_string(), count))
            .collect();
        op_histogram.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let parameter_count = graph
            .initializer
            .iter()
            .filter(|init| {
                matches!(
                    dtype_of(init.data_type),
                    DType::F32 | DType::F64 | DType::F16
                )
            })
            .map(|init| {
                init.dims
                    .iter()
                    .map(|&dim| dim.max(0) as u64)
                    .product::<u64>()
            })
            .sum();
        let producer = [
            proto.producer_name.as_str(),
            proto.producer_version.as_str(),
        ]
        .iter()
        .filter(|part| !part.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ");
        Self {
            producer,
            ir_version: proto.ir_version,
            opsets: proto
                .opset_import
                .iter()
                .map(|import| OpsetImport {
                    domain: if import.domain.is_empty() {
                        "ai.onnx".into()
                    } else {
                        import.domain.clone()
                    },
                    version: import.version,
                })
                .collect(),
            inputs: model.inputs(),
            outputs: model.outputs(),
            node_count: graph.node.len(),
            op_histogram,
            parameter_count,
            initializer_count: graph.initializer.len(),
        }
    }
}
