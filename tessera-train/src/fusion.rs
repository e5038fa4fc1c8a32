//! The nodes the forward pass runs: the model's own, with chains that exporters spell out
//! replaced by one operator the graph has a fused kernel for. The model itself is not
//! changed; the trained receiver is written back with its original nodes.
//!
//! Recognised: the exact GELU as `Div(x, √2)` (or `Mul(x, 1/√2)`) → `Erf` → `Add(·, 1)` and
//! two `Mul`s by `x` and `0.5` in any order, as both PyTorch exporters write it; it becomes
//! one opset-20 `Gelu` node. A `MatMul` by a weight matrix followed by the addition of a bias
//! initializer (PyTorch's `Linear` on inputs with batch dimensions) becomes one `Gemm` node,
//! run as one dense layer. Two or more view operators in a row on learned data (attention's
//! head split and merge) become one `Views` node of a domain of Tessera's own, holding the
//! chain's nodes as a graph attribute: the backward pass then has one node for the chain.
//! Scaled dot-product attention, `MatMul(Q, Kᵀ)` (either side, and the scores, possibly
//! scaled by a number that does not learn) → `Softmax` over the last axis → `MatMul(·, V)`,
//! becomes one `Attention` node of that domain.

use std::collections::{HashMap, HashSet};

use tessera_onnx::float_values;
use tessera_onnx::proto::attribute_proto::AttributeType;
use tessera_onnx::proto::{AttributeProto, GraphProto, NodeProto};

use crate::ops::fused_attention::{ATTENTION, DIVIDES_ATTRIBUTE};
use crate::ops::fused_chain::{CHAIN_ATTRIBUTE, FUSED_DOMAIN};
use crate::ops::fused_views::VIEWS;

/// Operators that only rearrange their data's elements (`Gather` when it picks one position),
/// which a chain of runs as one node.
const VIEW_OPS: &[&str] = &[
    "Reshape",
    "Flatten",
    "Squeeze",
    "Unsqueeze",
    "Transpose",
    "Gather",
];

/// The execution plan and the tensors it no longer computes (the chains' intermediates).
pub struct FusedNodes {
    /// The nodes to run, in graph order.
    pub nodes: Vec<NodeProto>,
    /// Intermediate tensors inside a fused chain.
    pub hidden: HashSet<String>,
}

/// The plan for `graph`; `learned` names the tensors that depend on a variable, which are
/// never taken for a chain's constants.
pub fn fuse(graph: &GraphProto, learned: &HashSet<String>) -> FusedNodes {
    let finder = ChainFinder::new(graph, learned);
    let mut replaced: HashMap<usize, NodeProto> = HashMap::new();
    let mut removed: HashSet<usize> = HashSet::new();
    let mut hidden = HashSet::new();
    for (index, node) in graph.node.iter().enumerate() {
        if removed.contains(&index) {
            continue;
        }
        let chain = match node.op_type.as_str() {
            "Erf" => finder.gelu(index),
            "MatMul" => finder.dense(index),
            "Softmax" => finder.attention(index),
            op if VIEW_OPS.contains(&op) => finder.views(index),
            _ => None,
        };
        let Some(chain) = chain else {
            continue;
        };
        let last = *chain.nodes.last().expect("a chain has nodes");
        for &member in &chain.nodes {
            removed.insert(member);
            if member != last {
                hidden.extend(graph.node[member].output.iter().cloned());
            }
        }
        replaced.insert(
            last,
            NodeProto {
                name: format!("{} (fused {})", graph.node[last].name, chain.what),
                op_type: chain.op_type.into(),
                domain: chain.domain.into(),
                attribute: chain.attributes,
                input: chain.inputs,
                output: graph.node[last].output.clone(),
                ..NodeProto::default()
            },
        );
    }
    let nodes = graph
        .node
        .iter()
        .enumerate()
        .filter_map(|(index, node)| match replaced.remove(&index) {
            Some(fused) => Some(fused),
            None if removed.contains(&index) => None,
            None => Some(node.clone()),
        })
        .collect();
    FusedNodes { nodes, hidden }
}

/// A recognised chain: the operator that replaces it and the tensors that operator reads,
/// and the chain's nodes (indices, the result's last).
struct Chain {
    op_type: &'static str,
    what: &'static str,
    inputs: Vec<String>,
    nodes: Vec<usize>,
    /// The replacing operator's domain and attributes (the default domain, none, for ONNX
    /// operators).
    domain: &'static str,
    attributes: Vec<AttributeProto>,
}

/// Who produces and who reads each tensor, and which tensors are constant numbers.
struct ChainFinder<'g> {
    graph: &'g GraphProto,
    learned: &'g HashSet<String>,
    producer: HashMap<&'g str, usize>,
    readers: HashMap<&'g str, Vec<usize>>,
    outputs: HashSet<&'g str>,
    numbers: HashMap<&'g str, f64>,
}

impl<'g> ChainFinder<'g> {
    fn new(graph: &'g GraphProto, learned: &'g HashSet<String>) -> Self {
        let mut producer = HashMap::new();
        let mut readers: HashMap<&str, Vec<usize>> = HashMap::new();
        let mut numbers = HashMap::new();
        for (index, node) in graph.node.iter().enumerate() {
            for output in &node.output {
                producer.insert(output.as_str(), index);
            }
            for input in &node.input {
                readers.entry(input.as_str()).or_default().push(index);
            }
            if node.op_type == "Constant" {
                let value = node.attribute.iter().find_map(|a| match a.name.as_str() {
                    "value" => a.t.as_ref().and_then(single_number),
                    "value_float" => Some(f64::from(a.f)),
                    _ => None,
                });
                if let (Some(value), Some(output)) = (value, node.output.first()) {
                    numbers.insert(output.as_str(), value);
                }
            }
        }
        for initializer in &graph.initializer {
            if !learned.contains(&initializer.name) {
                if let Some(value) = single_number(initializer) {
                    numbers.insert(initializer.name.as_str(), value);
                }
            }
        }
        let outputs = graph.output.iter().map(|o| o.name.as_str()).collect();
        Self {
            graph,
            learned,
            producer,
            readers,
            outputs,
            numbers,
        }
    }

    /// The node that alone reads `tensor` (no other node, not a graph output).
    fn only_reader(&self, tensor: &str) -> Option<usize> {
        match self.readers.get(tensor).map(Vec::as_slice) {
            Some(&[reader]) if !self.outputs.contains(tensor) => Some(reader),
            _ => None,
        }
    }

    /// `(other operand, number)` of a binary node `op_type` with a constant number `near` as
    /// one of its two operands (either side when `commutes`, else the right).
    fn with_number(
        &self,
        index: usize,
        op_type: &str,
        near: f64,
        commutes: bool,
    ) -> Option<&'g str> {
        let node = &self.graph.node[index];
        if node.op_type != op_type || node.input.len() != 2 || node.output.len() != 1 {
            return None;
        }
        let is_near = |name: &str| {
            self.numbers
                .get(name)
                .is_some_and(|value| (value - near).abs() <= 1e-4 * near.abs())
        };
        let (a, b) = (node.input[0].as_str(), node.input[1].as_str());
        if is_near(b) {
            Some(a)
        } else if commutes && is_near(a) {
            Some(b)
        } else {
            None
        }
    }

    /// The operands of a two-input `Mul`.
    fn mul_operands(&self, index: usize) -> Option<[&'g str; 2]> {
        let node = &self.graph.node[index];
        (node.op_type == "Mul" && node.input.len() == 2 && node.output.len() == 1)
            .then(|| [node.input[0].as_str(), node.input[1].as_str()])
    }

    /// The exact GELU around the `Erf` node `erf`.
    fn gelu(&self, erf: usize) -> Option<Chain> {
        let graph = self.graph;
        let scaled = graph.node[erf].input.first()?;
        let scaling = *self.producer.get(scaled.as_str())?;
        let x = self
            .with_number(scaling, "Div", std::f64::consts::SQRT_2, false)
            .or_else(|| self.with_number(scaling, "Mul", std::f64::consts::FRAC_1_SQRT_2, true))?;
        if self.only_reader(scaled)? != erf {
            return None;
        }
        let plus_one = self.only_reader(graph.node[erf].output.first()?)?;
        if self.with_number(plus_one, "Add", 1.0, true)? != graph.node[erf].output[0] {
            return None;
        }
        let cumulative = graph.node[plus_one].output.first()?.as_str();
        // Two Muls combine x, 1 + erf and 0.5: the first reads two of them, the second the
        // first's product and the third.
        let is_half = |name: &str| {
            self.numbers
                .get(name)
                .is_some_and(|v| (v - 0.5).abs() <= 1e-6)
        };
        let operands = [cumulative, x];
        let candidates = operands
            .iter()
            .filter_map(|name| self.readers.get(name))
            .flatten()
            .copied();
        for first in candidates {
            let Some([a, b]) = self.mul_operands(first) else {
                continue;
            };
            let has = |wanted: &dyn Fn(&str) -> bool| wanted(a) || wanted(b);
            let product = graph.node[first].output[0].as_str();
            let Some(second) = self.only_reader(product) else {
                continue;
            };
            let Some([c, d]) = self.mul_operands(second) else {
                continue;
            };
            let third = match (c == product, d == product) {
                (true, false) => d,
                (false, true) => c,
                _ => continue,
            };
            let complete = match (has(&|n| n == x), has(&|n| n == cumulative), has(&is_half)) {
                (true, true, false) => is_half(third),
                (false, true, true) => third == x,
                (true, false, true) => third == cumulative,
                _ => false,
            };
            let chain_reads_cumulative = self
                .only_reader(cumulative)
                .is_some_and(|reader| reader == first || reader == second);
            if complete && chain_reads_cumulative {
                return Some(Chain {
                    op_type: "Gelu",
                    what: "GELU",
                    inputs: vec![x.to_string()],
                    nodes: vec![scaling, erf, plus_one, first, second],
                    domain: "",
                    attributes: Vec::new(),
                });
            }
        }
        None
    }
}

impl<'g> ChainFinder<'g> {
    /// A `MatMul` by a weight matrix whose product alone is added to a bias of one value per
    /// column, as PyTorch's `Linear` is exported for inputs with batch dimensions: one `Gemm`
    /// whose `A` keeps those dimensions.
    fn dense(&self, matmul: usize) -> Option<Chain> {
        let node = &self.graph.node[matmul];
        let [x, weight] = node.input.as_slice() else {
            return None;
        };
        let &[_, columns] = self.initializer_dims(weight)?.as_slice() else {
            return None;
        };
        let product = node.output.first()?;
        let add = self.only_reader(product)?;
        let adding = &self.graph.node[add];
        let bias = match adding.input.as_slice() {
            [a, b] if a == product && b != product => b,
            [a, b] if b == product && a != product => a,
            _ => return None,
        };
        if adding.op_type != "Add"
            || adding.output.len() != 1
            || self.initializer_dims(bias)? != [columns]
        {
            return None;
        }
        Some(Chain {
            op_type: "Gemm",
            what: "dense layer",
            inputs: vec![x.clone(), weight.clone(), bias.clone()],
            nodes: vec![matmul, add],
            domain: "",
            attributes: Vec::new(),
        })
    }

    /// Two or more view operators in a row from `first` on, each the only reader of the one
    /// before, on data that learns (what does not learn has no backward pass to save).
    fn views(&self, first: usize) -> Option<Chain> {
        let graph = self.graph;
        let data = graph.node[first].input.first()?;
        if !self.learned.contains(data) {
            return None;
        }
        let mut nodes = vec![first];
        loop {
            let last = &graph.node[*nodes.last()?];
            let [output] = last.output.as_slice() else {
                return None;
            };
            let Some(next) = self.only_reader(output) else {
                break;
            };
            let reader = &graph.node[next];
            if !VIEW_OPS.contains(&reader.op_type.as_str())
                || reader.input.first() != Some(output)
                || reader.input[1..].contains(output)
            {
                break;
            }
            nodes.push(next);
        }
        if nodes.len() < 2 || nodes.iter().any(|&i| graph.node[i].output.len() != 1) {
            return None;
        }
        let mut inputs = vec![data.clone()];
        for &index in &nodes {
            for input in &graph.node[index].input[1..] {
                if !input.is_empty() && !inputs.contains(input) {
                    inputs.push(input.clone());
                }
            }
        }
        Some(Chain {
            op_type: VIEWS,
            what: "views",
            inputs,
            domain: FUSED_DOMAIN,
            attributes: vec![chain_attribute(graph, &nodes)],
            nodes,
        })
    }

    /// Attention around the `Softmax` node `softmax`: its scores a `MatMul` of Q and Kᵀ,
    /// each side and the scores possibly scaled (`Mul`, or `Div` of the scores) by a tensor
    /// that does not learn, its weights read only by a `MatMul` with V.
    fn attention(&self, softmax: usize) -> Option<Chain> {
        let graph = self.graph;
        let node = &graph.node[softmax];
        let last_axis = node
            .attribute
            .iter()
            .any(|attribute| attribute.name == "axis" && attribute.i == -1);
        let [scores] = node.input.as_slice() else {
            return None;
        };
        if !last_axis || self.only_reader(scores)? != softmax {
            return None;
        }
        let mut nodes = vec![softmax];
        let mut factors = Vec::new();
        let mut divides = Vec::new();
        // A scaling of the scores, then the product itself.
        let mut producer = *self.producer.get(scores.as_str())?;
        if let Some((data, factor, divide)) = self.scaling(producer, true) {
            if self.only_reader(data)? != producer {
                return None;
            }
            nodes.push(producer);
            factors.push(factor);
            divides.push(i64::from(divide));
            producer = *self.producer.get(data)?;
        }
        let product = &graph.node[producer];
        let [a, b] = product.input.as_slice() else {
            return None;
        };
        if product.op_type != "MatMul" || product.output.len() != 1 {
            return None;
        }
        nodes.push(producer);
        // Each side's own scaling, when the product alone reads it.
        let mut side = |operand: &'g str| -> Option<&'g str> {
            let scaling = *self.producer.get(operand)?;
            match self.scaling(scaling, false) {
                Some((data, factor, _)) if self.only_reader(operand) == Some(producer) => {
                    nodes.push(scaling);
                    factors.push(factor);
                    divides.push(0);
                    Some(data)
                }
                _ => None,
            }
        };
        let q = side(a).unwrap_or(a);
        let k_t = side(b).unwrap_or(b);
        let weights = node.output.first()?;
        let combine = self.only_reader(weights)?;
        let combining = &graph.node[combine];
        let [first, v] = combining.input.as_slice() else {
            return None;
        };
        if combining.op_type != "MatMul" || first != weights || v == weights {
            return None;
        }
        nodes.push(combine);
        nodes.sort_unstable();
        let mut inputs = vec![q.to_string(), k_t.to_string(), v.clone()];
        inputs.extend(factors.iter().map(|factor| factor.to_string()));
        Some(Chain {
            op_type: ATTENTION,
            what: "attention",
            inputs,
            domain: FUSED_DOMAIN,
            attributes: vec![
                chain_attribute(graph, &nodes),
                AttributeProto {
                    name: DIVIDES_ATTRIBUTE.into(),
                    r#type: AttributeType::Ints as i32,
                    ints: divides,
                    ..AttributeProto::default()
                },
            ],
            nodes,
        })
    }

    /// `(data, factor, divides)` of a `Mul` (or, with `division`, a `Div`) at `index` whose
    /// factor does not learn and whose data does (or, for a `Mul`, either order).
    fn scaling(&self, index: usize, division: bool) -> Option<(&'g str, &'g str, bool)> {
        let node = &self.graph.node[index];
        let [a, b] = node.input.as_slice() else {
            return None;
        };
        let fixed = |name: &str| !self.learned.contains(name);
        match node.op_type.as_str() {
            "Div" if division && fixed(b) && !fixed(a) => Some((a, b, true)),
            "Mul" if fixed(b) && !fixed(a) => Some((a, b, false)),
            "Mul" if fixed(a) && !fixed(b) => Some((b, a, false)),
            _ => None,
        }
    }

    /// The dimensions of the initializer `name` is, or is an `Identity` of.
    fn initializer_dims(&self, name: &str) -> Option<Vec<i64>> {
        if let Some(initializer) = self.graph.initializer.iter().find(|i| i.name == name) {
            return Some(initializer.dims.clone());
        }
        let producer = &self.graph.node[*self.producer.get(name)?];
        match (producer.op_type.as_str(), producer.input.as_slice()) {
            ("Identity", [source]) => self.initializer_dims(source),
            _ => None,
        }
    }
}

/// The attribute carrying the chain of `graph`'s `nodes` a fused node replaces.
fn chain_attribute(graph: &GraphProto, nodes: &[usize]) -> AttributeProto {
    AttributeProto {
        name: CHAIN_ATTRIBUTE.into(),
        r#type: AttributeType::Graph as i32,
        g: Some(GraphProto {
            node: nodes.iter().map(|&i| graph.node[i].clone()).collect(),
            ..GraphProto::default()
        }),
        ..AttributeProto::default()
    }
}

/// The value of a tensor that holds exactly one floating-point number.
fn single_number(tensor: &tessera_onnx::proto::TensorProto) -> Option<f64> {
    if tensor.dims.iter().product::<i64>() != 1 {
        return None;
    }
    float_values(tensor).and_then(|values| values.first().map(|&v| f64::from(v)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_onnx::proto::attribute_proto::AttributeType;
    use tessera_onnx::proto::tensor_proto::DataType;
    use tessera_onnx::proto::{AttributeProto, TensorProto, ValueInfoProto};

    fn node(op: &str, inputs: &[&str], output: &str) -> NodeProto {
        NodeProto {
            name: output.to_string(),
            op_type: op.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.to_string()],
            ..NodeProto::default()
        }
    }

    fn constant(output: &str, value: f32) -> NodeProto {
        NodeProto {
            attribute: vec![AttributeProto {
                name: "value".into(),
                r#type: AttributeType::Tensor as i32,
                t: Some(TensorProto {
                    data_type: DataType::Float as i32,
                    float_data: vec![value],
                    ..TensorProto::default()
                }),
                ..AttributeProto::default()
            }],
            ..node("Constant", &[], output)
        }
    }

    /// `x → GELU → y` written with `muls` after `Div(x, √2) → Erf → Add(·, 1)`.
    fn gelu_graph(muls: Vec<NodeProto>, output: &str) -> GraphProto {
        let mut nodes = vec![
            constant("root2", std::f32::consts::SQRT_2),
            constant("one", 1.0),
            constant("half", 0.5),
            node("Div", &["x", "root2"], "scaled"),
            node("Erf", &["scaled"], "erf"),
            node("Add", &["one", "erf"], "cumulative"),
        ];
        nodes.extend(muls);
        GraphProto {
            node: nodes,
            output: vec![ValueInfoProto {
                name: output.into(),
                ..ValueInfoProto::default()
            }],
            ..GraphProto::default()
        }
    }

    fn fused_ops(graph: &GraphProto) -> Vec<String> {
        fuse(graph, &HashSet::new())
            .nodes
            .iter()
            .filter(|n| n.op_type != "Constant")
            .map(|n| format!("{}({})->{}", n.op_type, n.input.join(","), n.output[0]))
            .collect()
    }

    #[test]
    fn both_exporters_gelu_orders_become_one_node() {
        let arrangements = [
            // torchscript: (x · (1 + erf)) · 0.5
            vec![
                node("Mul", &["x", "cumulative"], "p"),
                node("Mul", &["p", "half"], "y"),
            ],
            // dynamo: x · (0.5 · (1 + erf))
            vec![
                node("Mul", &["half", "cumulative"], "p"),
                node("Mul", &["x", "p"], "y"),
            ],
            // (0.5 · x) · (1 + erf)
            vec![
                node("Mul", &["x", "half"], "p"),
                node("Mul", &["cumulative", "p"], "y"),
            ],
        ];
        for muls in arrangements {
            let graph = gelu_graph(muls, "y");
            assert_eq!(fused_ops(&graph), ["Gelu(x)->y"]);
            let hidden = fuse(&graph, &HashSet::new()).hidden;
            for name in ["scaled", "erf", "cumulative", "p"] {
                assert!(hidden.contains(name), "{name}");
            }
        }
    }

    fn initializer(name: &str, dims: &[i64]) -> TensorProto {
        TensorProto {
            name: name.into(),
            dims: dims.to_vec(),
            data_type: DataType::Float as i32,
            float_data: vec![0.0; dims.iter().product::<i64>() as usize],
            ..TensorProto::default()
        }
    }

    fn graph_of(nodes: Vec<NodeProto>, initializers: Vec<TensorProto>, output: &str) -> GraphProto {
        GraphProto {
            node: nodes,
            initializer: initializers,
            output: vec![ValueInfoProto {
                name: output.into(),
                ..ValueInfoProto::default()
            }],
            ..GraphProto::default()
        }
    }

    #[test]
    fn a_matmul_and_its_bias_become_one_dense_layer() {
        let weights = || vec![initializer("w", &[4, 3]), initializer("b", &[3])];
        // The bias on either side, directly or through an Identity.
        for add in [
            node("Add", &["mm", "b"], "y"),
            node("Add", &["b", "mm"], "y"),
        ] {
            let graph = graph_of(vec![node("MatMul", &["x", "w"], "mm"), add], weights(), "y");
            assert_eq!(fused_ops(&graph), ["Gemm(x,w,b)->y"]);
            assert!(fuse(&graph, &HashSet::new()).hidden.contains("mm"));
        }
        let graph = graph_of(
            vec![
                node("Identity", &["b"], "shared"),
                node("MatMul", &["x", "w"], "mm"),
                node("Add", &["shared", "mm"], "y"),
            ],
            weights(),
            "y",
        );
        assert_eq!(
            fused_ops(&graph),
            ["Identity(b)->shared", "Gemm(x,w,shared)->y"]
        );
    }

    #[test]
    fn additions_that_are_not_a_bias_stay() {
        let unfused = |graph: &GraphProto| {
            fused_ops(graph)
                .iter()
                .filter(|op| op.starts_with("Gemm"))
                .count()
                == 0
        };
        // A residual (no initializer), a bias of the wrong width, a weight that is computed.
        for (add_input, bias_dims, weight) in [
            ("r", vec![3], "w"),
            ("b", vec![4], "w"),
            ("b", vec![1, 3], "w"),
            ("b", vec![3], "computed"),
        ] {
            let graph = graph_of(
                vec![
                    node("Relu", &["w"], "computed"),
                    node("MatMul", &["x", weight], "mm"),
                    node("Add", &["mm", add_input], "y"),
                ],
                vec![initializer("w", &[4, 3]), initializer("b", &bias_dims)],
                "y",
            );
            assert!(unfused(&graph), "{add_input} {bias_dims:?} {weight}");
        }
        // The product read elsewhere, or a graph output.
        let nodes = vec![
            node("MatMul", &["x", "w"], "mm"),
            node("Add", &["mm", "b"], "y"),
            node("Add", &["mm", "y"], "z"),
        ];
        let weights = vec![initializer("w", &[4, 3]), initializer("b", &[3])];
        assert!(unfused(&graph_of(nodes.clone(), weights.clone(), "z")));
        assert!(unfused(&graph_of(nodes[..2].to_vec(), weights, "mm")));
    }

    #[test]
    fn chains_that_are_not_exactly_gelu_stay() {
        // A factor other than 0.5.
        let mut graph = gelu_graph(
            vec![
                node("Mul", &["x", "cumulative"], "p"),
                node("Mul", &["p", "one"], "y"),
            ],
            "y",
        );
        assert_eq!(fused_ops(&graph).len(), 5);
        // An intermediate read elsewhere, or a graph output.
        graph = gelu_graph(
            vec![
                node("Mul", &["x", "cumulative"], "p"),
                node("Mul", &["p", "half"], "y"),
                node("Add", &["erf", "y"], "z"),
            ],
            "z",
        );
        assert_eq!(fused_ops(&graph).len(), 6);
        graph = gelu_graph(
            vec![
                node("Mul", &["x", "cumulative"], "p"),
                node("Mul", &["p", "half"], "y"),
            ],
            "p",
        );
        assert_eq!(fused_ops(&graph).len(), 5);
        // √2 as an initializer is a constant, unless it learns.
        graph = gelu_graph(
            vec![
                node("Mul", &["x", "cumulative"], "p"),
                node("Mul", &["p", "half"], "y"),
            ],
            "y",
        );
        graph.node.retain(|n| n.output[0] != "root2");
        graph.initializer.push(TensorProto {
            name: "root2".into(),
            dims: vec![1],
            data_type: DataType::Float as i32,
            float_data: vec![std::f32::consts::SQRT_2],
            ..TensorProto::default()
        });
        assert_eq!(fused_ops(&graph), ["Gelu(x)->y"]);
        let learned: HashSet<String> = ["root2".to_string()].into();
        assert_eq!(fuse(&graph, &learned).nodes.len(), graph.node.len());
    }

    /// The plan's nodes as `op(inputs)->output` with `learned` tensors learning.
    fn planned(graph: &GraphProto, learned: &[&str]) -> Vec<String> {
        let learned: HashSet<String> = learned.iter().map(|name| name.to_string()).collect();
        fuse(graph, &learned)
            .nodes
            .iter()
            .map(|n| format!("{}({})->{}", n.op_type, n.input.join(","), n.output[0]))
            .collect()
    }

    #[test]
    fn views_in_a_row_on_learned_data_become_one_node() {
        let nodes = vec![
            node("Reshape", &["x", "shape"], "r"),
            node("Transpose", &["r"], "t"),
            node("Gather", &["t", "index"], "g"),
            node("Unsqueeze", &["g", "axes"], "u"),
            node("Relu", &["u"], "y"),
        ];
        let graph = graph_of(nodes, vec![], "y");
        assert_eq!(
            planned(&graph, &["x", "r", "t", "g", "u", "y"]),
            ["Views(x,shape,index,axes)->u", "Relu(u)->y"]
        );
        let fused = fuse(&graph, &["x".to_string()].into());
        let chain = fused.nodes[0].attribute[0].g.as_ref().unwrap();
        let ops: Vec<&str> = chain.node.iter().map(|n| n.op_type.as_str()).collect();
        assert_eq!(ops, ["Reshape", "Transpose", "Gather", "Unsqueeze"]);
        assert_eq!(fused.nodes[0].domain, FUSED_DOMAIN);
        assert!(["r", "t", "g"]
            .iter()
            .all(|name| fused.hidden.contains(*name)));
        // Data that does not learn has no backward pass to save.
        assert_eq!(planned(&graph, &[]).len(), graph.node.len());
    }

    fn softmax(input: &str, output: &str, axis: i64) -> NodeProto {
        NodeProto {
            attribute: vec![AttributeProto {
                name: "axis".into(),
                r#type: AttributeType::Int as i32,
                i: axis,
                ..AttributeProto::default()
            }],
            ..node("Softmax", &[input], output)
        }
    }

    #[test]
    fn scaled_dot_product_attention_becomes_one_node() {
        let learned = [
            "q", "kt", "v", "qs", "ks", "scores", "scaled", "p", "o", "y",
        ];
        // Both exporters' form: each side scaled (the factor on either side of its Mul).
        let graph = graph_of(
            vec![
                node("Mul", &["q", "s"], "qs"),
                node("Mul", &["s", "kt"], "ks"),
                node("MatMul", &["qs", "ks"], "scores"),
                softmax("scores", "p", -1),
                node("MatMul", &["p", "v"], "o"),
                node("Relu", &["o"], "y"),
            ],
            vec![],
            "y",
        );
        assert_eq!(
            planned(&graph, &learned),
            ["Attention(q,kt,v,s,s)->o", "Relu(o)->y"]
        );
        let fused = fuse(&graph, &learned.map(String::from).into());
        let [chain, divides] = fused.nodes[0].attribute.as_slice() else {
            panic!("an attention node carries its chain and which factors divide");
        };
        let ops: Vec<&str> = chain
            .g
            .as_ref()
            .unwrap()
            .node
            .iter()
            .map(|n| n.op_type.as_str())
            .collect();
        assert_eq!(ops, ["Mul", "Mul", "MatMul", "Softmax", "MatMul"]);
        assert_eq!(divides.ints, [0, 0]);
        assert!(["qs", "ks", "scores", "p"]
            .iter()
            .all(|name| fused.hidden.contains(*name)));
        // The scores divided by a number, the sides as they are.
        let divided = |axis: i64, extra: Vec<NodeProto>| {
            let mut nodes = vec![
                node("MatMul", &["q", "kt"], "scores"),
                node("Div", &["scores", "c"], "scaled"),
                softmax("scaled", "p", axis),
                node("MatMul", &["p", "v"], "o"),
            ];
            nodes.extend(extra);
            graph_of(nodes, vec![], "o")
        };
        let fused = fuse(&divided(-1, vec![]), &learned.map(String::from).into());
        assert_eq!(fused.nodes.len(), 1);
        assert_eq!(fused.nodes[0].input, ["q", "kt", "v", "c"]);
        assert_eq!(fused.nodes[0].attribute[1].ints, [1]);
        // Not attention: a softmax over another axis, weights read twice, no learning.
        assert_eq!(planned(&divided(1, vec![]), &learned).len(), 4);
        let read_twice = divided(-1, vec![node("Relu", &["p"], "r")]);
        assert_eq!(planned(&read_twice, &learned).len(), 5);
        assert_eq!(planned(&divided(-1, vec![]), &[]).len(), 4);
    }

    #[test]
    fn a_view_read_twice_or_read_as_a_shape_ends_the_chain() {
        // `t` is read by two views: the chain before it ends there, and each reader starts
        // its own chain of one (no chain).
        let graph = graph_of(
            vec![
                node("Reshape", &["x", "shape"], "r"),
                node("Transpose", &["r"], "t"),
                node("Squeeze", &["t"], "a"),
                node("Flatten", &["t"], "b"),
                node("Add", &["a", "b"], "y"),
            ],
            vec![],
            "y",
        );
        assert_eq!(
            planned(&graph, &["x"]),
            [
                "Views(x,shape)->t",
                "Squeeze(t)->a",
                "Flatten(t)->b",
                "Add(a,b)->y"
            ]
        );
        // A view that reads the chain's tensor as its shape is not part of it.
        let graph = graph_of(
            vec![
                node("Reshape", &["x", "shape"], "r"),
                node("Reshape", &["other", "r"], "y"),
            ],
            vec![],
            "y",
        );
        assert_eq!(planned(&graph, &["x"]).len(), 2);
    }
}
