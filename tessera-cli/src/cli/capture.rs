//! `tessera capture MODEL.onnx --inputs X.npy --out acts.npz`: the model's outputs and tap-point
//! activations over a dataset, one array per tensor name.

use std::path::{Path, PathBuf};

use tessera_host::array_io::write_npz;
use tessera_host::backend::{Backend, Device, ExecutorOptions};
use tessera_host::capture::CaptureOptions;
use tessera_host::dataset::Dataset;
use tessera_host::jobs::{capture_tensors, CaptureRequest};
use tessera_host::onnx::OnnxModel;

use super::output::{field, print_json, print_text};
use super::progress::progress_bar;
use super::registry;

/// Arguments of `tessera capture`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The model to run (.onnx).
    model: PathBuf,

    /// Input samples (.npy, samples along the first axis; int64 tokens or float32 features).
    #[arg(long, value_name = "X.npy")]
    inputs: PathBuf,

    /// Tensors to capture besides the outputs, comma-separated [default: the tap points of the
    /// adapter that claims the model, as `tessera inspect-model` lists them].
    #[arg(
        long,
        value_name = "NAME,...",
        value_delimiter = ',',
        conflicts_with = "pool"
    )]
    taps: Option<Vec<String>>,

    /// Use this architecture adapter instead of the best-scoring one.
    #[arg(long)]
    adapter: Option<String>,

    /// Write each tap pooled to one vector per sample ([N, width]), as the adapter says.
    #[arg(long)]
    pool: bool,

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
pub fn run(args: &Args, config: Option<&Path>, json: bool) -> anyhow::Result<()> {
    let model = OnnxModel::load(&args.model)?;
    let dataset = Dataset::load(&args.inputs, None)?;
    let request = CaptureRequest {
        taps: args.taps.clone(),
        adapter: args.adapter.clone(),
        pool: args.pool,
        options: CaptureOptions {
            executor: ExecutorOptions {
                backend: args.backend,
                device: args.device,
                threads: None,
            },
            batch_size: args.batch_size,
        },
    };
    let bar = progress_bar(dataset.len() as u64, "capturing");
    let captured = capture_tensors(
        &model,
        &dataset,
        &request,
        &registry(config)?,
        &mut |done| bar.set_position(done as u64),
    )?;
    bar.finish_and_clear();
    let arrays = captured.arrays;
    write_npz(&args.out, &arrays)?;
    if json {
        return print_json(&serde_json::json!({
            "model": args.model.display().to_string(),
            "samples": dataset.len(),
            "executor": captured.executor,
            "out": args.out.display().to_string(),
            "tensors": arrays
                .iter()
                .map(|(name, tensor)| serde_json::json!({
                    "name": name,
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
    lines.extend(arrays.iter().map(|(name, tensor)| {
        field(
            &tensor.dtype().to_string(),
            format!("{:?}  {name}", tensor.shape()),
        )
    }));
    print_text(&lines.join("\n"))
}
