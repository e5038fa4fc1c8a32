//! The trainable graph: it computes what tract computes on every zoo model of both exporters,
//! and what it learns survives a round trip through the ONNX file.

mod support;

use std::collections::{HashMap, HashSet};

use tessera_host::backend::candle::{to_host, unsupported_nodes, Trainable, TrainableGraph};
use tessera_host::backend::tract::TractExecutor;
use tessera_host::backend::Executor;
use tessera_host::dataset::Dataset;
use tessera_host::onnx::OnnxModel;
use tessera_host::tensor::Tensor;

use support::{max_difference, zoo_file, zoo_models};

fn first_rows(dataset: &Dataset, rows: usize) -> Tensor {
    dataset.inputs.slice_axis(0, 0..rows.min(dataset.len()))
}

#[test]
fn intermediate_tensors_come_back_alongside_the_outputs() {
    let zoo = zoo_models()
        .into_iter()
        .find(|model| model.id == "toy/lstm_64d_2L.tx.torchscript")
        .unwrap();
    let model = OnnxModel::load(&zoo_file(&zoo.onnx)).unwrap();
    let dataset = Dataset::load(&zoo_file(&zoo.datasets.val_inputs), None).unwrap();
    let batch = first_rows(&dataset, 8);
    let names = vec!["logits".to_string(), "/lstm/LSTM_output_0".to_string()];
    let graph = TrainableGraph::new(&model, &Trainable::All, candle_core::Device::Cpu).unwrap();
    let ours = graph.forward(std::slice::from_ref(&batch), &names).unwrap();
    let reference = TractExecutor::new(&model, &names)
        .unwrap()
        .run(&[batch])
        .unwrap();
    for (mine, theirs) in ours.iter().zip(&reference) {
        assert!(max_difference(&to_host(mine).unwrap(), theirs) <= 1e-4);
    }
    assert_eq!(ours[1].dims(), &[16, 2, 8, 32]);
}

#[test]
fn forward_matches_tract_on_every_zoo_model() {
    let mut worst = (0.0f32, String::new());
    for zoo in zoo_models() {
        let model = OnnxModel::load(&zoo_file(&zoo.onnx)).unwrap();
        assert!(
            unsupported_nodes(&model).is_empty(),
            "{}: {:?}",
            zoo.id,
            unsupported_nodes(&model)
        );
        let dataset = Dataset::load(&zoo_file(&zoo.datasets.val_inputs), None).unwrap();
        let batch = first_rows(&dataset, 32);
        let outputs = vec!["logits".to_string()];
        let graph = TrainableGraph::new(&model, &Trainable::All, candle_core::Device::Cpu)
            .unwrap_or_else(|error| panic!("{}: {error}", zoo.id));
        let ours = graph
            .forward(std::slice::from_ref(&batch), &outputs)
            .unwrap_or_else(|error| panic!("{}: {error}", zoo.id));
        let ours = to_host(&ours[0]).unwrap();
        let reference = TractExecutor::new(&model, &outputs)
            .unwrap()
            .run(&[batch])
            .unwrap();
        let difference = max_difference(&ours, &reference[0]);
        assert!(
            difference <= 1e-4,
            "{}: logits differ from tract's by {difference}",
            zoo.id
        );
        if difference > worst.0 {
            worst = (difference, zoo.id.clone());
        }
    }
    println!("worst difference from tract: {} ({})", worst.0, worst.1);
}

/// The transformers' spelled-out GELUs, their `MatMul`s with a bias, their view chains and
/// their attention run fused; asking for a tensor inside a GELU runs the model's own nodes,
/// and both give the same outputs and gradients.
#[test]
fn fused_operators_compute_what_the_spelled_out_nodes_compute() {
    for id in [
        "toy/transformer_64d_2L.rx.torchscript",
        "toy/transformer_64d_2L.rx.dynamo",
    ] {
        let zoo = zoo_models()
            .into_iter()
            .find(|model| model.id == id)
            .unwrap();
        let model = OnnxModel::load(&zoo_file(&zoo.onnx)).unwrap();
        let erf = model
            .graph()
            .node
            .iter()
            .find(|node| node.op_type == "Erf")
            .map(|node| node.output[0].clone())
            .unwrap();
        let dataset = Dataset::load(&zoo_file(&zoo.datasets.val_inputs), None).unwrap();
        let batch = first_rows(&dataset, 8);
        let graph = TrainableGraph::new(&model, &Trainable::All, candle_core::Device::Cpu).unwrap();
        let logits_and_gradients = |names: &[String]| {
            let outputs = graph.forward(std::slice::from_ref(&batch), names).unwrap();
            let gradients = outputs[0]
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let every: Vec<Tensor> = graph
                .variables()
                .iter()
                .map(|(_, var)| to_host(gradients.get(var.as_tensor()).unwrap()).unwrap())
                .collect();
            (to_host(&outputs[0]).unwrap(), every)
        };
        let (fused, fused_gradients) = logits_and_gradients(&["logits".to_string()]);
        let (spelled_out, spelled_out_gradients) =
            logits_and_gradients(&["logits".to_string(), erf]);
        assert!(max_difference(&fused, &spelled_out) <= 1e-5, "{id}");
        for (a, b) in fused_gradients.iter().zip(&spelled_out_gradients) {
            assert!(max_difference(a, b) <= 1e-4, "{id}");
        }
    }
}

/// A single number among a model's initializers (dynamo writes GELU's √2 and attention's scale
/// that way) is an operator's constant: it does not learn unless named.
#[test]
fn single_numbers_are_constants_not_weights() {
    let zoo = zoo_models()
        .into_iter()
        .find(|model| model.id == "toy/transformer_64d_2L.rx.dynamo")
        .unwrap();
    let model = OnnxModel::load(&zoo_file(&zoo.onnx)).unwrap();
    let numbers: Vec<String> = model
        .graph()
        .initializer
        .iter()
        .filter(|i| i.dims.iter().product::<i64>() == 1)
        .map(|i| i.name.clone())
        .collect();
    assert!(!numbers.is_empty());
    let graph = TrainableGraph::new(&model, &Trainable::All, candle_core::Device::Cpu).unwrap();
    let learned: Vec<&String> = graph.variables().iter().map(|(name, _)| name).collect();
    assert!(numbers.iter().all(|number| !learned.contains(&number)));
    assert!(learned.len() > 10);
    let named = Trainable::Only(vec![numbers[0].clone()]);
    let graph = TrainableGraph::new(&model, &named, candle_core::Device::Cpu).unwrap();
    assert_eq!(graph.variables().len(), 1);
}

/// The exporters read every layer's normalisation scale and bias (and, for TorchScript, every
/// attention output bias) of an untrained network from one initializer, since their values are
/// equal; fine-tuning gives each layer its own. Choosing the merged initializer chooses every
/// copy of it.
#[test]
fn merged_layer_parameters_are_learned_per_layer() {
    for exporter in ["torchscript", "dynamo"] {
        let id = format!("toy/transformer_64d_2L.rx.{exporter}");
        let zoo = zoo_models()
            .into_iter()
            .find(|model| model.id == id)
            .unwrap();
        let model = OnnxModel::load(&zoo_file(&zoo.onnx)).unwrap();
        // Each normalisation's scale, followed through the Identity nodes TorchScript reads
        // merged tensors through.
        let scales = |graph: &tessera_host::onnx::proto::GraphProto| -> Vec<String> {
            let aliases: HashMap<&str, &str> = graph
                .node
                .iter()
                .filter(|node| node.op_type == "Identity")
                .map(|node| (node.output[0].as_str(), node.input[0].as_str()))
                .collect();
            let source = |name: &str| {
                let mut name = name;
                while let Some(from) = aliases.get(name) {
                    name = from;
                }
                name.to_string()
            };
            graph
                .node
                .iter()
                .filter(|node| node.op_type == "LayerNormalization")
                .map(|node| source(&node.input[1]))
                .collect()
        };
        let given = scales(model.graph());
        let distinct = |names: &[String]| names.iter().collect::<HashSet<_>>().len();
        assert!(
            distinct(&given) < given.len(),
            "{id}: the export merges them"
        );
        let graph = TrainableGraph::new(&model, &Trainable::All, candle_core::Device::Cpu).unwrap();
        let tuned = graph.trained_model().unwrap();
        let own = scales(tuned.graph());
        assert_eq!(distinct(&own), own.len(), "{id}: one scale per layer");
        let learned: HashSet<&str> = graph.variables().iter().map(|(n, _)| n.as_str()).collect();
        assert!(own.iter().all(|scale| learned.contains(scale.as_str())));
        let frozen = Trainable::AllExcept(vec![given[0].clone()]);
        let graph = TrainableGraph::new(&model, &frozen, candle_core::Device::Cpu).unwrap();
        let learned: HashSet<&str> = graph.variables().iter().map(|(n, _)| n.as_str()).collect();
        let copies = scales(graph.trained_model().unwrap().graph());
        let sharing = given.iter().filter(|scale| **scale == given[0]).count();
        let frozen_copies = copies
            .iter()
            .filter(|copy| !learned.contains(copy.as_str()))
            .count();
        assert_eq!(
            frozen_copies, sharing,
            "{id}: every copy of a frozen tensor stays frozen"
        );
    }
}

/// A model of one `[2, 3, 4]` float input and three normalisations of it — Softmax with no axis
/// attribute, LogSoftmax along axis 0, Softmax along the last axis — declared at `opset`.
fn normalisations_at_opset(opset: i64) -> OnnxModel {
    use prost::Message;
    use tessera_host::onnx::proto::{
        attribute_proto::AttributeType, tensor_shape_proto, type_proto, AttributeProto, GraphProto,
        ModelProto, NodeProto, OperatorSetIdProto, TensorShapeProto, TypeProto, ValueInfoProto,
    };
    let float = |name: &str, dims: &[i64]| ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: 1,
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|&dim| tensor_shape_proto::Dimension {
                            value: Some(tensor_shape_proto::dimension::Value::DimValue(dim)),
                            ..Default::default()
                        })
                        .collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    };
    let node = |op: &str, output: &str, axis: Option<i64>| NodeProto {
        name: output.into(),
        op_type: op.into(),
        input: vec!["x".into()],
        output: vec![output.into()],
        attribute: axis
            .map(|axis| AttributeProto {
                name: "axis".into(),
                r#type: AttributeType::Int as i32,
                i: axis,
                ..Default::default()
            })
            .into_iter()
            .collect(),
        ..Default::default()
    };
    let model = ModelProto {
        ir_version: 7,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: opset,
        }],
        producer_name: "tessera-tests".into(),
        graph: Some(GraphProto {
            name: format!("normalisations-opset-{opset}"),
            node: vec![
                node("Softmax", "default_axis", None),
                node("LogSoftmax", "first_axis", Some(0)),
                node("Softmax", "last_axis", Some(-1)),
            ],
            input: vec![float("x", &[2, 3, 4])],
            output: ["default_axis", "first_axis", "last_axis"]
                .iter()
                .map(|name| float(name, &[2, 3, 4]))
                .collect(),
            ..Default::default()
        }),
        ..Default::default()
    };
    OnnxModel::from_bytes(&model.encode_to_vec()).unwrap()
}

#[test]
fn softmax_follows_the_models_opset_as_tract_does() {
    let values: Vec<f32> = (0..24).map(|i| ((i * 5) % 7) as f32 * 0.4 - 1.2).collect();
    let input = Tensor::F32(ndarray::ArrayD::from_shape_vec(vec![2, 3, 4], values).unwrap());
    let outputs: Vec<String> = ["default_axis", "first_axis", "last_axis"]
        .map(String::from)
        .to_vec();
    let mut default_axis = Vec::new();
    for opset in [11, 13] {
        let model = normalisations_at_opset(opset);
        let graph = TrainableGraph::new(&model, &Trainable::All, candle_core::Device::Cpu).unwrap();
        let ours = graph
            .forward(std::slice::from_ref(&input), &outputs)
            .unwrap();
        let reference = TractExecutor::new(&model, &outputs)
            .unwrap()
            .run(std::slice::from_ref(&input))
            .unwrap();
        for ((name, mine), theirs) in outputs.iter().zip(&ours).zip(&reference) {
            let difference = max_difference(&to_host(mine).unwrap(), theirs);
            assert!(
                difference <= 1e-5,
                "opset {opset}, {name}: differs from tract by {difference}"
            );
        }
        default_axis.push(reference[0].clone());
    }
    // Softmax without an axis means something else at opset 11 (the flattened trailing axes)
    // than at 13 (the last axis): the check above compared two different computations.
    assert!(max_difference(&default_axis[0], &default_axis[1]) > 1e-2);
}
