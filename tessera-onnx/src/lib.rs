//! Reading, inspecting and editing ONNX model files.
//!
//! [`OnnxModel`] holds a decoded model with any external data (weights the exporter wrote to
//! files beside the `.onnx`) already read in, so that every executor can take it from memory.
//! Its declared inputs and outputs are described in [`tessera_tensor`]'s terms; the protobuf
//! messages themselves are reachable through [`proto`] for code that edits graphs.
//!
//! `tessera-host` re-exports this crate as `tessera_host::onnx`.

mod constants;
mod error;
mod external_data;
mod summary;
mod wire;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use prost::Message;
use proto::{self as pb, tensor_shape_proto::dimension, type_proto, ModelProto};

use tessera_fs::IoError;
use tessera_tensor::tensor::{DType, Dim, TensorSpec};

pub use constants::{merge_duplicate_constants, untie_merged_initializers};
pub use error::{Error, Result};
pub use summary::{ModelSummary, OpsetImport};

/// The ONNX protobuf messages (`ModelProto`, `GraphProto`, `NodeProto`, `TensorProto`, ...), as
/// generated from `onnx.proto`: what [`OnnxModel::proto`] and [`OnnxModel::graph`] return, for
/// code that reads or edits a graph node by node. Everything else in Tessera's API is in its
/// own types.
pub mod proto {
    pub use tract_onnx::pb::*;
}

/// A decoded ONNX model, self-contained in memory.
#[derive(Debug, Clone)]
pub struct OnnxModel {
    proto: ModelProto,
    name: String,
    source: Option<PathBuf>,
    /// The serialized model every save starts from (the file as read, external references
    /// included), so that saving changes nothing but initializer data.
    encoded: Arc<Vec<u8>>,
    /// Initializers the file kept in external data; [`save`](Self::save) keeps them there.
    external: Vec<String>,
    /// Initializers whose values were replaced since loading.
    modified: HashSet<String>,
}

impl OnnxModel {
    /// Loads `path`, reading external data files relative to the model's folder.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(IoError::of("read", path))?;
        let name = path.display().to_string();
        let mut proto = decode(&bytes, &name)?;
        let folder = path.parent().unwrap_or_else(|| Path::new("."));
        let external =
            external_data::inline(&mut proto, folder).map_err(|message| Error::Model {
                model: name.clone(),
                message,
            })?;
        let mut model = Self::from_proto(proto, bytes, name, Some(path.to_path_buf()))?;
        model.external = external;
        Ok(model)
    }

    /// Decodes a model held in memory. Such a model cannot refer to external data files.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let name = "<memory>".to_string();
        let proto = decode(bytes, &name)?;
        if external_data::has_external(&proto) {
            return Err(Error::Model {
                model: name,
                message: "the model refers to external data files; load it from its path so \
                          they can be found"
                    .into(),
            });
        }
        Self::from_proto(proto, bytes.to_vec(), name, None)
    }

    fn from_proto(
        proto: ModelProto,
        encoded: Vec<u8>,
        name: String,
        source: Option<PathBuf>,
    ) -> Result<Self> {
        let model = Self {
            proto,
            name,
            source,
            encoded: Arc::new(encoded),
            external: Vec::new(),
            modified: HashSet::new(),
        };
        if model.proto.graph.is_none() {
            return Err(model.error("the file holds no graph"));
        }
        if model.inputs().is_empty() {
            return Err(model.error("the graph has no inputs"));
        }
        Ok(model)
    }

    /// The name used in messages: the path it was loaded from, or `<memory>`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file the model was loaded from, if any.
    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    /// The decoded protobuf.
    pub fn proto(&self) -> &ModelProto {
        &self.proto
    }

    /// The main graph.
    pub fn graph(&self) -> &pb::GraphProto {
        // Checked at construction.
        self.proto
            .graph
            .as_ref()
            .unwrap_or_else(|| unreachable!("graph checked at load"))
    }

    /// The serialized model (with external data inlined).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.proto.encode_to_vec()
    }

    /// The opset of the default (`ai.onnx`) domain.
    pub fn opset(&self) -> Option<i64> {
        self.proto
            .opset_import
            .iter()
            .find(|import| import.domain.is_empty() || import.domain == "ai.onnx")
            .map(|import| import.version)
    }

    /// The opset of every imported domain, by domain name (`""` for the default domain).
    pub fn opset_imports(&self) -> std::collections::BTreeMap<String, i64> {
        self.proto
            .opset_import
            .iter()
            .map(|import| (import.domain.clone(), import.version))
            .collect()
    }

    /// Graph inputs that are fed at run time (initializers listed as inputs are left out).
    pub fn inputs(&self) -> Vec<TensorSpec> {
        let graph = self.graph();
        let initializers: HashSet<&str> = graph
            .initializer
            .iter()
            .map(|init| init.name.as_str())
            .collect();
        graph
            .input
            .iter()
            .filter(|input| !initializers.contains(input.name.as_str()))
            .map(value_info_spec)
            .collect()
    }

    /// Graph outputs as declared.
    pub fn outputs(&self) -> Vec<TensorSpec> {
        self.graph().output.iter().map(value_info_spec).collect()
    }

    /// Names of every tensor the graph computes or holds: inputs, initializers and node outputs.
    pub fn tensor_names(&self) -> Vec<&str> {
        let graph = self.graph();
        graph
            .input
            .iter()
            .map(|input| input.name.as_str())
            .chain(graph.initializer.iter().map(|init| init.name.as_str()))
            .chain(
                graph
                    .node
                    .iter()
                    .flat_map(|node| node.output.iter().map(String::as_str)),
            )
            .filter(|name| !name.is_empty())
            .collect()
    }

    /// Fails with a helpful message unless every name in `names` is a tensor of the graph.
    pub fn check_tensor_names(&self, names: &[String]) -> Result<()> {
        let known: HashSet<&str> = self.tensor_names().into_iter().collect();
        for name in names {
            if !known.contains(name.as_str()) {
                let needle = name.to_ascii_lowercase();
                let mut close: Vec<&str> = known
                    .iter()
                    .copied()
                    .filter(|candidate| {
                        let candidate = candidate.to_ascii_lowercase();
                        candidate.contains(&needle) || needle.contains(&candidate)
                    })
                    .collect();
                close.sort_unstable();
                close.truncate(5);
                let hint = if close.is_empty() {
                    "; `tessera inspect-model` lists the tap points".to_string()
                } else {
                    format!("; close matches: {}", close.join(", "))
                };
                return Err(Error::UnknownTensor {
                    name: name.clone(),
                    hint,
                });
            }
        }
        Ok(())
    }

    /// A copy of this model whose graph also outputs `extra` (intermediate tensors), after its
    /// own outputs. Names that are already outputs are not repeated.
    pub fn with_extra_outputs(&self, extra: &[TensorSpec]) -> OnnxModel {
        let mut model = self.clone();
        if let Some(graph) = model.proto.graph.as_mut() {
            let existing: HashSet<String> = graph
                .output
                .iter()
                .map(|output| output.name.clone())
                .collect();
            graph.output.extend(
                extra
                    .iter()
                    .filter(|spec| !existing.contains(&spec.name))
                    .map(spec_value_info),
            );
        }
        model
    }

    /// A copy whose float32 initializers named in `values` hold the given values (same shapes);
    /// everything else in the model is unchanged.
    pub fn with_initializer_values(&self, values: &HashMap<String, Vec<f32>>) -> OnnxModel {
        let mut model = self.clone();
        if let Some(graph) = model.proto.graph.as_mut() {
            for initializer in &mut graph.initializer {
                if let Some(data) = values.get(&initializer.name) {
                    initializer.raw_data = data.iter().flat_map(|v| v.to_le_bytes()).collect();
                    initializer.float_data.clear();
                    model.modified.insert(initializer.name.clone());
                }
            }
        }
        model
    }

    /// A model holding `proto` (an edited copy of this one's, e.g. with nodes inserted), named
    /// like this one. It is saved from `proto` itself, with every initializer inline.
    pub fn with_proto(&self, proto: ModelProto) -> Result<OnnxModel> {
        let encoded = proto.encode_to_vec();
        Self::from_proto(proto, encoded, self.name.clone(), self.source.clone())
    }

    /// Writes the model to `path` atomically, changing nothing but the data of initializers
    /// whose values were replaced: every other byte of the file as it was read is kept, fields
    /// this version does not know included. Initializers that came from external data go to
    /// `<file name>.data` beside it (offsets aligned to 4 KiB), as the exporter had them.
    pub fn save(&self, path: &Path) -> Result<()> {
        const ALIGNMENT: usize = 4096;
        let values: HashMap<&str, &[u8]> = self
            .graph()
            .initializer
            .iter()
            .map(|init| (init.name.as_str(), init.raw_data.as_slice()))
            .collect();
        let data_name = path
            .file_name()
            .map(|name| format!("{}.data", name.to_string_lossy()))
            .ok_or_else(|| self.error(format!("{} names no file", path.display())))?;
        let mut data = Vec::new();
        let mut offsets = HashMap::new();
        for name in &self.external {
            let bytes = values.get(name.as_str()).copied().unwrap_or_default();
            data.resize(data.len().div_ceil(ALIGNMENT) * ALIGNMENT, 0);
            offsets.insert(name.as_str(), (data.len(), bytes.len()));
            data.extend_from_slice(bytes);
        }
        let bytes = wire::rewrite_initializers(&self.encoded, &|name| {
            if let Some(&(offset, length)) = offsets.get(name) {
                Some(wire::Placement::External {
                    location: &data_name,
                    offset,
                    length,
                })
            } else if self.modified.contains(name) {
                values.get(name).map(|bytes| wire::Placement::Inline(bytes))
            } else {
                None
            }
        })
        .map_err(|message| self.error(message))?;
        if !self.external.is_empty() {
            let data_path = path.with_file_name(&data_name);
            tessera_fs::write_atomically(&data_path, &data)
                .map_err(IoError::of("write", &data_path))?;
        }
        tessera_fs::write_atomically(path, &bytes).map_err(IoError::of("write", path))?;
        Ok(())
    }

    /// An error about this model, naming it.
    pub fn error(&self, message: impl Into<String>) -> Error {
        Error::Model {
            model: self.name.clone(),
            message: message.into(),
        }
    }
}

fn decode(bytes: &[u8], name: &str) -> Result<ModelProto> {
    ModelProto::decode(bytes).map_err(|error| Error::Model {
        model: name.to_string(),
        message: format!("not a valid ONNX protobuf ({error}); is this an .onnx file?"),
    })
}

/// The values of a float32 tensor (from `raw_data` or `float_data`), or `None` when it holds
/// another type or its data does not match its shape.
pub fn float_values(tensor: &pb::TensorProto) -> Option<Vec<f32>> {
    if tensor.data_type != pb::tensor_proto::DataType::Float as i32 {
        return None;
    }
    let values: Vec<f32> = if tensor.raw_data.is_empty() {
        tensor.float_data.clone()
    } else {
        tensor
            .raw_data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    };
    let count: i64 = tensor.dims.iter().product();
    (values.len() as i64 == count).then_some(values)
}

/// The host's element type for an ONNX `TensorProto.DataType` code.
pub fn dtype_of(code: i32) -> DType {
    use pb::tensor_proto::DataType;
    match DataType::try_from(code) {
        Ok(DataType::Float) => DType::F32,
        Ok(DataType::Double) => DType::F64,
        Ok(DataType::Float16) => DType::F16,
        Ok(DataType::Int64) => DType::I64,
        Ok(DataType::Int32) => DType::I32,
        Ok(DataType::Int8) => DType::I8,
        Ok(DataType::Uint8) => DType::U8,
        Ok(DataType::Bool) => DType::Bool,
        Ok(other) => DType::Other(other.as_str_name().to_ascii_lowercase()),
        Err(_) => DType::Other(format!("onnx type {code}")),
    }
}

fn onnx_code_of(dtype: &DType) -> i32 {
    use pb::tensor_proto::DataType;
    (match dtype {
        DType::F32 => DataType::Float,
        DType::F64 => DataType::Double,
        DType::F16 => DataType::Float16,
        DType::I64 => DataType::Int64,
        DType::I32 => DataType::Int32,
        DType::I8 => DataType::Int8,
        DType::U8 => DataType::Uint8,
        DType::Bool => DataType::Bool,
        DType::Other(_) => DataType::Undefined,
    }) as i32
}

fn value_info_spec(info: &pb::ValueInfoProto) -> TensorSpec {
    let (dtype, shape) = match &info.r#type {
        Some(pb::TypeProto {
            value: Some(type_proto::Value::TensorType(tensor)),
            ..
        }) => {
            let shape = tensor
                .shape
                .as_ref()
                .map(|shape| {
                    shape
                        .dim
                        .iter()
                        .enumerate()
                        .map(|(axis, dim)| match &dim.value {
                            Some(dimension::Value::DimValue(len)) if *len >= 0 => {
                                Dim::Fixed(*len as usize)
                            }
                            Some(dimension::Value::DimParam(name)) if !name.is_empty() => {
                                Dim::Symbolic(name.clone())
                            }
                            _ => Dim::Symbolic(format!("d{axis}")),
                        })
                        .collect()
                })
                .unwrap_or_default();
            (dtype_of(tensor.elem_type), shape)
        }
        _ => (DType::Other("unknown".into()), Vec::new()),
    };
    TensorSpec {
        name: info.name.clone(),
        dtype,
        shape,
    }
}

fn spec_value_info(spec: &TensorSpec) -> pb::ValueInfoProto {
    let dim = spec
        .shape
        .iter()
        .map(|dim| pb::tensor_shape_proto::Dimension {
            denotation: String::new(),
            value: Some(match dim {
                Dim::Fixed(len) => dimension::Value::DimValue(*len as i64),
                Dim::Symbolic(name) => dimension::Value::DimParam(name.clone()),
            }),
        })
        .collect();
    pb::ValueInfoProto {
        name: spec.name.clone(),
        r#type: Some(pb::TypeProto {
            denotation: String::new(),
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: onnx_code_of(&spec.dtype),
                shape: Some(pb::TensorShapeProto { dim }),
            })),
        }),
        doc_string: String::new(),
    }
}
