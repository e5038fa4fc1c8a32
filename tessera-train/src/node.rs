//! A graph node as the operators see it: its attributes, decoded on demand, and errors that
//! name the node.

use candle_core::{DType, Device, Tensor};
use tessera_onnx::proto::{tensor_proto::DataType, AttributeProto, NodeProto, TensorProto};

use crate::{Error, Result};

/// The opset assumed for a model that declares none for the default domain: the newest rules
/// the operators implement.
pub const NEWEST_OPSET: i64 = 21;

/// One ONNX node with typed attribute access.
pub struct Node<'a> {
    /// The node's protobuf.
    pub proto: &'a NodeProto,
    /// Where the graph's tensors live.
    pub device: &'a Device,
    /// The model's opset for the default domain: operators whose meaning changed between
    /// opsets (e.g. `Softmax` before 13) follow the model's.
    pub opset: i64,
}

impl Node<'_> {
    /// An error about this node.
    pub fn error(&self, message: impl Into<String>) -> Error {
        Error::Graph {
            node: self.proto.name.clone(),
            op: self.proto.op_type.clone(),
            message: message.into(),
        }
    }

    fn attribute(&self, name: &str) -> Option<&AttributeProto> {
        self.proto
            .attribute
            .iter()
            .find(|attribute| attribute.name == name)
    }

    /// An integer attribute.
    pub fn int(&self, name: &str) -> Option<i64> {
        self.attribute(name).map(|attribute| attribute.i)
    }

    /// A float attribute.
    pub fn float(&self, name: &str) -> Option<f32> {
        self.attribute(name).map(|attribute| attribute.f)
    }

    /// A list-of-integers attribute.
    pub fn ints(&self, name: &str) -> Option<Vec<i64>> {
        self.attribute(name).map(|attribute| attribute.ints.clone())
    }

    /// A string attribute.
    pub fn string(&self, name: &str) -> Option<String> {
        self.attribute(name)
            .map(|attribute| String::from_utf8_lossy(&attribute.s).into_owned())
    }

    /// A tensor attribute.
    pub fn tensor(&self, name: &str) -> Option<&TensorProto> {
        self.attribute(name)
            .and_then(|attribute| attribute.t.as_ref())
    }
}

/// Converts a candle error into a node error.
pub trait NodeResult<T> {
    /// Attaches `node` to the error.
    fn at(self, node: &Node<'_>) -> Result<T>;
}

impl<T> NodeResult<T> for candle_core::Result<T> {
    fn at(self, node: &Node<'_>) -> Result<T> {
        // candle appends a captured backtrace to its message when RUST_BACKTRACE is set.
        self.map_err(|error| node.error(error.to_string().lines().next().unwrap_or_default()))
    }
}

/// A stored ONNX tensor as a candle tensor: float types become float32, integer and boolean
/// types int64.
pub fn decode_tensor(proto: &TensorProto, device: &Device) -> std::result::Result<Tensor, String> {
    let dims: Vec<usize> = proto.dims.iter().map(|&dim| dim.max(0) as usize).collect();
    let count: usize = dims.iter().product();
    let raw = &proto.raw_data;
    let data_type = DataType::try_from(proto.data_type)
        .map_err(|_| format!("unknown data type {}", proto.data_type))?;
    let check = |len: usize| {
        if len == count {
            Ok(())
        } else {
            Err(format!(
                "tensor {:?} holds {len} values for shape {dims:?}",
                proto.name
            ))
        }
    };
    let tensor = match data_type {
        DataType::Float => {
            let values: Vec<f32> = if raw.is_empty() {
                proto.float_data.clone()
            } else {
                raw.chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect()
            };
            check(values.len())?;
            Tensor::from_vec(values, dims, device)
        }
        DataType::Double => {
            let values: Vec<f32> = if raw.is_empty() {
                proto.double_data.iter().map(|&v| v as f32).collect()
            } else {
                raw.chunks_exact(8)
                    .map(|b| {
                        f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32
                    })
                    .collect()
            };
            check(values.len())?;
            Tensor::from_vec(values, dims, device)
        }
        DataType::Int64 => {
            let values: Vec<i64> = if raw.is_empty() {
                proto.int64_data.clone()
            } else {
                raw.chunks_exact(8)
                    .map(|b| i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
                    .collect()
            };
            check(values.len())?;
            Tensor::from_vec(values, dims, device)
        }
        DataType::Int32 | DataType::Int8 | DataType::Uint8 | DataType::Bool => {
            let values: Vec<i64> = if raw.is_empty() {
                proto.int32_data.iter().map(|&v| i64::from(v)).collect()
            } else if data_type == DataType::Int32 {
                raw.chunks_exact(4)
                    .map(|b| i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])))
                    .collect()
            } else if data_type == DataType::Int8 {
                raw.iter().map(|&b| i64::from(b as i8)).collect()
            } else {
                raw.iter().map(|&b| i64::from(b)).collect()
            };
            check(values.len())?;
            Tensor::from_vec(values, dims, device)
        }
        other => {
            return Err(format!(
                "tensors of type {} are not supported",
                other.as_str_name()
            ))
        }
    };
    tensor.map_err(|error| error.to_string())
}

/// The integer values of a small (shape-like) tensor.
pub fn int_values(tensor: &Tensor, node: &Node<'_>) -> Result<Vec<i64>> {
    tensor
        .to_dtype(DType::I64)
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1::<i64>())
        .at(node)
}

/// Normalises a possibly negative axis for a tensor of `rank`.
pub fn axis(value: i64, rank: usize, node: &Node<'_>) -> Result<usize> {
    let resolved = if value < 0 {
        value + rank as i64
    } else {
        value
    };
    if resolved < 0 || resolved as usize >= rank.max(1) {
        return Err(node.error(format!("axis {value} is out of range for rank {rank}")));
    }
    Ok(resolved as usize)
}
