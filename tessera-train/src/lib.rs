//! The trainable graph: an ONNX model interpreted node by node on candle tensors, with chosen
//! initializers held as variables so that gradients reach them, and the learned values written
//! back into the model.
//!
//! tract and ONNX Runtime only run models. Here every operator is built from differentiable
//! candle operations (see [`ops`]); shape arithmetic runs on int64 tensors and needs no
//! gradient. The device is a parameter: CPU always, CUDA with the `cuda` cargo feature.

mod device;
mod error;
mod fake_quant;
pub mod functional;
mod fusion;
mod node;
mod ops;
mod optim;
mod storage;
pub mod training;

use std::collections::{HashMap, HashSet};

use candle_core::{DType, Device, Tensor, Var};
use ndarray::{Array2, ArrayView2};

use tessera_onnx::{dtype_of, OnnxModel};
use tessera_tensor::tensor::{DType as HostDType, Tensor as HostTensor};

pub use device::TrainingDevice;
pub use error::{Error, Result};
pub use fake_quant::{apply_activation, FakeQuantisation, WeightGrid};
pub use node::Node;
pub use optim::{Optimizer, OptimizerKind, OptimizerOptions, Schedule, StepReport};

/// Which initializers learn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trainable {
    /// Every floating-point initializer of more than one element. A single number is an
    /// operator's constant (GELU's √2, attention's scale, written as initializers by some
    /// exporters and as `Constant` nodes by others), not a weight.
    All,
    /// As [`Trainable::All`], except these (e.g. embeddings an adapter keeps frozen).
    AllExcept(Vec<String>),
    /// Only these, whatever their size.
    Only(Vec<String>),
}

impl Trainable {
    /// Whether `initializer`, named `name` in the given model (a copy of a merged initializer
    /// is chosen as the initializer it copies), is trained.
    fn includes(&self, name: &str, initializer: &tessera_onnx::proto::TensorProto) -> bool {
        let weight = initializer.dims.iter().product::<i64>() > 1;
        match self {
            Trainable::All => weight,
            Trainable::AllExcept(frozen) => weight && !frozen.iter().any(|f| f == name),
            Trainable::Only(chosen) => chosen.iter().any(|c| c == name),
        }
    }
}

/// A node whose operator the trainable graph cannot evaluate.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UnsupportedNode {
    /// The node's name.
    pub node: String,
    /// Its operator (with its domain if not the default one).
    pub op_type: String,
}

/// Nodes of `model` whose operators are not supported, so a caller can refuse a model before
/// any training starts.
pub fn unsupported_nodes(model: &OnnxModel) -> Vec<UnsupportedNode> {
    model
        .graph()
        .node
        .iter()
        .filter(|node| ops::lookup(&node.domain, &node.op_type).is_none())
        .map(|node| UnsupportedNode {
            node: node.name.clone(),
            op_type: if node.domain.is_empty() {
                node.op_type.clone()
            } else {
                format!("{}::{}", node.domain, node.op_type)
            },
        })
        .collect()
}

/// Names of every operator the trainable graph supports.
pub fn supported_ops() -> Vec<&'static str> {
    ops::supported().collect()
}

/// An ONNX model ready to evaluate and differentiate.
pub struct TrainableGraph {
    model: OnnxModel,
    device: Device,
    constants: HashMap<String, Tensor>,
    variables: Vec<(String, Var)>,
    statistics: Vec<(String, Var)>,
    learned: HashSet<String>,
    fused: fusion::FusedNodes,
    fake_quantisation: FakeQuantisation,
}

impl TrainableGraph {
    /// Prepares `model` on `device` with the `trainable` initializers as variables. Fails,
    /// listing every offending node, if the model uses an unsupported operator.
    pub fn new(model: &OnnxModel, trainable: &Trainable, device: Device) -> Result<Self> {
        let unsupported = unsupported_nodes(model);
        if !unsupported.is_empty() {
            let list: Vec<String> = unsupported
                .iter()
                .map(|node| format!("{} ({})", node.node, node.op_type))
                .collect();
            return Err(model
                .error(format!(
                    "the trainable graph does not support {} node(s): {}",
                    list.len(),
                    list.join(", ")
                ))
                .into());
        }
        let given = model;
        let (model, origins) = untied(given)?;
        let running = running_statistics(&model);
        let mut constants = HashMap::new();
        let mut variables = Vec::new();
        let mut statistics = Vec::new();
        for initializer in &model.graph().initializer {
            let tensor = node::decode_tensor(initializer, &device).map_err(|message| {
                model.error(format!("initializer {:?}: {message}", initializer.name))
            })?;
            let learnable = matches!(dtype_of(initializer.data_type), HostDType::F32)
                && trainable.includes(
                    origins.get(&initializer.name).unwrap_or(&initializer.name),
                    initializer,
                );
            if running.contains(initializer.name.as_str()) {
                let var =
                    Var::from_tensor(&tensor).map_err(|error| model.error(error.to_string()))?;
                statistics.push((initializer.name.clone(), var));
            } else if learnable {
                let var =
                    Var::from_tensor(&tensor).map_err(|error| model.error(error.to_string()))?;
                variables.push((initializer.name.clone(), var));
            } else {
                constants.insert(initializer.name.clone(), tensor);
            }
        }
        if let Trainable::Only(chosen) | Trainable::AllExcept(chosen) = trainable {
            let known: HashSet<&str> = given
                .graph()
                .initializer
                .iter()
                .map(|i| i.name.as_str())
                .collect();
            if let Some(missing) = chosen.iter().find(|name| !known.contains(name.as_str())) {
                return Err(model
                    .error(format!("{missing:?} is not an initializer of the model"))
                    .into());
            }
        }
        let learned = learned_tensors(&model, &variables);
        let fused = fusion::fuse(model.graph(), &learned);
        Ok(Self {
            model,
            device,
            constants,
            variables,
            statistics,
            learned,
            fused,
            fake_quantisation: FakeQuantisation::default(),
        })
    }

    /// Rounds the given weights and activations onto their integer grids in every later
    /// forward pass (quantisation-aware training); an empty [`FakeQuantisation`] turns it off.
    /// Fails if a weight named is not an initializer of the model.
    pub fn set_fake_quantisation(&mut self, quantisation: FakeQuantisation) -> Result<()> {
        let known: HashSet<&str> = self
            .model
            .graph()
            .initializer
            .iter()
            .map(|i| i.name.as_str())
            .collect();
        if let Some(missing) = quantisation
            .weights
            .keys()
            .find(|name| !known.contains(name.as_str()))
        {
            return Err(self
                .model
                .error(format!(
                    "{missing:?} is not an initializer of the model; it cannot be quantised"
                ))
                .into());
        }
        self.fake_quantisation = quantisation;
        Ok(())
    }

    /// What the forward pass rounds onto a grid.
    pub fn fake_quantisation(&self) -> &FakeQuantisation {
        &self.fake_quantisation
    }

    /// `value` of tensor `name` as the forward pass sees it: on its grid when it is quantised.
    fn quantised(&self, name: &str, value: Tensor) -> Result<Tensor> {
        if let Some(grid) = self.fake_quantisation.weights.get(name) {
            return grid.apply(&value);
        }
        match self.fake_quantisation.activations.get(name) {
            Some(params) => apply_activation(&value, params),
            None => Ok(value),
        }
    }

    /// The learnable initializers, by name, in model order.
    pub fn variables(&self) -> &[(String, Var)] {
        &self.variables
    }

    /// The running means and variances of the graph's `BatchNormalization` nodes, by name:
    /// statistics, not weights, so no gradient trains them; a training forward pass measures
    /// them ([`forward_training`](Self::forward_training)) and
    /// [`update_statistics`](Self::update_statistics) moves them.
    pub fn statistics(&self) -> &[(String, Var)] {
        &self.statistics
    }

    /// Whether initializer `name` is a table whose rows are looked up (the data input of a
    /// `Gather`: token embeddings, position tables).
    pub fn is_lookup_table(&self, name: &str) -> bool {
        self.model.graph().node.iter().any(|node| {
            node.op_type == "Gather" && node.input.first().is_some_and(|input| input == name)
        })
    }

    /// The device the graph runs on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Evaluates the graph on `inputs` (one per model input, in order) and returns the tensors
    /// named in `outputs` — graph outputs or any intermediate tensor — connected to the
    /// variables for backpropagation.
    ///
    /// Every `BatchNormalization` normalises with its running statistics, as at inference.
    pub fn forward(&self, inputs: &[HostTensor], outputs: &[String]) -> Result<Vec<Tensor>> {
        self.evaluate(inputs, outputs, false)
            .map(|(values, _)| values)
    }

    /// [`forward`](Self::forward) as a training step runs it: every `BatchNormalization`
    /// normalises with the batch's own statistics (gradients flow through them, as in
    /// PyTorch's train mode) and reports its running statistics moved towards them by its
    /// `momentum`, for [`update_statistics`](Self::update_statistics).
    pub fn forward_training(
        &self,
        inputs: &[HostTensor],
        outputs: &[String],
    ) -> Result<(Vec<Tensor>, BatchStatistics)> {
        self.evaluate(inputs, outputs, true)
    }

    /// Sets each running statistic to the mean of the values the given training passes
    /// measured (one per shard of a batch: the mean is the update the whole batch's average
    /// statistics give).
    pub fn update_statistics(&self, measured: &[BatchStatistics]) -> Result<()> {
        let compute = Error::compute("updating the normalisation statistics");
        for (name, var) in &self.statistics {
            let values: Vec<&Tensor> = measured
                .iter()
                .filter_map(|batch| batch.0.get(name))
                .collect();
            if values.is_empty() {
                continue;
            }
            let mean = Tensor::stack(&values, 0)
                .and_then(|stacked| stacked.mean(0))
                .map_err(&compute)?;
            var.set(&mean).map_err(&compute)?;
        }
        Ok(())
    }

    fn evaluate(
        &self,
        inputs: &[HostTensor],
        outputs: &[String],
        training: bool,
    ) -> Result<(Vec<Tensor>, BatchStatistics)> {
        let declared = self.model.inputs();
        if inputs.len() != declared.len() {
            return Err(Error::Shape(format!(
                "the model takes {} inputs, {} were given",
                declared.len(),
                inputs.len()
            )));
        }
        let mut values: HashMap<&str, Tensor> = HashMap::new();
        for (spec, tensor) in declared.iter().zip(inputs) {
            let value = self.quantised(&spec.name, self.to_device(tensor)?)?;
            values.insert(spec.name.as_str(), value);
        }
        for (name, tensor) in &self.constants {
            values.insert(name.as_str(), self.quantised(name, tensor.clone())?);
        }
        for (name, var) in &self.variables {
            values.insert(
                name.as_str(),
                self.quantised(name, var.as_tensor().clone())?,
            );
        }
        for (name, var) in &self.statistics {
            values.insert(name.as_str(), var.as_tensor().detach());
        }
        let mut measured = BatchStatistics::default();
        let wanted: HashSet<&str> = outputs.iter().map(String::as_str).collect();
        let opset = self.model.opset().unwrap_or(node::NEWEST_OPSET);
        // The fused nodes, unless a tensor asked for or rounded onto a grid is inside a chain.
        let hidden = |name: &str| self.fused.hidden.contains(name);
        let nodes = if wanted.iter().any(|name| hidden(name))
            || self
                .fake_quantisation
                .activations
                .keys()
                .any(|name| hidden(name))
        {
            &self.model.graph().node
        } else {
            &self.fused.nodes
        };
        for proto in nodes {
            let node = Node {
                proto,
                device: &self.device,
                opset,
            };
            let arguments = proto
                .input
                .iter()
                .map(|name| {
                    if name.is_empty() {
                        return Ok(None);
                    }
                    values.get(name.as_str()).cloned().map(Some).ok_or_else(|| {
                        node.error(format!("input {name:?} is not computed before this node"))
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let results = if training && normalises(proto) {
                let results = ops::batch_normalization_training(&node, &arguments)?;
                for (input, value) in proto.input.iter().skip(3).zip(&results[1..]) {
                    if self.statistics.iter().any(|(name, _)| name == input) {
                        measured.0.insert(input.clone(), value.clone());
                    }
                }
                results
            } else {
                let op = ops::lookup(&proto.domain, &proto.op_type)
                    .ok_or_else(|| node.error("unsupported operator"))?;
                op(&node, &arguments)?
            };
            for (name, value) in proto.output.iter().zip(results) {
                if !name.is_empty() {
                    // What no variable reaches is a constant to backpropagation: candle would
                    // otherwise compute its gradient too.
                    let value = if self.learned.contains(name) {
                        value
                    } else {
                        value.detach()
                    };
                    values.insert(name.as_str(), self.quantised(name, value)?);
                }
            }
            if wanted.iter().all(|name| values.contains_key(name)) {
                break;
            }
        }
        let found = outputs
            .iter()
            .map(|name| {
                values.get(name.as_str()).cloned().ok_or_else(|| {
                    Error::Model(tessera_onnx::Error::UnknownTensor {
                        name: name.clone(),
                        hint: String::new(),
                    })
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((found, measured))
    }

    fn to_device(&self, tensor: &HostTensor) -> Result<Tensor> {
        let shape = tensor.shape().to_vec();
        let converted = match tensor {
            HostTensor::F32(array) => Tensor::from_iter(array.iter().copied(), &self.device)
                .and_then(|flat| flat.reshape(shape)),
            HostTensor::I64(array) => Tensor::from_iter(array.iter().copied(), &self.device)
                .and_then(|flat| flat.reshape(shape)),
        };
        converted.map_err(Error::compute("copying an input to the graph's device"))
    }

    /// The model with every variable's and running statistic's current value written into its
    /// initializer; the graph (but for each layer's own copies of what the exporter merged),
    /// opsets and metadata are unchanged.
    pub fn trained_model(&self) -> Result<OnnxModel> {
        let mut values = HashMap::new();
        for (name, var) in self.variables.iter().chain(&self.statistics) {
            let data = var
                .as_tensor()
                .to_dtype(DType::F32)
                .and_then(|t| t.flatten_all())
                .and_then(|t| t.to_vec1::<f32>())
                .map_err(|error| self.model.error(error.to_string()))?;
            values.insert(name.clone(), data);
        }
        Ok(self.model.with_initializer_values(&values))
    }
}

/// The running statistics a training forward pass measured, by initializer name.
#[derive(Debug, Default, Clone)]
pub struct BatchStatistics(HashMap<String, Tensor>);

/// `model` with each layer reading parameters of its own (see
/// [`tessera_onnx::untie_merged_initializers`]), so that no two layers learn one scale or bias
/// or measure one statistic, and the name each copy was given in `model`.
fn untied(model: &OnnxModel) -> Result<(OnnxModel, HashMap<String, String>)> {
    let mut proto = model.proto().clone();
    let origins = proto
        .graph
        .as_mut()
        .map(tessera_onnx::untie_merged_initializers)
        .unwrap_or_default();
    if origins.is_empty() {
        return Ok((model.clone(), origins));
    }
    Ok((model.with_proto(proto)?, origins))
}

/// Whether `node` is a `BatchNormalization` (default domain).
fn normalises(node: &tessera_onnx::proto::NodeProto) -> bool {
    node.op_type == "BatchNormalization" && node.domain.is_empty()
}

/// The initializers that `BatchNormalization` nodes read as running mean and variance.
fn running_statistics(model: &OnnxModel) -> HashSet<&str> {
    model
        .graph()
        .node
        .iter()
        .filter(|node| normalises(node))
        .flat_map(|node| node.input.iter().skip(3).take(2))
        .map(String::as_str)
        .collect()
}

/// Names of the tensors of `model` that depend on one of `variables`, in graph order.
fn learned_tensors(model: &OnnxModel, variables: &[(String, Var)]) -> HashSet<String> {
    let mut learned: HashSet<String> = variables.iter().map(|(name, _)| name.clone()).collect();
    for node in &model.graph().node {
        if node.input.iter().any(|input| learned.contains(input)) {
            learned.extend(node.output.iter().filter(|o| !o.is_empty()).cloned());
        }
    }
    learned
}

/// A `[rows, columns]` array as a float32 candle tensor on `device`.
pub fn from_matrix(array: ArrayView2<f32>, device: &Device) -> Result<Tensor> {
    Tensor::from_iter(array.iter().copied(), device)
        .and_then(|flat| flat.reshape(array.dim()))
        .map_err(Error::compute("copying a matrix to the device"))
}

/// A `[rows, columns]` candle tensor as a float32 array.
pub fn to_matrix(tensor: &Tensor) -> Result<Array2<f32>> {
    let shape = tensor.dims().to_vec();
    match to_host(tensor)? {
        HostTensor::F32(array) => array.into_dimensionality().map_err(|_| {
            Error::Shape(format!(
                "expected a [rows, columns] tensor, found shape {shape:?}"
            ))
        }),
        HostTensor::I64(_) => Err(Error::Shape(
            "expected a floating-point tensor, found an integer one".into(),
        )),
    }
}

/// A candle tensor as a host tensor (float32 or int64).
pub fn to_host(tensor: &Tensor) -> Result<HostTensor> {
    let shape = tensor.dims().to_vec();
    let convert = Error::compute("copying a tensor to the host");
    Ok(match tensor.dtype() {
        DType::I64 | DType::U32 | DType::U8 => {
            let values = tensor
                .to_dtype(DType::I64)
                .and_then(|t| t.flatten_all())
                .and_then(|t| t.to_vec1::<i64>())
                .map_err(&convert)?;
            HostTensor::I64(
                ndarray::ArrayD::from_shape_vec(shape, values)
                    .map_err(|e| Error::Shape(e.to_string()))?,
            )
        }
        _ => {
            let values = tensor
                .to_dtype(DType::F32)
                .and_then(|t| t.flatten_all())
                .and_then(|t| t.to_vec1::<f32>())
                .map_err(convert)?;
            HostTensor::F32(
                ndarray::ArrayD::from_shape_vec(shape, values)
                    .map_err(|e| Error::Shape(e.to_string()))?,
            )
        }
    })
}
