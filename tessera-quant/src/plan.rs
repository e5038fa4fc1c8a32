//! Which tensors of a graph a quantisation touches: the weights of its compute nodes, with the
//! layout of their scales, the activations those nodes read (and a `Conv` writes), and the
//! biases that follow their inputs onto an integer grid.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use tessera_api::QuantisationChoices;
use tessera_onnx::proto::{tensor_proto::DataType, GraphProto, NodeProto};
use tessera_onnx::OnnxModel;

use crate::grid::{Granularity, Grid};
use crate::scheme::{Precision, QuantisationOptions, MIN_CONV_INPUT_CHANNELS, MIN_INTEGER_DEPTH};

/// The shapes tensors take when the model runs on one sample (a batch of one), by tensor name:
/// what the plan counts a layer's multiply-accumulates with. [`shape_probes`] names the tensors
/// it reads.
pub type SampleShapes = HashMap<String, Vec<usize>>;

/// What a quantised weight belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WeightRole {
    /// The weight of a `MatMul`, `Gemm` or `Conv`: its inputs and outputs may be quantised too.
    Compute,
    /// A weight of an `LSTM` or `GRU` (input or recurrence): weight-only.
    Recurrent,
    /// A lookup table read by `Gather`: weight-only, one scale per row.
    Table,
}

/// One weight initializer to store on an integer grid.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WeightSite {
    /// The initializer.
    pub initializer: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// The first node that reads it.
    pub node: String,
    /// What it is.
    pub role: WeightRole,
    /// How its scales are laid out.
    pub granularity: Granularity,
    /// Its grid.
    pub grid: Grid,
    /// Whether its grid is symmetric (zero point 0).
    pub symmetric: bool,
    /// Whether a node that reads it gets an integer kernel (its input quantised): the export
    /// keeps it behind a `DequantizeLinear` for ONNX Runtime's QDQ fusions, where a weight no
    /// integer kernel reads is widened by `Cast` → `Mul`, folded at load.
    pub integer_kernel: bool,
}

/// A bias that goes onto an int32 grid whose scale is its input's scale times its weight's
/// (per output channel), as ONNX Runtime's quantiser stores `Gemm` and `Conv` biases.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BiasSite {
    /// The bias initializer.
    pub initializer: String,
    /// The quantised activation its node reads.
    pub activation: String,
    /// The quantised weight its node reads.
    pub weight: String,
}

/// Everything a quantisation of one graph touches.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuantisationPlan {
    /// Weights stored on a grid, in graph order.
    pub weights: Vec<WeightSite>,
    /// Activations quantised where they are produced (INT8 activations only), in graph order:
    /// the inputs of compute nodes with integer kernels, the outputs of those that are `Conv`
    /// nodes, and the output of a `Relu` that alone reads such a `Gemm`.
    pub activations: Vec<String>,
    /// Biases stored on an int32 grid (INT8 activations only).
    pub biases: Vec<BiasSite>,
    /// Compute nodes left floating-point by the adapter's choices.
    pub kept_float: Vec<String>,
    /// Compute nodes with INT8 weights and no integer kernel although INT8 activations were
    /// asked for: too small for one to pay for quantising their input
    /// ([`QuantisationOptions::min_integer_macs`]), or reading a tensor that cannot be
    /// quantised (a graph output or a constant). Their weights are widened at load.
    pub weight_only: Vec<String>,
}

impl QuantisationPlan {
    /// Whether the plan quantises nothing.
    pub fn is_empty(&self) -> bool {
        self.weights.is_empty()
    }

    /// The site of weight `initializer`, if it is quantised.
    pub fn weight(&self, initializer: &str) -> Option<&WeightSite> {
        self.weights
            .iter()
            .find(|site| site.initializer == initializer)
    }
}

/// A compute node with a stored weight: what it is, and which of its inputs is the weight.
struct Candidate<'g> {
    node: &'g NodeProto,
    role: WeightRole,
    weights: Vec<(String, Vec<usize>, usize, usize)>,
}

impl Candidate<'_> {
    /// The tensor whose shape for one sample says how many times the weight is applied per
    /// sample: a `MatMul`'s or `Gemm`'s input (its rows), a `Conv`'s output (its positions).
    fn probe(&self) -> Option<&str> {
        let tensor = match self.node.op_type.as_str() {
            "MatMul" | "Gemm" => self.node.input.first(),
            "Conv" => self.node.output.first(),
            _ => None,
        };
        tensor.map(String::as_str).filter(|name| !name.is_empty())
    }

    /// The values each output sums over and the multiply-accumulates per sample; a probe of
    /// unknown shape counts as one row or position, the least it can be.
    fn work(&self, shapes: &SampleShapes) -> (usize, usize) {
        let (_, shape, channel, _) = &self.weights[0];
        let outputs = shape[*channel];
        let depth = shape.iter().product::<usize>() / outputs.max(1);
        let probed = self.probe().and_then(|name| shapes.get(name));
        let transposed_input = self
            .node
            .attribute
            .iter()
            .any(|a| a.name == "transA" && a.i == 1);
        let applications = match (self.node.op_type.as_str(), probed) {
            // The rows of a sample wherever its batch axis is: everything but the summed axis.
            ("MatMul", Some(shape)) => shape.iter().rev().skip(1).product(),
            ("Gemm", Some(shape)) if transposed_input => shape.iter().skip(1).product(),
            ("Gemm", Some(shape)) => shape.iter().take(1).product(),
            ("Conv", Some(shape)) => shape.iter().skip(2).product(),
            _ => 1,
        };
        (depth, applications * depth * outputs)
    }

    /// Whether an integer kernel pays for quantising this layer's input.
    fn pays_for_integer_kernel(&self, shapes: &SampleShapes, min_macs: usize) -> bool {
        let (depth, macs) = self.work(shapes);
        let narrow_conv = self.node.op_type == "Conv"
            && self.weights[0].1.get(1).copied().unwrap_or(0) < MIN_CONV_INPUT_CHANNELS;
        min_macs == 0 || (depth >= MIN_INTEGER_DEPTH && macs >= min_macs && !narrow_conv)
    }
}

/// The output of the `Relu` that alone reads a `Gemm`'s output (which is no graph output), if
/// there is one.
fn sole_relu_after<'g>(
    gemm: &NodeProto,
    nodes: &'g [NodeProto],
    outputs: &HashSet<&str>,
) -> Option<&'g str> {
    let output = gemm
        .output
        .first()
        .filter(|output| gemm.op_type == "Gemm" && !outputs.contains(output.as_str()))?;
    let mut readers = nodes.iter().filter(|node| node.input.contains(output));
    match (readers.next(), readers.next()) {
        (Some(relu), None) if relu.op_type == "Relu" && relu.domain.is_empty() => {
            relu.output.first().map(String::as_str)
        }
        _ => None,
    }
}

/// The axis of a weight's output channels and the axis its node sums over, for each weight
/// input of `node`; `None` when the node reads no stored float weight this plan handles.
fn candidate<'g>(
    node: &'g NodeProto,
    float_initializer: &dyn Fn(&str) -> Option<Vec<usize>>,
) -> Option<Candidate<'g>> {
    let input = |index: usize| node.input.get(index).filter(|name| !name.is_empty());
    let weight = |index: usize, rank: Option<usize>| {
        input(index).and_then(|name| {
            float_initializer(name)
                .filter(|shape| rank.is_none_or(|rank| shape.len() == rank))
                .map(|shape| (name.clone(), shape))
        })
    };
    let int = |name: &str| {
        node.attribute
            .iter()
            .find(|attribute| attribute.name == name)
            .map_or(0, |attribute| attribute.i)
    };
    let (role, weights) = match node.op_type.as_str() {
        "MatMul" => {
            let (name, shape) = weight(1, Some(2))?;
            (WeightRole::Compute, vec![(name, shape, 1, 0)])
        }
        "Gemm" => {
            let (name, shape) = weight(1, Some(2))?;
            let (channel, reduction) = if int("transB") == 1 { (0, 1) } else { (1, 0) };
            (WeightRole::Compute, vec![(name, shape, channel, reduction)])
        }
        "Conv" => {
            let (name, shape) = weight(1, None).filter(|(_, shape)| shape.len() >= 3)?;
            (WeightRole::Compute, vec![(name, shape, 0, 1)])
        }
        "LSTM" | "GRU" => {
            let weights: Vec<_> = [1, 2]
                .into_iter()
                .filter_map(|index| weight(index, Some(3)))
                .map(|(name, shape)| (name, shape, 1, 2))
                .collect();
            if weights.is_empty() {
                return None;
            }
            (WeightRole::Recurrent, weights)
        }
        "Gather" => {
            let (name, shape) = weight(0, Some(2))?;
            (WeightRole::Table, vec![(name, shape, 0, 1)])
        }
        _ => return None,
    };
    Some(Candidate {
        node,
        role,
        weights,
    })
}

/// The tensors of `model` whose per-sample shapes [`plan`] reads to size its compute layers.
pub fn shape_probes(model: &OnnxModel) -> Vec<String> {
    let graph = model.graph();
    let float_initializer = float_initializer_shape(graph);
    let mut probes: Vec<String> = Vec::new();
    for candidate in graph
        .node
        .iter()
        .filter_map(|node| candidate(node, &float_initializer))
    {
        if let Some(probe) = candidate.probe() {
            if !probes.iter().any(|known| known == probe) {
                probes.push(probe.to_string());
            }
        }
    }
    probes
}

/// The shape of the float initializer a name refers to, if it is one.
fn float_initializer_shape(graph: &GraphProto) -> impl Fn(&str) -> Option<Vec<usize>> + '_ {
    |name: &str| {
        graph
            .initializer
            .iter()
            .find(|init| init.name == name && init.data_type == DataType::Float as i32)
            .map(|init| init.dims.iter().map(|&d| d as usize).collect::<Vec<_>>())
    }
}

/// The plan for quantising `model` with `options`, honouring the adapter's `choices`; `shapes`
/// (of the tensors [`shape_probes`] names) size the compute layers for
/// [`QuantisationOptions::min_integer_macs`]. FP16 touches every float initializer and needs no
/// plan: it gets an empty one.
pub fn plan(
    model: &OnnxModel,
    options: &QuantisationOptions,
    choices: &QuantisationChoices,
    shapes: &SampleShapes,
) -> QuantisationPlan {
    let mut plan = QuantisationPlan {
        weights: Vec::new(),
        activations: Vec::new(),
        biases: Vec::new(),
        kept_float: Vec::new(),
        weight_only: Vec::new(),
    };
    if options.precision == Precision::Fp16 {
        return plan;
    }
    let graph = model.graph();
    let float_initializer = float_initializer_shape(graph);
    let constants: HashSet<&str> = graph.initializer.iter().map(|i| i.name.as_str()).collect();
    let outputs: HashSet<&str> = graph.output.iter().map(|o| o.name.as_str()).collect();
    let candidates: Vec<Candidate> = graph
        .node
        .iter()
        .filter_map(|node| candidate(node, &float_initializer))
        .collect();
    let layers: Vec<&str> = candidates
        .iter()
        .filter(|c| c.role != WeightRole::Table)
        .map(|c| c.node.name.as_str())
        .collect();
    let bits = if options.precision == Precision::Int4 {
        4
    } else {
        8
    };
    let grid = Grid::signed(bits, options.symmetric);
    let quantise_activations = options.quantises_activations();
    let mut activations: Vec<String> = Vec::new();
    let add_activation = |activations: &mut Vec<String>, tensor: &str| {
        if !tensor.is_empty()
            && !constants.contains(tensor)
            && !outputs.contains(tensor)
            && !activations.iter().any(|known| known == tensor)
        {
            activations.push(tensor.to_string());
        }
    };
    let mut compute: Vec<&Candidate> = Vec::new();
    for candidate in &candidates {
        let name = candidate.node.name.as_str();
        let end_kept = (Some(&name) == layers.first() && !choices.first_layer)
            || (Some(&name) == layers.last() && !choices.last_layer);
        let table_kept = candidate.role == WeightRole::Table && !choices.embeddings;
        if end_kept || table_kept || choices.keep_float.iter().any(|kept| kept == name) {
            plan.kept_float.push(name.to_string());
            continue;
        }
        for (initializer, shape, channel, reduction) in &candidate.weights {
            if plan.weight(initializer).is_some() {
                continue;
            }
            let granularity = match options.int4_block {
                Some(size) if bits == 4 && shape[*reduction].is_multiple_of(size) => {
                    Granularity::Blocked {
                        axis: *reduction,
                        size,
                    }
                }
                _ if options.per_channel || candidate.role == WeightRole::Table => {
                    Granularity::PerChannel { axis: *channel }
                }
                _ => Granularity::PerTensor,
            };
            plan.weights.push(WeightSite {
                initializer: initializer.clone(),
                shape: shape.clone(),
                node: name.to_string(),
                role: candidate.role,
                granularity,
                grid,
                symmetric: options.symmetric,
                integer_kernel: false,
            });
        }
        if quantise_activations && candidate.role == WeightRole::Compute {
            compute.push(candidate);
        }
    }
    // First the layers large enough to pay for quantising their input; then every compute
    // node whose input ended up quantised gets an integer kernel, whoever asked for it (in
    // graph order, so that a quantised `Conv` output reaches the nodes after it).
    for candidate in &compute {
        if candidate.pays_for_integer_kernel(shapes, options.min_integer_macs) {
            add_activation(&mut activations, &candidate.node.input[0]);
        }
    }
    for candidate in compute {
        let input = &candidate.node.input[0];
        if !activations.iter().any(|a| a == input) {
            // Too small, or its input cannot be quantised (a graph output or a constant).
            plan.weight_only.push(candidate.node.name.clone());
            continue;
        }
        for (initializer, ..) in &candidate.weights {
            if let Some(site) = plan
                .weights
                .iter_mut()
                .find(|s| &s.initializer == initializer)
            {
                site.integer_kernel = true;
            }
        }
        // ONNX Runtime's integer MatMul and Gemm kernels (MatMulIntegerToFloat, QGemm)
        // return float, so a Q/DQ pair on their output would only cost time; QLinearConv
        // needs its output's scale, and chains of convolutions then stay integer.
        if candidate.node.op_type == "Conv" {
            if let Some(output) = candidate.node.output.first() {
                add_activation(&mut activations, output);
            }
        }
        // ONNX Runtime fuses a Gemm and the Relu after it into a float FusedGemm before its
        // QDQ fusions run, which then computes in float behind DequantizeLinear nodes that
        // run on every inference; with the Relu's output quantised it fuses Gemm, Relu and
        // QuantizeLinear into one QGemm instead (the Relu is redundant on that grid).
        if let Some(relu) = sole_relu_after(candidate.node, &graph.node, &outputs) {
            add_activation(&mut activations, relu);
        }
        let bias = candidate
            .node
            .input
            .get(2)
            .filter(|b| float_initializer(b).is_some());
        if let Some(bias) = bias {
            plan.biases.push(BiasSite {
                initializer: bias.clone(),
                activation: input.clone(),
                weight: candidate.weights[0].0.clone(),
            });
        }
    }
    // In graph order: graph inputs first, then by the node that writes them.
    let written_at: HashMap<&str, usize> = graph
        .node
        .iter()
        .enumerate()
        .flat_map(|(index, node)| node.output.iter().map(move |o| (o.as_str(), index + 1)))
        .collect();
    activations.sort_by_key(|tensor| written_at.get(tensor.as_str()).copied().unwrap_or(0));
    plan.activations = activations;
    plan
}
