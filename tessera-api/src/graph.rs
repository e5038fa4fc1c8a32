//! What a plugin is told about a model: a plain description of its ONNX graph.
//!
//! Only the graph's facts and plain look-ups live here; structural heuristics shared by
//! adapters (residual connections, classifier widths, ...) are in the `tessera-adapter-kit`
//! crate, so that they can improve without changing this contract.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::attributes::{AttributeValue, Attributes};

/// One dimension of a declared shape.
///
/// New kinds of dimension may be added in a minor version: match with a wildcard arm, or use
/// [`as_fixed`](Self::as_fixed) and [`as_symbolic`](Self::as_symbolic).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum DimSummary {
    /// A fixed length.
    Fixed(u64),
    /// A length chosen at run time, by its symbolic name (e.g. `batch`).
    Symbolic(String),
}

impl DimSummary {
    /// The length, if the dimension is fixed.
    pub fn as_fixed(&self) -> Option<u64> {
        match self {
            DimSummary::Fixed(len) => Some(*len),
            DimSummary::Symbolic(_) => None,
        }
    }

    /// The symbolic name, if the dimension is chosen at run time.
    pub fn as_symbolic(&self) -> Option<&str> {
        match self {
            DimSummary::Symbolic(name) => Some(name),
            DimSummary::Fixed(_) => None,
        }
    }
}

/// A graph input or output. Built with [`ValueSummary::new`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct ValueSummary {
    /// Tensor name.
    pub name: String,
    /// Element type (`float32`, `int64`, ...).
    pub dtype: String,
    /// Declared shape.
    pub shape: Vec<DimSummary>,
}

impl ValueSummary {
    /// The tensor `name` of element type `dtype` and declared shape `shape`.
    pub fn new(name: impl Into<String>, dtype: impl Into<String>, shape: Vec<DimSummary>) -> Self {
        Self {
            name: name.into(),
            dtype: dtype.into(),
            shape,
        }
    }
}

/// A stored tensor (weights, constants). Built with [`InitializerSummary::new`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct InitializerSummary {
    /// Tensor name.
    pub name: String,
    /// Element type.
    pub dtype: String,
    /// Shape.
    pub dims: Vec<u64>,
}

impl InitializerSummary {
    /// The stored tensor `name` of element type `dtype` and shape `dims`.
    pub fn new(name: impl Into<String>, dtype: impl Into<String>, dims: Vec<u64>) -> Self {
        Self {
            name: name.into(),
            dtype: dtype.into(),
            dims,
        }
    }
}

/// One node of the graph. Built with [`NodeSummary::new`], then
/// [`with_domain`](NodeSummary::with_domain) and [`with_attributes`](NodeSummary::with_attributes).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
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
    /// Scalar and list attributes (`{"direction": "bidirectional", "hidden_size": 32}` on the
    /// wire); tensor and graph attributes are left out.
    pub attributes: Attributes,
}

impl NodeSummary {
    /// The node `name` of operator type `op_type` in the default domain, reading `inputs` and
    /// computing `outputs`, without attributes.
    pub fn new(
        name: impl Into<String>,
        op_type: impl Into<String>,
        inputs: Vec<String>,
        outputs: Vec<String>,
    ) -> Self {
        Self {
            name: name.into(),
            op_type: op_type.into(),
            domain: String::new(),
            inputs,
            outputs,
            attributes: Attributes::new(),
        }
    }

    /// The node in operator domain `domain` (e.g. `com.microsoft`).
    pub fn with_domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = domain.into();
        self
    }

    /// The node with `attributes`.
    pub fn with_attributes(mut self, attributes: Attributes) -> Self {
        self.attributes = attributes;
        self
    }

    /// An integer attribute.
    pub fn int_attribute(&self, name: &str) -> Option<i64> {
        self.attributes.get(name).and_then(AttributeValue::as_int)
    }

    /// A string attribute.
    pub fn string_attribute(&self, name: &str) -> Option<&str> {
        self.attributes.get(name).and_then(AttributeValue::as_str)
    }
}

/// Everything a plugin may use to recognise an architecture. Nodes are in topological order
/// (the order of the ONNX file). Built with [`GraphSummary::new`], then
/// [`with_opset`](GraphSummary::with_opset), [`with_opset_imports`](GraphSummary::with_opset_imports)
/// and [`with_shapes`](GraphSummary::with_shapes).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
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
    /// The opset of every domain the model imports, by domain name as the model writes it (the
    /// default domain usually as `""`, sometimes as `ai.onnx`), e.g.
    /// `{"": 17, "com.microsoft": 1}`: what a plugin needs to recognise custom-domain operators. Added in ABI 1.1; empty when the host is older. See
    /// [`opset_of`](Self::opset_of).
    pub opset_imports: BTreeMap<String, i64>,
    /// Inferred shapes of computed tensors, by name, where the host could infer them; the batch
    /// dimension is symbolic, named as in the inputs.
    pub shapes: BTreeMap<String, Vec<DimSummary>>,
}

impl GraphSummary {
    /// The graph of `inputs`, `outputs`, `nodes` and `initializers`, with no opset and no
    /// inferred shapes.
    pub fn new(
        inputs: Vec<ValueSummary>,
        outputs: Vec<ValueSummary>,
        nodes: Vec<NodeSummary>,
        initializers: Vec<InitializerSummary>,
    ) -> Self {
        Self {
            inputs,
            outputs,
            nodes,
            initializers,
            opset: None,
            opset_imports: BTreeMap::new(),
            shapes: BTreeMap::new(),
        }
    }

    /// The graph with `opset` as the default domain's opset.
    pub fn with_opset(mut self, opset: Option<i64>) -> Self {
        self.opset = opset;
        self
    }

    /// The graph with `opset_imports` as the opset of every imported domain.
    pub fn with_opset_imports(mut self, opset_imports: BTreeMap<String, i64>) -> Self {
        self.opset_imports = opset_imports;
        self
    }

    /// The graph with `shapes` as the inferred shapes of its computed tensors.
    pub fn with_shapes(mut self, shapes: BTreeMap<String, Vec<DimSummary>>) -> Self {
        self.shapes = shapes;
        self
    }

    /// The opset the model imports for `domain`. The default domain may be named `""` or
    /// `ai.onnx`; for it, [`opset`](Self::opset) answers when `opset_imports` is empty (a host
    /// older than ABI 1.1).
    pub fn opset_of(&self, domain: &str) -> Option<i64> {
        if let Some(&version) = self.opset_imports.get(domain) {
            return Some(version);
        }
        if !(domain.is_empty() || domain == "ai.onnx") {
            return None;
        }
        ["", "ai.onnx"]
            .iter()
            .find_map(|name| self.opset_imports.get(*name).copied())
            .or(self.opset)
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| name.to_string()).collect()
    }

    fn graph() -> GraphSummary {
        let mut attributes = Attributes::new();
        attributes.insert("hidden_size", 32);
        attributes.insert("direction", "bidirectional");
        GraphSummary::new(
            vec![ValueSummary::new(
                "x",
                "float32",
                vec![DimSummary::Symbolic("batch".into()), DimSummary::Fixed(8)],
            )],
            vec![ValueSummary::new("y", "float32", Vec::new())],
            vec![
                NodeSummary::new("lstm", "LSTM", strings(&["x", "w", "r"]), strings(&["h"]))
                    .with_attributes(attributes),
                NodeSummary::new("gelu", "Gelu", strings(&["h"]), strings(&["y"]))
                    .with_domain("com.microsoft"),
            ],
            vec![
                InitializerSummary::new("w", "float32", vec![2, 128, 8]),
                InitializerSummary::new("r", "float32", vec![2, 128, 32]),
            ],
        )
        .with_opset(Some(17))
        .with_opset_imports([("".to_string(), 17), ("com.microsoft".to_string(), 1)].into())
    }

    #[test]
    fn look_ups_find_nodes_and_tensors() {
        let graph = graph();
        assert_eq!(graph.count("LSTM"), 1);
        assert!(graph.is_initializer("w") && !graph.is_initializer("h"));
        assert_eq!(graph.producer("y").unwrap().domain, "com.microsoft");
        assert_eq!(graph.consumers("h").count(), 1);
        let lstm = graph.nodes_of("LSTM").next().unwrap();
        assert_eq!(lstm.int_attribute("hidden_size"), Some(32));
        assert_eq!(lstm.string_attribute("direction"), Some("bidirectional"));
        assert_eq!(lstm.int_attribute("direction"), None);
        assert_eq!(graph.inputs[0].shape[0].as_symbolic(), Some("batch"));
        assert_eq!(graph.inputs[0].shape[1].as_fixed(), Some(8));
    }

    #[test]
    fn opsets_are_found_by_domain() {
        let graph = graph();
        assert_eq!(graph.opset_of("com.microsoft"), Some(1));
        assert_eq!(graph.opset_of(""), Some(17));
        assert_eq!(graph.opset_of("ai.onnx"), Some(17));
        assert_eq!(graph.opset_of("org.pytorch.aten"), None);
        // From a 1.0 host only the default domain's opset is known.
        let older = GraphSummary::default().with_opset(Some(13));
        assert_eq!(older.opset_of(""), Some(13));
        assert_eq!(older.opset_of("com.microsoft"), None);
    }

    #[test]
    fn attributes_keep_their_wire_format() {
        let graph = graph();
        let json = serde_json::to_value(&graph.nodes[0]).unwrap();
        assert_eq!(
            json["attributes"],
            serde_json::json!({"direction": "bidirectional", "hidden_size": 32})
        );
        let back: GraphSummary =
            serde_json::from_str(&serde_json::to_string(&graph).unwrap()).unwrap();
        assert_eq!(back, graph);
    }
}
