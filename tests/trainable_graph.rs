//! The trainable graph: it computes what tract computes on every zoo model of both exporters,
//! and what it learns survives a round trip through the ONNX file.

mod support;

use tessera_host::backend::candle::{to_host, unsupported_nodes, Trainable, TrainableGraph};
use tessera_host::backend::tract::TractExecutor;
use tessera_host::backend::Executor;
use tessera_host::dataset::Dataset;
use tessera_host::onnx::OnnxModel;
use tessera_host::tensor::Tensor;

use support::{zoo_file, zoo_models};

fn max_difference(a: &Tensor, b: &Tensor) -> f32 {
    let (a, b) = (a.as_f32().unwrap(), b.as_f32().unwrap());
    assert_eq!(a.shape(), b.shape());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

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
