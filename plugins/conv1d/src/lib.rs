//! Tessera plugin: recognises 1-D convolutional networks (channels first, `[B, C, T]`) and taps
//! the output of every residual block, or of every convolution when there are no residuals.

use tessera_adapter_kit::GraphHeuristics;
use tessera_api::{
    AdapterPlan, AdapterPlugin, ArchitectureAdapter, GraphSummary, Pooling, TapLayout, TapPoint,
};

#[derive(Clone)]
struct Conv1dAdapter;

impl ArchitectureAdapter for Conv1dAdapter {
    fn name(&self) -> &str {
        "conv1d"
    }

    fn analyse(&self, graph: &GraphSummary) -> Result<Option<AdapterPlan>, String> {
        let weights: Vec<Vec<u64>> = graph
            .nodes_of("Conv")
            .map(|conv| {
                conv.inputs
                    .get(1)
                    .and_then(|weight| graph.initializer(weight))
                    .map(|weight| weight.dims.clone())
                    .unwrap_or_default()
            })
            .collect();
        // Only 1-D convolutions ([out, in, kernel] weights) belong to this family.
        if weights.is_empty() || weights.iter().any(|dims| dims.len() != 3) {
            return Ok(None);
        }
        let adds = graph.residual_adds();
        let block_outputs: Vec<String> = if adds.is_empty() {
            graph
                .nodes_of("Conv")
                .filter_map(|conv| conv.outputs.first().cloned())
                .collect()
        } else {
            adds.iter()
                .filter_map(|add| add.outputs.first().cloned())
                .collect()
        };
        let width = weights.last().map_or(0, |dims| dims[0]);
        Ok(Some(AdapterPlan::new(
            "conv1d",
            0.9,
            width,
            block_outputs
                .into_iter()
                .map(|tensor| TapPoint::new(tensor, TapLayout::BatchFeatureTime, Pooling::Mean))
                .collect(),
        )))
    }
}

tessera_api::export_plugin!(AdapterPlugin::new(
    tessera_api::plugin_info!(),
    Conv1dAdapter
));
