//! The plain description of an ONNX graph that adapters receive.

use tessera_api::{DimSummary, GraphSummary, InitializerSummary, NodeSummary, ValueSummary};
use tract_onnx::pb::{attribute_proto::AttributeType, AttributeProto};

use crate::backend::tract::analyse_shapes;
use crate::onnx::{dtype_of, OnnxModel};
use crate::tensor::{Dim, TensorSpec};

/// Describes `model` for adapters: inputs, outputs, nodes with their attributes, initializers,
/// and the inferred shape of every computed tensor (left empty where inference fails).
pub fn summarise(model: &OnnxModel) -> GraphSummary {
    let graph = model.graph();
    let dims = |shape: Vec<Dim>| -> Vec<DimSummary> {
        shape
            .into_iter()
            .map(|dim| match dim {
                Dim::Fixed(len) => DimSummary::Fixed(len as u64),
                Dim::Symbolic(name) => DimSummary::Symbolic(name),
            })
            .collect()
    };
    let value = |spec: TensorSpec| ValueSummary {
        name: spec.name,
        dtype: spec.dtype.to_string(),
        shape: dims(spec.shape),
    };
    let computed: Vec<String> = graph
        .node
        .iter()
        .filter(|node| node.op_type != "Constant")
        .flat_map(|node| node.output.iter().filter(|name| !name.is_empty()).cloned())
        .collect();
    let shapes = analyse_shapes(model, &computed)
        .map(|specs| {
            specs
                .into_iter()
                .map(|spec| (spec.name, dims(spec.shape)))
                .collect()
        })
        .unwrap_or_default();
    GraphSummary {
        inputs: model.inputs().into_iter().map(value).collect(),
        outputs: model.outputs().into_iter().map(value).collect(),
        nodes: graph
            .node
            .iter()
            .map(|node| NodeSummary {
                name: node.name.clone(),
                op_type: node.op_type.clone(),
                domain: node.domain.clone(),
                inputs: node.input.clone(),
                outputs: node.output.clone(),
                attributes: node
                    .attribute
                    .iter()
                    .filter_map(|attribute| {
                        attribute_json(attribute).map(|json| (attribute.name.clone(), json))
                    })
                    .collect(),
            })
            .collect(),
        initializers: graph
            .initializer
            .iter()
            .map(|init| InitializerSummary {
                name: init.name.clone(),
                dtype: dtype_of(init.data_type).to_string(),
                dims: init.dims.iter().map(|&dim| dim.max(0) as u64).collect(),
            })
            .collect(),
        opset: model.opset(),
        shapes,
    }
}

/// Scalar and list attributes as JSON; tensors and graphs are left out.
fn attribute_json(attribute: &AttributeProto) -> Option<serde_json::Value> {
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    Some(match AttributeType::try_from(attribute.r#type).ok()? {
        AttributeType::Int => attribute.i.into(),
        AttributeType::Float => serde_json::Number::from_f64(f64::from(attribute.f))?.into(),
        AttributeType::String => text(&attribute.s).into(),
        AttributeType::Ints => attribute.ints.clone().into(),
        AttributeType::Floats => attribute
            .floats
            .iter()
            .filter_map(|&v| serde_json::Number::from_f64(f64::from(v)))
            .collect::<Vec<_>>()
            .into(),
        AttributeType::Strings => attribute
            .strings
            .iter()
            .map(|bytes| text(bytes))
            .collect::<Vec<_>>()
            .into(),
        _ => return None,
    })
}
