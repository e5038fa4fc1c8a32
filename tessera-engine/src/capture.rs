//! Capture: run a dataset through a model in batches and keep the outputs and any intermediate
//! tensors (tap points), joined along each tensor's own batch axis.

use crate::backend::{self, tract::analyse_shapes, Executor, ExecutorOptions};
use crate::{Error, Result};
use tessera_onnx::OnnxModel;
use tessera_tensor::dataset::Dataset;
use tessera_tensor::tensor::{Dim, Tensor, TensorSpec};

/// How to capture.
#[derive(Debug, Clone, Copy)]
pub struct CaptureOptions {
    /// The executor to run the model with.
    pub executor: ExecutorOptions,
    /// Samples per batch.
    pub batch_size: usize,
}

impl Default for CaptureOptions {
    fn default() -> Self {
        Self {
            executor: ExecutorOptions::default(),
            batch_size: 32,
        }
    }
}

/// Captured tensors over a whole dataset, in the order they were requested.
#[derive(Debug, Clone)]
pub struct Captured {
    /// What each tensor is: name, element type, shape with the batch dimension named.
    pub specs: Vec<TensorSpec>,
    /// The values, one tensor per spec, covering every sample.
    pub tensors: Vec<Tensor>,
    /// The executor that produced them, e.g. `tract (CPU)`.
    pub executor: String,
}

impl Captured {
    /// The tensor named `name`, if captured.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.specs
            .iter()
            .position(|spec| spec.name == name)
            .map(|index| &self.tensors[index])
    }

    /// Pairs of name and tensor, for writing.
    pub fn named(&self) -> Vec<(String, Tensor)> {
        self.specs
            .iter()
            .map(|spec| spec.name.clone())
            .zip(self.tensors.iter().cloned())
            .collect()
    }
}

/// A model prepared to capture the same tensors from any number of datasets.
pub struct Capturer {
    executor: Box<dyn Executor>,
    input: TensorSpec,
    specs: Vec<TensorSpec>,
    batch_axes: Vec<usize>,
    batch_size: usize,
}

impl Capturer {
    /// Prepares `model` to return the tensors named in `names` (outputs or intermediate
    /// tensors), checking that each one carries the batch along some axis.
    pub fn new(model: &OnnxModel, names: &[String], options: &CaptureOptions) -> Result<Self> {
        Self::with_shapes_of(model, model, names, options)
    }

    /// [`new`](Self::new) for a model whose tensor shapes tract infers on `shapes` instead: a
    /// graph with the same tensors that tract can read, for models only ONNX Runtime reads
    /// (packed INT4 weights, whose float twin has the same shapes).
    pub fn with_shapes_of(
        model: &OnnxModel,
        shapes: &OnnxModel,
        names: &[String],
        options: &CaptureOptions,
    ) -> Result<Self> {
        let inputs = model.inputs();
        let [input] = inputs.as_slice() else {
            return Err(model
                .error(format!(
                    "it takes {} inputs; capture feeds models with exactly one input",
                    inputs.len()
                ))
                .into());
        };
        if options.batch_size == 0 {
            return Err(Error::InvalidOption(
                "the batch size must be at least 1".into(),
            ));
        }
        model.check_tensor_names(names)?;
        let specs = analyse_shapes(shapes, names)?;
        let batch_name = input.shape.first().map(Dim::to_string).unwrap_or_default();
        let batch_axes = specs
            .iter()
            .map(|spec| {
                spec.shape
                    .iter()
                    .position(|dim| dim.to_string() == batch_name)
                    .ok_or_else(|| {
                        Error::Shape(format!(
                            "tensor {:?} (shape {}) does not vary with the batch, so it cannot be \
                             captured per sample",
                            spec.name,
                            spec.shape_text()
                        ))
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        // Declared as outputs with the shapes found on `shapes`, the tensors need no shape
        // analysis of `model` itself.
        let runnable = if std::ptr::eq(model, shapes) {
            model.clone()
        } else {
            model.with_extra_outputs(&specs)
        };
        Ok(Self {
            executor: backend::open(&runnable, names, options.executor)?,
            input: input.clone(),
            specs,
            batch_axes,
            batch_size: options.batch_size,
        })
    }

    /// Runs every sample of `dataset` through the model; `progress` is told the samples done
    /// after each batch.
    pub fn run(&mut self, dataset: &Dataset, progress: &mut dyn FnMut(usize)) -> Result<Captured> {
        dataset.check_fits(&self.input)?;
        let mut batches: Vec<Vec<Tensor>> = vec![Vec::new(); self.specs.len()];
        let total = dataset.len();
        for start in (0..total).step_by(self.batch_size) {
            let end = (start + self.batch_size).min(total);
            let outputs = self
                .executor
                .run(&[dataset.inputs.slice_axis(0, start..end)])?;
            for ((output, axis), (collected, spec)) in outputs
                .into_iter()
                .zip(&self.batch_axes)
                .zip(batches.iter_mut().zip(&self.specs))
            {
                if output.shape().get(*axis) != Some(&(end - start)) {
                    return Err(Error::Shape(format!(
                        "tensor {:?} came back with shape {:?} for a batch of {}; expected the \
                         batch along axis {axis} of {}",
                        spec.name,
                        output.shape(),
                        end - start,
                        spec.shape_text()
                    )));
                }
                collected.push(output);
            }
            progress(end);
        }
        let tensors = batches
            .iter()
            .zip(&self.batch_axes)
            .map(|(parts, &axis)| Tensor::concatenate(axis, parts))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Captured {
            specs: self.specs.clone(),
            tensors,
            executor: self.executor.description(),
        })
    }
}

/// Runs every sample of `dataset` through `model` and returns the tensors named in `names`
/// (outputs or intermediate tensors). `progress` is told the samples done after each batch.
pub fn capture(
    model: &OnnxModel,
    dataset: &Dataset,
    names: &[String],
    options: &CaptureOptions,
    progress: &mut dyn FnMut(usize),
) -> Result<Captured> {
    Capturer::new(model, names, options)?.run(dataset, progress)
}
