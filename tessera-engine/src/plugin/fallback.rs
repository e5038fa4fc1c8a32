//! The built-in fallback adapter: claims any graph, with the lowest score. It reads tap points
//! off the graph's structure — residual additions, normalisations, recurrent outputs — and,
//! where it has none of those, off its compute nodes (convolutions, matrix products,
//! recurrences) at a few depths; the representation the classifier head reads is the deepest
//! tap either way. Layouts and pooling follow the inferred shapes.

use tessera_adapter_kit::GraphHeuristics;
use tessera_api::{
    AdapterPlan, ArchitectureAdapter, DimSummary, GraphSummary, NodeSummary, Pooling, TapLayout,
    TapPoint,
};

/// Name of the fallback adapter.
pub const FALLBACK_ADAPTER: &str = "fallback";
/// Its score: any plugin that recognises a graph wins over it.
pub const FALLBACK_SCORE: f32 = 0.05;
/// Most compute-node taps read from a graph without structural markers.
const COMPUTE_TAPS: usize = 3;

const NORMALISATIONS: [&str; 4] = [
    "LayerNormalization",
    "RMSNormalization",
    "SimplifiedLayerNormalization",
    "SkipLayerNormalization",
];
const RECURRENT: [&str; 3] = ["LSTM", "GRU", "RNN"];
const COMPUTE: [&str; 6] = ["Conv", "MatMul", "Gemm", "LSTM", "GRU", "RNN"];
/// What may follow a compute node inside the same layer: its bias, normalisation and
/// activation. A tap reads the layer's output after them.
const LAYER_TAIL: [&str; 14] = [
    "Add",
    "BatchNormalization",
    "Relu",
    "LeakyRelu",
    "Gelu",
    "Tanh",
    "Sigmoid",
    "Clip",
    "HardSigmoid",
    "HardSwish",
    "Elu",
    "Selu",
    "Softplus",
    "Mish",
];

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
        let structural: Vec<&str> = graph
            .nodes
            .iter()
            .filter_map(|node| {
                let output = node.outputs.first()?;
                let marker = NORMALISATIONS.contains(&node.op_type.as_str())
                    || RECURRENT.contains(&node.op_type.as_str())
                    || residual.contains(&output.as_str());
                marker.then_some(output.as_str())
            })
            .collect();
        let head = graph.classifier_head();
        let candidates = if structural.is_empty() {
            compute_outputs(graph, head)
        } else {
            structural
        };
        let mut taps: Vec<(TapPoint, u64)> = candidates
            .into_iter()
            .filter_map(|tensor| tap_of(graph, tensor))
            .collect();
        // The head's input is the representation the network classifies from (a class token,
        // a pooled feature map): the deepest tap, when it is not one already.
        if let Some(representation) = head
            .and_then(|head| head.inputs.first())
            .filter(|input| !taps.iter().any(|(tap, _)| &tap.tensor == *input))
            .and_then(|input| tap_of(graph, input))
        {
            taps.push(representation);
        }
        // The representation's width is the deepest tap's; taps of other widths are inner
        // layers (an MLP block's widened normalisation, a CNN's narrower first stage).
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

/// The outputs of the graph's compute layers but the head, at most [`COMPUTE_TAPS`] of them
/// spread evenly over depth, the deepest included.
fn compute_outputs<'g>(graph: &'g GraphSummary, head: Option<&NodeSummary>) -> Vec<&'g str> {
    let layers: Vec<&str> = graph
        .nodes
        .iter()
        .filter(|node| COMPUTE.contains(&node.op_type.as_str()))
        .filter(|node| head.is_none_or(|head| head.outputs != node.outputs))
        .filter_map(|node| layer_output(graph, node))
        .collect();
    if layers.len() <= COMPUTE_TAPS {
        return layers;
    }
    let last = layers.len() - 1;
    (0..COMPUTE_TAPS)
        .map(|index| layers[last - (COMPUTE_TAPS - 1 - index) * last / (COMPUTE_TAPS - 1)])
        .collect()
}

/// The output of the layer `node` computes: after the bias, normalisation and activation that
/// follow it alone.
fn layer_output<'g>(graph: &'g GraphSummary, node: &'g NodeSummary) -> Option<&'g str> {
    let mut output = node.outputs.first()?.as_str();
    loop {
        let mut consumers = graph.consumers(output);
        let (Some(next), None) = (consumers.next(), consumers.next()) else {
            return Some(output);
        };
        let bias = next.op_type != "Add"
            || next
                .inputs
                .iter()
                .any(|input| input != output && graph.is_initializer(input));
        if !(LAYER_TAIL.contains(&next.op_type.as_str()) && bias) {
            return Some(output);
        }
        output = next.outputs.first()?.as_str();
    }
}

/// `tensor` as a tap, with its pooled width, when its inferred shape has a layout.
fn tap_of(graph: &GraphSummary, tensor: &str) -> Option<(TapPoint, u64)> {
    let shape = graph.shapes.get(tensor)?;
    let producer = graph.producer(tensor)?;
    let layout = layout_of(shape, from_convolution(graph, producer))?;
    let width = layout.feature_width(&concrete(shape)?)?;
    let pooling = match layout {
        TapLayout::BatchFeature => Pooling::None,
        _ => Pooling::Mean,
    };
    Some((TapPoint::new(tensor, layout, pooling), width))
}

/// Whether `node` computes a convolution's channels-first output: it is a `Conv`, or part of
/// a layer's tail (a bias, an activation, a residual addition) over one, within a few nodes.
fn from_convolution(graph: &GraphSummary, node: &NodeSummary) -> bool {
    fn search(graph: &GraphSummary, node: &NodeSummary, depth: usize) -> bool {
        node.op_type == "Conv"
            || (depth > 0
                && LAYER_TAIL.contains(&node.op_type.as_str())
                && node
                    .inputs
                    .iter()
                    .filter_map(|input| graph.producer(input))
                    .any(|previous| search(graph, previous, depth - 1)))
    }
    search(graph, node, 8)
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
        (4, 0) if channels_first => Some(TapLayout::BatchFeatureHeightWidth),
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
