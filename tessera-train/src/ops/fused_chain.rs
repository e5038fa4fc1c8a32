//! What the fused operators of Tessera's own domain share: the chain of the model's nodes each
//! replaces, carried as a graph attribute, and that chain run node by node, each recorded by
//! candle, wherever the fused kernel does not apply (another device or type, shapes it does
//! not take).

use std::collections::HashMap;

use candle_core::Tensor;

use tessera_onnx::proto::GraphProto;

use super::lookup;
use crate::node::Node;
use crate::Result;

/// The domain of the operators only the fused plan uses.
pub const FUSED_DOMAIN: &str = "ai.tessera.fused";

/// The attribute holding the chain's own nodes, as a graph.
pub const CHAIN_ATTRIBUTE: &str = "chain";

/// The fused node's chain of the model's nodes.
pub fn chain<'a>(node: &Node<'a>) -> Result<&'a GraphProto> {
    node.proto
        .attribute
        .iter()
        .find(|attribute| attribute.name == CHAIN_ATTRIBUTE)
        .and_then(|attribute| attribute.g.as_ref())
        .ok_or_else(|| node.error("a fused node needs the chain it replaces"))
}

/// The chain's nodes run in order on the fused node's inputs (by the names the chain gives
/// them); the last node's outputs.
pub fn record(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    let chain = chain(node)?;
    let mut values: HashMap<&str, Tensor> = node
        .proto
        .input
        .iter()
        .zip(inputs)
        .filter_map(|(name, value)| Some((name.as_str(), value.clone()?)))
        .collect();
    let mut outputs = Vec::new();
    for proto in &chain.node {
        let step = Node {
            proto,
            device: node.device,
            opset: node.opset,
        };
        let arguments: Vec<Option<Tensor>> = proto
            .input
            .iter()
            .map(|name| values.get(name.as_str()).cloned())
            .collect();
        let op = lookup(&proto.domain, &proto.op_type)
            .ok_or_else(|| step.error("unsupported operator"))?;
        outputs = op(&step, &arguments)?;
        for (name, value) in proto.output.iter().zip(&outputs) {
            values.insert(name.as_str(), value.clone());
        }
    }
    Ok(outputs)
}

/// A fused node of `op_type` reading `inputs`, carrying `chain` and `attributes`, for tests.
#[cfg(test)]
pub(crate) fn fused_node(
    op_type: &str,
    inputs: &[&str],
    output: &str,
    chain: Vec<tessera_onnx::proto::NodeProto>,
    attributes: Vec<tessera_onnx::proto::AttributeProto>,
) -> tessera_onnx::proto::NodeProto {
    use tessera_onnx::proto::attribute_proto::AttributeType;
    use tessera_onnx::proto::{AttributeProto, NodeProto};
    let chain = AttributeProto {
        name: CHAIN_ATTRIBUTE.into(),
        r#type: AttributeType::Graph as i32,
        g: Some(GraphProto {
            node: chain,
            ..GraphProto::default()
        }),
        ..AttributeProto::default()
    };
    NodeProto {
        op_type: op_type.into(),
        domain: FUSED_DOMAIN.into(),
        input: inputs.iter().map(|name| name.to_string()).collect(),
        output: vec![output.into()],
        attribute: std::iter::once(chain).chain(attributes).collect(),
        ..NodeProto::default()
    }
}
