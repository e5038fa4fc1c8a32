//! What a plugin is told about a model: a plain description of its ONNX graph.

use serde::{Deserialize, Serialize};

/// One dimension of a declared shape.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DimSummary {
    /// A fixed length.
    Fixed(u64),
    /// A length chosen at run time, by its symbolic name (e.g. `batch`).
    Symbolic(String),
}

/// A graph input or output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValueSummary {
    /// Tensor name.
    pub name: String,
    /// Element type (`float32`, `int64`, ...).
    pub dtype: String,
    /// Declared shape.
    pub shape: Vec<DimSummary>,
}

/// A stored tensor (weights, constants).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InitializerSummary {
    /// Tensor name.
    pub name: String,
    /// Element type.
    pub dtype: String,
    /// Shape.
    pub dims: Vec<u64>,
}

/// One node of the graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeSummary {
    /// Node name (may be empty).
    pub name: String,
    /// Operator type, e.g. `LayerNormalization`.
    pub op_type: String,
    /// Operator domain (empty for the default ONNX domain).
    pub domain: String,
    /// Input tensor names, in order (empty strings for omitted optional inputs).
    pub inputs: Vec<String>,
    /// Output tensor names, in order.
    pub outputs: Vec<String>,
    /// Scalar and list attributes as JSON (`{"direction": "bidirectional", "hidden_size": 32}`).
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

/// Everything a plugin may use to recognise an architecture. Nodes are in topological order
/// (the order of the ONNX file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphSummary {
    /// Inputs fed at run time.
    pub inputs: Vec<ValueSummary>,
    /// Declared outputs.
    pub outputs: Vec<ValueSummary>,
    /// Every node.
    pub nodes: Vec<NodeSummary>,
    /// Every initializer.
    pub initializers: Vec<InitializerSummary>,
    /// The opset of the default domain.
    pub opset: Option<i64>,
    /// Inferred shapes of computed tensors, by name, where the host could infer them; the batch
    /// dimension is symbolic, named as in the inputs.
    #[serde(default)]
    pub shapes: std::collections::BTreeMap<String, Vec<DimSummary>>,
}

impl GraphSummary {
    /// Nodes whose operator type is `op_type`, in graph order.
    pub fn nodes_of<'a>(&'a self, op_type: &'a str) -> impl Iterator<Item = &'a NodeSummary> {
        self.nodes
            .iter()
            .filter(move |node| node.op_type == op_type)
    }

    /// How many nodes have operator type `op_type`.
    pub fn count(&self, op_type: &str) -> usize {
        self.nodes_of(op_type).count()
    }

    /// The initializer named `name`.
    pub fn initializer(&self, name: &str) -> Option<&InitializerSummary> {
        self.initializers.iter().find(|init| init.name == name)
    }

    /// Whether `tensor` is an initializer (a stored, not computed, tensor).
    pub fn is_initializer(&self, tensor: &str) -> bool {
        self.initializer(tensor).is_some()
    }

    /// The node that computes `tensor`.
    pub fn producer(&self, tensor: &str) -> Option<&NodeSummary> {
        self.nodes
            .iter()
            .find(|node| node.outputs.iter().any(|output| output == tensor))
    }

    /// Nodes that read `tensor`.
    pub fn consumers<'a>(&'a self, tensor: &'a str) -> impl Iterator<Item = &'a NodeSummary> {
        self.nodes
            .iter()
            .filter(move |node| node.inputs.iter().any(|input| input == tensor))
    }
}

/// Graph queries that adapters for common families share.
impl GraphSummary {
    /// Tensors that are constants: initializers, `Constant` outputs, and anything computed
    /// only from constants.
    pub fn constant_tensors(&self) -> std::collections::HashSet<&str> {
        let mut constant: std::collections::HashSet<&str> = self
            .initializers
            .iter()
            .map(|init| init.name.as_str())
            .collect();
        for node in &self.nodes {
            let mut inputs = node
                .inputs
                .iter()
                .filter(|input| !input.is_empty())
                .peekable();
            let from_constants =
                inputs.peek().is_some() && inputs.all(|input| constant.contains(input.as_str()));
            if node.op_type == "Constant" || from_constants {
                constant.extend(node.outputs.iter().map(String::as_str));
            }
        }
        constant
    }

    /// `Add` nodes whose two operands are both computed (not constants): residual connections,
    /// in graph order.
    pub fn residual_adds(&self) -> Vec<&NodeSummary> {
        let constant = self.constant_tensors();
        self.nodes_of("Add")
            .filter(|node| {
                node.inputs.len() == 2
                    && node
                        .inputs
                        .iter()
                        .all(|input| !constant.contains(input.as_str()))
            })
            .collect()
    }

    /// The input width of the last `Gemm` or `MatMul` with a stored weight: for a classifier,
    /// the width of the representation its head reads.
    pub fn classifier_input_width(&self) -> Option<u64> {
        self.nodes.iter().rev().find_map(|node| {
            let weight = self.initializer(node.inputs.get(1)?)?;
            match (node.op_type.as_str(), weight.dims.as_slice()) {
                ("Gemm", [_, columns]) if node.int_attribute("transB") == Some(1) => Some(*columns),
                ("Gemm" | "MatMul", [rows, _]) => Some(*rows),
                _ => None,
            }
        })
    }

    /// Stored tables read by `Gather` (token embeddings, position tables).
    pub fn gathered_tables(&self) -> Vec<&str> {
        self.nodes_of("Gather")
            .filter_map(|node| node.inputs.first())
            .filter(|table| self.is_initializer(table))
            .map(String::as_str)
            .collect()
    }
}

impl NodeSummary {
    /// An integer attribute.
    pub fn int_attribute(&self, name: &str) -> Option<i64> {
        self.attributes
            .get(name)
            .and_then(serde_json::Value::as_i64)
    }

    /// A string attribute.
    pub fn string_attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .get(name)
            .and_then(serde_json::Value::as_str)
    }
}
