//! ModeAQ's export against its training: a zoo receiver with its weights and activations on
//! their grids in the trainable graph computes what the exported ONNX file computes in tract,
//! within one quantisation step (INT8 QDQ) or float rounding (weight-only INT8 and INT4).

mod support;

use std::collections::HashMap;

use candle_core::Device;
use tessera_api::QuantisationChoices;
use tessera_host::backend::candle::{
    to_host, FakeQuantisation, Trainable, TrainableGraph, WeightGrid,
};
use tessera_host::capture::{capture, CaptureOptions};
use tessera_host::dataset::Dataset;
use tessera_host::onnx::OnnxModel;
use tessera_host::quant::calibrate::RangeObserver;
use tessera_host::quant::export::{export, export_with, ActivationStorage};
use tessera_host::quant::grid::{Grid, QuantParams};
use tessera_host::quant::plan::{plan, QuantisationPlan, SampleShapes};
use tessera_host::quant::{
    ActivationPrecision, Int4Storage, Precision, QuantisationOptions, RangeMethod,
};
use tessera_host::tensor::Tensor;

use support::{zoo, zoo_file};

/// Rows of the training inputs used to calibrate, and of the held-out inputs compared.
const CALIBRATION_ROWS: usize = 256;
const COMPARED_ROWS: usize = 128;

/// The plan for `model` with the adapter's default choices and no shapes known (every layer
/// counted at one row or position per sample).
fn plan_with_defaults(model: &OnnxModel, options: &QuantisationOptions) -> QuantisationPlan {
    plan(
        model,
        options,
        &QuantisationChoices::default(),
        &SampleShapes::new(),
    )
}

/// The default options with an integer kernel for every compute layer, however small: the
/// export layout under test, on models too small for the default size rule.
fn integer_everywhere() -> QuantisationOptions {
    QuantisationOptions {
        min_integer_macs: 0,
        ..QuantisationOptions::default()
    }
}

fn rows(dataset: &Dataset, count: usize) -> Dataset {
    let count = count.min(dataset.len());
    Dataset {
        inputs: dataset.inputs.slice_axis(0, 0..count),
        labels: None,
        source: dataset.source.clone(),
    }
}

fn weight_grids(plan: &QuantisationPlan) -> HashMap<String, WeightGrid> {
    plan.weights
        .iter()
        .map(|site| {
            let grid = WeightGrid {
                granularity: site.granularity,
                grid: site.grid,
                symmetric: site.symmetric,
            };
            (site.initializer.clone(), grid)
        })
        .collect()
}

/// The receiver's logits on the grid in the trainable graph, and the activation grids it was
/// calibrated to.
fn fake_quantised(
    model: &OnnxModel,
    plan: &QuantisationPlan,
    calibration: &Dataset,
    compared: &Dataset,
) -> (ndarray::ArrayD<f32>, HashMap<String, QuantParams>) {
    let mut graph = TrainableGraph::new(model, &Trainable::All, Device::Cpu).unwrap();
    let weights = weight_grids(plan);
    graph
        .set_fake_quantisation(FakeQuantisation {
            weights: weights.clone(),
            activations: HashMap::new(),
        })
        .unwrap();
    let mut grids = HashMap::new();
    if !plan.activations.is_empty() {
        let values = graph
            .forward(std::slice::from_ref(&calibration.inputs), &plan.activations)
            .unwrap();
        for (tensor, value) in plan.activations.iter().zip(values) {
            let mut observer = RangeObserver::new();
            let Tensor::F32(array) = to_host(&value).unwrap() else {
                panic!("{tensor} is not float")
            };
            observer.observe(array.iter().copied());
            let params = observer
                .params(RangeMethod::MinMax, Grid::INT8, false)
                .unwrap();
            grids.insert(tensor.clone(), params);
        }
    }
    graph
        .set_fake_quantisation(FakeQuantisation {
            weights,
            activations: grids.clone(),
        })
        .unwrap();
    let output = model.outputs()[0].name.clone();
    let logits = graph
        .forward(std::slice::from_ref(&compared.inputs), &[output])
        .unwrap();
    let Tensor::F32(logits) = to_host(&logits[0]).unwrap() else {
        panic!("float logits")
    };
    (logits, grids)
}

/// Logits of the exported model, saved and loaded back, run by tract.
fn exported(model: &OnnxModel, dataset: &Dataset) -> ndarray::ArrayD<f32> {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("quantised.onnx");
    model.save(&path).unwrap();
    let loaded = OnnxModel::load(&path).unwrap();
    let output = loaded.outputs()[0].name.clone();
    let captured = capture(
        &loaded,
        dataset,
        &[output],
        &CaptureOptions::default(),
        &mut |_| {},
    )
    .unwrap();
    captured.tensors[0].as_f32().unwrap().clone()
}

fn max_difference(a: &ndarray::ArrayD<f32>, b: &ndarray::ArrayD<f32>) -> f32 {
    assert_eq!(a.shape(), b.shape());
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn mean_difference(a: &ndarray::ArrayD<f32>, b: &ndarray::ArrayD<f32>) -> f32 {
    assert_eq!(a.shape(), b.shape());
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| (x - y).abs())
        .sum::<f32>()
        / a.len() as f32
}

/// How far ONNX Runtime's integer kernels may be from what training computed. They sum in
/// int32 and rescale once, so more values than in tract land on the other side of a rounding
/// boundary; each moves what reads it by one step of its grid times the weight it meets. Bounded
/// by the coarsest activation step times the largest quantised weight (at least 1), for two
/// such crossings meeting in one output.
#[cfg(feature = "ort")]
fn rounding_bound(
    model: &OnnxModel,
    plan: &QuantisationPlan,
    grids: &HashMap<String, QuantParams>,
) -> f32 {
    use tessera_host::onnx::float_values;
    let step = grids.values().map(|p| p.scale).fold(0.0, f32::max);
    let largest_weight = plan
        .weights
        .iter()
        .filter_map(|site| {
            model
                .graph()
                .initializer
                .iter()
                .find(|init| init.name == site.initializer)
        })
        .flat_map(|init| float_values(init).unwrap())
        .fold(1.0, |largest, value| value.abs().max(largest));
    2.0 * step * largest_weight
}

/// The zoo receivers compared: every family, both tasks.
const RECEIVERS: [&str; 5] = [
    "digits/mlp_64d_2L.rx.torchscript",
    "digits/conv_64d_2L.rx.dynamo",
    "toy/transformer_128d_4L.rx.torchscript",
    "toy/lstm_64d_2L.rx.torchscript",
    "digits/transformer_64d_2L.rx.dynamo",
];

fn datasets(id: &str) -> (OnnxModel, Dataset, Dataset) {
    let entry = zoo().model(id).unwrap().clone();
    let model = OnnxModel::load(&zoo_file(&entry.onnx)).unwrap();
    let train = Dataset::load(&zoo_file(&entry.datasets.train_inputs), None).unwrap();
    let validation = Dataset::load(&zoo_file(&entry.datasets.val_inputs), None).unwrap();
    (
        model,
        rows(&train, CALIBRATION_ROWS),
        rows(&validation, COMPARED_ROWS),
    )
}

#[test]
fn int8_exports_compute_what_training_saw_within_one_step() {
    for id in RECEIVERS {
        let (model, calibration, compared) = datasets(id);
        let options = integer_everywhere();
        let plan = plan_with_defaults(&model, &options);
        assert!(!plan.weights.is_empty(), "{id}: nothing quantised");
        let (trained, grids) = fake_quantised(&model, &plan, &calibration, &compared);
        let quantised = export(&model, &plan, &grids, &options).unwrap();
        let run = exported(&quantised, &compared);
        // Stored as uint8, the same grid computes the same.
        let unsigned = export_with(&model, &plan, &grids, &options, ActivationStorage::Uint8);
        let unsigned_run = exported(&unsigned.unwrap(), &compared);
        assert!(
            max_difference(&run, &unsigned_run) <= 1e-5,
            "{id}: uint8 differs"
        );
        // Float rounding (summation order, the int32 bias) may move a value across a rounding
        // boundary: one step of the coarsest activation grid bounds what that changes.
        let step = grids.values().map(|p| p.scale).fold(0.0, f32::max);
        let difference = max_difference(&trained, &run);
        assert!(
            difference <= step,
            "{id}: max difference {difference} > one step {step}"
        );
        let mean = mean_difference(&trained, &run);
        assert!(
            mean <= 0.1 * step,
            "{id}: mean difference {mean}, step {step}"
        );
        // The comparison tells grids apart: the float model is much further away.
        let float = exported(&model, &compared);
        let float_mean = mean_difference(&trained, &float);
        assert!(
            float_mean > 4.0 * mean,
            "{id}: float {float_mean}, exported {mean}"
        );
    }
}

#[test]
fn weight_only_exports_match_training_to_float_rounding() {
    let int4 = QuantisationOptions {
        precision: Precision::Int4,
        activations: ActivationPrecision::Float,
        int4_storage: Int4Storage::Int8,
        ..integer_everywhere()
    };
    let int8 = QuantisationOptions {
        activations: ActivationPrecision::Float,
        ..integer_everywhere()
    };
    for (id, options) in RECEIVERS.iter().flat_map(|id| [(id, int4), (id, int8)]) {
        let (model, calibration, compared) = datasets(id);
        let plan = plan_with_defaults(&model, &options);
        let (trained, grids) = fake_quantised(&model, &plan, &calibration, &compared);
        assert!(grids.is_empty());
        let run = exported(&export(&model, &plan, &grids, &options).unwrap(), &compared);
        let scale = trained.iter().map(|v| v.abs()).fold(1.0, f32::max);
        let difference = max_difference(&trained, &run);
        assert!(difference <= 1e-4 * scale, "{id}: {difference}");
    }
}

/// The exports run in ONNX Runtime too (with its QDQ fusions into integer kernels for INT8):
/// INT8 within [`rounding_bound`] of training, 4-bit weight-only (packed, blocked, in int8) and
/// FP16 to float rounding of what the trainable graph computes with the same weights.
#[cfg(feature = "ort")]
#[test]
fn every_export_runs_in_onnx_runtime_as_trained() {
    use tessera_host::backend::{Backend, Device, ExecutorOptions};
    use tessera_host::capture::Capturer;
    let ort = CaptureOptions {
        executor: ExecutorOptions {
            backend: Backend::Ort,
            device: Device::Cpu,
            threads: None,
        },
        batch_size: 64,
    };
    // tract infers the shapes on the float model: it cannot read 4-bit types.
    let run_in_ort = |model: &OnnxModel, float: &OnnxModel, dataset: &Dataset| {
        let output = model.outputs()[0].name.clone();
        let captured = Capturer::with_shapes_of(model, float, &[output], &ort)
            .unwrap()
            .run(dataset, &mut |_| {})
            .unwrap();
        assert!(captured.executor.starts_with("ONNX Runtime"));
        captured.tensors[0].as_f32().unwrap().clone()
    };
    let int4 = |block, storage| QuantisationOptions {
        precision: Precision::Int4,
        activations: ActivationPrecision::Float,
        int4_block: block,
        int4_storage: storage,
        ..integer_everywhere()
    };
    for id in RECEIVERS {
        let (model, calibration, compared) = datasets(id);
        let options = integer_everywhere();
        let int8_plan = plan_with_defaults(&model, &options);
        let (trained, grids) = fake_quantised(&model, &int8_plan, &calibration, &compared);
        let step = grids.values().map(|p| p.scale).fold(0.0, f32::max);
        let bound = rounding_bound(&model, &int8_plan, &grids);
        for storage in [ActivationStorage::Int8, ActivationStorage::Uint8] {
            let int8 = export_with(&model, &int8_plan, &grids, &options, storage).unwrap();
            let run = run_in_ort(&int8, &model, &compared);
            let difference = max_difference(&trained, &run);
            eprintln!("{id} {storage:?} in ONNX Runtime: max difference {difference}, step {step}");
            assert!(
                difference <= bound,
                "{id} {storage:?} in ONNX Runtime: {difference} > {bound}"
            );
            let mean = mean_difference(&trained, &run);
            assert!(
                mean <= 0.1 * step,
                "{id} {storage:?}: mean difference {mean}"
            );
        }
        for options in [
            int4(None, Int4Storage::Packed),
            int4(Some(32), Int4Storage::Packed),
            int4(None, Int4Storage::Int8),
        ] {
            let plan = plan_with_defaults(&model, &options);
            let (trained, _) = fake_quantised(&model, &plan, &calibration, &compared);
            let quantised = export(&model, &plan, &HashMap::new(), &options).unwrap();
            let run = run_in_ort(&quantised, &model, &compared);
            // ONNX Runtime fuses 4-bit MatMul weights into MatMulNBits, whose kernels compute
            // at a lower precision than float32 (about 3e-3 of the logits' scale here).
            let scale = trained.iter().map(|v| v.abs()).fold(1.0, f32::max);
            let difference = max_difference(&trained, &run);
            assert!(
                difference <= 1e-2 * scale,
                "{id} {}: {difference}",
                options.label()
            );
        }
        let fp16 = QuantisationOptions::at(Precision::Fp16);
        let fp16_plan = plan_with_defaults(&model, &fp16);
        let halved = export(&model, &fp16_plan, &HashMap::new(), &fp16).unwrap();
        let float = run_in_ort(&model, &model, &compared);
        let half = run_in_ort(&halved, &model, &compared);
        let scale = float.iter().map(|v| v.abs()).fold(1.0, f32::max);
        let difference = max_difference(&float, &half);
        assert!(difference <= 1e-2 * scale, "{id} fp16: {difference}");
    }
}
