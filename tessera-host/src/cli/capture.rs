//! `tessera capture MODEL.onnx --inputs X.npy --out acts.npz`: the model's outputs and tap-point
//! activations over a dataset, one array per tensor name.

use std::path::PathBuf;

use tessera_host::array_io::write_npz;
use tessera_host::backend::{Backend, Device, ExecutorOptions};
use tessera_host::capture::{capture, CaptureOptions};
use tessera_host::dataset::Dataset;
use tessera_host::onnx::{candidate_taps, OnnxModel};

use super::output::{field, print_json, print_text};
use super::progress::progress_bar;

/// Arguments of `tessera capture`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The model to run (.onnx).
    model: PathBuf,

    /// Input samples (.npy, samples along the first axis; int64 tokens or float32 features).
    #[arg(long, value_name = "X.npy")]
    inputs: PathBuf,

    /// Tensors to capture besides the outputs, comma-separated [default: the candidate tap
    /// points `tessera inspect-model` lists].
    #[arg(long, value_name = "NAME,...", value_delimiter = ',')]
    taps: Option<Vec<String>>,

    /// Execution backend: tract (CPU, built in) or ort (ONNX Runtime; needs the `ort` feature).
    #[arg(long, default_value = "tract")]
    backend: Backend,

    /// Device for ONNX Runtime: cpu, cuda, tensorrt or auto (falls back, and says so).
    #[arg(long, default_value = "cpu")]
    device: Device,

    /// Samples per batch.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,

    /// Where to write the activations (.npz, written atomically).
    #[arg(long, value_name = "ACTS.npz")]
    out: PathBuf,
}

/// Runs `tessera capture`.
pub fn run(args: &Args, json: bool) -> anyhow::Result<()> {
    let model = OnnxModel::load(&args.model)?;
    let dataset = Dataset::load(&args.inputs, None)?;
    let mut names: Vec<String> = model.outputs().into_iter().map(|spec| spec.name).collect();
    let taps = match &args.taps {
        Some(taps) => taps.clone(),
        None => candidate_taps(&model)
            .into_iter()
            .map(|tap| tap.tensor)
            .collect(),
    };
    for tap in taps {
        if !names.contains(&tap) {
            names.push(tap);
        }
    }
    let options = CaptureOptions {
        executor: ExecutorOptions {
            backend: args.backend,
            device: args.device,
            threads: None,
        },
        batch_size: args.batch_size,
    };
    let bar = progress_bar(dataset.len() as u64, "capturing");
    let captured = capture(&model, &dataset, &names, &options, &mut |done| {
        bar.set_position(done as u64)
    })?;
    bar.finish_and_clear();
    write_npz(&args.out, &captured.named())?;
    if json {
        return print_json(&serde_json::json!({
            "model": args.model.display().to_string(),
            "samples": dataset.len(),
            "executor": captured.executor,
            "out": args.out.display().to_string(),
            "tensors": captured
                .specs
                .iter()
                .zip(&captured.tensors)
                .map(|(spec, tensor)| serde_json::json!({
                    "name": spec.name,
                    "dtype": tensor.dtype(),
                    "shape": tensor.shape(),
                }))
                .collect::<Vec<_>>(),
        }));
    }
    let mut lines = vec![format!(
        "wrote {} — {} samples through {} with {}",
        args.out.display(),
        dataset.len(),
        args.model.display(),
        captured.executor
    )];
    lines.extend(
        captured
            .specs
            .iter()
            .zip(&captured.tensors)
            .map(|(spec, tensor)| {
                field(
                    &format!("{}", tensor.dtype()),
                    format!("{:?}  {}", tensor.shape(), spec.name),
                )
            }),
    );
    print_text(&lines.join("\n"))
}
