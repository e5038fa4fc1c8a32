//! ONNX Runtime against tract: the same activations at every tap point of every bundled model,
//! and honest device selection. Needs the `ort` feature and `libonnxruntime` (`.ci/run`
//! installs the `onnxruntime` wheel and points `TESSERA_PYTHON` at it).

mod support;

use tessera_api::ArchitectureAdapter;
use tessera_host::backend::{self, Backend, Device, ExecutorOptions};
use tessera_host::capture::{capture, CaptureOptions};
use tessera_host::dataset::Dataset;
use tessera_host::onnx::OnnxModel;
use tessera_host::plugin::{summarise, FallbackAdapter};

use support::{zoo_file, zoo_models};

fn options(backend: Backend, device: Device) -> CaptureOptions {
    CaptureOptions {
        executor: ExecutorOptions {
            backend,
            device,
            threads: None,
        },
        batch_size: 32,
    }
}

#[test]
fn tap_activations_agree_between_tract_and_onnx_runtime() {
    let mut worst = 0.0f32;
    for zoo in zoo_models() {
        let model = OnnxModel::load(&zoo_file(&zoo.onnx)).unwrap();
        let dataset = Dataset::load(&zoo_file(&zoo.datasets.val_inputs), None).unwrap();
        // Every residual, normalisation and recurrent output the fallback adapter finds.
        let plan = FallbackAdapter
            .analyse(&summarise(&model))
            .unwrap()
            .expect("every zoo model has tap points");
        let mut names = vec!["logits".to_string()];
        names.extend(plan.taps.into_iter().map(|tap| tap.tensor));
        let tract = capture(
            &model,
            &dataset,
            &names,
            &options(Backend::Tract, Device::Cpu),
            &mut |_| {},
        )
        .unwrap_or_else(|error| panic!("{}: {error}", zoo.id));
        let ort = capture(
            &model,
            &dataset,
            &names,
            &options(Backend::Ort, Device::Cpu),
            &mut |_| {},
        )
        .unwrap_or_else(|error| panic!("{}: {error}", zoo.id));
        assert!(ort.executor.starts_with("ONNX Runtime"));
        for ((spec, a), b) in tract.specs.iter().zip(&tract.tensors).zip(&ort.tensors) {
            let (a, b) = (a.as_f32().unwrap(), b.as_f32().unwrap());
            assert_eq!(a.shape(), b.shape(), "{} {}", zoo.id, spec.name);
            let difference = a
                .iter()
                .zip(b)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0, f32::max);
            assert!(difference <= 1e-4, "{} {}: {difference}", zoo.id, spec.name);
            worst = worst.max(difference);
        }
    }
    println!("worst tap difference between tract and ONNX Runtime: {worst}");
}

#[test]
fn gpu_devices_fail_clearly_and_only_auto_falls_back() {
    let zoo = &zoo_models()[0];
    let model = OnnxModel::load(&zoo_file(&zoo.onnx)).unwrap();
    let outputs = ["logits".to_string()];
    let has_gpu_provider = |device| {
        backend::open(
            &model,
            &outputs,
            ExecutorOptions {
                backend: Backend::Ort,
                device,
                threads: None,
            },
        )
    };
    for device in [Device::Cuda, Device::TensorRt] {
        match has_gpu_provider(device) {
            Ok(executor) => println!("{device} available: {}", executor.description()),
            Err(error) => {
                let message = error.to_string();
                assert!(message.contains("not available"), "{message}");
                assert!(message.contains("--device auto"), "{message}");
            }
        }
    }
    let auto = has_gpu_provider(Device::Auto).unwrap();
    let description = auto.description();
    assert!(
        description.contains("auto"),
        "auto says what it chose: {description}"
    );
}

/// A graph input asked for as an output comes back as the input itself, in both executors.
#[test]
fn a_graph_input_can_be_read_as_an_output() {
    let zoo = zoo_models()
        .into_iter()
        .find(|model| model.id == "digits/mlp_64d_2L.rx.torchscript")
        .unwrap();
    let model = OnnxModel::load(&zoo_file(&zoo.onnx)).unwrap();
    let dataset = Dataset::load(&zoo_file(&zoo.datasets.val_inputs), None).unwrap();
    let input = model.inputs()[0].name.clone();
    let names = [input, "logits".to_string()];
    for backend in [Backend::Tract, Backend::Ort] {
        let captured = capture(
            &model,
            &dataset,
            &names,
            &options(backend, Device::Cpu),
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(captured.tensors[0], dataset.inputs, "{backend:?}");
    }
}
