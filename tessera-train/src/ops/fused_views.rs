//! A chain of view operators (`Reshape`, `Flatten`, `Squeeze`, `Unsqueeze`, `Transpose`, and a
//! `Gather` of one position) as one node of the backward pass. Exported attention spells out
//! its head split and merge as some fifteen such nodes per layer. For each of them candle's
//! backward pass allocates a zero gradient, adds the node's gradient into it and reshapes it
//! again; here the chain takes one addition, and its gradient is the chain run backwards.

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};

use tessera_onnx::proto::GraphProto;

use super::lookup;
use super::shape::permutation;
use crate::node::{axis, int_values, Node, NodeResult};
use crate::storage::span;
use crate::Result;

/// The domain of the operators only the fused plan uses.
pub const FUSED_DOMAIN: &str = "ai.tessera.fused";

/// The fused chain's operator name in [`FUSED_DOMAIN`].
pub const VIEWS: &str = "Views";

/// The attribute holding the chain's own nodes, as a graph.
pub const CHAIN_ATTRIBUTE: &str = "chain";

/// Runs the chain in the node's `chain` attribute on its first input. The other inputs are
/// the chain's shapes, axes and indices, by the names its nodes give them.
pub fn views(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    let x = inputs
        .first()
        .and_then(Option::as_ref)
        .ok_or_else(|| node.error("a fused view chain needs its data"))?;
    let chain = chain(node)?;
    // A `Gather` of several positions is not run backwards by hand: candle records every step.
    let by_hand = x.device().is_cpu()
        && x.dtype().is_float()
        && chain.node.iter().all(|step| {
            step.op_type != "Gather"
                || step
                    .input
                    .get(1)
                    .and_then(|name| argument(node, inputs, name))
                    .is_some_and(|indices| indices.rank() == 0)
        });
    if !by_hand {
        return Ok(vec![run(node, chain, inputs, x.clone(), false)?.0]);
    }
    let (value, adjoints) = run(node, chain, inputs, x.detach(), true)?;
    Ok(vec![x
        .apply_op2(&value.contiguous().at(node)?, ViewChain { adjoints })
        .at(node)?])
}

/// The chain's own nodes.
fn chain<'a>(node: &Node<'a>) -> Result<&'a GraphProto> {
    node.proto
        .attribute
        .iter()
        .find(|attribute| attribute.name == CHAIN_ATTRIBUTE)
        .and_then(|attribute| attribute.g.as_ref())
        .ok_or_else(|| node.error("a fused view chain needs its nodes"))
}

/// The fused node's input the chain's nodes call `name`.
fn argument(node: &Node<'_>, inputs: &[Option<Tensor>], name: &str) -> Option<Tensor> {
    let index = node.proto.input.iter().position(|input| input == name)?;
    inputs.get(index).cloned().flatten()
}

/// The chain's result from `data`, and (`with_adjoints`) each step's adjoint.
fn run(
    node: &Node<'_>,
    chain: &GraphProto,
    inputs: &[Option<Tensor>],
    data: Tensor,
    with_adjoints: bool,
) -> Result<(Tensor, Vec<Adjoint>)> {
    let mut value = data;
    let mut adjoints = Vec::with_capacity(chain.node.len());
    for proto in &chain.node {
        let step = Node {
            proto,
            device: node.device,
            opset: node.opset,
        };
        let mut arguments: Vec<Option<Tensor>> = proto
            .input
            .iter()
            .map(|name| argument(node, inputs, name).filter(|_| !name.is_empty()))
            .collect();
        match arguments.first_mut() {
            Some(first) => *first = Some(value.clone()),
            None => return Err(step.error("a view takes its data first")),
        }
        let op = lookup(&proto.domain, &proto.op_type)
            .ok_or_else(|| step.error("unsupported operator"))?;
        let output = op(&step, &arguments)?
            .into_iter()
            .next()
            .ok_or_else(|| step.error("a view gives one tensor"))?;
        if with_adjoints {
            adjoints.push(Adjoint::of(&step, &value, &arguments)?);
        }
        value = output;
    }
    Ok((value, adjoints))
}

/// How one step's output gradient becomes its input's.
#[derive(Clone, Debug)]
enum Adjoint {
    /// Back to the input's shape (every reshaping view).
    Reshape(Vec<usize>),
    /// The inverse permutation.
    Permute(Vec<usize>),
    /// Into position `index` of `axis`, zeros elsewhere, of an axis of `length`.
    Place {
        axis: usize,
        index: usize,
        length: usize,
    },
}

impl Adjoint {
    /// The adjoint of `step` on `input`, which ran; a `Gather` picks one position.
    fn of(step: &Node<'_>, input: &Tensor, arguments: &[Option<Tensor>]) -> Result<Self> {
        Ok(match step.proto.op_type.as_str() {
            "Reshape" | "Flatten" | "Squeeze" | "Unsqueeze" => {
                Adjoint::Reshape(input.dims().to_vec())
            }
            "Transpose" => {
                let perm = permutation(step, input.rank())?;
                let mut inverse = vec![0; perm.len()];
                for (position, &source) in perm.iter().enumerate() {
                    inverse[source] = position;
                }
                Adjoint::Permute(inverse)
            }
            "Gather" => {
                let indices = arguments
                    .get(1)
                    .and_then(Option::as_ref)
                    .ok_or_else(|| step.error("input 1 is required"))?;
                let along = axis(step.int("axis").unwrap_or(0), input.rank(), step)?;
                let length = input.dim(along).at(step)?;
                let index = int_values(indices, step)?[0];
                Adjoint::Place {
                    axis: along,
                    // In range: the step itself ran.
                    index: if index < 0 {
                        index + length as i64
                    } else {
                        index
                    } as usize,
                    length,
                }
            }
            other => return Err(step.error(format!("{other} is not a view"))),
        })
    }

    fn apply(&self, gradient: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Adjoint::Reshape(dims) => gradient.reshape(dims.as_slice()),
            Adjoint::Permute(inverse) => gradient.permute(inverse.as_slice()),
            &Adjoint::Place {
                axis,
                index,
                length,
            } => gradient
                .unsqueeze(axis)?
                .pad_with_zeros(axis, index, length - index - 1),
        }
    }
}

/// The chain's result, tied to its data for the backward pass.
struct ViewChain {
    adjoints: Vec<Adjoint>,
}

impl CustomOp2 for ViewChain {
    fn name(&self) -> &'static str {
        "views"
    }

    /// The chain's value, computed outside (views of the data, detached, made contiguous).
    fn cpu_fwd(
        &self,
        _data: &CpuStorage,
        _data_layout: &Layout,
        value: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (start, end) = span(layout, "views")?;
        let copied = match value {
            CpuStorage::F32(values) => CpuStorage::F32(values[start..end].to_vec()),
            CpuStorage::F64(values) => CpuStorage::F64(values[start..end].to_vec()),
            _ => candle_core::bail!("a fused view chain runs on float32 or float64 values"),
        };
        Ok((copied, layout.shape().clone()))
    }

    fn bwd(
        &self,
        _data: &Tensor,
        _value: &Tensor,
        _result: &Tensor,
        gradient: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let mut gradient = gradient.clone();
        for adjoint in self.adjoints.iter().rev() {
            gradient = adjoint.apply(&gradient)?;
        }
        Ok((Some(gradient), None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::NEWEST_OPSET;
    use crate::ops::largest_difference;
    use candle_core::{Device, Var};
    use tessera_onnx::proto::attribute_proto::AttributeType;
    use tessera_onnx::proto::{AttributeProto, GraphProto, NodeProto};

    fn step(op: &str, inputs: &[&str], output: &str, perm: Option<&[i64]>) -> NodeProto {
        NodeProto {
            op_type: op.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            attribute: perm
                .map(|perm| AttributeProto {
                    name: "perm".into(),
                    r#type: AttributeType::Ints as i32,
                    ints: perm.to_vec(),
                    ..AttributeProto::default()
                })
                .into_iter()
                .collect(),
            ..NodeProto::default()
        }
    }

    /// The fused chain's values and gradients against the same steps recorded one by one,
    /// with a `Gather` of one position (run backwards by hand) and of several (recorded).
    #[test]
    fn a_chain_computes_and_differentiates_as_its_steps() {
        let device = Device::Cpu;
        let values: Vec<f32> = (0..24).map(|i| (i as f32 * 0.37).sin()).collect();
        let x = Var::from_vec(values, (2, 3, 4), &device).unwrap();
        let shape = Tensor::new(&[4i64, 6], &device).unwrap();
        for index in [
            Tensor::new(2i64, &device).unwrap(),
            Tensor::new(-1i64, &device).unwrap(),
            Tensor::new(&[0i64, 5], &device).unwrap(),
        ] {
            let steps = vec![
                step("Reshape", &["x", "shape"], "r", None),
                step("Transpose", &["r"], "t", Some(&[1, 0])),
                step("Gather", &["t", "index"], "g", None),
            ];
            let proto = NodeProto {
                op_type: VIEWS.into(),
                domain: FUSED_DOMAIN.into(),
                input: vec!["x".into(), "shape".into(), "index".into()],
                output: vec!["g".into()],
                attribute: vec![AttributeProto {
                    name: CHAIN_ATTRIBUTE.into(),
                    r#type: AttributeType::Graph as i32,
                    g: Some(GraphProto {
                        node: steps.clone(),
                        ..GraphProto::default()
                    }),
                    ..AttributeProto::default()
                }],
                ..NodeProto::default()
            };
            let node = Node {
                proto: &proto,
                device: &device,
                opset: NEWEST_OPSET,
            };
            let inputs = [
                Some(x.as_tensor().clone()),
                Some(shape.clone()),
                Some(index.clone()),
            ];
            let fused = views(&node, &inputs).unwrap().remove(0);
            let mut spelled_out = x.as_tensor().clone();
            for proto in &steps {
                let step = Node {
                    proto,
                    device: &device,
                    opset: NEWEST_OPSET,
                };
                let arguments = match proto.op_type.as_str() {
                    "Reshape" => vec![Some(spelled_out), Some(shape.clone())],
                    "Gather" => vec![Some(spelled_out), Some(index.clone())],
                    _ => vec![Some(spelled_out)],
                };
                let op = lookup("", &proto.op_type).unwrap();
                spelled_out = op(&step, &arguments).unwrap().remove(0);
            }
            assert_eq!(fused.dims(), spelled_out.dims());
            assert_eq!(largest_difference(&fused, &spelled_out), 0.0);
            let weights = Tensor::arange(0f32, fused.elem_count() as f32, &device)
                .and_then(|w| w.reshape(fused.dims()))
                .unwrap();
            let gradient = |y: &Tensor| {
                let store = (y * &weights)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .backward()
                    .unwrap();
                store.get(x.as_tensor()).unwrap().clone()
            };
            let difference = largest_difference(&gradient(&fused), &gradient(&spelled_out));
            assert_eq!(difference, 0.0, "index {index}");
        }
    }
}
