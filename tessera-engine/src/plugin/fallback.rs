//! The built-in fallback adapter: claims any graph, with the lowest score, reading tap points
//! off its structure (residual additions, normalisations, recurrent outputs) and their layouts
//! off the inferred shapes.

use tessera_adapter_kit::GraphHeuristics;
use tessera_api::{
    AdapterPlan, ArchitectureAdapter, DimSummary, GraphSummary, Pooling, TapLayout, TapPoint,
};

/// Name of the fallback adapter.
pub const FALLBACK_ADAPTER: &str = "fallback";
/// Its score: any plugin that recognises a graph wins over it.
pub const FALLBACK_SCORE: f32 = 0.05;

const NORMALISATIONS: [&str; 4] = [
    "LayerNormalization",
    "RMSNormalization",
    "SimplifiedLayerNormalization",
    "SkipLayerNormalization",
];
const RECURRENT: [&str; 3] = ["LSTM", "GRU", "RNN"];

/// The fallback adapter.
pub struct FallbackAdapter;

impl ArchitectureAdapter for FallbackAdapter {
    fn name(&self) -> &str {
        FALLBACK_ADAPTER
    }

    fn analyse(&self, graph: &GraphSummary) -> Result<Option<AdapterPlan>, String> {
        let residual: Vec<&str> = graph
            .residual_adds()
            .into_iter()
            .filter_map(|node| node.outputs.first().map(String::as_str))
            .collect();
        let channels_first = graph.count("Conv") > 0;
        let taps: Vec<(TapPoint, u64)> = graph
            .nodes
            .iter()
            .filter_map(|node| {
                let output = node.outputs.first()?;
                let candidate = NORMALISATIONS.contains(&node.op_type.as_str())
                    || RECURRENT.contains(&node.op_type.as_str())
                    || residual.contains(&output.as_str());
                if !candidate {
                    return None;
                }
                let shape = graph.shapes.get(output)?;
                let layout = layout_of(shape, channels_first)?;
                let width = layout.feature_width(&concrete(shape)?)?;
                let pooling = match layout {
                    TapLayout::BatchFeature => Pooling::None,
                    _ => Pooling::Mean,
                };
                Some((TapPoint::new(output.clone(), layout, pooling), width))
            })
            .collect();
        // The representation's width is the deepest tap's; taps of other widths are inner
        // layers (e.g. an MLP block's widened normalisation).
        let Some(width) = taps.last().map(|(_, width)| *width) else {
            return Ok(None);
        };
        Ok(Some(AdapterPlan::new(
            "unknown",
            FALLBACK_SCORE,
            width,
            taps.into_iter()
                .filter(|(_, tap_width)| *tap_width == width)
                .map(|(tap, _)| tap)
                .collect(),
        )))
    }
}

/// The layout a shape suggests: the batch dimension is the symbolic one.
fn layout_of(shape: &[DimSummary], channels_first: bool) -> Option<TapLayout> {
    let batch = shape
        .iter()
        .position(|dim| matches!(dim, DimSummary::Symbolic(_)))?;
    match (shape.len(), batch) {
        (2, 0) => Some(TapLayout::BatchFeature),
        (3, 0) if channels_first => Some(TapLayout::BatchFeatureTime),
        (3, 0) => Some(TapLayout::BatchTimeFeature),
        (4, 2) => Some(TapLayout::OnnxRecurrent),
        _ => None,
    }
}

/// The shape with the batch (the only symbolic dimension allowed) set to 1.
fn concrete(shape: &[DimSummary]) -> Option<Vec<u64>> {
    let mut symbolic = 0;
    let dims = shape
        .iter()
        .map(|dim| {
            dim.as_fixed().unwrap_or_else(|| {
                symbolic += 1;
                1
            })
        })
        .collect();
    (symbolic == 1).then_some(dims)
}
