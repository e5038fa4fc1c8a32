//! Export of a quantised model as standard ONNX, in one of three layouts.
//!
//! - **INT8** (and INT4 held in `int8`): the QDQ layout ONNX Runtime's own `quantize_static`
//!   writes, so that its QDQ fusions turn the graph into integer kernels. Every quantised
//!   weight `W` becomes `W_quantized` (int8), `W_scale` and `W_zero_point` feeding a
//!   `DequantizeLinear` whose output is named `W`, so every node that read the weight is
//!   unchanged. A weight whose node reads no quantised activation (`LSTM` and `GRU` weights,
//!   `Gather` tables, every weight of a weight-only precision), which no runtime can fuse into
//!   an integer kernel, is stored the same way but widened by `Cast` → (`Sub` zero point) →
//!   `Mul` scale instead: the same arithmetic on constants, which runtimes fold into a float
//!   constant when they load the model, where a `DequantizeLinear` would be kept for QDQ
//!   fusions that never come and run on every inference. Every quantised activation `t` gets a
//!   `QuantizeLinear` → `DequantizeLinear` pair right after its producer, and the nodes that
//!   read `t` read `t_dequantized` instead (but `Shape` and `Size`, which read only its shape).
//!   Biases of `Gemm`/`Conv` nodes whose input and weight are quantised are stored as int32
//!   with scale `input scale × weight scale` and zero point 0, which is left out, as is the
//!   zero point of a symmetric weight only `MatMul`s read (ONNX Runtime fuses `Gemm` and `Conv`
//!   weights only with theirs). The model's opset is kept (13 or newer: per-channel
//!   `DequantizeLinear` needs 13).
//! - **INT4 packed**: weight-only; the same weight layout with ONNX `int4` initializers (two
//!   values per byte, the first in the low nibble) and, for block-wise scales, the `axis` and
//!   `block_size` of opset-21 `DequantizeLinear`. The model is raised to opset 21 (and IR
//!   version 10), converting the nodes whose meaning changed on the way; a node this module
//!   cannot convert with certainty is refused rather than guessed at.
//! - **FP16**: every float32 initializer a node reads is stored as float16 and cast back to
//!   float32 by a `Cast` node in front of the graph. Computation, inputs and outputs stay
//!   float32: ONNX Runtime's CPU kernels lack float16 for several operators, whereas a float16
//!   weight file halves the size and runs everywhere. A tensor holding a value beyond float16's
//!   range (±65504) stays float32 rather than turn infinite.
//!
//! [`export_with`] can store the activations of the INT8 layout as `uint8` instead, on the same
//! grid ([`ActivationStorage`]). Every export merges the graph's duplicate `Constant` nodes
//! ([`merge_duplicate_constants`]) and records its options in the model's metadata, under
//! [`METADATA_KEY`].

use std::collections::{HashMap, HashSet};

use tessera_onnx::proto::{
    attribute_proto::AttributeType, tensor_proto::DataType, AttributeProto, GraphProto, ModelProto,
    NodeProto, StringStringEntryProto, TensorProto,
};
use tessera_onnx::{float_values, merge_duplicate_constants, OnnxModel};

use crate::grid::{quantize_weight, round_half_to_even, Granularity, QuantParams, QuantizedWeight};
use crate::plan::QuantisationPlan;
use crate::scheme::{Int4Storage, Precision, QuantisationOptions};
use crate::{Error, Result};

/// The metadata key under which an exported model records how it was quantised
/// ([`QuantisationOptions::label`]).
pub const METADATA_KEY: &str = "tessera.quantisation";

/// The lowest default-domain opset the QDQ layout is written for: per-channel
/// `QuantizeLinear`/`DequantizeLinear` (the `axis` attribute) appeared in opset 13.
pub const QDQ_OPSET: i64 = 13;

/// The default-domain opset of `int4` and block-wise `DequantizeLinear`.
pub const INT4_OPSET: i64 = 21;

/// The lowest IR version that holds `int4` tensors and opset 21.
pub const INT4_IR_VERSION: i64 = 10;

/// The largest finite float16.
const F16_MAX: f32 = 65504.0;

/// The quantised model as standard ONNX: `model` with the weights, activations and biases of
/// `plan` on their grids, in the layout `options` asks for (see the [module](self) doc), with
/// activations stored as `int8`.
///
/// Weights are read from `model`'s initializers as they are now (the fine-tuned receiver).
/// `activations` holds the calibrated parameters of every tensor in `plan.activations`; it is
/// not read for weight-only precisions. `plan` must have been made for `model` with the same
/// `options` ([`plan::plan`](crate::plan::plan)).
pub fn export(
    model: &OnnxModel,
    plan: &QuantisationPlan,
    activations: &HashMap<String, QuantParams>,
    options: &QuantisationOptions,
) -> Result<OnnxModel> {
    export_with(model, plan, activations, options, ActivationStorage::Int8)
}

/// How the INT8 layout stores quantised activations. Both hold the same grid — a `uint8` value
/// is the `int8` one plus 128, and so is its zero point — so the model computes exactly the
/// same; they differ in the integer kernels ONNX Runtime fuses them into. On an x86 CPU
/// (ONNX Runtime 1.32, AVX-512) it fused every quantised `MatMul`, `Gemm` and `Conv` of the zoo
/// models with `uint8` activations (U8S8), but only some of them with `int8` ones (S8S8), just
/// as it does for its own `quantize_static` output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActivationStorage {
    /// Signed: what [`export`] writes, and ONNX Runtime's `quantize_static` default.
    #[default]
    Int8,
    /// Unsigned, the zero point shifted by 128.
    Uint8,
}

impl ActivationStorage {
    /// Every choice.
    pub const ALL: [ActivationStorage; 2] = [ActivationStorage::Int8, ActivationStorage::Uint8];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            ActivationStorage::Int8 => "int8",
            ActivationStorage::Uint8 => "uint8",
        }
    }
}

impl std::str::FromStr for ActivationStorage {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|storage| storage.name() == text)
            .ok_or_else(|| format!("unknown activation storage {text:?}; use int8, uint8"))
    }
}

/// [`export`], with activations stored as `storage` (INT8 with quantised activations only;
/// every other layout is unaffected).
pub fn export_with(
    model: &OnnxModel,
    plan: &QuantisationPlan,
    activations: &HashMap<String, QuantParams>,
    options: &QuantisationOptions,
    storage: ActivationStorage,
) -> Result<OnnxModel> {
    options.check().map_err(Error::Options)?;
    let mut proto = match (options.precision, options.int4_storage) {
        (Precision::Fp16, _) => fp16_proto(model, plan)?,
        (Precision::Int8, _) | (Precision::Int4, Int4Storage::Int8) => {
            integer_proto(model, plan, activations, options, Storage::Int8, storage)?
        }
        (Precision::Int4, Int4Storage::Packed) => {
            integer_proto(model, plan, activations, options, Storage::Int4, storage)?
        }
    };
    if let Some(graph) = proto.graph.as_mut() {
        merge_duplicate_constants(graph);
    }
    set_metadata(&mut proto, METADATA_KEY, &options.label());
    model
        .with_proto(proto)
        .map_err(|error| failure(model, format!("the exported graph is unusable: {error}")))
}

/// The size of `model` serialized as one file, external data included, in bytes.
pub fn model_bytes(model: &OnnxModel) -> usize {
    model.to_bytes().len()
}

/// Packs signed 4-bit integers two to a byte as ONNX `int4` tensors hold them: element `2k`
/// in the low nibble of byte `k`, element `2k + 1` in its high nibble, two's complement; an
/// odd count is padded with a zero nibble. Values are taken modulo 16 (callers keep them in
/// -8..=7).
pub fn pack_int4(values: &[i32]) -> Vec<u8> {
    values
        .chunks(2)
        .map(|pair| {
            let low = (pair[0] & 0x0F) as u8;
            let high = pair.get(1).map_or(0, |&v| (v & 0x0F) as u8);
            low | (high << 4)
        })
        .collect()
}

/// The `count` signed 4-bit integers [`pack_int4`] packed into `bytes` (fewer if `bytes` is
/// too short).
pub fn unpack_int4(bytes: &[u8], count: usize) -> Vec<i32> {
    let nibble = |n: u8| ((n << 4) as i8 >> 4) as i32;
    bytes
        .iter()
        .flat_map(|&byte| [nibble(byte & 0x0F), nibble(byte >> 4)])
        .take(count)
        .collect()
}

/// How the integers of quantised weights are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Storage {
    /// `int8` initializers, opset-13 `DequantizeLinear`.
    Int8,
    /// `int4` initializers, opset-21 `DequantizeLinear`.
    Int4,
}

impl Storage {
    fn range(self) -> (i32, i32) {
        match self {
            Storage::Int8 => (-128, 127),
            Storage::Int4 => (-8, 7),
        }
    }

    fn data_type(self) -> DataType {
        match self {
            Storage::Int8 => DataType::Int8,
            Storage::Int4 => DataType::Int4,
        }
    }

    fn encode(self, values: &[i32]) -> Vec<u8> {
        match self {
            Storage::Int8 => values.iter().map(|&v| v as i8 as u8).collect(),
            Storage::Int4 => pack_int4(values),
        }
    }
}

fn failure(model: &OnnxModel, message: impl Into<String>) -> Error {
    Error::Model {
        model: model.name().to_string(),
        message: message.into(),
    }
}

/// The INT8 / INT4 layouts.
fn integer_proto(
    model: &OnnxModel,
    plan: &QuantisationPlan,
    activations: &HashMap<String, QuantParams>,
    options: &QuantisationOptions,
    storage: Storage,
    activation_storage: ActivationStorage,
) -> Result<ModelProto> {
    let fail = |message: String| failure(model, message);
    let opset = model.opset().ok_or_else(|| {
        fail(
            "it imports no default-domain (ai.onnx) opset; re-export the model at opset 13 or \
              newer"
                .into(),
        )
    })?;
    if opset < QDQ_OPSET {
        return Err(fail(format!(
            "its default-domain opset is {opset}, and per-channel QuantizeLinear / \
             DequantizeLinear need opset {QDQ_OPSET}; re-export the model at opset {QDQ_OPSET} \
             or newer"
        )));
    }
    let quantises_activations = !plan.activations.is_empty() || !plan.biases.is_empty();
    if quantises_activations && !options.quantises_activations() {
        return Err(Error::Options(format!(
            "the plan quantises activations or biases, but {} keeps activations float; make \
             the plan with the options the model is exported with",
            options.label()
        )));
    }
    let mut proto = model.proto().clone();
    let graph = proto
        .graph
        .as_mut()
        .ok_or_else(|| fail("the file holds no graph".into()))?;
    let mut names = Names::of(graph);
    // New nodes that go in front of the graph's own (weight and bias DequantizeLinear nodes,
    // then the quantisation of graph inputs), and those that follow a node, by its index.
    let mut front: Vec<NodeProto> = Vec::new();
    let mut input_pairs: Vec<NodeProto> = Vec::new();
    let mut after: HashMap<usize, Vec<NodeProto>> = HashMap::new();
    let mut added: Vec<TensorProto> = Vec::new();
    let mut replaced: HashSet<String> = HashSet::new();
    let mut weights: HashMap<String, QuantizedWeight> = HashMap::new();

    let planned: HashSet<&str> = plan.activations.iter().map(String::as_str).collect();
    let matmul_only = read_by_matmul_only(graph);
    for site in &plan.weights {
        let name = site.initializer.as_str();
        if weights.contains_key(name) {
            return Err(fail(format!(
                "the plan lists weight {name:?} twice; make the plan with plan::plan"
            )));
        }
        let (values, shape) = float_initializer(graph, name).map_err(|why| {
            fail(format!(
                "weight {name:?} of the plan {why}; make the plan from this model"
            ))
        })?;
        if shape != site.shape {
            return Err(fail(format!(
                "weight {name:?} has shape {shape:?}, the plan says {:?}; make the plan from \
                 this model",
                site.shape
            )));
        }
        check_granularity(site.granularity, &shape, storage)
            .map_err(|why| fail(format!("weight {name:?}: {why}")))?;
        let (low, high) = storage.range();
        if site.grid.min > site.grid.max || site.grid.min < low || site.grid.max > high {
            return Err(Error::Options(format!(
                "weight {name:?} is planned on the grid {}..={}, which {} storage cannot hold \
                 ({low}..={high}); make the plan with the options the model is exported with",
                site.grid.min,
                site.grid.max,
                if storage == Storage::Int4 {
                    "int4"
                } else {
                    "int8"
                },
            )));
        }
        let quantized = quantize_weight(
            &values,
            &site.shape,
            site.granularity,
            site.grid,
            site.symmetric,
        );
        let dims = &shape;
        let q_name = names.tensor(&format!("{name}_quantized"));
        added.push(tensor(
            &q_name,
            storage.data_type(),
            dims,
            storage.encode(&quantized.values),
        ));
        let scales: Vec<f32> = quantized.params.iter().map(|p| p.scale).collect();
        let zero_points: Vec<i32> = quantized.params.iter().map(|p| p.zero_point).collect();
        let broadcast = constant_dequantisation(site.granularity, &shape)
            .filter(|_| storage == Storage::Int8 && !site.integer_kernel);
        if let Some(broadcast) = broadcast {
            front.extend(dequantise_by_arithmetic(
                &mut names,
                &mut added,
                name,
                q_name,
                &broadcast,
                &scales,
                &zero_points,
            ));
            replaced.insert(name.to_string());
            weights.insert(name.to_string(), quantized);
            continue;
        }
        let s_name = names.tensor(&format!("{name}_scale"));
        added.push(float_tensor(&s_name, &quantized.scale_shape, &scales));
        let mut dequantize_inputs = vec![q_name, s_name];
        // A zero point of 0 may be left out, but ONNX Runtime fuses a `Gemm` or `Conv` weight
        // into its integer kernel only with one present; `MatMul` weights do without.
        if !(site.symmetric && storage == Storage::Int8 && matmul_only.contains(name)) {
            let z_name = names.tensor(&format!("{name}_zero_point"));
            added.push(tensor(
                &z_name,
                storage.data_type(),
                &quantized.scale_shape,
                storage.encode(&zero_points),
            ));
            dequantize_inputs.push(z_name);
        }
        let mut attributes = Vec::new();
        match site.granularity {
            Granularity::PerTensor => {}
            Granularity::PerChannel { axis } => attributes.push(int_attribute("axis", axis as i64)),
            Granularity::Blocked { axis, size } => {
                attributes.push(int_attribute("axis", axis as i64));
                attributes.push(int_attribute("block_size", size as i64));
            }
        }
        front.push(node(
            names.node(&format!("{name}_DequantizeLinear")),
            "DequantizeLinear",
            dequantize_inputs,
            vec![name.to_string()],
            attributes,
        ));
        replaced.insert(name.to_string());
        weights.insert(name.to_string(), quantized);
    }

    let mut biases: HashMap<&str, (&str, &str)> = HashMap::new();
    for site in &plan.biases {
        let name = site.initializer.as_str();
        let key = (site.activation.as_str(), site.weight.as_str());
        match biases.get(name) {
            Some(known) if *known == key => continue,
            Some(_) => {
                return Err(fail(format!(
                    "bias {name:?} is shared by nodes with different input or weight scales, \
                     so no single int32 grid fits it; keep one of them float"
                )))
            }
            None => {}
        }
        biases.insert(name, key);
        if replaced.contains(name) {
            return Err(fail(format!(
                "bias {name:?} is also planned as a weight; make the plan with plan::plan"
            )));
        }
        let weight = weights.get(&site.weight).ok_or_else(|| {
            fail(format!(
                "bias {name:?} follows weight {:?}, which the plan does not quantise",
                site.weight
            ))
        })?;
        if !planned.contains(site.activation.as_str()) {
            return Err(fail(format!(
                "bias {name:?} follows activation {:?}, which the plan does not quantise",
                site.activation
            )));
        }
        let input = activation_params(model, activations, &site.activation)?;
        let (values, shape) = float_initializer(graph, name).map_err(|why| {
            fail(format!(
                "bias {name:?} of the plan {why}; make the plan from this model"
            ))
        })?;
        let (scales, scale_dims): (Vec<f32>, Vec<usize>) = match weight.granularity {
            Granularity::PerTensor => (vec![input.scale * weight.params[0].scale], Vec::new()),
            Granularity::PerChannel { .. } => {
                if shape.len() != 1 || shape[0] != weight.params.len() {
                    return Err(fail(format!(
                        "bias {name:?} has shape {shape:?}, but its weight {:?} has {} output \
                         channels; an int32 bias needs one value per channel (keep the node \
                         float, or re-export it with a 1-D bias)",
                        site.weight,
                        weight.params.len()
                    )));
                }
                let scales = weight
                    .params
                    .iter()
                    .map(|p| input.scale * p.scale)
                    .collect();
                (scales, vec![shape[0]])
            }
            Granularity::Blocked { .. } => {
                return Err(Error::Options(format!(
                    "bias {name:?} follows the block-wise weight {:?}; block-wise weights are \
                     weight-only",
                    site.weight
                )))
            }
        };
        if shape.len() != 1 {
            return Err(fail(format!(
                "bias {name:?} has shape {shape:?}; an int32 bias must be 1-D (keep the node \
                 float, or re-export it with a 1-D bias)"
            )));
        }
        let quantized: Vec<i32> = values
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                let scale = scales[if scales.len() == 1 { 0 } else { i }];
                // Saturating conversion; NaN goes to 0.
                round_half_to_even(b / scale) as i32
            })
            .collect();
        let q_name = names.tensor(&format!("{name}_quantized"));
        let s_name = names.tensor(&format!("{name}_scale"));
        added.push(tensor(
            &q_name,
            DataType::Int32,
            &shape,
            int32_bytes(&quantized),
        ));
        added.push(float_tensor(&s_name, &scale_dims, &scales));
        // An int32 DequantizeLinear's zero point is 0 by definition: it is left out.
        let attributes = if scale_dims.is_empty() {
            Vec::new()
        } else {
            vec![int_attribute("axis", 0)]
        };
        front.push(node(
            names.node(&format!("{name}_DequantizeLinear")),
            "DequantizeLinear",
            vec![q_name, s_name],
            vec![name.to_string()],
            attributes,
        ));
        replaced.insert(name.to_string());
    }

    let graph_inputs: HashSet<&str> = graph.input.iter().map(|i| i.name.as_str()).collect();
    let initializers: HashSet<&str> = graph.initializer.iter().map(|i| i.name.as_str()).collect();
    let mut rewired: HashMap<String, String> = HashMap::new();
    for name in &plan.activations {
        if rewired.contains_key(name) {
            continue;
        }
        let position = if graph_inputs.contains(name.as_str()) {
            None
        } else if initializers.contains(name.as_str()) {
            return Err(fail(format!(
                "activation {name:?} of the plan is an initializer, not an activation; make \
                 the plan from this model"
            )));
        } else {
            let producer = graph
                .node
                .iter()
                .position(|node| node.output.iter().any(|output| output == name));
            Some(producer.ok_or_else(|| {
                fail(format!(
                    "activation {name:?} of the plan is neither a graph input nor the output \
                     of a node; make the plan from this model"
                ))
            })?)
        };
        let params = activation_params(model, activations, name)?;
        let s_name = names.tensor(&format!("{name}_scale"));
        let z_name = names.tensor(&format!("{name}_zero_point"));
        let q_name = names.tensor(&format!("{name}_quantized"));
        let d_name = names.tensor(&format!("{name}_dequantized"));
        added.push(float_tensor(&s_name, &[], &[params.scale]));
        added.push(match activation_storage {
            ActivationStorage::Int8 => tensor(
                &z_name,
                DataType::Int8,
                &[],
                Storage::Int8.encode(&[params.zero_point]),
            ),
            // Checked to lie in -128..=127.
            ActivationStorage::Uint8 => tensor(
                &z_name,
                DataType::Uint8,
                &[],
                vec![(params.zero_point + 128) as u8],
            ),
        });
        let pair = [
            node(
                names.node(&format!("{name}_QuantizeLinear")),
                "QuantizeLinear",
                vec![name.clone(), s_name.clone(), z_name.clone()],
                vec![q_name.clone()],
                Vec::new(),
            ),
            node(
                names.node(&format!("{name}_DequantizeLinear")),
                "DequantizeLinear",
                vec![q_name, s_name, z_name],
                vec![d_name.clone()],
                Vec::new(),
            ),
        ];
        match position {
            None => input_pairs.extend(pair),
            Some(index) => after.entry(index).or_default().extend(pair),
        }
        rewired.insert(name.clone(), d_name);
    }

    // Readers of a quantised activation read its dequantised copy; the new nodes are not
    // among the graph's nodes yet, so the QuantizeLinear nodes keep reading the original. So do
    // the readers of its shape alone, which would otherwise keep a DequantizeLinear running.
    for node in &mut graph.node {
        if matches!(node.op_type.as_str(), "Shape" | "Size") {
            continue;
        }
        for input in &mut node.input {
            if let Some(dequantized) = rewired.get(input.as_str()) {
                *input = dequantized.clone();
            }
        }
    }
    let original = std::mem::take(&mut graph.node);
    let mut nodes = front;
    nodes.extend(input_pairs);
    for (index, node) in original.into_iter().enumerate() {
        nodes.push(node);
        if let Some(following) = after.remove(&index) {
            nodes.extend(following);
        }
    }
    graph.node = nodes;
    graph
        .initializer
        .retain(|initializer| !replaced.contains(&initializer.name));
    graph.input.retain(|input| !replaced.contains(&input.name));
    graph.initializer.extend(added);

    if storage == Storage::Int4 && opset < INT4_OPSET {
        upgrade_to_opset_21(&mut proto, opset, &mut names).map_err(fail)?;
    }
    if storage == Storage::Int4 {
        set_default_opset(&mut proto, opset.max(INT4_OPSET));
        proto.ir_version = proto.ir_version.max(INT4_IR_VERSION);
    }
    Ok(proto)
}

/// The tensors every reader of which is a `MatMul`.
fn read_by_matmul_only(graph: &GraphProto) -> HashSet<&str> {
    let mut matmul_only: HashMap<&str, bool> = HashMap::new();
    for node in &graph.node {
        for input in &node.input {
            *matmul_only.entry(input.as_str()).or_insert(true) &= node.op_type == "MatMul";
        }
    }
    matmul_only
        .into_iter()
        .filter_map(|(name, only)| only.then_some(name))
        .collect()
}

/// The shape a weight's scales broadcast in, where a weight that feeds no integer kernel (a
/// weight-only site: an `LSTM`/`GRU` weight, a `Gather` table, any weight with float
/// activations) is better dequantised by `Cast` → `Mul` than by `DequantizeLinear`: with one
/// scale or one per channel. Runtimes fold that arithmetic on constants into a float constant
/// once, when they load the model, whereas they keep a `DequantizeLinear` for their QDQ
/// fusions and run it on every inference; the file holds the same integers either way.
fn constant_dequantisation(granularity: Granularity, shape: &[usize]) -> Option<Vec<usize>> {
    match granularity {
        Granularity::PerTensor => Some(Vec::new()),
        Granularity::PerChannel { axis } => Some(
            (0..shape.len())
                .map(|index| if index == axis { shape[axis] } else { 1 })
                .collect(),
        ),
        Granularity::Blocked { .. } => None,
    }
}

/// The nodes that compute weight `name` as `(Cast(q_name) − zero point) × scale`, exactly what
/// `DequantizeLinear` computes, with `scales` and `zero_points` (one per group) laid out in
/// `broadcast`; the subtraction is left out where every zero point is 0. The scale and zero
/// point initializers are added to `added`.
fn dequantise_by_arithmetic(
    names: &mut Names,
    added: &mut Vec<TensorProto>,
    name: &str,
    q_name: String,
    broadcast: &[usize],
    scales: &[f32],
    zero_points: &[i32],
) -> Vec<NodeProto> {
    let widened = names.tensor(&format!("{name}_widened"));
    let mut nodes = vec![node(
        names.node(&format!("{name}_Cast")),
        "Cast",
        vec![q_name],
        vec![widened.clone()],
        vec![int_attribute("to", DataType::Float as i64)],
    )];
    let mut centred = widened;
    if zero_points.iter().any(|&zero| zero != 0) {
        let z_name = names.tensor(&format!("{name}_zero_point"));
        let zeros: Vec<f32> = zero_points.iter().map(|&zero| zero as f32).collect();
        added.push(float_tensor(&z_name, broadcast, &zeros));
        let shifted = names.tensor(&format!("{name}_centred"));
        nodes.push(node(
            names.node(&format!("{name}_Sub")),
            "Sub",
            vec![centred, z_name],
            vec![shifted.clone()],
            Vec::new(),
        ));
        centred = shifted;
    }
    let s_name = names.tensor(&format!("{name}_scale"));
    added.push(float_tensor(&s_name, broadcast, scales));
    nodes.push(node(
        names.node(&format!("{name}_Mul")),
        "Mul",
        vec![centred, s_name],
        vec![name.to_string()],
        Vec::new(),
    ));
    nodes
}

/// Fails when `granularity` does not fit a weight of `shape` stored as `storage`.
fn check_granularity(
    granularity: Granularity,
    shape: &[usize],
    storage: Storage,
) -> std::result::Result<(), String> {
    let rank = shape.len();
    match granularity {
        Granularity::PerTensor => Ok(()),
        Granularity::PerChannel { axis } if axis < rank => Ok(()),
        Granularity::Blocked { axis, size } if axis < rank && size > 0 => {
            if storage == Storage::Int4 {
                Ok(())
            } else {
                Err(
                    "block-wise scales need opset-21 DequantizeLinear: export as packed int4, \
                     or plan per-channel scales (no block size)"
                        .into(),
                )
            }
        }
        _ => Err(format!(
            "the planned scales {granularity:?} do not fit its shape {shape:?}; make the plan \
             from this model"
        )),
    }
}

/// The values and shape of float32 initializer `name`, or why it has none.
fn float_initializer(
    graph: &GraphProto,
    name: &str,
) -> std::result::Result<(Vec<f32>, Vec<usize>), String> {
    let initializer = graph
        .initializer
        .iter()
        .find(|initializer| initializer.name == name)
        .ok_or_else(|| "is not an initializer of the graph".to_string())?;
    if initializer.data_type != DataType::Float as i32 {
        return Err("is not float32".into());
    }
    let shape: Vec<usize> = initializer
        .dims
        .iter()
        .map(|&d| usize::try_from(d))
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| format!("has a negative dimension in {:?}", initializer.dims))?;
    let values = float_values(initializer)
        .ok_or_else(|| format!("holds no float32 values matching its shape {shape:?}"))?;
    if values.is_empty() {
        return Err("is empty, so there is nothing to quantise".into());
    }
    Ok((values, shape))
}

/// The calibrated parameters of activation `name`, checked to fit an int8 tensor.
fn activation_params(
    model: &OnnxModel,
    activations: &HashMap<String, QuantParams>,
    name: &str,
) -> Result<QuantParams> {
    let params = activations.get(name).ok_or_else(|| {
        failure(
            model,
            format!(
                "activation {name:?} has no calibrated scale and zero point; calibrate every \
                 tensor in the plan's activations before exporting"
            ),
        )
    })?;
    if !(params.scale.is_finite() && params.scale > 0.0) {
        return Err(failure(
            model,
            format!(
                "activation {name:?} has scale {}, which is not a positive finite number; \
                 calibrate it again",
                params.scale
            ),
        ));
    }
    if !(-128..=127).contains(&params.zero_point) {
        return Err(failure(
            model,
            format!(
                "activation {name:?} has zero point {}, outside int8; calibrate it on an int8 \
                 grid",
                params.zero_point
            ),
        ));
    }
    Ok(*params)
}

/// The FP16 layout.
fn fp16_proto(model: &OnnxModel, plan: &QuantisationPlan) -> Result<ModelProto> {
    if !(plan.weights.is_empty() && plan.activations.is_empty() && plan.biases.is_empty()) {
        return Err(Error::Options(
            "the plan puts tensors on an integer grid, but fp16 stores every float weight as \
             float16; make the plan with the fp16 options (it is empty)"
                .into(),
        ));
    }
    let mut proto = model.proto().clone();
    let graph = proto
        .graph
        .as_mut()
        .ok_or_else(|| failure(model, "the file holds no graph"))?;
    let mut names = Names::of(graph);
    let mut read = HashSet::new();
    graph_reads(graph, &mut read);
    let mut casts = Vec::new();
    let mut replaced = HashSet::new();
    let mut added = Vec::new();
    for initializer in &graph.initializer {
        let name = initializer.name.as_str();
        if initializer.data_type != DataType::Float as i32 || !read.contains(name) {
            continue;
        }
        let values = float_values(initializer).ok_or_else(|| {
            failure(
                model,
                format!(
                    "initializer {name:?} holds no float32 values matching its shape {:?}",
                    initializer.dims
                ),
            )
        })?;
        // A value float16 cannot hold would become infinite: such a tensor stays float32.
        if values.iter().any(|v| v.is_finite() && v.abs() > F16_MAX) {
            continue;
        }
        let half_name = names.tensor(&format!("{name}_fp16"));
        let raw = values
            .iter()
            .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
            .collect();
        let dims: Vec<usize> = initializer
            .dims
            .iter()
            .map(|&d| d.max(0) as usize)
            .collect();
        added.push(tensor(&half_name, DataType::Float16, &dims, raw));
        casts.push(node(
            names.node(&format!("{name}_Cast")),
            "Cast",
            vec![half_name],
            vec![name.to_string()],
            vec![int_attribute("to", DataType::Float as i64)],
        ));
        replaced.insert(name.to_string());
    }
    graph
        .initializer
        .retain(|initializer| !replaced.contains(&initializer.name));
    graph.input.retain(|input| !replaced.contains(&input.name));
    graph.initializer.extend(added);
    casts.append(&mut graph.node);
    graph.node = casts;
    Ok(proto)
}

/// Every tensor name a node of `graph` or of its subgraphs reads.
fn graph_reads(graph: &GraphProto, read: &mut HashSet<String>) {
    for node in &graph.node {
        read.extend(node.input.iter().filter(|i| !i.is_empty()).cloned());
        for attribute in &node.attribute {
            for subgraph in attribute.g.iter().chain(&attribute.graphs) {
                graph_reads(subgraph, read);
            }
        }
    }
}

/// Names already taken in a graph (tensors and nodes, subgraphs included), and fresh ones.
struct Names {
    tensors: HashSet<String>,
    nodes: HashSet<String>,
}

impl Names {
    fn of(graph: &GraphProto) -> Self {
        let mut names = Names {
            tensors: HashSet::new(),
            nodes: HashSet::new(),
        };
        names.collect(graph);
        names
    }

    fn collect(&mut self, graph: &GraphProto) {
        let infos = graph
            .input
            .iter()
            .chain(&graph.output)
            .chain(&graph.value_info);
        self.tensors.extend(infos.map(|info| info.name.clone()));
        self.tensors
            .extend(graph.initializer.iter().map(|i| i.name.clone()));
        self.tensors.extend(
            graph
                .sparse_initializer
                .iter()
                .filter_map(|sparse| sparse.values.as_ref().map(|v| v.name.clone())),
        );
        for node in &graph.node {
            self.nodes.insert(node.name.clone());
            self.tensors.extend(node.input.iter().cloned());
            self.tensors.extend(node.output.iter().cloned());
            for attribute in &node.attribute {
                for subgraph in attribute.g.iter().chain(&attribute.graphs) {
                    self.collect(subgraph);
                }
            }
        }
    }

    /// `base`, or `base_1`, `base_2`, ... if taken, as a tensor name (now taken).
    fn tensor(&mut self, base: &str) -> String {
        fresh(&mut self.tensors, base)
    }

    /// The same for a node name.
    fn node(&mut self, base: &str) -> String {
        fresh(&mut self.nodes, base)
    }
}

fn fresh(taken: &mut HashSet<String>, base: &str) -> String {
    if taken.insert(base.to_string()) {
        return base.to_string();
    }
    let mut suffix = 1usize;
    loop {
        let candidate = format!("{base}_{suffix}");
        if taken.insert(candidate.clone()) {
            return candidate;
        }
        suffix += 1;
    }
}

fn node(
    name: String,
    op_type: &str,
    input: Vec<String>,
    output: Vec<String>,
    attribute: Vec<AttributeProto>,
) -> NodeProto {
    NodeProto {
        input,
        output,
        name,
        op_type: op_type.to_string(),
        attribute,
        ..NodeProto::default()
    }
}

fn int_attribute(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        r#type: AttributeType::Int as i32,
        i: value,
        ..AttributeProto::default()
    }
}

fn tensor(name: &str, data_type: DataType, dims: &[usize], raw_data: Vec<u8>) -> TensorProto {
    TensorProto {
        name: name.to_string(),
        data_type: data_type as i32,
        dims: dims.iter().map(|&d| d as i64).collect(),
        raw_data,
        ..TensorProto::default()
    }
}

fn float_tensor(name: &str, dims: &[usize], values: &[f32]) -> TensorProto {
    let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    tensor(name, DataType::Float, dims, raw)
}

fn int32_bytes(values: &[i32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn set_metadata(proto: &mut ModelProto, key: &str, value: &str) {
    proto.metadata_props.retain(|entry| entry.key != key);
    proto.metadata_props.push(StringStringEntryProto {
        key: key.to_string(),
        value: value.to_string(),
    });
}

fn is_default_domain(domain: &str) -> bool {
    domain.is_empty() || domain == "ai.onnx"
}

fn set_default_opset(proto: &mut ModelProto, version: i64) {
    for import in &mut proto.opset_import {
        if is_default_domain(&import.domain) {
            import.version = version;
        }
    }
}

/// Raises `proto`'s graph from default-domain opset `from` to 21: converts the nodes whose
/// inputs or attributes changed between the two, and refuses (with the reason) any node whose
/// meaning changed in a way not converted here, or that the ONNX standard does not define.
/// The opset import itself is set by the caller.
fn upgrade_to_opset_21(
    proto: &mut ModelProto,
    from: i64,
    names: &mut Names,
) -> std::result::Result<(), String> {
    let uses_default_domain = proto.functions.iter().any(|function| {
        function
            .node
            .iter()
            .any(|node| is_default_domain(&node.domain))
    });
    if uses_default_domain {
        return Err(format!(
            "packed int4 needs opset {INT4_OPSET}, and the model's local functions would have \
             to be converted from opset {from}; re-export the model at opset {INT4_OPSET}, or \
             store int4 as int8 (int4 storage int8)"
        ));
    }
    let graph = proto
        .graph
        .as_mut()
        .ok_or_else(|| "the file holds no graph".to_string())?;
    upgrade_graph(graph, from, names).map_err(|why| {
        format!(
            "packed int4 needs opset {INT4_OPSET}, and the model (opset {from}) cannot be \
             raised to it: {why}; re-export the model at opset {INT4_OPSET}, or store int4 as \
             int8 (int4 storage int8)"
        )
    })
}

/// The Reduce operators that took `axes` as an attribute before opset 18 and as an input from
/// it (ReduceSum moved at 13).
const REDUCE_AXES_AT_18: [&str; 9] = [
    "ReduceL1",
    "ReduceL2",
    "ReduceLogSum",
    "ReduceLogSumExp",
    "ReduceMax",
    "ReduceMean",
    "ReduceMin",
    "ReduceProd",
    "ReduceSumSquare",
];

/// How a node's meaning changed at one opset version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    /// Only types or attributes whose defaults keep the old behaviour were added.
    Compatible,
    /// `axes` moved from an attribute to the second input.
    AxesToInput,
    /// `num_outputs` must be given when no `split` input is.
    SplitNumOutputs,
    /// Compatible for an inference node (a single output).
    SingleOutput,
    /// Changed in a way not converted here.
    Refused(&'static str),
}

/// What changed for `op` at `version` (one of the versions in [`OPSETS`] between 14 and 21).
fn change(op: &str, version: i64) -> Change {
    match (op, version) {
        (op, 18) if REDUCE_AXES_AT_18.contains(&op) => Change::AxesToInput,
        ("ReduceMax" | "ReduceMin", 20) => Change::Compatible,
        ("Split", 18) => Change::SplitNumOutputs,
        ("BatchNormalization", 14 | 15) => Change::SingleOutput,
        ("DFT", 20) => Change::Refused("DFT takes its axis as an input from opset 20"),
        ("GridSample", 20) => {
            Change::Refused("GridSample renamed its modes (bilinear, bicubic) at opset 20")
        }
        ("GroupNormalization", 21) => Change::Refused(
            "GroupNormalization's scale and bias are per channel from opset 21, per group before",
        ),
        ("RoiAlign", 16) => Change::Refused(
            "RoiAlign gained coordinate_transformation_mode at opset 16, whose default changes \
             the result",
        ),
        // New element types, or new attributes and optional inputs whose defaults keep the
        // old behaviour.
        ("Add" | "Sub" | "Mul" | "Div" | "Relu" | "CumSum", 14)
        | ("GRU" | "LSTM" | "RNN", 14)
        | ("Reshape", 14 | 19 | 21)
        | ("Identity", 14 | 16 | 19 | 21)
        | ("If" | "Loop" | "Scan", 16 | 19 | 21)
        | ("Pow", 15)
        | ("Shape", 15 | 19 | 21)
        | ("GreaterOrEqual" | "LessOrEqual" | "LeakyRelu" | "PRelu" | "Where", 16)
        | ("ScatterElements" | "ScatterND", 16 | 18)
        | ("LpPool" | "OptionalGetElement" | "OptionalHasElement", 18)
        | ("Pad", 18 | 19 | 21)
        | ("Resize", 18 | 19)
        | ("AveragePool" | "Equal", 19)
        | ("Cast" | "CastLike" | "Constant", 19 | 21)
        | ("QuantizeLinear" | "DequantizeLinear", 19 | 21)
        | ("Size", 19 | 21)
        | ("ConstantOfShape", 20 | 21)
        | ("IsInf" | "IsNaN", 20)
        | ("Flatten" | "Squeeze" | "Unsqueeze" | "Transpose" | "QLinearMatMul", 21) => {
            Change::Compatible
        }
        _ => Change::Refused("its definition changed in a way this exporter does not convert"),
    }
}

fn upgrade_graph(
    graph: &mut GraphProto,
    from: i64,
    names: &mut Names,
) -> std::result::Result<(), String> {
    let mut added = Vec::new();
    for node in &mut graph.node {
        for attribute in &mut node.attribute {
            for subgraph in attribute.g.iter_mut().chain(attribute.graphs.iter_mut()) {
                upgrade_graph(subgraph, from, names)?;
            }
        }
        if !is_default_domain(&node.domain) {
            continue;
        }
        let label = if node.name.is_empty() {
            format!("a {} node", node.op_type)
        } else {
            format!("node {:?} ({})", node.name, node.op_type)
        };
        let (first, versions) = OPSETS
            .iter()
            .find(|(op, _, _)| *op == node.op_type)
            .map(|(_, first, versions)| (*first, *versions))
            .ok_or_else(|| format!("{label} is not an ONNX operator this exporter knows"))?;
        if matches!(node.op_type.as_str(), "Upsample" | "Scatter") {
            return Err(format!("{label} is deprecated in opset {from}"));
        }
        if first > from {
            return Err(format!(
                "{label} does not exist at opset {from} (it appeared in opset {first})"
            ));
        }
        for &version in versions.iter().filter(|&&v| v > from && v <= INT4_OPSET) {
            match change(&node.op_type, version) {
                Change::Compatible => {}
                Change::Refused(why) => return Err(format!("{label}: {why}")),
                Change::SingleOutput => {
                    if node.output.iter().filter(|o| !o.is_empty()).count() > 1 {
                        return Err(format!(
                            "{label} has training outputs, whose meaning changed at opset \
                             {version}"
                        ));
                    }
                }
                Change::SplitNumOutputs => {
                    let has_split = node.input.get(1).is_some_and(|s| !s.is_empty());
                    let has_count = node.attribute.iter().any(|a| a.name == "num_outputs");
                    if !has_split && !has_count {
                        let count = node.output.len() as i64;
                        node.attribute.push(int_attribute("num_outputs", count));
                    }
                }
                Change::AxesToInput => {
                    if node.input.len() > 1 {
                        return Err(format!(
                            "{label} has {} inputs at opset {from}, where it takes one",
                            node.input.len()
                        ));
                    }
                    let position = node.attribute.iter().position(|a| a.name == "axes");
                    if let Some(position) = position {
                        let attribute = node.attribute.remove(position);
                        if !attribute.ints.is_empty() {
                            let base = node
                                .output
                                .first()
                                .filter(|o| !o.is_empty())
                                .map_or_else(|| node.op_type.clone(), Clone::clone);
                            let name = names.tensor(&format!("{base}_axes"));
                            let raw = attribute
                                .ints
                                .iter()
                                .flat_map(|a| a.to_le_bytes())
                                .collect();
                            added.push(tensor(
                                &name,
                                DataType::Int64,
                                &[attribute.ints.len()],
                                raw,
                            ));
                            node.input.push(name);
                        }
                    }
                }
            }
        }
    }
    graph.initializer.extend(added);
    Ok(())
}

/// Every operator of the ONNX default domain up to opset 21: the opset it appeared in, and the
/// versions between 14 and 21 at which its definition changed (from `onnx.defs`, ONNX 1.23).
const OPSETS: &[(&str, i64, &[i64])] = &[
    ("Abs", 1, &[]),
    ("Acos", 7, &[]),
    ("Acosh", 9, &[]),
    ("Add", 1, &[14]),
    ("AffineGrid", 20, &[20]),
    ("And", 1, &[]),
    ("ArgMax", 1, &[]),
    ("ArgMin", 1, &[]),
    ("Asin", 7, &[]),
    ("Asinh", 9, &[]),
    ("Atan", 7, &[]),
    ("Atanh", 9, &[]),
    ("AveragePool", 1, &[19]),
    ("BatchNormalization", 1, &[14, 15]),
    ("Bernoulli", 15, &[15]),
    ("BitShift", 11, &[]),
    ("BitwiseAnd", 18, &[18]),
    ("BitwiseNot", 18, &[18]),
    ("BitwiseOr", 18, &[18]),
    ("BitwiseXor", 18, &[18]),
    ("BlackmanWindow", 17, &[17]),
    ("Cast", 1, &[19, 21]),
    ("CastLike", 15, &[15, 19, 21]),
    ("Ceil", 1, &[]),
    ("Celu", 12, &[]),
    ("CenterCropPad", 18, &[18]),
    ("Clip", 1, &[]),
    ("Col2Im", 18, &[18]),
    ("Compress", 9, &[]),
    ("Concat", 1, &[]),
    ("ConcatFromSequence", 11, &[]),
    ("Constant", 1, &[19, 21]),
    ("ConstantOfShape", 9, &[20, 21]),
    ("Conv", 1, &[]),
    ("ConvInteger", 10, &[]),
    ("ConvTranspose", 1, &[]),
    ("Cos", 7, &[]),
    ("Cosh", 9, &[]),
    ("CumSum", 11, &[14]),
    ("DFT", 17, &[17, 20]),
    ("DeformConv", 19, &[19]),
    ("DepthToSpace", 1, &[]),
    ("DequantizeLinear", 10, &[19, 21]),
    ("Det", 11, &[]),
    ("Div", 1, &[14]),
    ("Dropout", 1, &[]),
    ("DynamicQuantizeLinear", 11, &[]),
    ("Einsum", 12, &[]),
    ("Elu", 1, &[]),
    ("Equal", 1, &[19]),
    ("Erf", 9, &[]),
    ("Exp", 1, &[]),
    ("Expand", 8, &[]),
    ("EyeLike", 9, &[]),
    ("Flatten", 1, &[21]),
    ("Floor", 1, &[]),
    ("GRU", 1, &[14]),
    ("Gather", 1, &[]),
    ("GatherElements", 11, &[]),
    ("GatherND", 11, &[]),
    ("Gelu", 20, &[20]),
    ("Gemm", 1, &[]),
    ("GlobalAveragePool", 1, &[]),
    ("GlobalLpPool", 1, &[]),
    ("GlobalMaxPool", 1, &[]),
    ("Greater", 1, &[]),
    ("GreaterOrEqual", 12, &[16]),
    ("GridSample", 16, &[16, 20]),
    ("GroupNormalization", 18, &[18, 21]),
    ("HammingWindow", 17, &[17]),
    ("HannWindow", 17, &[17]),
    ("HardSigmoid", 1, &[]),
    ("HardSwish", 14, &[14]),
    ("Hardmax", 1, &[]),
    ("Identity", 1, &[14, 16, 19, 21]),
    ("If", 1, &[16, 19, 21]),
    ("ImageDecoder", 20, &[20]),
    ("InstanceNormalization", 1, &[]),
    ("IsInf", 10, &[20]),
    ("IsNaN", 9, &[20]),
    ("LRN", 1, &[]),
    ("LSTM", 1, &[14]),
    ("LayerNormalization", 17, &[17]),
    ("LeakyRelu", 1, &[16]),
    ("Less", 1, &[]),
    ("LessOrEqual", 12, &[16]),
    ("Log", 1, &[]),
    ("LogSoftmax", 1, &[]),
    ("Loop", 1, &[16, 19, 21]),
    ("LpNormalization", 1, &[]),
    ("LpPool", 1, &[18]),
    ("MatMul", 1, &[]),
    ("MatMulInteger", 10, &[]),
    ("Max", 1, &[]),
    ("MaxPool", 1, &[]),
    ("MaxRoiPool", 1, &[]),
    ("MaxUnpool", 9, &[]),
    ("Mean", 1, &[]),
    ("MeanVarianceNormalization", 9, &[]),
    ("MelWeightMatrix", 17, &[17]),
    ("Min", 1, &[]),
    ("Mish", 18, &[18]),
    ("Mod", 10, &[]),
    ("Mul", 1, &[14]),
    ("Multinomial", 7, &[]),
    ("Neg", 1, &[]),
    ("NegativeLogLikelihoodLoss", 12, &[]),
    ("NonMaxSuppression", 10, &[]),
    ("NonZero", 9, &[]),
    ("Not", 1, &[]),
    ("OneHot", 9, &[]),
    ("Optional", 15, &[15]),
    ("OptionalGetElement", 15, &[15, 18]),
    ("OptionalHasElement", 15, &[15, 18]),
    ("Or", 1, &[]),
    ("PRelu", 1, &[16]),
    ("Pad", 1, &[18, 19, 21]),
    ("Pow", 1, &[15]),
    ("QLinearConv", 10, &[]),
    ("QLinearMatMul", 10, &[21]),
    ("QuantizeLinear", 10, &[19, 21]),
    ("RNN", 1, &[14]),
    ("RandomNormal", 1, &[]),
    ("RandomNormalLike", 1, &[]),
    ("RandomUniform", 1, &[]),
    ("RandomUniformLike", 1, &[]),
    ("Range", 11, &[]),
    ("Reciprocal", 1, &[]),
    ("ReduceL1", 1, &[18]),
    ("ReduceL2", 1, &[18]),
    ("ReduceLogSum", 1, &[18]),
    ("ReduceLogSumExp", 1, &[18]),
    ("ReduceMax", 1, &[18, 20]),
    ("ReduceMean", 1, &[18]),
    ("ReduceMin", 1, &[18, 20]),
    ("ReduceProd", 1, &[18]),
    ("ReduceSum", 1, &[]),
    ("ReduceSumSquare", 1, &[18]),
    ("RegexFullMatch", 20, &[20]),
    ("Relu", 1, &[14]),
    ("Reshape", 1, &[14, 19, 21]),
    ("Resize", 10, &[18, 19]),
    ("ReverseSequence", 10, &[]),
    ("RoiAlign", 10, &[16]),
    ("Round", 11, &[]),
    ("STFT", 17, &[17]),
    ("Scan", 8, &[16, 19, 21]),
    ("Scatter", 9, &[]),
    ("ScatterElements", 11, &[16, 18]),
    ("ScatterND", 11, &[16, 18]),
    ("Selu", 1, &[]),
    ("SequenceAt", 11, &[]),
    ("SequenceConstruct", 11, &[]),
    ("SequenceEmpty", 11, &[]),
    ("SequenceErase", 11, &[]),
    ("SequenceInsert", 11, &[]),
    ("SequenceLength", 11, &[]),
    ("SequenceMap", 17, &[17]),
    ("Shape", 1, &[15, 19, 21]),
    ("Shrink", 9, &[]),
    ("Sigmoid", 1, &[]),
    ("Sign", 9, &[]),
    ("Sin", 7, &[]),
    ("Sinh", 9, &[]),
    ("Size", 1, &[19, 21]),
    ("Slice", 1, &[]),
    ("Softmax", 1, &[]),
    ("SoftmaxCrossEntropyLoss", 12, &[]),
    ("Softplus", 1, &[]),
    ("Softsign", 1, &[]),
    ("SpaceToDepth", 1, &[]),
    ("Split", 1, &[18]),
    ("SplitToSequence", 11, &[]),
    ("Sqrt", 1, &[]),
    ("Squeeze", 1, &[21]),
    ("StringConcat", 20, &[20]),
    ("StringNormalizer", 10, &[]),
    ("StringSplit", 20, &[20]),
    ("Sub", 1, &[14]),
    ("Sum", 1, &[]),
    ("Tan", 7, &[]),
    ("Tanh", 1, &[]),
    ("TfIdfVectorizer", 9, &[]),
    ("ThresholdedRelu", 10, &[]),
    ("Tile", 1, &[]),
    ("TopK", 1, &[]),
    ("Transpose", 1, &[21]),
    ("Trilu", 14, &[14]),
    ("Unique", 11, &[]),
    ("Unsqueeze", 1, &[21]),
    ("Upsample", 1, &[]),
    ("Where", 9, &[16]),
    ("Xor", 1, &[]),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int4_packs_low_nibble_first() {
        let values = [1, -1, -8, 7, 3];
        let packed = pack_int4(&values);
        assert_eq!(packed, [0xF1, 0x78, 0x03]);
        assert_eq!(unpack_int4(&packed, values.len()), values);
        assert_eq!(unpack_int4(&[], 3), Vec::<i32>::new());
    }

    #[test]
    fn fresh_names_never_collide() {
        let mut taken: HashSet<String> = ["w_scale", "w_scale_1"].map(String::from).into();
        assert_eq!(fresh(&mut taken, "w_scale"), "w_scale_2");
        assert_eq!(fresh(&mut taken, "w_zero_point"), "w_zero_point");
        assert_eq!(fresh(&mut taken, "w_zero_point"), "w_zero_point_1");
    }

    fn reduce_mean(axes: &[i64]) -> NodeProto {
        let mut attributes = vec![int_attribute("keepdims", 0)];
        if !axes.is_empty() {
            attributes.push(AttributeProto {
                name: "axes".into(),
                r#type: AttributeType::Ints as i32,
                ints: axes.to_vec(),
                ..AttributeProto::default()
            });
        }
        node(
            "mean".into(),
            "ReduceMean",
            vec!["x".into()],
            vec!["y".into()],
            attributes,
        )
    }

    fn graph_of(nodes: Vec<NodeProto>) -> GraphProto {
        GraphProto {
            node: nodes,
            ..GraphProto::default()
        }
    }

    #[test]
    fn reduce_axes_become_an_input_at_opset_18() {
        let mut graph = graph_of(vec![reduce_mean(&[1, 2])]);
        let mut names = Names::of(&graph);
        upgrade_graph(&mut graph, 17, &mut names).unwrap();
        let node = &graph.node[0];
        assert_eq!(node.input, ["x", "y_axes"]);
        assert!(node.attribute.iter().all(|a| a.name != "axes"));
        let axes = &graph.initializer[0];
        assert_eq!(
            (axes.name.as_str(), axes.data_type),
            ("y_axes", DataType::Int64 as i32)
        );
        assert_eq!(axes.dims, [2]);
        assert_eq!(axes.raw_data, [1i64, 2].map(i64::to_le_bytes).concat());
        // Already at 18: nothing to do; no axes: reduce over all axes, at every opset.
        let mut graph = graph_of(vec![reduce_mean(&[1])]);
        upgrade_graph(&mut graph, 18, &mut names).unwrap();
        assert_eq!(graph.node[0].input, ["x"]);
        let mut graph = graph_of(vec![reduce_mean(&[])]);
        upgrade_graph(&mut graph, 17, &mut names).unwrap();
        assert_eq!(graph.node[0].input, ["x"]);
        assert!(graph.initializer.is_empty());
    }

    #[test]
    fn split_gets_its_output_count_and_unknown_changes_are_refused() {
        let split = node(
            "split".into(),
            "Split",
            vec!["x".into()],
            vec!["a".into(), "b".into(), "c".into()],
            vec![int_attribute("axis", 1)],
        );
        let mut graph = graph_of(vec![split]);
        let mut names = Names::of(&graph);
        upgrade_graph(&mut graph, 17, &mut names).unwrap();
        let count = graph.node[0]
            .attribute
            .iter()
            .find(|a| a.name == "num_outputs")
            .map(|a| a.i);
        assert_eq!(count, Some(3));

        let refused = |op: &str, from: i64| {
            let mut graph = graph_of(vec![node(
                "n".into(),
                op,
                vec!["x".into()],
                vec!["y".into()],
                Vec::new(),
            )]);
            upgrade_graph(&mut graph, from, &mut Names::of(&GraphProto::default())).err()
        };
        assert!(refused("GridSample", 17).unwrap().contains("modes"));
        assert!(refused("DFT", 17).is_some());
        assert!(refused("GroupNormalization", 18).is_some());
        assert!(refused("Gelu", 17).unwrap().contains("opset 20"));
        assert!(refused("NoSuchOp", 17)
            .unwrap()
            .contains("not an ONNX operator"));
        assert!(refused("Gelu", 20).is_none());
        assert!(refused("LayerNormalization", 17).is_none());
        assert!(refused("Squeeze", 17).is_none());
        // Every change listed in the table between 14 and 21 is classified on purpose: the
        // catch-all refusal is only for operators that appeared at that version.
        for (op, first, versions) in OPSETS {
            for &version in versions.iter().filter(|&&v| v > *first) {
                let why = change(op, version);
                assert!(
                    !matches!(why, Change::Refused(w) if w.contains("does not convert")),
                    "{op} at {version} is not classified"
                );
            }
        }
    }

    #[test]
    fn subgraphs_are_converted_too() {
        let body = graph_of(vec![reduce_mean(&[0])]);
        let branch = node(
            "if".into(),
            "If",
            vec!["c".into()],
            vec!["z".into()],
            vec![AttributeProto {
                name: "then_branch".into(),
                r#type: AttributeType::Graph as i32,
                g: Some(body),
                ..AttributeProto::default()
            }],
        );
        let mut graph = graph_of(vec![branch]);
        let mut names = Names::of(&graph);
        upgrade_graph(&mut graph, 17, &mut names).unwrap();
        let body = graph.node[0].attribute[0].g.as_ref().unwrap();
        assert_eq!(body.node[0].input.len(), 2);
        assert_eq!(body.initializer.len(), 1);
    }
}
