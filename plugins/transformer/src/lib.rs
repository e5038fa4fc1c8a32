//! Tessera plugin: recognises Transformer encoders and taps each layer's output.
//!
//! A layer is found by its attention `Softmax`; each layer has two residual additions
//! (attention, feed-forward). In a post-norm layer (`LayerNorm(x + f(x))`, PyTorch's default) a
//! residual sum feeds only a normalisation, whose output is the layer's output; in a pre-norm
//! layer (`x + f(LayerNorm(x))`) the second residual sum is.

use tessera_api::{
    AdapterPlan, ArchitectureAdapter, GraphSummary, Plugin, PluginInfo, Pooling, TapLayout,
    TapPoint,
};

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
                TapPoint {
                    tensor,
                    layout: TapLayout::BatchTimeFeature,
                    pooling: Pooling::Mean,
                }
            })
            .collect();
        let Some(width) = graph.classifier_input_width() else {
            return Err("no classifier head (final Gemm/MatMul with stored weights) to read the model width from".into());
        };
        Ok(Some(AdapterPlan {
            score: 0.9,
            family: "transformer".into(),
            width,
            taps,
            trainable: Vec::new(),
            frozen: graph
                .gathered_tables()
                .into_iter()
                .map(String::from)
                .collect(),
        }))
    }
}

#[derive(Default)]
struct TransformerPlugin;

impl Plugin for TransformerPlugin {
    fn info(&self) -> PluginInfo {
        PluginInfo {
            name: "transformer".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: env!("CARGO_PKG_DESCRIPTION").into(),
        }
    }

    fn adapters(&self) -> Vec<Box<dyn ArchitectureAdapter>> {
        vec![Box::new(TransformerAdapter)]
    }
}

tessera_api::export_plugin!(TransformerPlugin);
