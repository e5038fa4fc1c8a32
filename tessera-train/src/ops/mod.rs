//! Operators of the trainable graph, grouped by kind, and the one registry that maps ONNX
//! operator names to them. Every operator is written with differentiable candle operations, so
//! gradients flow through it; integer (shape) arithmetic needs none.

mod broadcast;
mod convolution;
pub(crate) mod elementary;
mod elementwise;
pub(crate) mod fused_attention;
mod fused_batch_norm;
pub(crate) mod fused_chain;
mod fused_gelu;
mod fused_layer_norm;
mod fused_lstm;
mod fused_softmax;
pub(crate) mod fused_views;
#[cfg(test)]
mod gradcheck;
mod im2col;
mod indexing;
mod linalg;
mod linear;
mod logical;
mod normalization;
mod pad;
mod recurrent;
mod reduction;
mod shape;

use candle_core::Tensor;

pub(crate) use normalization::batch_normalization_training;

use super::node::Node;
use crate::Result;

/// An operator: the node, its inputs (`None` for omitted optional ones), its outputs.
pub type OpFn = fn(&Node<'_>, &[Option<Tensor>]) -> Result<Vec<Tensor>>;

/// Every supported operator (default ONNX domain), by name.
const REGISTRY: &[(&str, OpFn)] = &[
    ("Add", elementwise::add),
    ("Sub", elementwise::sub),
    ("Mul", elementwise::mul),
    ("Div", elementwise::div),
    ("Pow", elementwise::pow),
    ("Mod", elementwise::modulo),
    ("Neg", elementwise::neg),
    ("Sqrt", elementwise::sqrt),
    ("Exp", elementwise::exp),
    ("Log", elementwise::log),
    ("Erf", elementwise::erf),
    ("Tanh", elementwise::tanh),
    ("Sigmoid", elementwise::sigmoid),
    ("Relu", elementwise::relu),
    ("Clip", elementwise::clip),
    ("HardSigmoid", elementwise::hard_sigmoid),
    ("HardSwish", elementwise::hard_swish),
    ("Gelu", elementwise::gelu),
    ("Identity", elementwise::identity),
    ("Dropout", elementwise::dropout),
    ("Cast", elementwise::cast),
    ("Equal", logical::equal),
    ("Less", logical::less),
    ("LessOrEqual", logical::less_or_equal),
    ("Greater", logical::greater),
    ("GreaterOrEqual", logical::greater_or_equal),
    ("Not", logical::not),
    ("And", logical::and),
    ("Or", logical::or),
    ("Where", logical::where_),
    ("Max", logical::max),
    ("Min", logical::min),
    ("MatMul", linalg::matmul),
    ("Gemm", linalg::gemm),
    ("LayerNormalization", normalization::layer_normalization),
    ("BatchNormalization", normalization::batch_normalization),
    ("Softmax", reduction::softmax),
    ("LogSoftmax", reduction::log_softmax_op),
    ("ReduceMean", reduction::reduce_mean),
    ("ReduceSum", reduction::reduce_sum),
    ("ReduceMax", reduction::reduce_max),
    ("ReduceMin", reduction::reduce_min),
    ("Shape", shape::shape),
    ("Reshape", shape::reshape),
    ("Flatten", shape::flatten),
    ("Transpose", shape::transpose),
    ("Slice", shape::slice),
    ("Concat", shape::concat),
    ("Unsqueeze", shape::unsqueeze),
    ("Squeeze", shape::squeeze),
    ("Gather", shape::gather),
    ("GatherElements", indexing::gather_elements),
    ("GatherND", indexing::gather_nd),
    ("Split", shape::split),
    ("Range", shape::range),
    ("Pad", pad::pad),
    ("Constant", shape::constant),
    ("ConstantOfShape", shape::constant_of_shape),
    ("Expand", shape::expand),
    ("Conv", convolution::conv),
    ("MaxPool", convolution::max_pool),
    ("AveragePool", convolution::average_pool),
    ("GlobalAveragePool", convolution::global_average_pool),
    ("LSTM", recurrent::lstm),
    ("GRU", recurrent::gru),
];

/// The operator named `op_type` in `domain`, if supported.
pub fn lookup(domain: &str, op_type: &str) -> Option<OpFn> {
    if domain == fused_chain::FUSED_DOMAIN {
        return match op_type {
            fused_views::VIEWS => Some(fused_views::views as OpFn),
            fused_attention::ATTENTION => Some(fused_attention::attention as OpFn),
            _ => None,
        };
    }
    if !(domain.is_empty() || domain == "ai.onnx") {
        return None;
    }
    REGISTRY
        .iter()
        .find(|(name, _)| *name == op_type)
        .map(|(_, op)| *op)
}

/// Names of every supported operator.
pub fn supported() -> impl Iterator<Item = &'static str> {
    REGISTRY.iter().map(|(name, _)| *name)
}

/// The value of a tensor of one element (any float or integer type), as a float64.
fn single_value(tensor: &Tensor) -> candle_core::Result<f64> {
    tensor
        .to_dtype(candle_core::DType::F64)?
        .flatten_all()?
        .to_vec1::<f64>()
        .map(|values| values[0])
}

/// Input `index`, which the operator requires.
fn input<'t>(node: &Node<'_>, inputs: &'t [Option<Tensor>], index: usize) -> Result<&'t Tensor> {
    inputs
        .get(index)
        .and_then(Option::as_ref)
        .ok_or_else(|| node.error(format!("input {index} is required")))
}

/// Input `index` if given.
fn optional(inputs: &[Option<Tensor>], index: usize) -> Option<&Tensor> {
    inputs.get(index).and_then(Option::as_ref)
}

/// The largest absolute difference between two float32 tensors of one shape, for tests.
#[cfg(test)]
fn largest_difference(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .and_then(|d| d.abs())
        .and_then(|d| d.max_all())
        .and_then(|d| d.to_scalar::<f32>())
        .unwrap()
}

/// The gradients of `of` for a weighted sum of `y` (weights all different), for tests.
#[cfg(test)]
fn weighted_gradients(y: &Tensor, of: &[&Tensor]) -> Vec<Tensor> {
    let weights = Tensor::arange(0f32, y.elem_count() as f32, y.device())
        .and_then(|w| w.reshape(y.dims()))
        .and_then(|w| w.affine(0.01, -0.5))
        .unwrap();
    let store = (y * &weights)
        .and_then(|weighted| weighted.sum_all())
        .and_then(|total| total.backward())
        .unwrap();
    of.iter()
        .map(|tensor| store.get(tensor).unwrap().clone())
        .collect()
}
