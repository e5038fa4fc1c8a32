//! The tract executor (pure Rust, CPU), and shape analysis of any tensor in a model.
//!
//! tract optimises a model for known input facts. A plan is built for each concrete input shape
//! met and cached — over a dataset that is two plans, for the full batch and the last partial
//! one. Concrete plans run faster than one planned with a symbolic batch (up to 1.7× on the zoo,
//! measured with `tessera bench capture`), and tract's bidirectional LSTM cannot run with a
//! symbolic batch at all.

use std::collections::HashMap;
use std::sync::Arc;

use tract_onnx::prelude::{
    DatumType, Framework, InferenceFact, InferenceModel, InferenceModelExt, IntoRunnable,
    IntoTValue, IntoTensor, TDim, TValue, TypedRunnableModel,
};

use super::Executor;
use crate::{Error, Result};
use tessera_onnx::OnnxModel;
use tessera_tensor::tensor::{DType, Dim, Tensor, TensorSpec};

fn tract_error(context: &str, error: impl std::fmt::Display) -> Error {
    Error::Backend {
        backend: "tract",
        message: format!("{context}: {error:#}"),
    }
}

/// Runs a model with tract.
pub struct TractExecutor {
    model: InferenceModel,
    input_types: Vec<DatumType>,
    plans: HashMap<Vec<Vec<usize>>, Arc<TypedRunnableModel>>,
}

impl TractExecutor {
    /// Prepares `model` to return `outputs`.
    pub fn new(model: &OnnxModel, outputs: &[String]) -> Result<Self> {
        let inference = parse(model, outputs)?;
        let input_types = model
            .inputs()
            .iter()
            .map(|spec| datum_type_of(&spec.dtype, model))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            model: inference,
            input_types,
            plans: HashMap::new(),
        })
    }

    fn plan_for(&mut self, shapes: Vec<Vec<usize>>) -> Result<Arc<TypedRunnableModel>> {
        if let Some(plan) = self.plans.get(&shapes) {
            return Ok(plan.clone());
        }
        let mut model = self.model.clone();
        for (index, (shape, dtype)) in shapes.iter().zip(&self.input_types).enumerate() {
            model
                .set_input_fact(index, InferenceFact::dt_shape(*dtype, shape.as_slice()))
                .map_err(|error| tract_error("setting the input shape", error))?;
        }
        let plan = plan(model).map_err(|error| {
            tract_error(
                &format!("planning the model for input shapes {shapes:?}"),
                error,
            )
        })?;
        self.plans.insert(shapes, plan.clone());
        Ok(plan)
    }
}

impl Executor for TractExecutor {
    fn description(&self) -> String {
        "tract (CPU)".into()
    }

    fn run(&mut self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        if inputs.len() != self.input_types.len() {
            return Err(Error::Shape(format!(
                "the model takes {} inputs, {} were given",
                self.input_types.len(),
                inputs.len()
            )));
        }
        let shapes = inputs.iter().map(|input| input.shape().to_vec()).collect();
        let plan = self.plan_for(shapes)?;
        let outputs = plan
            .run(inputs.iter().map(to_tract).collect())
            .map_err(|error| tract_error("running the model", error))?;
        outputs.into_iter().map(from_tract).collect()
    }
}

fn parse(model: &OnnxModel, outputs: &[String]) -> Result<InferenceModel> {
    // Shapes recorded for intermediate tensors name the batch symbolically; they would clash
    // with a concrete batch, and tract infers them anyway.
    let mut inference = tract_onnx::onnx()
        .with_ignore_value_info(true)
        .model_for_proto_model(model.proto())
        .map_err(|error| model.error(format!("tract cannot read it: {error:#}")))?;
    inference
        .select_outputs_by_name(outputs)
        .map_err(|error| tract_error("selecting the outputs", error))?;
    Ok(inference)
}

fn plan(model: InferenceModel) -> anyhow::Result<Arc<TypedRunnableModel>> {
    model.into_optimized()?.into_runnable()
}

fn datum_type_of(dtype: &DType, model: &OnnxModel) -> Result<DatumType> {
    match dtype {
        DType::F32 => Ok(DatumType::F32),
        DType::I64 => Ok(DatumType::I64),
        other => Err(model
            .error(format!(
                "input of type {other} is not supported; inputs must be float32 or int64"
            ))
            .into()),
    }
}

fn to_tract(tensor: &Tensor) -> TValue {
    match tensor {
        Tensor::F32(array) => tract_onnx::prelude::Tensor::from(array.clone()).into_tvalue(),
        Tensor::I64(array) => tract_onnx::prelude::Tensor::from(array.clone()).into_tvalue(),
    }
}

fn from_tract(value: TValue) -> Result<Tensor> {
    let tensor = value.into_tensor();
    let convert = |error| tract_error("reading an output", error);
    match tensor.datum_type() {
        DatumType::F32 => tensor
            .into_plain_array::<f32>()
            .map(Tensor::F32)
            .map_err(convert),
        DatumType::F16 | DatumType::F64 => tensor
            .cast_to::<f32>()
            .and_then(|cast| cast.into_owned().into_plain_array::<f32>())
            .map(Tensor::F32)
            .map_err(convert),
        DatumType::I64 => tensor
            .into_plain_array::<i64>()
            .map(Tensor::I64)
            .map_err(convert),
        DatumType::I32 | DatumType::I8 | DatumType::U8 | DatumType::Bool => tensor
            .cast_to::<i64>()
            .and_then(|cast| cast.into_owned().into_plain_array::<i64>())
            .map(Tensor::I64)
            .map_err(convert),
        other => Err(tract_error(
            "reading an output",
            format!("element type {other:?} is not supported"),
        )),
    }
}

/// Element type and shape of each tensor in `names`, with the batch dimension of the model's
/// first input named as the model names it.
///
/// Shapes are inferred twice, for batches of 1 and 2; dimensions that differ follow the batch.
/// This works even where symbolic shape inference does not (recurrent layers).
pub fn analyse_shapes(model: &OnnxModel, names: &[String]) -> Result<Vec<TensorSpec>> {
    let input = model
        .inputs()
        .into_iter()
        .next()
        .ok_or_else(|| model.error("the graph has no inputs"))?;
    let batch_axis = input.batch_axis();
    let batch_name = batch_axis
        .map(|axis| input.shape[axis].to_string())
        .unwrap_or_else(|| "batch".into());
    let facts_for = |batch: usize| -> Result<Vec<(DatumType, Vec<TDim>)>> {
        let mut inference = parse(model, names)?;
        for (index, spec) in model.inputs().iter().enumerate() {
            let dims: Vec<TDim> = spec
                .shape
                .iter()
                .enumerate()
                .map(|(axis, dim)| match dim {
                    Dim::Fixed(len) => TDim::from(*len as i64),
                    Dim::Symbolic(_) if Some(axis) == batch_axis => TDim::from(batch as i64),
                    Dim::Symbolic(name) => inference.sym(name).into(),
                })
                .collect();
            let fact = InferenceFact::dt_shape(datum_type_of(&spec.dtype, model)?, dims);
            inference
                .set_input_fact(index, fact)
                .map_err(|error| tract_error("setting the input shape", error))?;
        }
        let typed = inference
            .into_typed()
            .map_err(|error| tract_error("inferring shapes", error))?;
        (0..names.len())
            .map(|index| {
                let fact = typed
                    .output_fact(index)
                    .map_err(|error| tract_error("inferring shapes", error))?;
                Ok((fact.datum_type, fact.shape.iter().cloned().collect()))
            })
            .collect()
    };
    let single = facts_for(1)?;
    let double = facts_for(2)?;
    Ok(names
        .iter()
        .zip(single.into_iter().zip(double))
        .map(|(name, ((datum_type, one), (_, two)))| TensorSpec {
            name: name.clone(),
            dtype: dtype_of(datum_type),
            shape: one
                .iter()
                .zip(&two)
                .map(|(a, b)| match (a.as_i64(), b.as_i64()) {
                    (Some(a), Some(b)) if a == b => Dim::Fixed(a as usize),
                    (Some(_), Some(_)) => Dim::Symbolic(batch_name.clone()),
                    _ => Dim::Symbolic(a.to_string()),
                })
                .collect(),
        })
        .collect())
}

fn dtype_of(datum_type: DatumType) -> DType {
    match datum_type {
        DatumType::F32 => DType::F32,
        DatumType::F64 => DType::F64,
        DatumType::F16 => DType::F16,
        DatumType::I64 => DType::I64,
        DatumType::I32 => DType::I32,
        DatumType::I8 => DType::I8,
        DatumType::U8 => DType::U8,
        DatumType::Bool => DType::Bool,
        other => DType::Other(format!("{other:?}").to_ascii_lowercase()),
    }
}
