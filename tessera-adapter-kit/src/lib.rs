//! Graph heuristics that Tessera architecture adapters share, kept out of the plugin contract
//! (`tessera-api`) so that they can improve without changing what plugins and the host exchange.
//!
//! Import the extension trait [`GraphHeuristics`] and call its methods on the
//! [`GraphSummary`] an adapter receives: [`constant_tensors`](GraphHeuristics::constant_tensors),
//! [`residual_adds`](GraphHeuristics::residual_adds),
//! [`classifier_input_width`](GraphHeuristics::classifier_input_width) and
//! [`gathered_tables`](GraphHeuristics::gathered_tables). Plain look-ups (`nodes_of`, `count`,
//! `initializer`, `is_initializer`, `producer`, `consumers`) are methods of `GraphSummary`
//! itself. The heuristics run inside the plugin, so their behaviour is the one of the kit
//! version the plugin was built with, whatever the host's.
//!
//! ```
//! use tessera_adapter_kit::GraphHeuristics;
//! use tessera_api::GraphSummary;
//!
//! fn block_outputs(graph: &GraphSummary) -> Vec<&str> {
//!     graph
//!         .residual_adds()
//!         .into_iter()
//!         .filter_map(|add| add.outputs.first().map(String::as_str))
//!         .collect()
//! }
//! assert!(block_outputs(&GraphSummary::default()).is_empty());
//! ```

use std::collections::HashSet;

use tessera_api::{GraphSummary, NodeSummary};

mod sealed {
    /// Keeps [`GraphHeuristics`](super::GraphHeuristics) implemented only here, so that new
    /// heuristics can be added to it without breaking anyone.
    pub trait Sealed {}
    impl Sealed for tessera_api::GraphSummary {}
}

/// Graph queries that adapters for common families share, for [`GraphSummary`].
///
/// The trait is sealed: only this crate implements it, so a later version may add methods.
pub trait GraphHeuristics: sealed::Sealed {
    /// Tensors that are constants: initializers, `Constant` outputs, and anything computed
    /// only from constants.
    fn constant_tensors(&self) -> HashSet<&str>;

    /// `Add` nodes whose two operands are both computed (not constants): residual connections,
    /// in graph order.
    fn residual_adds(&self) -> Vec<&NodeSummary>;

    /// The last `Gemm` or `MatMul` with a stored weight: for a classifier, its head, whose
    /// first input is the representation the head reads.
    fn classifier_head(&self) -> Option<&NodeSummary>;

    /// The input width of [`classifier_head`](Self::classifier_head): for a classifier, the
    /// width of the representation its head reads.
    fn classifier_input_width(&self) -> Option<u64>;

    /// Stored tables read by `Gather` (token embeddings, position tables).
    fn gathered_tables(&self) -> Vec<&str>;
}

impl GraphHeuristics for GraphSummary {
    fn constant_tensors(&self) -> HashSet<&str> {
        let mut constant: HashSet<&str> = self
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

    fn residual_adds(&self) -> Vec<&NodeSummary> {
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

    fn classifier_head(&self) -> Option<&NodeSummary> {
        self.nodes.iter().rev().find(|node| {
            matches!(node.op_type.as_str(), "Gemm" | "MatMul")
                && node
                    .inputs
                    .get(1)
                    .and_then(|weight| self.initializer(weight))
                    .is_some_and(|weight| weight.dims.len() == 2)
        })
    }

    fn classifier_input_width(&self) -> Option<u64> {
        let head = self.classifier_head()?;
        let weight = self.initializer(head.inputs.get(1)?)?;
        match (head.op_type.as_str(), weight.dims.as_slice()) {
            ("Gemm", [_, columns]) if head.int_attribute("transB") == Some(1) => Some(*columns),
            (_, [rows, _]) => Some(*rows),
            _ => None,
        }
    }

    fn gathered_tables(&self) -> Vec<&str> {
        self.nodes_of("Gather")
            .filter_map(|node| node.inputs.first())
            .filter(|table| self.is_initializer(table))
            .map(String::as_str)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_api::{Attributes, InitializerSummary};

    fn node(op: &str, inputs: &[&str], output: &str) -> NodeSummary {
        NodeSummary::new(
            output,
            op,
            inputs.iter().map(|name| name.to_string()).collect(),
            vec![output.to_string()],
        )
    }

    fn weight(name: &str, dims: &[u64]) -> InitializerSummary {
        InitializerSummary::new(name, "float32", dims.to_vec())
    }

    /// An embedding, two residual blocks (each `x + W·x + b`), a bias computed from constants,
    /// and a classifier head: a `Gemm` with a `[classes, width]` weight when `trans_b`, else a
    /// `MatMul` with a `[width, classes]` one.
    fn residual_mlp(trans_b: bool) -> GraphSummary {
        let mut nodes = vec![
            node("Gather", &["embedding", "tokens"], "x0"),
            node("Gather", &["x0", "tokens"], "not_a_table"),
            node("Constant", &[], "two"),
            node("Mul", &["bias", "two"], "bias2"),
        ];
        for (index, input) in ["x0", "x1"].iter().enumerate() {
            let n = |name: &str| format!("b{index}.{name}");
            nodes.push(node("MatMul", &[input, "w"], &n("up")));
            nodes.push(node("Add", &[&n("up"), "bias2"], &n("biased")));
            nodes.push(node(
                "Add",
                &[input, &n("biased")],
                &format!("x{}", index + 1),
            ));
        }
        let head = if trans_b {
            let mut attributes = Attributes::new();
            attributes.insert("transB", 1);
            node("Gemm", &["x2", "head", ""], "logits").with_attributes(attributes)
        } else {
            node("MatMul", &["x2", "head"], "logits")
        };
        nodes.push(head);
        let head_dims: &[u64] = if trans_b { &[3, 16] } else { &[16, 3] };
        GraphSummary::new(
            Vec::new(),
            Vec::new(),
            nodes,
            vec![
                weight("embedding", &[100, 16]),
                weight("w", &[16, 16]),
                weight("bias", &[16]),
                weight("head", head_dims),
            ],
        )
    }

    #[test]
    fn constants_include_what_is_computed_from_them() {
        let graph = residual_mlp(true);
        let constant = graph.constant_tensors();
        for name in ["embedding", "w", "bias", "head", "two", "bias2"] {
            assert!(constant.contains(name), "{name}");
        }
        for name in ["x0", "b0.up", "x1", "logits"] {
            assert!(!constant.contains(name), "{name}");
        }
    }

    #[test]
    fn residual_adds_skip_bias_additions() {
        let graph = residual_mlp(true);
        let sums: Vec<&str> = graph
            .residual_adds()
            .iter()
            .map(|add| add.outputs[0].as_str())
            .collect();
        assert_eq!(sums, ["x1", "x2"]);
    }

    #[test]
    fn the_classifier_width_follows_the_weight_layout() {
        assert_eq!(residual_mlp(true).classifier_input_width(), Some(16));
        assert_eq!(residual_mlp(false).classifier_input_width(), Some(16));
        assert_eq!(GraphSummary::default().classifier_input_width(), None);
    }

    #[test]
    fn gathered_tables_are_stored_ones() {
        assert_eq!(residual_mlp(true).gathered_tables(), ["embedding"]);
    }
}
