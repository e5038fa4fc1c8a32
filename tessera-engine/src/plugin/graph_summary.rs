//! The plain description of an ONNX graph that adapters receive.

use tessera_api::{
    AttributeValue, DimSummary, GraphSummary, InitializerSummary, NodeSummary, ValueSummary,
};
use tessera_onnx::proto::{attribute_proto::AttributeType, AttributeProto};

use crate::backend::tract::analyse_shapes;
use tessera_onnx::{dtype_of, OnnxModel};
use tessera_tensor::tensor::{Dim, TensorSpec};

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
    let value =
        |spec: TensorSpec| ValueSummary::new(spec.name, spec.dtype.to_string(), dims(spec.shape));
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
    let nodes = graph
        .node
        .iter()
        .map(|node| {
            NodeSummary::new(
                node.name.clone(),
                node.op_type.clone(),
                node.input.clone(),
                node.output.clone(),
            )
            .with_domain(node.domain.clone())
            .with_attributes(
                node.attribute
                    .iter()
                    .filter_map(|attribute| {
                        attribute_value(attribute).map(|value| (attribute.name.clone(), value))
                    })
                    .collect(),
            )
        })
        .collect();
    let initializers = graph
        .initializer
        .iter()
        .map(|init| {
            InitializerSummary::new(
                init.name.clone(),
                dtype_of(init.data_type).to_string(),
                init.dims.iter().map(|&dim| dim.max(0) as u64).collect(),
            )
        })
        .collect();
    GraphSummary::new(
        model.inputs().into_iter().map(value).collect(),
        model.outputs().into_iter().map(value).collect(),
        nodes,
        initializers,
    )
    .with_opset(model.opset())
    .with_opset_imports(model.opset_imports())
    .with_shapes(shapes)
}

/// Scalar and list attributes; tensors and graphs are left out, and so are float attributes
/// holding NaN or infinity, which the JSON the summary crosses the plugin boundary as cannot
/// carry.
fn attribute_value(attribute: &AttributeProto) -> Option<AttributeValue> {
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    Some(match AttributeType::try_from(attribute.r#type).ok()? {
        AttributeType::Int => attribute.i.into(),
        AttributeType::Float if attribute.f.is_finite() => attribute.f.into(),
        AttributeType::String => text(&attribute.s).into(),
        AttributeType::Ints => attribute.ints.clone().into(),
        AttributeType::Floats if attribute.floats.iter().all(|v| v.is_finite()) => {
            attribute.floats.clone().into()
        }
        AttributeType::Strings => attribute
            .strings
            .iter()
            .map(|bytes| text(bytes))
            .collect::<Vec<_>>()
            .into(),
        _ => return None,
    })
}
