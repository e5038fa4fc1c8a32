//! Tessera plugin: recognises residual MLPs (no attention, convolution or recurrence) and taps
//! the output of every residual block.

use tessera_adapter_kit::GraphHeuristics;
use tessera_api::{
    AdapterPlan, AdapterPlugin, ArchitectureAdapter, GraphSummary, Pooling, TapLayout, TapPoint,
};

const EXCLUDED: [&str; 6] = ["Softmax", "Conv", "LSTM", "GRU", "RNN", "Attention"];

#[derive(Clone)]
struct MlpAdapter;

impl ArchitectureAdapter for MlpAdapter {
    fn name(&self) -> &str {
        "mlp"
    }

    fn analyse(&self, graph: &GraphSummary) -> Result<Option<AdapterPlan>, String> {
        if EXCLUDED.iter().any(|op| graph.count(op) > 0)
            || graph.count("Gemm") + graph.count("MatMul") == 0
        {
            return Ok(None);
        }
        let adds = graph.residual_adds();
        if adds.is_empty() {
            return Ok(None);
        }
        let taps = adds
            .iter()
            .filter_map(|add| add.outputs.first())
            .map(|tensor| {
                // Token-wise MLPs keep a sequence axis; flattened ones do not.
                let sequence = graph
                    .shapes
                    .get(tensor)
                    .is_some_and(|shape| shape.len() == 3);
                if sequence {
                    TapPoint::new(tensor.clone(), TapLayout::BatchTimeFeature, Pooling::Mean)
                } else {
                    TapPoint::new(tensor.clone(), TapLayout::BatchFeature, Pooling::None)
                }
            })
            .collect();
        let Some(width) = graph.classifier_input_width() else {
            return Err("no classifier head (final Gemm/MatMul with stored weights) to read the model width from".into());
        };
        Ok(Some(AdapterPlan::new("mlp", 0.8, width, taps)))
    }
}

tessera_api::export_plugin!(AdapterPlugin::new(tessera_api::plugin_info!(), MlpAdapter));
