//! Plain tensors that cross between datasets, executors and the rest of the host, and the
//! descriptions of tensors a model declares.

use ndarray::{ArrayD, Axis, Slice};

use crate::{Error, Result};

/// Element types the host distinguishes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DType {
    /// 32-bit float.
    F32,
    /// 64-bit float.
    F64,
    /// 16-bit float.
    F16,
    /// 64-bit signed integer.
    I64,
    /// 32-bit signed integer.
    I32,
    /// 8-bit signed integer.
    I8,
    /// 8-bit unsigned integer.
    U8,
    /// Boolean.
    Bool,
    /// Any other ONNX element type, by its ONNX name.
    Other(String),
}

impl serde::Serialize for DType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DType::F32 => f.write_str("float32"),
            DType::F64 => f.write_str("float64"),
            DType::F16 => f.write_str("float16"),
            DType::I64 => f.write_str("int64"),
            DType::I32 => f.write_str("int32"),
            DType::I8 => f.write_str("int8"),
            DType::U8 => f.write_str("uint8"),
            DType::Bool => f.write_str("bool"),
            DType::Other(name) => f.write_str(name),
        }
    }
}

/// One dimension of a declared shape.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(untagged)]
pub enum Dim {
    /// A fixed length.
    Fixed(usize),
    /// A length chosen at run time, by its symbolic name (e.g. `batch`).
    Symbolic(String),
}

impl std::fmt::Display for Dim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dim::Fixed(len) => write!(f, "{len}"),
            Dim::Symbolic(name) => f.write_str(name),
        }
    }
}

/// A named tensor as a model declares it: element type and shape, possibly symbolic.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TensorSpec {
    /// The tensor's name in the graph.
    pub name: String,
    /// Element type.
    pub dtype: DType,
    /// Shape; symbolic dimensions are named.
    pub shape: Vec<Dim>,
}

impl TensorSpec {
    /// The shape written as `[batch, 16, 64]`.
    pub fn shape_text(&self) -> String {
        let dims: Vec<String> = self.shape.iter().map(Dim::to_string).collect();
        format!("[{}]", dims.join(", "))
    }

    /// The axis that grows with the batch: the first symbolic dimension.
    pub fn batch_axis(&self) -> Option<usize> {
        self.shape
            .iter()
            .position(|dim| matches!(dim, Dim::Symbolic(_)))
    }
}

/// A dense tensor of one of the element types models take as input and produce as activations.
#[derive(Debug, Clone, PartialEq)]
pub enum Tensor {
    /// 32-bit floats (features, activations, logits).
    F32(ArrayD<f32>),
    /// 64-bit integers (token ids, shapes).
    I64(ArrayD<i64>),
}

impl Tensor {
    /// The element type.
    pub fn dtype(&self) -> DType {
        match self {
            Tensor::F32(_) => DType::F32,
            Tensor::I64(_) => DType::I64,
        }
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        match self {
            Tensor::F32(array) => array.shape(),
            Tensor::I64(array) => array.shape(),
        }
    }

    /// The float32 array, if this tensor holds float32 values.
    pub fn as_f32(&self) -> Option<&ArrayD<f32>> {
        match self {
            Tensor::F32(array) => Some(array),
            Tensor::I64(_) => None,
        }
    }

    /// Elements `range` along `axis`, copied into a standard-layout tensor.
    pub fn slice_axis(&self, axis: usize, range: std::ops::Range<usize>) -> Tensor {
        let slice = Slice::from(range);
        match self {
            Tensor::F32(array) => Tensor::F32(
                array
                    .slice_axis(Axis(axis), slice)
                    .as_standard_layout()
                    .into_owned(),
            ),
            Tensor::I64(array) => Tensor::I64(
                array
                    .slice_axis(Axis(axis), slice)
                    .as_standard_layout()
                    .into_owned(),
            ),
        }
    }

    /// The samples at `rows` (along axis 0), in that order.
    pub fn select_rows(&self, rows: &[usize]) -> Tensor {
        match self {
            Tensor::F32(array) => Tensor::F32(array.select(Axis(0), rows)),
            Tensor::I64(array) => Tensor::I64(array.select(Axis(0), rows)),
        }
    }

    /// Joins tensors of one element type along `axis`.
    pub fn concatenate(axis: usize, parts: &[Tensor]) -> Result<Tensor> {
        let mismatch = || Error::Shape("cannot join tensors of different element types".into());
        let joined = match parts.first() {
            None => return Err(Error::Shape("nothing to join".into())),
            Some(Tensor::F32(_)) => {
                let views = parts
                    .iter()
                    .map(|part| part.as_f32().map(|array| array.view()).ok_or_else(mismatch))
                    .collect::<Result<Vec<_>>>()?;
                ndarray::concatenate(Axis(axis), &views).map(Tensor::F32)
            }
            Some(Tensor::I64(_)) => {
                let views = parts
                    .iter()
                    .map(|part| match part {
                        Tensor::I64(array) => Ok(array.view()),
                        Tensor::F32(_) => Err(mismatch()),
                    })
                    .collect::<Result<Vec<_>>>()?;
                ndarray::concatenate(Axis(axis), &views).map(Tensor::I64)
            }
        };
        joined.map_err(|error| {
            Error::Shape(format!("cannot join batches along axis {axis}: {error}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::IxDyn;

    #[test]
    fn slicing_and_joining_along_an_inner_axis() {
        let array =
            ArrayD::from_shape_fn(IxDyn(&[2, 5, 3]), |index| (index[1] * 10 + index[2]) as f32);
        let tensor = Tensor::F32(array.clone());
        let parts = [tensor.slice_axis(1, 0..2), tensor.slice_axis(1, 2..5)];
        assert_eq!(parts[1].shape(), &[2, 3, 3]);
        assert_eq!(Tensor::concatenate(1, &parts).unwrap(), tensor);
        let mixed = [
            tensor.clone(),
            Tensor::I64(ArrayD::zeros(IxDyn(&[2, 5, 3]))),
        ];
        assert!(Tensor::concatenate(0, &mixed).is_err());
    }

    #[test]
    fn batch_axis_is_the_first_symbolic_dimension() {
        let spec = TensorSpec {
            name: "y".into(),
            dtype: DType::F32,
            shape: vec![
                Dim::Fixed(16),
                Dim::Fixed(2),
                Dim::Symbolic("batch".into()),
                Dim::Fixed(32),
            ],
        };
        assert_eq!(spec.batch_axis(), Some(2));
        assert_eq!(spec.shape_text(), "[16, 2, batch, 32]");
    }
}
