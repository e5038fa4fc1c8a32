//! Tessera plugin: recognises recurrent networks exported as ONNX `LSTM`, `GRU` or `RNN` nodes
//! and taps every layer's sequence of hidden states (`[T, directions, B, H]`).

use tessera_api::{
    AdapterPlan, AdapterPlugin, ArchitectureAdapter, GraphSummary, Pooling, TapLayout, TapPoint,
};

const RECURRENT: [&str; 3] = ["LSTM", "GRU", "RNN"];

#[derive(Clone)]
struct RecurrentAdapter;

impl ArchitectureAdapter for RecurrentAdapter {
    fn name(&self) -> &str {
        "lstm"
    }

    fn analyse(&self, graph: &GraphSummary) -> Result<Option<AdapterPlan>, String> {
        let layers: Vec<_> = graph
            .nodes
            .iter()
            .filter(|node| RECURRENT.contains(&node.op_type.as_str()))
            .collect();
        let Some(last) = layers.last() else {
            return Ok(None);
        };
        let hidden = last
            .int_attribute("hidden_size")
            .ok_or_else(|| format!("{} node {:?} has no hidden_size", last.op_type, last.name))?;
        let directions = match last.string_attribute("direction") {
            Some("bidirectional") => 2,
            _ => 1,
        };
        Ok(Some(AdapterPlan::new(
            "lstm",
            0.9,
            hidden as u64 * directions,
            layers
                .iter()
                .filter_map(|node| node.outputs.first().filter(|y| !y.is_empty()))
                .map(|tensor| {
                    TapPoint::new(tensor.clone(), TapLayout::OnnxRecurrent, Pooling::Mean)
                })
                .collect(),
        )))
    }
}

tessera_api::export_plugin!(AdapterPlugin::new(
    tessera_api::plugin_info!(),
    RecurrentAdapter
));
