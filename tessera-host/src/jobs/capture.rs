//! A model's outputs and tap activations over a dataset, one array per tensor name
//! (`tessera capture`, `tessera.capture` in Python).

use tessera_engine::capture::{capture, CaptureOptions};
use tessera_engine::plugin::PluginRegistry;
use tessera_engine::pooling::pool;
use tessera_engine::{Error, Result};
use tessera_onnx::OnnxModel;
use tessera_tensor::dataset::Dataset;
use tessera_tensor::tensor::Tensor;

/// What to capture.
#[derive(Debug, Clone, Default)]
pub struct CaptureRequest {
    /// Tensors to capture besides the outputs [default: the tap points of the adapter that
    /// claims the model].
    pub taps: Option<Vec<String>>,
    /// Use this adapter instead of the best-scoring one.
    pub adapter: Option<String>,
    /// Pool each adapter tap to one vector per sample (`[N, width]`), as the adapter says;
    /// only with the adapter's taps.
    pub pool: bool,
    /// The executor and batch size.
    pub options: CaptureOptions,
}

/// The captured tensors, by name (outputs first), and the executor that produced them.
#[derive(Debug, Clone)]
pub struct CapturedTensors {
    /// One array per tensor, covering every sample.
    pub arrays: Vec<(String, Tensor)>,
    /// The executor, e.g. `tract (CPU)`.
    pub executor: String,
}

/// Runs `dataset` through `model` and keeps what `request` names; `progress` is told the
/// samples done.
pub fn capture_tensors(
    model: &OnnxModel,
    dataset: &Dataset,
    request: &CaptureRequest,
    registry: &PluginRegistry,
    progress: &mut dyn FnMut(usize),
) -> Result<CapturedTensors> {
    if request.pool && request.taps.is_some() {
        return Err(Error::InvalidOption(
            "pooling follows the adapter's taps; name no taps to pool, or drop pooling".into(),
        ));
    }
    let plan = match &request.taps {
        Some(_) => None,
        None => Some(
            registry
                .choose_adapter(model, request.adapter.as_deref())?
                .plan,
        ),
    };
    let mut names: Vec<String> = model.outputs().into_iter().map(|spec| spec.name).collect();
    let taps = match (&request.taps, &plan) {
        (Some(taps), _) => taps.clone(),
        (None, Some(plan)) => plan.taps.iter().map(|tap| tap.tensor.clone()).collect(),
        (None, None) => Vec::new(),
    };
    for tap in taps {
        if !names.contains(&tap) {
            names.push(tap);
        }
    }
    let captured = capture(model, dataset, &names, &request.options, progress)?;
    let mut arrays = captured.named();
    if let (true, Some(plan)) = (request.pool, &plan) {
        for tap in &plan.taps {
            if let Some((_, tensor)) = arrays.iter_mut().find(|(name, _)| *name == tap.tensor) {
                let activations = tensor.as_f32().ok_or_else(|| {
                    Error::Shape(format!(
                        "tap {} is not float32 and cannot be pooled",
                        tap.tensor
                    ))
                })?;
                *tensor = Tensor::F32(pool(activations, tap)?.into_dyn());
            }
        }
    }
    Ok(CapturedTensors {
        arrays,
        executor: captured.executor,
    })
}
