//! Tessera plugin: recognises Transformer encoders and taps each layer's output.
//!
//! A layer is found by its attention `Softmax`; each layer has two residual additions
//! (attention, feed-forward). In a post-norm layer (`LayerNorm(x + f(x))`, PyTorch's default) a
//! residual sum feeds only a normalisation, whose output is the layer's output; in a pre-norm
//! layer (`x + f(LayerNorm(x))`) the second residual sum is.

use tessera_adapter_kit::GraphHeuristics;
use tessera_api::{
    AdapterPlan, AdapterPlugin, ArchitectureAdapter, GraphSummary, Pooling, TapLayout, TapPoint,
};

#[derive(Clone)]
struct TransformerAdapter;

impl ArchitectureAdapter for TransformerAdapter {
    fn name(&self) -> &str {
        "transformer"
    }

    fn analyse(&self, graph: &GraphSummary) -> Result<Option<AdapterPlan>, String> {
        let layers = graph.count("Softmax");
        let adds = graph.residual_adds();
        if layers == 0 || graph.count("MatMul") == 0 || adds.len() != 2 * layers {
            return Ok(None);
        }
        let only_normalised = |tensor: &str| {
            let mut consumers = graph.consumers(tensor).peekable();
            consumers.peek().is_some() && consumers.all(|node| node.op_type == "LayerNormalization")
        };
        let post_norm = adds
            .iter()
            .all(|add| add.outputs.first().is_some_and(|out| only_normalised(out)));
        let taps = adds
            .iter()
            .skip(1)
            .step_by(2)
            .map(|add| {
                let sum = add.outputs.first().cloned().unwrap_or_default();
                let normalised = graph
                    .consumers(&sum)
                    .next()
                    .and_then(|norm| norm.outputs.first().cloned());
                let tensor = match normalised {
                    Some(norm_output) if post_norm => norm_output,
                    _ => sum,
                };
                TapPoint::new(tensor, TapLayout::BatchTimeFeature, Pooling::Mean)
            })
            .collect();
        let Some(width) = graph.classifier_input_width() else {
            return Err("no classifier head (final Gemm/MatMul with stored weights) to read the model width from".into());
        };
        Ok(Some(AdapterPlan::new("transformer", 0.9, width, taps)))
    }
}

tessera_api::export_plugin!(AdapterPlugin::new(
    tessera_api::plugin_info!(),
    TransformerAdapter
));

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_api::{Attributes, InitializerSummary, NodeSummary};

    fn node(op: &str, inputs: &[&str], output: &str) -> NodeSummary {
        NodeSummary::new(
            output,
            op,
            inputs.iter().map(|name| name.to_string()).collect(),
            vec![output.into()],
        )
    }

    fn weight(name: &str, dims: &[u64]) -> InitializerSummary {
        InitializerSummary::new(name, "float32", dims.to_vec())
    }

    /// One encoder layer reading `x`, pre-norm or post-norm, with a ReLU feed-forward; returns
    /// the nodes and the layer's output tensor.
    fn layer(index: usize, x: &str, pre_norm: bool) -> (Vec<NodeSummary>, String) {
        let n = |name: &str| format!("l{index}.{name}");
        let mut nodes = Vec::new();
        let attention_input = if pre_norm {
            nodes.push(node("LayerNormalization", &[x, "scale"], &n("norm1")));
            n("norm1")
        } else {
            x.to_string()
        };
        nodes.push(node("MatMul", &[&attention_input, "wq"], &n("q")));
        nodes.push(node("Softmax", &[&n("q")], &n("attention")));
        nodes.push(node("MatMul", &[&n("attention"), "wo"], &n("attended")));
        nodes.push(node("Add", &[x, &n("attended")], &n("sum1")));
        let middle = if pre_norm {
            n("sum1")
        } else {
            nodes.push(node(
                "LayerNormalization",
                &[&n("sum1"), "scale"],
                &n("norm1"),
            ));
            n("norm1")
        };
        let ffn_input = if pre_norm {
            nodes.push(node("LayerNormalization", &[&middle, "scale"], &n("norm2")));
            n("norm2")
        } else {
            middle.clone()
        };
        nodes.push(node("MatMul", &[&ffn_input, "w1"], &n("up")));
        nodes.push(node("Relu", &[&n("up")], &n("relu")));
        nodes.push(node("MatMul", &[&n("relu"), "w2"], &n("down")));
        nodes.push(node("Add", &[&middle, &n("down")], &n("sum2")));
        let output = if pre_norm {
            n("sum2")
        } else {
            nodes.push(node(
                "LayerNormalization",
                &[&n("sum2"), "scale"],
                &n("norm2"),
            ));
            n("norm2")
        };
        (nodes, output)
    }

    fn encoder(layers: usize, pre_norm: bool) -> GraphSummary {
        let mut nodes = vec![node("Gather", &["embedding", "tokens"], "x0")];
        let mut x = "x0".to_string();
        for index in 0..layers {
            let (layer_nodes, output) = layer(index, &x, pre_norm);
            nodes.extend(layer_nodes);
            x = output;
        }
        nodes.push(node("ReduceMean", &[&x], "pooled"));
        let mut attributes = Attributes::new();
        attributes.insert("transB", 1);
        nodes.push(
            node("Gemm", &["pooled", "head.weight", "head.bias"], "logits")
                .with_attributes(attributes),
        );
        let initializers = ["wq", "wo", "w1", "w2", "scale", "head.bias"]
            .iter()
            .map(|name| weight(name, &[48, 48]))
            .chain([
                weight("embedding", &[100, 48]),
                weight("head.weight", &[3, 48]),
            ])
            .collect();
        GraphSummary::new(Vec::new(), Vec::new(), nodes, initializers).with_opset(Some(17))
    }

    fn taps(plan: &AdapterPlan) -> Vec<&str> {
        plan.taps.iter().map(|tap| tap.tensor.as_str()).collect()
    }

    #[test]
    fn post_norm_layers_are_tapped_after_their_second_normalisation() {
        let plan = TransformerAdapter
            .analyse(&encoder(3, false))
            .unwrap()
            .unwrap();
        assert_eq!(taps(&plan), ["l0.norm2", "l1.norm2", "l2.norm2"]);
        assert_eq!(plan.width, 48);
        assert!(plan.trainable.is_empty() && plan.frozen.is_empty());
    }

    #[test]
    fn pre_norm_layers_are_tapped_at_their_second_residual_sum() {
        let plan = TransformerAdapter
            .analyse(&encoder(3, true))
            .unwrap()
            .unwrap();
        assert_eq!(taps(&plan), ["l0.sum2", "l1.sum2", "l2.sum2"]);
    }

    #[test]
    fn graphs_without_attention_are_not_claimed() {
        let mut graph = encoder(2, false);
        graph.nodes.retain(|node| node.op_type != "Softmax");
        assert!(TransformerAdapter.analyse(&graph).unwrap().is_none());
    }
}
