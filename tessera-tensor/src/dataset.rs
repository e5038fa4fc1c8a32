//! Datasets: model inputs from `.npy` (int64 tokens or float32 features, samples along the
//! first axis), and optional integer labels used only for scoring.

use std::path::{Path, PathBuf};

use ndarray::Array1;

use crate::array_io::read_npy;
use crate::tensor::{DType, Dim, Tensor, TensorSpec};
use crate::{Error, Result};

/// Inputs for a model, one sample per row, with optional labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// The samples, stacked along axis 0.
    pub inputs: Tensor,
    /// One class index per sample, if known. Never used for training a transfer.
    pub labels: Option<Array1<i64>>,
    /// Where the inputs came from (for messages).
    pub source: PathBuf,
}

impl Dataset {
    /// Loads inputs (and labels) from `.npy` files and checks them for emptiness, non-finite
    /// values and a label count that matches the samples.
    pub fn load(inputs: &Path, labels: Option<&Path>) -> Result<Self> {
        let tensor = read_npy(inputs)?;
        let labels = labels.map(read_labels).transpose()?;
        Self::new(tensor, labels, inputs.to_path_buf())
    }

    /// A dataset from tensors already in memory; `source` names it in messages.
    pub fn new(inputs: Tensor, labels: Option<Array1<i64>>, source: PathBuf) -> Result<Self> {
        let failure = |message: String| Error::Dataset {
            path: source.clone(),
            message,
        };
        let shape = inputs.shape();
        if shape.is_empty() {
            return Err(failure(
                "the array is a scalar; samples must lie along the first axis".into(),
            ));
        }
        if shape[0] == 0 {
            return Err(failure("the dataset holds no samples".into()));
        }
        if let Tensor::F32(array) = &inputs {
            if let Some(index) = array.iter().position(|v| !v.is_finite()) {
                return Err(failure(format!(
                    "element {index} (in row-major order) is {}; inputs must be finite",
                    array.iter().nth(index).copied().unwrap_or(f32::NAN)
                )));
            }
        }
        if let Some(labels) = &labels {
            if labels.len() != shape[0] {
                return Err(failure(format!(
                    "{} labels for {} samples; there must be one label per sample",
                    labels.len(),
                    shape[0]
                )));
            }
        }
        Ok(Self {
            inputs,
            labels,
            source,
        })
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.inputs.shape()[0]
    }

    /// Whether the dataset has no samples (never true for a constructed dataset).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Checks that the samples fit `input`: same element type, same rank, the batch along the
    /// first axis, and every fixed dimension equal.
    pub fn check_fits(&self, input: &TensorSpec) -> Result<()> {
        let failure = |message: String| Error::Dataset {
            path: self.source.clone(),
            message,
        };
        let shape = self.inputs.shape();
        if self.inputs.dtype() != input.dtype {
            let hint = match input.dtype {
                DType::I64 => " (token ids: save them with numpy as int64)",
                DType::F32 => " (features: save them with numpy as float32)",
                _ => "",
            };
            return Err(failure(format!(
                "the samples are {} but the model's input {:?} takes {}{hint}",
                self.inputs.dtype(),
                input.name,
                input.dtype
            )));
        }
        let expected = input.shape_text();
        if shape.len() != input.shape.len() {
            return Err(failure(format!(
                "the samples have shape {shape:?} but the model's input {:?} has shape {expected}",
                input.name
            )));
        }
        if input.batch_axis() != Some(0) {
            return Err(failure(format!(
                "the model's input {:?} has shape {expected}, without a variable batch as its \
                 first dimension; export it with a dynamic batch axis",
                input.name
            )));
        }
        for (axis, (dim, &len)) in input.shape.iter().zip(shape).enumerate().skip(1) {
            if let Dim::Fixed(expected_len) = dim {
                if *expected_len != len {
                    return Err(failure(format!(
                        "dimension {axis} of the samples is {len} but the model's input {:?} \
                         has shape {expected}",
                        input.name
                    )));
                }
            }
        }
        Ok(())
    }
}

fn read_labels(path: &Path) -> Result<Array1<i64>> {
    let failure = |message: String| Error::Dataset {
        path: path.to_path_buf(),
        message,
    };
    let Tensor::I64(array) = read_npy(path)? else {
        return Err(failure("labels must be integers (int64 or int32)".into()));
    };
    let labels = array
        .into_dimensionality::<ndarray::Ix1>()
        .map_err(|_| failure("labels must be a one-dimensional array".into()))?;
    if let Some(index) = labels.iter().position(|&label| label < 0) {
        return Err(failure(format!("label {index} is negative")));
    }
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{ArrayD, IxDyn};

    fn spec(dtype: DType, shape: Vec<Dim>) -> TensorSpec {
        TensorSpec {
            name: "tokens".into(),
            dtype,
            shape,
        }
    }

    #[test]
    fn mismatches_are_named() {
        let dataset = Dataset::new(
            Tensor::F32(ArrayD::zeros(IxDyn(&[4, 16]))),
            None,
            "x.npy".into(),
        )
        .unwrap();
        let batch = || Dim::Symbolic("batch".into());
        let int_input = spec(DType::I64, vec![batch(), Dim::Fixed(16)]);
        assert!(dataset
            .check_fits(&int_input)
            .unwrap_err()
            .to_string()
            .contains("int64"));
        let wider = spec(DType::F32, vec![batch(), Dim::Fixed(8)]);
        assert!(dataset
            .check_fits(&wider)
            .unwrap_err()
            .to_string()
            .contains("dimension 1"));
        let fixed_batch = spec(DType::F32, vec![Dim::Fixed(1), Dim::Fixed(16)]);
        assert!(dataset
            .check_fits(&fixed_batch)
            .unwrap_err()
            .to_string()
            .contains("dynamic batch"));
        assert!(dataset
            .check_fits(&spec(DType::F32, vec![batch(), Dim::Fixed(16)]))
            .is_ok());
    }

    #[test]
    fn empty_non_finite_and_mislabelled_data_are_refused() {
        let empty = Tensor::F32(ArrayD::zeros(IxDyn(&[0, 3])));
        assert!(Dataset::new(empty, None, "e.npy".into()).is_err());
        let mut values = ArrayD::zeros(IxDyn(&[2, 2]));
        values[[1, 0]] = f32::NAN;
        let message = Dataset::new(Tensor::F32(values), None, "n.npy".into())
            .unwrap_err()
            .to_string();
        assert!(message.contains("NaN"), "{message}");
        let ok = Tensor::I64(ArrayD::zeros(IxDyn(&[2, 2])));
        assert!(Dataset::new(ok, Some(Array1::zeros(3)), "l.npy".into()).is_err());
    }
}
