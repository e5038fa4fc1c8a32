//! `tessera capture MODEL.onnx --inputs X.npy --out acts.npz`: the model's outputs and tap-point
//! activations over a dataset, one array per tensor name.

use std::path::{Path, PathBuf};

use tessera_host::array_io::write_npz;
use tessera_host::backend::{Backend, Device, ExecutorOptions};
use tessera_host::capture::{capture, CaptureOptions};
use tessera_host::dataset::Dataset;
use tessera_host::onnx::OnnxModel;
use tessera_host::pooling::pool;
use tessera_host::tensor::Tensor;

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
    let mut names: Vec<String> = model.outputs().into_iter().map(|spec| spec.name).collect();
    let plan = match &args.taps {
        Some(_) => None,
        None => Some(
            registry(config)?
                .choose_adapter(&model, args.adapter.as_deref())?
                .plan,
        ),
    };
    let taps = match (&args.taps, &plan) {
        (Some(taps), _) => taps.clone(),
        (None, Some(plan)) => plan.taps.iter().map(|tap| tap.tensor.clone()).collect(),
        (None, None) => Vec::new(),
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
    let mut arrays = captured.named();
    if let (true, Some(plan)) = (args.pool, &plan) {
        for tap in &plan.taps {
            if let Some((_, tensor)) = arrays.iter_mut().find(|(name, _)| *name == tap.tensor) {
                let activations = tensor
                    .as_f32()
                    .ok_or_else(|| anyhow::anyhow!("tap {} is not float32", tap.tensor))?;
                *tensor = Tensor::F32(pool(activations, tap)?.into_dyn());
            }
        }
    }
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
