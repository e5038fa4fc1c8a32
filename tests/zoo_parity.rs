//! Every bundled model, from both PyTorch exporters, reproduces PyTorch's validation logits
//! within 1e-4 when run by tract (and, with the `ort` feature, by ONNX Runtime).

mod support;

use tessera_host::array_io::read_npy;
use tessera_host::backend::{Backend, ExecutorOptions};
use tessera_host::capture::{capture, CaptureOptions};
use tessera_host::dataset::Dataset;
use tessera_host::onnx::OnnxModel;
use tessera_host::tensor::Tensor;

use support::{zoo_file, zoo_models};

const TOLERANCE: f32 = 1e-4;

fn max_difference(model_id: &str, actual: &Tensor, expected: &Tensor) -> f32 {
    let (Some(actual), Some(expected)) = (actual.as_f32(), expected.as_f32()) else {
        panic!("{model_id}: logits must be float32");
    };
    assert_eq!(actual.shape(), expected.shape(), "{model_id}: logits shape");
    actual
        .iter()
        .zip(expected)
        .map(|(a, e)| (a - e).abs())
        .fold(0.0, f32::max)
}

fn check_backend(backend: Backend) {
    let models = zoo_models();
    assert!(models.len() >= 36, "the zoo lists {} models", models.len());
    let mut worst = (0.0f32, String::new());
    for zoo in &models {
        let model = OnnxModel::load(&zoo_file(&zoo.onnx))
            .unwrap_or_else(|error| panic!("{}: {error}", zoo.id));
        let dataset = Dataset::load(&zoo_file(&zoo.datasets.val_inputs), None).unwrap();
        let expected = read_npy(&zoo_file(&zoo.val_logits)).unwrap();
        let options = CaptureOptions {
            executor: ExecutorOptions {
                backend,
                ..ExecutorOptions::default()
            },
            batch_size: 32,
        };
        let captured = capture(
            &model,
            &dataset,
            &["logits".to_string()],
            &options,
            &mut |_| {},
        )
        .unwrap_or_else(|error| panic!("{}: {error}", zoo.id));
        let difference = max_difference(&zoo.id, &captured.tensors[0], &expected);
        assert!(
            difference <= TOLERANCE,
            "{} on {backend}: logits differ from PyTorch's by {difference}",
            zoo.id
        );
        if difference > worst.0 {
            worst = (difference, zoo.id.clone());
        }
    }
    println!("{backend}: worst difference {} ({})", worst.0, worst.1);
}

#[test]
fn tract_reproduces_pytorch_logits_for_every_zoo_model() {
    check_backend(Backend::Tract);
}

#[cfg(feature = "ort")]
#[test]
fn onnx_runtime_reproduces_pytorch_logits_for_every_zoo_model() {
    check_backend(Backend::Ort);
}
