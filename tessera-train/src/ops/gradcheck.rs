//! Gradient checks for every operator of the registry that takes float inputs: candle's
//! reverse-mode gradients against central finite differences, in f64 (f32 only where the
//! operator computes in float32), plus forward value checks for the integer operators and
//! scalar reference implementations of `LSTM` and `GRU`.
//!
//! A check builds one ONNX node, makes every float input a [`Var`] of seeded random values,
//! takes `loss = Σ output ⊙ w` over every float output (so `Y_h` and `Y_c` of the recurrent
//! layers too) with fixed random weights `w`, and compares `∂loss/∂x` element by element with
//! `(loss(x + h·eᵢ) − loss(x − h·eᵢ)) / 2h`, requiring
//! `|analytic − numeric| ≤ tolerance · max(1, |numeric|)`.

use candle_core::{DType, Device, Tensor, Var};
use tessera_onnx::proto::attribute_proto::AttributeType;
use tessera_onnx::proto::tensor_proto::DataType;
use tessera_onnx::proto::{AttributeProto, NodeProto, TensorProto};

use super::{lookup, supported, Node};

// ----------------------------------------------------------------------------------------------
// Harness
// ----------------------------------------------------------------------------------------------

/// Finite-difference step in f64: the truncation error O(h²) and the rounding error
/// O(ε/h) ≈ 1e-11 both sit far below the tolerance.
const STEP_F64: f64 = 1e-5;
/// The relative error allowed in f64.
const TOLERANCE_F64: f64 = 1e-3;
/// Finite-difference step in f32: each loss is rounded to about 6e-8 of its size (≲ 10 here),
/// so the quotient carries ~3e-5 of rounding noise at h = 1e-2, and the truncation error
/// h²·f'''/6 stays near 1e-5 for the smooth functions checked.
const STEP_F32: f64 = 1e-2;
/// The relative error allowed in f32: ten times the f64 bound, a margin over the ~1e-4 of
/// noise and truncation that the step leaves.
const TOLERANCE_F32: f64 = 1e-2;

/// Deterministic test values: a 64-bit linear congruential generator (Knuth's MMIX constants).
struct Lcg(u64);

impl Lcg {
    /// A generator seeded from `label` (FNV-1a), so each operator draws its own values.
    fn new(label: &str) -> Self {
        let seed = label.bytes().fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3)
        });
        Lcg(seed)
    }

    /// Uniform in [0, 1), from the top 53 bits of the state.
    fn unit(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [low, high).
    fn uniform(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.unit()
    }
}

/// One input of the node under test.
enum Arg {
    /// A float input that is differentiated.
    Var { shape: Vec<usize>, values: Vec<f64> },
    /// A constant input (int64 shapes, axes, indices; a fixed scalar exponent): not differentiated.
    Fixed(Tensor),
    /// An omitted optional input (an empty name in the node).
    Absent,
}

/// A node under test: its operator, attributes and inputs, and the precision of the check.
struct Check {
    op: &'static str,
    attributes: Vec<AttributeProto>,
    inputs: Vec<Arg>,
    dtype: DType,
    expected_dims: Option<Vec<usize>>,
    /// How many leading outputs enter the loss (all when `None`): outputs that carry no
    /// gradient by definition (updated running statistics) stay out.
    differentiated_outputs: Option<usize>,
    rng: Lcg,
    opset: i64,
}

impl Check {
    /// A node of operator `op` with no inputs yet, checked in f64.
    fn new(op: &'static str) -> Self {
        Check {
            op,
            attributes: Vec::new(),
            inputs: Vec::new(),
            dtype: DType::F64,
            expected_dims: None,
            differentiated_outputs: None,
            rng: Lcg::new(op),
            opset: crate::node::NEWEST_OPSET,
        }
    }

    /// The model opset the node is evaluated under.
    fn opset(mut self, opset: i64) -> Self {
        self.opset = opset;
        self
    }

    /// An attribute of type `kind`, its value set by `fill`.
    fn attribute(
        mut self,
        name: &str,
        kind: AttributeType,
        fill: impl FnOnce(&mut AttributeProto),
    ) -> Self {
        let mut attribute = AttributeProto {
            name: name.to_string(),
            r#type: kind as i32,
            ..AttributeProto::default()
        };
        fill(&mut attribute);
        self.attributes.push(attribute);
        self
    }

    /// An integer attribute.
    fn int(self, name: &str, value: i64) -> Self {
        self.attribute(name, AttributeType::Int, |a| a.i = value)
    }

    /// A float attribute.
    fn float(self, name: &str, value: f32) -> Self {
        self.attribute(name, AttributeType::Float, |a| a.f = value)
    }

    /// A list-of-integers attribute.
    fn ints(self, name: &str, values: &[i64]) -> Self {
        self.attribute(name, AttributeType::Ints, |a| a.ints = values.to_vec())
    }

    /// A string attribute.
    fn string(self, name: &str, value: &str) -> Self {
        self.attribute(name, AttributeType::String, |a| {
            a.s = value.as_bytes().to_vec()
        })
    }

    /// A tensor attribute.
    fn tensor(self, name: &str, value: TensorProto) -> Self {
        self.attribute(name, AttributeType::Tensor, |a| a.t = Some(value))
    }

    /// A differentiated input with the given values.
    fn values(mut self, shape: &[usize], values: Vec<f64>) -> Self {
        assert_eq!(
            values.len(),
            shape.iter().product::<usize>(),
            "{}: values for {shape:?}",
            self.op
        );
        self.inputs.push(Arg::Var {
            shape: shape.to_vec(),
            values,
        });
        self
    }

    /// A differentiated input, uniform in [low, high).
    fn uniform(mut self, shape: &[usize], low: f64, high: f64) -> Self {
        let values = (0..shape.iter().product())
            .map(|_| self.rng.uniform(low, high))
            .collect();
        self.values(shape, values)
    }

    /// A differentiated input of magnitude in [low, high) and random sign (away from zero).
    fn signed(mut self, shape: &[usize], low: f64, high: f64) -> Self {
        let values = (0..shape.iter().product())
            .map(|_| {
                let magnitude = self.rng.uniform(low, high);
                if self.rng.unit() < 0.5 {
                    -magnitude
                } else {
                    magnitude
                }
            })
            .collect();
        self.values(shape, values)
    }

    /// A constant input.
    fn fixed(mut self, tensor: Tensor) -> Self {
        self.inputs.push(Arg::Fixed(tensor));
        self
    }

    /// A constant one-dimensional int64 input (a shape, axes, starts, indices...).
    fn int64(self, values: &[i64]) -> Self {
        self.fixed(int64(values, &[values.len()]))
    }

    /// An omitted optional input.
    fn absent(mut self) -> Self {
        self.inputs.push(Arg::Absent);
        self
    }

    /// Checks in f32 instead (for operators that compute in float32).
    fn in_f32(mut self) -> Self {
        self.dtype = DType::F32;
        self
    }

    /// The dimensions the first output must have.
    fn dims(mut self, dims: &[usize]) -> Self {
        self.expected_dims = Some(dims.to_vec());
        self
    }

    /// Only the first `count` outputs enter the loss.
    fn differentiating_outputs(mut self, count: usize) -> Self {
        self.differentiated_outputs = Some(count);
        self
    }

    /// The operator, its attributes and input shapes, for messages.
    fn describe(&self) -> String {
        let attributes: Vec<String> = self
            .attributes
            .iter()
            .map(|a| {
                let value = match AttributeType::try_from(a.r#type) {
                    Ok(AttributeType::Int) => a.i.to_string(),
                    Ok(AttributeType::Float) => a.f.to_string(),
                    Ok(AttributeType::Ints) => format!("{:?}", a.ints),
                    Ok(AttributeType::String) => String::from_utf8_lossy(&a.s).into_owned(),
                    _ => "…".to_string(),
                };
                format!("{}={value}", a.name)
            })
            .collect();
        let inputs: Vec<String> = self
            .inputs
            .iter()
            .map(|arg| match arg {
                Arg::Var { shape, .. } => format!("{shape:?}"),
                Arg::Fixed(tensor) => format!("const{:?}", tensor.dims()),
                Arg::Absent => "-".to_string(),
            })
            .collect();
        format!(
            "{} {} ({})",
            self.op,
            attributes.join(" "),
            inputs.join(", ")
        )
    }

    /// A value representable in the check's precision (what the input tensor will hold).
    fn representable(&self, value: f64) -> f64 {
        if self.dtype == DType::F32 {
            f64::from(value as f32)
        } else {
            value
        }
    }

    /// The differentiated inputs' values, rounded to the check's precision (`None` elsewhere).
    fn base_values(&self) -> Vec<Option<Vec<f64>>> {
        self.inputs
            .iter()
            .map(|arg| match arg {
                Arg::Var { values, .. } => {
                    Some(values.iter().map(|&v| self.representable(v)).collect())
                }
                _ => None,
            })
            .collect()
    }

    /// The node's inputs with the differentiated ones holding `values`, as plain tensors or
    /// (with `vars`) as variables that are returned too.
    fn tensors(
        &self,
        values: &[Option<Vec<f64>>],
        vars: bool,
    ) -> (Vec<Option<Tensor>>, Vec<Option<Var>>) {
        let mut tensors = Vec::new();
        let mut variables = Vec::new();
        for (arg, values) in self.inputs.iter().zip(values) {
            match (arg, values) {
                (Arg::Var { shape, .. }, Some(values)) => {
                    let tensor = Tensor::from_vec(values.clone(), shape.as_slice(), &Device::Cpu)
                        .and_then(|t| t.to_dtype(self.dtype))
                        .expect("input tensor");
                    if vars {
                        let var = Var::from_tensor(&tensor).expect("variable");
                        tensors.push(Some(var.as_tensor().clone()));
                        variables.push(Some(var));
                    } else {
                        tensors.push(Some(tensor));
                        variables.push(None);
                    }
                }
                (Arg::Fixed(tensor), _) => {
                    tensors.push(Some(tensor.clone()));
                    variables.push(None);
                }
                _ => {
                    tensors.push(None);
                    variables.push(None);
                }
            }
        }
        (tensors, variables)
    }

    /// Runs the operator, found through the registry, on `inputs`.
    fn apply(&self, inputs: &[Option<Tensor>]) -> Vec<Tensor> {
        let proto = NodeProto {
            name: format!("gradcheck_{}", self.op),
            op_type: self.op.to_string(),
            input: self
                .inputs
                .iter()
                .enumerate()
                .map(|(k, arg)| {
                    if matches!(arg, Arg::Absent) {
                        String::new()
                    } else {
                        format!("x{k}")
                    }
                })
                .collect(),
            output: (0..3).map(|k| format!("y{k}")).collect(),
            attribute: self.attributes.clone(),
            ..NodeProto::default()
        };
        let device = Device::Cpu;
        let node = Node {
            proto: &proto,
            device: &device,
            opset: self.opset,
        };
        let op = lookup("", self.op).unwrap_or_else(|| panic!("{} is not registered", self.op));
        op(&node, inputs).unwrap_or_else(|error| panic!("{}: {error}", self.describe()))
    }

    /// The outputs for the inputs as drawn (no variables).
    fn outputs(&self) -> Vec<Tensor> {
        self.apply(&self.tensors(&self.base_values(), false).0)
    }

    /// Checks every element of every differentiated input's gradient against central finite
    /// differences; returns the worst relative error.
    fn run(&self) -> f64 {
        let (step, tolerance) = match self.dtype {
            DType::F32 => (STEP_F32, TOLERANCE_F32),
            _ => (STEP_F64, TOLERANCE_F64),
        };
        let base = self.base_values();
        let (inputs, vars) = self.tensors(&base, true);
        let outputs = self.apply(&inputs);
        if let Some(dims) = &self.expected_dims {
            assert_eq!(
                outputs[0].dims(),
                dims.as_slice(),
                "{}: output shape",
                self.describe()
            );
        }
        let mut weights = loss_weights(&outputs);
        if let Some(count) = self.differentiated_outputs {
            weights.iter_mut().skip(count).for_each(|w| *w = None);
        }
        let loss = weighted_sum(&outputs, &weights);
        assert!(
            loss.to_scalar::<f64>().expect("loss").is_finite(),
            "{}: loss is not finite",
            self.describe()
        );
        let grads = loss
            .backward()
            .unwrap_or_else(|error| panic!("{}: backward: {error}", self.describe()));
        let mut worst = 0f64;
        for (k, var) in vars.iter().enumerate() {
            let (Some(var), Some(values)) = (var, &base[k]) else {
                continue;
            };
            // An input that no gradient reaches gets zeros, so the comparison shows the gap.
            let analytic = match grads.get(var.as_tensor()) {
                Some(gradient) => to_f64(gradient),
                None => vec![0.0; values.len()],
            };
            for (j, &value) in values.iter().enumerate() {
                let loss_at = |x: f64| {
                    let mut perturbed = base.clone();
                    if let Some(values) = perturbed[k].as_mut() {
                        values[j] = x;
                    }
                    let outputs = self.apply(&self.tensors(&perturbed, false).0);
                    weighted_sum(&outputs, &weights)
                        .to_scalar::<f64>()
                        .expect("loss")
                };
                let (up, down) = (
                    self.representable(value + step),
                    self.representable(value - step),
                );
                let numeric = (loss_at(up) - loss_at(down)) / (up - down);
                let error = (analytic[j] - numeric).abs() / numeric.abs().max(1.0);
                assert!(
                    error <= tolerance,
                    "{}: input {k} element {j}: analytic {} numeric {numeric} (relative error {error:.2e})",
                    self.describe(),
                    analytic[j],
                );
                worst = worst.max(error);
            }
        }
        println!(
            "gradcheck {}: worst relative error {worst:.2e}",
            self.describe()
        );
        worst
    }
}

/// Fixed random weights, one f64 tensor per float output (`None` for integer outputs such as
/// `Dropout`'s mask).
fn loss_weights(outputs: &[Tensor]) -> Vec<Option<Tensor>> {
    let mut rng = Lcg::new("loss weights");
    outputs
        .iter()
        .map(|output| {
            output.dtype().is_float().then(|| {
                let values: Vec<f64> = (0..output.elem_count())
                    .map(|_| rng.uniform(-1.0, 1.0))
                    .collect();
                Tensor::from_vec(values, output.dims(), &Device::Cpu).expect("weights")
            })
        })
        .collect()
}

/// `Σ output ⊙ weights` over the float outputs, in f64.
fn weighted_sum(outputs: &[Tensor], weights: &[Option<Tensor>]) -> Tensor {
    let mut total = Tensor::new(0f64, &Device::Cpu).expect("zero");
    for (output, weights) in outputs.iter().zip(weights) {
        if let Some(weights) = weights {
            let term = output
                .to_dtype(DType::F64)
                .and_then(|o| o.mul(weights))
                .and_then(|p| p.sum_all())
                .expect("weighted output");
            total = total.add(&term).expect("loss");
        }
    }
    total
}

/// A tensor's values as f64, flattened.
fn to_f64(tensor: &Tensor) -> Vec<f64> {
    tensor
        .to_dtype(DType::F64)
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1::<f64>())
        .expect("float values")
}

/// A tensor's values as int64, flattened.
fn to_i64(tensor: &Tensor) -> Vec<i64> {
    assert_eq!(tensor.dtype(), DType::I64, "expected an int64 tensor");
    tensor
        .flatten_all()
        .and_then(|t| t.to_vec1::<i64>())
        .expect("integer values")
}

/// An int64 tensor of the given shape.
fn int64(values: &[i64], shape: &[usize]) -> Tensor {
    Tensor::from_vec(values.to_vec(), shape, &Device::Cpu).expect("int64 tensor")
}

/// An f64 tensor of the given shape.
fn float64(values: &[f64], shape: &[usize]) -> Tensor {
    Tensor::from_vec(values.to_vec(), shape, &Device::Cpu).expect("f64 tensor")
}

/// Asserts that two value lists agree to `tolerance` in absolute terms.
fn assert_close(actual: &[f64], expected: &[f64], tolerance: f64, what: &str) {
    assert_eq!(actual.len(), expected.len(), "{what}: lengths");
    for (k, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert!(
            (a - e).abs() <= tolerance,
            "{what}: element {k} is {a}, expected {e}"
        );
    }
}

// ----------------------------------------------------------------------------------------------
// Coverage
// ----------------------------------------------------------------------------------------------

/// Every operator this module checks; a newly registered operator must be added here, with a
/// check below.
const CHECKED: &[&str] = &[
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Pow",
    "Mod",
    "Neg",
    "Sqrt",
    "Exp",
    "Log",
    "Erf",
    "Tanh",
    "Sigmoid",
    "Relu",
    "Gelu",
    "Identity",
    "Dropout",
    "Cast",
    "MatMul",
    "Gemm",
    "LayerNormalization",
    "BatchNormalization",
    "Softmax",
    "LogSoftmax",
    "ReduceMean",
    "ReduceSum",
    "Shape",
    "Reshape",
    "Flatten",
    "Transpose",
    "Slice",
    "Concat",
    "Unsqueeze",
    "Squeeze",
    "Gather",
    "Constant",
    "ConstantOfShape",
    "Expand",
    "Conv",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "LSTM",
    "GRU",
    "Clip",
    "HardSigmoid",
    "HardSwish",
    "Equal",
    "Less",
    "LessOrEqual",
    "Greater",
    "GreaterOrEqual",
    "Not",
    "And",
    "Or",
    "Where",
    "Max",
    "Min",
    "ReduceMax",
    "ReduceMin",
    "GatherElements",
    "GatherND",
    "Split",
    "Range",
    "Pad",
];

#[test]
fn every_registered_operator_is_checked() {
    let missing: Vec<&str> = supported().filter(|op| !CHECKED.contains(op)).collect();
    assert!(
        missing.is_empty(),
        "operators without a gradient or value check: {missing:?}"
    );
}

// ----------------------------------------------------------------------------------------------
// Element-wise operators
// ----------------------------------------------------------------------------------------------

/// `Add`, `Sub`, `Mul`, `Div` with numpy broadcasting in both directions.
#[test]
fn binary_arithmetic_broadcasts() {
    for op in ["Add", "Sub", "Mul", "Div"] {
        // Divisors stay away from zero; the other operands may take any sign.
        let (low, high) = if op == "Div" { (0.5, 2.0) } else { (0.1, 1.0) };
        Check::new(op)
            .uniform(&[2, 3], -1.0, 1.0)
            .signed(&[3], low, high)
            .dims(&[2, 3])
            .run();
        Check::new(op)
            .signed(&[3], 0.5, 2.0)
            .signed(&[2, 3], low, high)
            .dims(&[2, 3])
            .run();
        Check::new(op)
            .signed(&[2, 1, 3], 0.5, 2.0)
            .signed(&[4, 1], low, high)
            .dims(&[2, 4, 3])
            .run();
        // A constant number on either side (a scalar and a one-element tensor), which runs as
        // an affine map; a number dividing by the tensor does not.
        Check::new(op)
            .uniform(&[2, 3], 0.5, 2.0)
            .fixed(float64(&[1.5], &[]))
            .dims(&[2, 3])
            .run();
        Check::new(op)
            .fixed(float64(&[-0.75], &[1]))
            .uniform(&[2, 3], 0.5, 2.0)
            .dims(&[2, 3])
            .run();
    }
}

/// Integer `Div` truncates toward zero.
#[test]
fn integer_division_truncates() {
    let quotient = Check::new("Div")
        .fixed(int64(&[-7, 7, -6], &[3]))
        .fixed(int64(&[2, 2, -4], &[3]))
        .outputs();
    assert_eq!(to_i64(&quotient[0]), [-3, 3, 1]);
}

/// `Pow` with the constant exponents 2 (the `sqr` path), 3 and 0.5 (`powf`), and a tensor
/// exponent (`exp(b · ln a)`), where both base and exponent are differentiated. A one-element
/// exponent is read as a constant, so it receives no gradient: exponents are weights only as
/// tensors of more than one element.
#[test]
fn pow_scalar_and_tensor_exponents() {
    for exponent in [2.0, 3.0, 0.5] {
        Check::new("Pow")
            .uniform(&[2, 3], 0.5, 2.0)
            .fixed(float64(&[exponent], &[]))
            .dims(&[2, 3])
            .run();
    }
    Check::new("Pow")
        .uniform(&[2, 3], 0.5, 2.0)
        .uniform(&[3], -1.5, 2.5)
        .dims(&[2, 3])
        .run();
    let cube = Check::new("Pow")
        .values(&[2], vec![2.0, 0.5])
        .fixed(float64(&[3.0], &[]))
        .outputs();
    assert_close(&to_f64(&cube[0]), &[8.0, 0.125], 1e-12, "Pow forward");
}

/// The unary functions, on inputs where each is smooth (positive for `Sqrt` and `Log`, away
/// from `Relu`'s kink).
#[test]
fn unary_functions() {
    for op in ["Neg", "Exp", "Erf", "Tanh", "Sigmoid", "Identity"] {
        Check::new(op)
            .uniform(&[2, 3], -2.0, 2.0)
            .dims(&[2, 3])
            .run();
    }
    for op in ["Sqrt", "Log"] {
        Check::new(op)
            .uniform(&[2, 3], 0.2, 3.0)
            .dims(&[2, 3])
            .run();
    }
    Check::new("Relu")
        .signed(&[3, 4], 0.1, 2.0)
        .dims(&[3, 4])
        .run();
    // Dropout at inference is the identity; its second output, the mask, is integer.
    let dropout = Check::new("Dropout")
        .uniform(&[2, 3], -2.0, 2.0)
        .dims(&[2, 3]);
    dropout.run();
    assert_eq!(to_i64(&dropout.outputs()[1]), [1; 6]);
}

/// `Gelu`, exact (erf) and with `approximate = "tanh"`.
#[test]
fn gelu_both_approximations() {
    Check::new("Gelu")
        .uniform(&[2, 4], -3.0, 3.0)
        .dims(&[2, 4])
        .run();
    Check::new("Gelu")
        .string("approximate", "none")
        .uniform(&[2, 4], -3.0, 3.0)
        .run();
    Check::new("Gelu")
        .string("approximate", "tanh")
        .uniform(&[2, 4], -3.0, 3.0)
        .run();
}

/// A scalar function that an operator's values are compared with.
type Reference = fn(f64) -> f64;

/// Forward values of the unary functions against `std` and `libm`, so a smooth but wrong
/// function cannot pass the gradient checks.
#[test]
fn unary_forward_values() {
    let x = [-1.7, -0.3, 0.4, 2.2];
    let references: [(&str, &str, Reference); 9] = [
        ("Neg", "", |v| -v),
        ("Exp", "", f64::exp),
        ("Erf", "", libm::erf),
        ("Tanh", "", f64::tanh),
        ("Sigmoid", "", |v| 1.0 / (1.0 + (-v).exp())),
        ("Relu", "", |v| v.max(0.0)),
        ("Gelu", "none", |v| {
            0.5 * v * (1.0 + libm::erf(v / std::f64::consts::SQRT_2))
        }),
        ("Gelu", "tanh", |v| {
            let inner = (2.0 / std::f64::consts::PI).sqrt() * (v + 0.044_715 * v * v * v);
            0.5 * v * (1.0 + inner.tanh())
        }),
        ("Identity", "", |v| v),
    ];
    for (op, approximate, reference) in references {
        let mut check = Check::new(op).values(&[4], x.to_vec());
        if !approximate.is_empty() {
            check = check.string("approximate", approximate);
        }
        let expected: Vec<f64> = x.iter().map(|&v| reference(v)).collect();
        // candle's erf is a rational approximation; 1e-6 still tells gelu variants apart.
        assert_close(&to_f64(&check.outputs()[0]), &expected, 1e-6, op);
    }
    for (op, reference) in [("Sqrt", f64::sqrt as Reference), ("Log", f64::ln)] {
        let y = Check::new(op).values(&[3], vec![0.25, 2.0, 9.0]).outputs();
        let expected: Vec<f64> = [0.25, 2.0, 9.0].iter().map(|&v| reference(v)).collect();
        assert_close(&to_f64(&y[0]), &expected, 1e-12, op);
    }
}

/// `Mod`: on integers the remainder takes the divisor's sign (`fmod = 0`) or the dividend's
/// (`fmod = 1`, the C remainder); on floats it is the C remainder, and its gradients are 1 for
/// the dividend and `−trunc(a / b)` for the divisor.
#[test]
fn modulo() {
    let a = int64(&[-5, 5, 7, -7, 6], &[5]);
    let b = int64(&[3, -3, 3, -3, 3], &[5]);
    let python = Check::new("Mod")
        .fixed(a.clone())
        .fixed(b.clone())
        .outputs();
    assert_eq!(to_i64(&python[0]), [1, -1, 1, -1, 0]);
    let c = Check::new("Mod").int("fmod", 1).fixed(a).fixed(b).outputs();
    assert_eq!(to_i64(&c[0]), [-2, 2, 1, -1, 0]);
    let broadcast = Check::new("Mod")
        .fixed(int64(&[-4, 4, 9, -1], &[2, 2]))
        .fixed(int64(&[3], &[1]))
        .outputs();
    assert_eq!(to_i64(&broadcast[0]), [2, 1, 0, 2]);

    let float = Check::new("Mod")
        .int("fmod", 1)
        .values(&[4], vec![5.5, -5.5, 5.5, 0.75])
        .values(&[4], vec![2.0, 2.0, -2.0, 0.5])
        .outputs();
    assert_close(
        &to_f64(&float[0]),
        &[1.5, -1.5, 1.5, 0.25],
        1e-12,
        "float Mod",
    );
    // Quotients stay clear of integers, where the remainder jumps.
    Check::new("Mod")
        .int("fmod", 1)
        .signed(&[2, 3], 0.5, 3.0)
        .uniform(&[3], 0.7, 1.3)
        .run();
}

/// `Cast` converts every float type to float32 and every integer type to int64 (a documented
/// design choice: the trainable graph computes in float32), so it is checked in f32 — the
/// gradient passes through the conversion unchanged — and by value.
#[test]
fn cast() {
    Check::new("Cast")
        .int("to", DataType::Float as i64)
        .uniform(&[2, 3], -2.0, 2.0)
        .in_f32()
        .run();
    let to_int = Check::new("Cast")
        .int("to", DataType::Int64 as i64)
        .values(&[3], vec![1.7, -1.7, 2.0])
        .outputs();
    assert_eq!(to_i64(&to_int[0]), [1, -1, 2]);
    let to_double = Check::new("Cast")
        .int("to", DataType::Double as i64)
        .values(&[2], vec![0.5, -3.0])
        .outputs();
    assert_eq!(to_double[0].dtype(), DType::F32);
    assert_close(&to_f64(&to_double[0]), &[0.5, -3.0], 0.0, "Cast to double");
    let from_int = Check::new("Cast")
        .int("to", DataType::Float as i64)
        .fixed(int64(&[3, -2], &[2]))
        .outputs();
    assert_eq!(from_int[0].dtype(), DType::F32);
    assert_close(&to_f64(&from_int[0]), &[3.0, -2.0], 0.0, "Cast from int64");
}

// ----------------------------------------------------------------------------------------------
// Matrix products
// ----------------------------------------------------------------------------------------------

/// `MatMul` with batch broadcasting on either side.
#[test]
fn matmul_batched_broadcast() {
    Check::new("MatMul")
        .uniform(&[2, 3, 4], -1.0, 1.0)
        .uniform(&[4, 5], -1.0, 1.0)
        .dims(&[2, 3, 5])
        .run();
    Check::new("MatMul")
        .uniform(&[2, 2, 3, 4], -1.0, 1.0)
        .uniform(&[4, 5], -1.0, 1.0)
        .dims(&[2, 2, 3, 5])
        .run();
    Check::new("MatMul")
        .uniform(&[3, 4], -1.0, 1.0)
        .uniform(&[2, 4, 5], -1.0, 1.0)
        .dims(&[2, 3, 5])
        .run();
    Check::new("MatMul")
        .uniform(&[2, 1, 2, 3], -1.0, 1.0)
        .uniform(&[3, 3, 2], -1.0, 1.0)
        .dims(&[2, 3, 2, 2])
        .run();
}

/// `Gemm` with transposes, `alpha`/`beta` and `C` broadcast from `[N]`, `[M, 1]` or absent.
#[test]
fn gemm_transposes_alpha_beta() {
    Check::new("Gemm")
        .int("transA", 1)
        .int("transB", 1)
        .float("alpha", 0.5)
        .float("beta", 2.0)
        .uniform(&[3, 2], -1.0, 1.0)
        .uniform(&[4, 3], -1.0, 1.0)
        .uniform(&[4], -1.0, 1.0)
        .dims(&[2, 4])
        .run();
    Check::new("Gemm")
        .float("beta", -1.5)
        .uniform(&[2, 3], -1.0, 1.0)
        .uniform(&[3, 4], -1.0, 1.0)
        .uniform(&[2, 1], -1.0, 1.0)
        .dims(&[2, 4])
        .run();
    Check::new("Gemm")
        .int("transB", 1)
        .uniform(&[2, 3], -1.0, 1.0)
        .uniform(&[4, 3], -1.0, 1.0)
        .dims(&[2, 4])
        .run();
    let y = Check::new("Gemm")
        .int("transA", 1)
        .float("alpha", 2.0)
        .float("beta", 0.5)
        .values(&[2, 1], vec![1.0, 2.0])
        .values(&[2, 2], vec![1.0, 2.0, 3.0, 4.0])
        .values(&[2], vec![10.0, 20.0])
        .outputs();
    // 2 · [1 2]·[[1 2] [3 4]] + 0.5 · [10 20] = 2 · [7 10] + [5 10]
    assert_close(&to_f64(&y[0]), &[19.0, 30.0], 1e-12, "Gemm forward");
}

/// `Gemm` as one dense layer with its bias written in: a weight stored either way, a bias of
/// `[N]` or `[1, N]`, and an `A` with batch dimensions (how the fused plan writes a `MatMul` by
/// a matrix plus a bias).
#[test]
fn gemm_as_a_dense_layer() {
    for transposed in [0, 1] {
        let weight: &[usize] = if transposed == 1 { &[4, 3] } else { &[3, 4] };
        Check::new("Gemm")
            .int("transB", transposed)
            .uniform(&[5, 3], -1.0, 1.0)
            .uniform(weight, -1.0, 1.0)
            .uniform(&[4], -1.0, 1.0)
            .dims(&[5, 4])
            .run();
        Check::new("Gemm")
            .int("transB", transposed)
            .uniform(&[2, 3, 3], -1.0, 1.0)
            .uniform(weight, -1.0, 1.0)
            .uniform(&[1, 4], -1.0, 1.0)
            .dims(&[2, 3, 4])
            .run();
    }
    let y = Check::new("Gemm")
        .values(&[1, 2, 2], vec![1.0, 2.0, 3.0, 4.0])
        .values(&[2, 2], vec![1.0, 0.0, 0.0, 2.0])
        .values(&[2], vec![10.0, 20.0])
        .outputs();
    assert_close(
        &to_f64(&y[0]),
        &[11.0, 24.0, 13.0, 28.0],
        1e-12,
        "dense layer forward",
    );
    // alpha scales the product, not the bias.
    Check::new("Gemm")
        .float("alpha", 2.0)
        .int("transB", 1)
        .uniform(&[3, 2], -1.0, 1.0)
        .uniform(&[4, 2], -1.0, 1.0)
        .uniform(&[4], -1.0, 1.0)
        .dims(&[3, 4])
        .run();
    let y = Check::new("Gemm")
        .float("alpha", 2.0)
        .values(&[1, 2], vec![1.0, 2.0])
        .values(&[2, 1], vec![3.0, 4.0])
        .values(&[1], vec![10.0])
        .outputs();
    assert_close(&to_f64(&y[0]), &[32.0], 1e-12, "Gemm alpha with a bias");
}

// ----------------------------------------------------------------------------------------------
// Normalisation and softmax
// ----------------------------------------------------------------------------------------------

/// `LayerNormalization` over the last axis (with bias) and over axes 1.. of a rank-3 input
/// (without bias).
#[test]
fn layer_normalization() {
    Check::new("LayerNormalization")
        .int("axis", -1)
        .uniform(&[2, 3, 4], -2.0, 2.0)
        .uniform(&[4], 0.5, 1.5)
        .uniform(&[4], -0.5, 0.5)
        .dims(&[2, 3, 4])
        .run();
    Check::new("LayerNormalization")
        .int("axis", 1)
        .float("epsilon", 1e-3)
        .uniform(&[2, 3, 4], -2.0, 2.0)
        .uniform(&[3, 4], 0.5, 1.5)
        .dims(&[2, 3, 4])
        .run();
    let y = Check::new("LayerNormalization")
        .float("epsilon", 0.0)
        .values(&[1, 2], vec![1.0, 3.0])
        .values(&[2], vec![2.0, 2.0])
        .values(&[2], vec![0.5, 0.5])
        .outputs();
    assert_close(
        &to_f64(&y[0]),
        &[-1.5, 2.5],
        1e-12,
        "LayerNormalization forward",
    );
}

/// `BatchNormalization` at inference, in float32 (the trainable graph's precision): the input,
/// scale and bias are differentiated; the running statistics are constants (no gradient
/// trains a statistic).
#[test]
fn batch_normalization_f32() {
    for dims in [&[2, 3, 4][..], &[2, 3, 2, 2], &[4, 3]] {
        Check::new("BatchNormalization")
            .float("epsilon", 1e-3)
            .uniform(dims, -2.0, 2.0)
            .uniform(&[3], 0.5, 1.5)
            .uniform(&[3], -0.5, 0.5)
            .fixed(float64(&[0.2, -0.4, 0.1], &[3]))
            .fixed(float64(&[0.7, 1.3, 0.9], &[3]))
            .in_f32()
            .dims(dims)
            .run();
    }
    let y = Check::new("BatchNormalization")
        .float("epsilon", 0.0)
        .values(&[1, 2, 1], vec![3.0, 3.0])
        .values(&[2], vec![2.0, 1.0])
        .values(&[2], vec![1.0, 0.0])
        .values(&[2], vec![1.0, 2.0])
        .values(&[2], vec![4.0, 0.25])
        .in_f32()
        .outputs();
    // (3 − 1) / 2 · 2 + 1 = 3 and (3 − 2) / 0.5 · 1 + 0 = 2
    assert_close(
        &to_f64(&y[0]),
        &[3.0, 2.0],
        1e-6,
        "BatchNormalization forward",
    );
}

/// `Softmax` and `LogSoftmax` along axis 1 and the last axis.
#[test]
fn softmax_and_log_softmax() {
    for op in ["Softmax", "LogSoftmax"] {
        for axis in [1, -1] {
            Check::new(op)
                .int("axis", axis)
                .uniform(&[2, 3, 4], -3.0, 3.0)
                .dims(&[2, 3, 4])
                .run();
        }
    }
    let y = Check::new("Softmax")
        .values(&[1, 3], vec![0.0, 1.0, 2.0])
        .outputs();
    let total: f64 = [0f64, 1.0, 2.0].iter().map(|v| v.exp()).sum();
    let expected: Vec<f64> = [0f64, 1.0, 2.0].iter().map(|v| v.exp() / total).collect();
    assert_close(&to_f64(&y[0]), &expected, 1e-12, "Softmax forward");
}

/// Before opset 13, `Softmax` and `LogSoftmax` normalise the input flattened to a matrix at
/// `axis` (default 1): a `[1, 2, 2]` input is one row of four values, not two rows of two.
#[test]
fn softmax_before_opset_13_normalises_the_flattened_trailing_axes() {
    for op in ["Softmax", "LogSoftmax"] {
        for axis in [None, Some(0), Some(2)] {
            let check = Check::new(op).opset(11);
            let check = match axis {
                Some(axis) => check.int("axis", axis),
                None => check,
            };
            check.uniform(&[2, 3, 4], -3.0, 3.0).dims(&[2, 3, 4]).run();
        }
    }
    let values = [0f64, 1.0, 2.0, 3.0];
    let y = Check::new("Softmax")
        .opset(11)
        .values(&[1, 2, 2], values.to_vec())
        .outputs();
    let total: f64 = values.iter().map(|v| v.exp()).sum();
    let expected: Vec<f64> = values.iter().map(|v| v.exp() / total).collect();
    assert_close(&to_f64(&y[0]), &expected, 1e-12, "opset-11 Softmax forward");
    let y = Check::new("Softmax")
        .opset(13)
        .values(&[1, 2, 2], values.to_vec())
        .outputs();
    let pair = 1.0 + 1f64.exp();
    let expected = [1.0 / pair, 1f64.exp() / pair, 1.0 / pair, 1f64.exp() / pair];
    assert_close(&to_f64(&y[0]), &expected, 1e-12, "opset-13 Softmax forward");
}

// ----------------------------------------------------------------------------------------------
// Reductions
// ----------------------------------------------------------------------------------------------

/// `ReduceMean` and `ReduceSum` with axes as attribute or input, `keepdims` 0 and 1, every axis,
/// and `noop_with_empty_axes`.
#[test]
fn reductions() {
    for op in ["ReduceMean", "ReduceSum"] {
        let x = |check: Check| check.uniform(&[2, 3, 4], -1.0, 1.0);
        x(Check::new(op).ints("axes", &[1])).dims(&[2, 1, 4]).run();
        x(Check::new(op).ints("axes", &[0, 2]).int("keepdims", 0))
            .dims(&[3])
            .run();
        x(Check::new(op).int("keepdims", 0))
            .int64(&[-1])
            .dims(&[2, 3])
            .run();
        x(Check::new(op).int("keepdims", 0)).dims(&[]).run();
        x(Check::new(op).int("noop_with_empty_axes", 1))
            .dims(&[2, 3, 4])
            .run();
    }
    let mean = Check::new("ReduceMean")
        .ints("axes", &[1])
        .int("keepdims", 0)
        .values(&[2, 2], vec![1.0, 3.0, 5.0, 9.0]);
    assert_close(
        &to_f64(&mean.outputs()[0]),
        &[2.0, 7.0],
        1e-12,
        "ReduceMean forward",
    );
}

// ----------------------------------------------------------------------------------------------
// Shape operators
// ----------------------------------------------------------------------------------------------

/// `Transpose` (given and default permutation), `Reshape` (0 and −1), `Flatten` (axes 0, 1, −1).
#[test]
fn transpose_reshape_flatten() {
    let x = |op: &'static str| Check::new(op).uniform(&[2, 3, 4], -1.0, 1.0);
    x("Transpose")
        .ints("perm", &[2, 0, 1])
        .dims(&[4, 2, 3])
        .run();
    x("Transpose").dims(&[4, 3, 2]).run();
    x("Reshape").int64(&[0, -1]).dims(&[2, 12]).run();
    x("Reshape").int64(&[4, -1, 2]).dims(&[4, 3, 2]).run();
    x("Flatten").dims(&[2, 12]).run();
    x("Flatten").int("axis", 0).dims(&[1, 24]).run();
    x("Flatten").int("axis", -1).dims(&[6, 4]).run();
    let y = Check::new("Transpose")
        .values(&[2, 3], (0..6).map(f64::from).collect())
        .outputs();
    assert_close(
        &to_f64(&y[0]),
        &[0.0, 3.0, 1.0, 4.0, 2.0, 5.0],
        0.0,
        "Transpose forward",
    );
}

/// `Slice` with step 1 (negative end) and step 2 (negative start, open end, negative axis).
#[test]
fn slice_steps() {
    Check::new("Slice")
        .uniform(&[3, 4, 5], -1.0, 1.0)
        .int64(&[1, 0])
        .int64(&[3, -1])
        .int64(&[0, 2])
        .dims(&[2, 4, 4])
        .run();
    let stepped = Check::new("Slice")
        .uniform(&[2, 7, 3], -1.0, 1.0)
        .int64(&[-6, 0])
        .int64(&[i64::MAX, 3])
        .int64(&[1, -1])
        .int64(&[2, 2])
        .dims(&[2, 3, 2]);
    stepped.run();
    let x = Check::new("Slice").values(&[7], (0..7).map(f64::from).collect());
    let y = x
        .int64(&[-6])
        .int64(&[i64::MAX])
        .int64(&[0])
        .int64(&[2])
        .outputs();
    assert_close(&to_f64(&y[0]), &[1.0, 3.0, 5.0], 0.0, "Slice forward");
}

/// `Concat` of three inputs along axis 1 and of two along the last axis.
#[test]
fn concat() {
    Check::new("Concat")
        .int("axis", 1)
        .uniform(&[2, 1, 3], -1.0, 1.0)
        .uniform(&[2, 2, 3], -1.0, 1.0)
        .uniform(&[2, 3, 3], -1.0, 1.0)
        .dims(&[2, 6, 3])
        .run();
    Check::new("Concat")
        .int("axis", -1)
        .uniform(&[2, 2], -1.0, 1.0)
        .uniform(&[2, 3], -1.0, 1.0)
        .dims(&[2, 5])
        .run();
}

/// `Unsqueeze` and `Squeeze`, with axes as input (opset 13) or attribute, negative axes, and
/// `Squeeze` without axes.
#[test]
fn unsqueeze_squeeze() {
    Check::new("Unsqueeze")
        .uniform(&[2, 3], -1.0, 1.0)
        .int64(&[0, -1])
        .dims(&[1, 2, 3, 1])
        .run();
    Check::new("Unsqueeze")
        .ints("axes", &[1])
        .uniform(&[2, 3], -1.0, 1.0)
        .dims(&[2, 1, 3])
        .run();
    Check::new("Squeeze")
        .uniform(&[2, 1, 3, 1], -1.0, 1.0)
        .int64(&[1])
        .dims(&[2, 3, 1])
        .run();
    Check::new("Squeeze")
        .uniform(&[2, 1, 3, 1], -1.0, 1.0)
        .int64(&[-1])
        .dims(&[2, 1, 3])
        .run();
    Check::new("Squeeze")
        .uniform(&[2, 1, 3, 1], -1.0, 1.0)
        .dims(&[2, 3])
        .run();
}

/// `Gather` differentiated in its data: two-dimensional indices with a negative and a repeated
/// index (whose gradients add up) along axis 0, and a scalar negative index along axis 1.
#[test]
fn gather_negative_indices() {
    let indices = int64(&[0, -1, 2, 0], &[2, 2]);
    Check::new("Gather")
        .uniform(&[4, 3], -1.0, 1.0)
        .fixed(indices.clone())
        .dims(&[2, 2, 3])
        .run();
    Check::new("Gather")
        .int("axis", 1)
        .uniform(&[2, 5], -1.0, 1.0)
        .fixed(int64(&[-2], &[]))
        .dims(&[2])
        .run();
    let y = Check::new("Gather")
        .values(&[4, 1], vec![10.0, 11.0, 12.0, 13.0])
        .fixed(indices)
        .outputs();
    assert_close(
        &to_f64(&y[0]),
        &[10.0, 13.0, 12.0, 10.0],
        0.0,
        "Gather forward",
    );
}

/// `Expand` to a larger rank and by numpy broadcasting of both shapes.
#[test]
fn expand() {
    Check::new("Expand")
        .uniform(&[3, 1], -1.0, 1.0)
        .int64(&[2, 3, 4])
        .dims(&[2, 3, 4])
        .run();
    Check::new("Expand")
        .uniform(&[3], -1.0, 1.0)
        .int64(&[2, 1])
        .dims(&[2, 3])
        .run();
}

/// `Shape` with and without the `start`/`end` window.
#[test]
fn shape() {
    let x = || Check::new("Shape").uniform(&[2, 3, 4], -1.0, 1.0);
    assert_eq!(to_i64(&x().outputs()[0]), [2, 3, 4]);
    assert_eq!(to_i64(&x().int("start", 1).outputs()[0]), [3, 4]);
    assert_eq!(
        to_i64(&x().int("start", -2).int("end", -1).outputs()[0]),
        [3]
    );
}

/// `Constant` from a tensor and from float, int and ints attributes; `ConstantOfShape` with
/// the default zero and with an int64 fill value.
#[test]
fn constants() {
    let tensor = TensorProto {
        dims: vec![2],
        data_type: DataType::Float as i32,
        float_data: vec![1.5, -2.0],
        ..TensorProto::default()
    };
    let from_tensor = Check::new("Constant").tensor("value", tensor).outputs();
    assert_eq!(from_tensor[0].dims(), [2]);
    assert_close(
        &to_f64(&from_tensor[0]),
        &[1.5, -2.0],
        0.0,
        "Constant tensor",
    );
    let float = Check::new("Constant").float("value_float", 0.25).outputs();
    assert_close(&to_f64(&float[0]), &[0.25], 0.0, "Constant value_float");
    assert_eq!(
        to_i64(&Check::new("Constant").int("value_int", -3).outputs()[0]),
        [-3]
    );
    assert_eq!(
        to_i64(&Check::new("Constant").ints("value_ints", &[4, 5]).outputs()[0]),
        [4, 5]
    );

    let zeros = Check::new("ConstantOfShape").int64(&[2, 3]).outputs();
    assert_eq!(zeros[0].dims(), [2, 3]);
    assert_close(
        &to_f64(&zeros[0]),
        &[0.0; 6],
        0.0,
        "ConstantOfShape default",
    );
    let seven = TensorProto {
        dims: vec![1],
        data_type: DataType::Int64 as i32,
        int64_data: vec![7],
        ..TensorProto::default()
    };
    let filled = Check::new("ConstantOfShape")
        .tensor("value", seven)
        .int64(&[3])
        .outputs();
    assert_eq!(to_i64(&filled[0]), [7, 7, 7]);
}

// ----------------------------------------------------------------------------------------------
// Convolution and pooling
// ----------------------------------------------------------------------------------------------

/// `Conv`: 1-D with asymmetric pads and stride 2, with and without bias; 2-D with groups = 2,
/// asymmetric pads and bias; 2-D with stride 2 over an input whose height and width leave
/// different remainders; 1-D with dilation 2; 2-D with dilation 2, pads and bias over three
/// input channels. Batches of several samples and output channels
/// are included: candle's own conv1d backward gets those wrong.
#[test]
fn conv_1d_and_2d() {
    Check::new("Conv")
        .ints("pads", &[2, 1])
        .ints("strides", &[2])
        .uniform(&[2, 2, 7], -1.0, 1.0)
        .uniform(&[3, 2, 3], -1.0, 1.0)
        .uniform(&[3], -1.0, 1.0)
        .dims(&[2, 3, 4])
        .run();
    Check::new("Conv")
        .ints("pads", &[0, 1])
        .ints("strides", &[2])
        .uniform(&[1, 2, 6], -1.0, 1.0)
        .uniform(&[2, 2, 2], -1.0, 1.0)
        .dims(&[1, 2, 3])
        .run();
    Check::new("Conv")
        .int("group", 2)
        .ints("pads", &[1, 0, 0, 1])
        .uniform(&[1, 4, 4, 4], -1.0, 1.0)
        .uniform(&[2, 2, 3, 3], -1.0, 1.0)
        .uniform(&[2], -1.0, 1.0)
        .dims(&[1, 2, 3, 3])
        .run();
    Check::new("Conv")
        .ints("strides", &[2, 2])
        .uniform(&[2, 1, 6, 5], -1.0, 1.0)
        .uniform(&[2, 1, 3, 3], -1.0, 1.0)
        .dims(&[2, 2, 2, 2])
        .run();
    Check::new("Conv")
        .ints("dilations", &[2])
        .uniform(&[1, 2, 7], -1.0, 1.0)
        .uniform(&[2, 2, 3], -1.0, 1.0)
        .dims(&[1, 2, 3])
        .run();
    Check::new("Conv")
        .ints("dilations", &[2, 2])
        .ints("pads", &[1, 0, 1, 2])
        .uniform(&[2, 3, 5, 4], -1.0, 1.0)
        .uniform(&[2, 3, 2, 3], -1.0, 1.0)
        .uniform(&[2], -1.0, 1.0)
        .dims(&[2, 2, 5, 2])
        .run();
    // Depthwise (one channel per group), and two filters per group with stride 2 and pads.
    Check::new("Conv")
        .int("group", 3)
        .ints("pads", &[1, 1, 1, 1])
        .uniform(&[2, 3, 4, 4], -1.0, 1.0)
        .uniform(&[3, 1, 3, 3], -1.0, 1.0)
        .dims(&[2, 3, 4, 4])
        .run();
    Check::new("Conv")
        .int("group", 2)
        .ints("pads", &[1, 1, 1, 1])
        .ints("strides", &[2, 2])
        .uniform(&[1, 4, 5, 5], -1.0, 1.0)
        .uniform(&[4, 2, 3, 3], -1.0, 1.0)
        .uniform(&[4], -1.0, 1.0)
        .dims(&[1, 4, 3, 3])
        .run();
    // [1 2 3 4] ⊛ [1 −1] with one zero of padding before: [−1, −1, −1, −1] at stride 1.
    let y = Check::new("Conv")
        .ints("pads", &[1, 0])
        .values(&[1, 1, 4], vec![1.0, 2.0, 3.0, 4.0])
        .values(&[1, 1, 2], vec![1.0, -1.0])
        .outputs();
    assert_close(
        &to_f64(&y[0]),
        &[-1.0, -1.0, -1.0, -1.0],
        1e-12,
        "Conv forward",
    );
}

/// `MaxPool` and `AveragePool`, 1-D and 2-D: windows that tile the input, windows that leave a
/// remainder, and overlapping windows (stride below the kernel, including the default stride 1).
#[test]
fn pooling() {
    for op in ["MaxPool", "AveragePool"] {
        // Random inputs keep every window's maximum unique, so MaxPool is smooth at them.
        let pool = |kernel: &[i64], x: &[usize]| {
            Check::new(op)
                .ints("kernel_shape", kernel)
                .uniform(x, -1.0, 1.0)
        };
        pool(&[2], &[1, 2, 6])
            .ints("strides", &[2])
            .dims(&[1, 2, 3])
            .run();
        pool(&[2], &[1, 2, 7])
            .ints("strides", &[2])
            .dims(&[1, 2, 3])
            .run();
        pool(&[3], &[2, 2, 7])
            .ints("strides", &[2])
            .dims(&[2, 2, 3])
            .run();
        pool(&[2, 2], &[1, 2, 4, 4])
            .ints("strides", &[2, 2])
            .dims(&[1, 2, 2, 2])
            .run();
        pool(&[2, 2], &[1, 2, 5, 5])
            .ints("strides", &[2, 2])
            .dims(&[1, 2, 2, 2])
            .run();
        pool(&[2, 2], &[1, 2, 4, 5]).dims(&[1, 2, 3, 4]).run();
        pool(&[3, 2], &[1, 1, 7, 5])
            .ints("strides", &[2, 1])
            .dims(&[1, 1, 3, 4])
            .run();
    }
    // Padding: a max pool's never wins (ResNet's 3×3 stride-2 pool with pads 1); an average
    // pool counts it only with count_include_pad.
    for (op, include) in [("MaxPool", 0), ("AveragePool", 0), ("AveragePool", 1)] {
        Check::new(op)
            .ints("kernel_shape", &[3, 3])
            .ints("strides", &[2, 2])
            .ints("pads", &[1, 1, 1, 1])
            .int("count_include_pad", include)
            .uniform(&[2, 2, 6, 5], -1.0, -0.1)
            .dims(&[2, 2, 3, 3])
            .run();
    }
    let padded = |include: i64| {
        Check::new("AveragePool")
            .ints("kernel_shape", &[2])
            .ints("strides", &[2])
            .ints("pads", &[1, 1])
            .int("count_include_pad", include)
            .values(&[1, 1, 4], vec![2.0, 4.0, 6.0, 8.0])
            .outputs()
    };
    assert_close(
        &to_f64(&padded(0)[0]),
        &[2.0, 5.0, 8.0],
        1e-12,
        "pad left out",
    );
    assert_close(
        &to_f64(&padded(1)[0]),
        &[1.0, 5.0, 4.0],
        1e-12,
        "pad counted",
    );
    let max = Check::new("MaxPool")
        .ints("kernel_shape", &[3])
        .ints("strides", &[2])
        .ints("pads", &[1, 1])
        .values(&[1, 1, 4], vec![-1.0, -2.0, -3.0, -4.0])
        .outputs();
    assert_close(
        &to_f64(&max[0]),
        &[-1.0, -2.0],
        0.0,
        "MaxPool padding never wins",
    );
    // Tied maxima share the gradient: windows [3 3] and [1 2] give [½ ½ 0 1].
    let tie = Check::new("MaxPool")
        .ints("kernel_shape", &[2])
        .ints("strides", &[2])
        .values(&[1, 1, 4], vec![3.0, 3.0, 1.0, 2.0]);
    let (inputs, vars) = tie.tensors(&tie.base_values(), true);
    let y = tie.apply(&inputs);
    assert_close(&to_f64(&y[0]), &[3.0, 2.0], 0.0, "MaxPool ties");
    let grads = y[0]
        .sum_all()
        .and_then(|loss| loss.backward())
        .expect("backward");
    let var = vars[0].as_ref().expect("variable");
    let gradient = to_f64(grads.get(var.as_tensor()).expect("gradient"));
    assert_close(
        &gradient,
        &[0.5, 0.5, 0.0, 1.0],
        0.0,
        "MaxPool tie gradient",
    );
    let x = vec![1.0, 5.0, 2.0, 4.0, 3.0];
    let max = Check::new("MaxPool")
        .ints("kernel_shape", &[2])
        .values(&[1, 1, 5], x.clone())
        .outputs();
    assert_close(
        &to_f64(&max[0]),
        &[5.0, 5.0, 4.0, 4.0],
        0.0,
        "MaxPool forward",
    );
    let average = Check::new("AveragePool")
        .ints("kernel_shape", &[3])
        .ints("strides", &[2])
        .values(&[1, 1, 5], x)
        .outputs();
    assert_close(
        &to_f64(&average[0]),
        &[8.0 / 3.0, 3.0],
        1e-12,
        "AveragePool forward",
    );
}

/// `GlobalAveragePool` over one and two spatial axes, and its values.
#[test]
fn global_average_pooling() {
    Check::new("GlobalAveragePool")
        .uniform(&[2, 3, 4, 5], -1.0, 1.0)
        .dims(&[2, 3, 1, 1])
        .run();
    Check::new("GlobalAveragePool")
        .uniform(&[1, 2, 6], -1.0, 1.0)
        .dims(&[1, 2, 1])
        .run();
    let y = Check::new("GlobalAveragePool")
        .values(
            &[1, 2, 2, 2],
            vec![1.0, 2.0, 3.0, 4.0, -1.0, -1.0, 0.0, 6.0],
        )
        .outputs();
    assert_close(
        &to_f64(&y[0]),
        &[2.5, 1.0],
        1e-12,
        "GlobalAveragePool forward",
    );
}

// ----------------------------------------------------------------------------------------------
// Recurrent layers
// ----------------------------------------------------------------------------------------------

/// Sizes of the recurrent checks: steps, batch, input features, hidden units.
const STEPS: usize = 3;
const BATCH: usize = 2;
const FEATURES: usize = 3;
const HIDDEN: usize = 2;

/// An `LSTM` (4 gates) or `GRU` (3 gates) node in `direction` with every input drawn: `X`,
/// `W`, `R`, `B`, no `sequence_lens`, `initial_h` and (for `LSTM`) `initial_c`.
fn recurrent(op: &'static str, direction: &str) -> Check {
    let gates = if op == "LSTM" { 4 } else { 3 };
    let directions = if direction == "bidirectional" { 2 } else { 1 };
    let check = Check::new(op)
        .string("direction", direction)
        .int("hidden_size", HIDDEN as i64)
        .uniform(&[STEPS, BATCH, FEATURES], -1.0, 1.0)
        .uniform(&[directions, gates * HIDDEN, FEATURES], -0.8, 0.8)
        .uniform(&[directions, gates * HIDDEN, HIDDEN], -0.8, 0.8)
        .uniform(&[directions, 2 * gates * HIDDEN], -0.5, 0.5)
        .absent()
        .uniform(&[directions, BATCH, HIDDEN], -0.5, 0.5);
    if op == "LSTM" {
        check.uniform(&[directions, BATCH, HIDDEN], -0.5, 0.5)
    } else {
        check
    }
}

/// The drawn values of input `index`.
fn drawn(check: &Check, index: usize) -> &[f64] {
    match &check.inputs[index] {
        Arg::Var { values, .. } => values,
        _ => panic!("input {index} is not drawn"),
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Whether direction `d` of a `direction` layer runs backwards in time.
fn runs_backwards(direction: &str, d: usize) -> bool {
    d == 1 || direction == "reverse"
}

/// `LSTM` in plain loops with ONNX semantics (gates i, o, f, c; `B` = input then recurrent
/// biases): `Y` `[T, D, B, H]`, `Y_h` and `Y_c` `[D, B, H]`, flattened.
fn lstm_reference(check: &Check, direction: &str) -> [Vec<f64>; 3] {
    let (x, w, r, bias, h0, c0) = (
        drawn(check, 0),
        drawn(check, 1),
        drawn(check, 2),
        drawn(check, 3),
        drawn(check, 5),
        drawn(check, 6),
    );
    let directions = h0.len() / (BATCH * HIDDEN);
    let (rows, state) = (4 * HIDDEN, BATCH * HIDDEN);
    let mut y = vec![0.0; STEPS * directions * state];
    let (mut y_h, mut y_c) = (vec![0.0; directions * state], vec![0.0; directions * state]);
    for d in 0..directions {
        let mut h = h0[d * state..(d + 1) * state].to_vec();
        let mut c = c0[d * state..(d + 1) * state].to_vec();
        for s in 0..STEPS {
            let t = if runs_backwards(direction, d) {
                STEPS - 1 - s
            } else {
                s
            };
            let (mut next_h, mut next_c) = (vec![0.0; state], vec![0.0; state]);
            for b in 0..BATCH {
                let gate = |g: usize, u: usize| {
                    let row = g * HIDDEN + u;
                    let mut sum = bias[d * 2 * rows + row] + bias[d * 2 * rows + rows + row];
                    for k in 0..FEATURES {
                        sum +=
                            x[(t * BATCH + b) * FEATURES + k] * w[(d * rows + row) * FEATURES + k];
                    }
                    for k in 0..HIDDEN {
                        sum += h[b * HIDDEN + k] * r[(d * rows + row) * HIDDEN + k];
                    }
                    sum
                };
                for u in 0..HIDDEN {
                    let (i, o, f) = (
                        sigmoid(gate(0, u)),
                        sigmoid(gate(1, u)),
                        sigmoid(gate(2, u)),
                    );
                    let cell = f * c[b * HIDDEN + u] + i * gate(3, u).tanh();
                    next_c[b * HIDDEN + u] = cell;
                    next_h[b * HIDDEN + u] = o * cell.tanh();
                }
            }
            (h, c) = (next_h, next_c);
            y[(t * directions + d) * state..][..state].copy_from_slice(&h);
        }
        y_h[d * state..][..state].copy_from_slice(&h);
        y_c[d * state..][..state].copy_from_slice(&c);
    }
    [y, y_h, y_c]
}

/// `GRU` in plain loops with ONNX semantics (gates z, r, h; `linear_before_reset` applies the
/// reset gate after the recurrent product): `Y` `[T, D, B, H]` and `Y_h` `[D, B, H]`, flattened.
fn gru_reference(check: &Check, direction: &str, linear_before_reset: bool) -> [Vec<f64>; 2] {
    let (x, w, r, bias, h0) = (
        drawn(check, 0),
        drawn(check, 1),
        drawn(check, 2),
        drawn(check, 3),
        drawn(check, 5),
    );
    let directions = h0.len() / (BATCH * HIDDEN);
    let (rows, state) = (3 * HIDDEN, BATCH * HIDDEN);
    let mut y = vec![0.0; STEPS * directions * state];
    let mut y_h = vec![0.0; directions * state];
    for d in 0..directions {
        let mut h = h0[d * state..(d + 1) * state].to_vec();
        for s in 0..STEPS {
            let t = if runs_backwards(direction, d) {
                STEPS - 1 - s
            } else {
                s
            };
            let mut next_h = vec![0.0; state];
            for b in 0..BATCH {
                let input_bias = |row: usize| bias[d * 2 * rows + row];
                let recurrent_bias = |row: usize| bias[d * 2 * rows + rows + row];
                let from_input = |row: usize| {
                    (0..FEATURES)
                        .map(|k| {
                            x[(t * BATCH + b) * FEATURES + k] * w[(d * rows + row) * FEATURES + k]
                        })
                        .sum::<f64>()
                };
                let recurrent = |row: usize, vector: &[f64]| {
                    (0..HIDDEN)
                        .map(|k| vector[k] * r[(d * rows + row) * HIDDEN + k])
                        .sum::<f64>()
                };
                let previous = &h[b * HIDDEN..(b + 1) * HIDDEN];
                let gate = |row: usize| {
                    from_input(row)
                        + input_bias(row)
                        + recurrent(row, previous)
                        + recurrent_bias(row)
                };
                let reset: Vec<f64> = (0..HIDDEN).map(|u| sigmoid(gate(HIDDEN + u))).collect();
                let reset_state: Vec<f64> =
                    previous.iter().zip(&reset).map(|(p, g)| p * g).collect();
                for u in 0..HIDDEN {
                    let z = sigmoid(gate(u));
                    let row = 2 * HIDDEN + u;
                    let candidate = if linear_before_reset {
                        from_input(row)
                            + input_bias(row)
                            + reset[u] * (recurrent(row, previous) + recurrent_bias(row))
                    } else {
                        from_input(row)
                            + input_bias(row)
                            + recurrent(row, &reset_state)
                            + recurrent_bias(row)
                    }
                    .tanh();
                    next_h[b * HIDDEN + u] = (1.0 - z) * candidate + z * previous[u];
                }
            }
            h = next_h;
            y[(t * directions + d) * state..][..state].copy_from_slice(&h);
        }
        y_h[d * state..][..state].copy_from_slice(&h);
    }
    [y, y_h]
}

/// `LSTM` gradients for `X`, `W`, `R`, `B`, `initial_h` and `initial_c` through `Y`, `Y_h` and
/// `Y_c`, forward, reverse and bidirectional.
#[test]
fn lstm_gradients() {
    for direction in ["forward", "reverse", "bidirectional"] {
        let directions = if direction == "bidirectional" { 2 } else { 1 };
        recurrent("LSTM", direction)
            .dims(&[STEPS, directions, BATCH, HIDDEN])
            .run();
    }
}

/// `GRU` gradients for `X`, `W`, `R`, `B` and `initial_h` through `Y` and `Y_h`, forward,
/// reverse and bidirectional, with `linear_before_reset` 0 and 1.
#[test]
fn gru_gradients() {
    for direction in ["forward", "reverse", "bidirectional"] {
        let directions = if direction == "bidirectional" { 2 } else { 1 };
        for linear_before_reset in [0, 1] {
            recurrent("GRU", direction)
                .int("linear_before_reset", linear_before_reset)
                .dims(&[STEPS, directions, BATCH, HIDDEN])
                .run();
        }
    }
}

/// `LSTM` outputs equal the scalar reference (with full-length `sequence_lens` given).
#[test]
fn lstm_matches_reference() {
    for direction in ["forward", "reverse", "bidirectional"] {
        let mut check = recurrent("LSTM", direction);
        check.inputs[4] = Arg::Fixed(int64(&[STEPS as i64; BATCH], &[BATCH]));
        let outputs = check.outputs();
        assert_eq!(outputs.len(), 3, "LSTM outputs Y, Y_h, Y_c");
        for (k, expected) in lstm_reference(&check, direction).iter().enumerate() {
            assert_close(
                &to_f64(&outputs[k]),
                expected,
                1e-12,
                &format!("LSTM {direction} output {k}"),
            );
        }
    }
}

/// `GRU` outputs equal the scalar reference, with `linear_before_reset` 0 and 1.
#[test]
fn gru_matches_reference() {
    for direction in ["forward", "reverse", "bidirectional"] {
        for linear_before_reset in [false, true] {
            let check = recurrent("GRU", direction)
                .int("linear_before_reset", i64::from(linear_before_reset));
            let outputs = check.outputs();
            assert_eq!(outputs.len(), 2, "GRU outputs Y, Y_h");
            for (k, expected) in gru_reference(&check, direction, linear_before_reset)
                .iter()
                .enumerate()
            {
                let what =
                    format!("GRU {direction} linear_before_reset={linear_before_reset} output {k}");
                assert_close(&to_f64(&outputs[k]), expected, 1e-12, &what);
            }
        }
    }
}

// ----------------------------------------------------------------------------------------------
// Operators of the model libraries' exports (torchvision, transformers)
// ----------------------------------------------------------------------------------------------

/// `Clip` with bounds as inputs (opset 11 on; either may be omitted) and as attributes
/// (before): the gradient passes inside the bounds only.
#[test]
fn clip_bounds_as_inputs_and_attributes() {
    let bound = |value: f64| float64(&[value], &[]);
    Check::new("Clip")
        .uniform(&[3, 4], -2.0, 2.0)
        .fixed(bound(-1.0))
        .fixed(bound(1.0))
        .dims(&[3, 4])
        .run();
    Check::new("Clip")
        .uniform(&[3, 4], -2.0, 8.0)
        .absent()
        .fixed(bound(6.0))
        .run();
    Check::new("Clip")
        .opset(6)
        .float("min", 0.0)
        .float("max", 6.0)
        .uniform(&[5], -2.0, 8.0)
        .run();
    let y = Check::new("Clip")
        .values(&[4], vec![-3.0, 0.5, 6.5, 2.0])
        .fixed(bound(0.0))
        .fixed(bound(6.0))
        .outputs();
    assert_close(&to_f64(&y[0]), &[0.0, 0.5, 6.0, 2.0], 0.0, "Clip forward");
}

/// `HardSigmoid` (default and given slope) and `HardSwish`, across their kinks.
#[test]
fn hard_sigmoid_and_hard_swish() {
    Check::new("HardSigmoid").uniform(&[4, 5], -4.0, 4.0).run();
    Check::new("HardSigmoid")
        .float("alpha", 0.5)
        .float("beta", 0.25)
        .uniform(&[4, 5], -3.0, 3.0)
        .run();
    Check::new("HardSwish").uniform(&[4, 5], -5.0, 5.0).run();
    let y = Check::new("HardSwish")
        .values(&[4], vec![-4.0, 0.0, 1.5, 4.0])
        .outputs();
    // x · clip(x/6 + ½, 0, 1): 0, 0, 1.5 · 0.75, 4
    assert_close(&to_f64(&y[0]), &[0.0, 0.0, 1.125, 4.0], 1e-12, "HardSwish");
}

/// The comparisons and the boolean operators, with broadcasting, as int64 0 and 1.
#[test]
fn comparisons_and_logic() {
    let a = int64(&[1, 2, 3, 4, 5, 6], &[2, 3]);
    let b = int64(&[2, 2, 4], &[3]);
    for (op, expected) in [
        ("Equal", [0, 1, 0, 0, 0, 0]),
        ("Less", [1, 0, 1, 0, 0, 0]),
        ("LessOrEqual", [1, 1, 1, 0, 0, 0]),
        ("Greater", [0, 0, 0, 1, 1, 1]),
        ("GreaterOrEqual", [0, 1, 0, 1, 1, 1]),
    ] {
        let y = Check::new(op).fixed(a.clone()).fixed(b.clone()).outputs();
        assert_eq!(y[0].dims(), &[2, 3], "{op}");
        assert_eq!(to_i64(&y[0]), expected, "{op}");
    }
    // A float against an integer tensor compares values.
    let y = Check::new("Less")
        .fixed(float64(&[0.5, 2.5], &[2]))
        .fixed(int64(&[1], &[1]))
        .outputs();
    assert_eq!(to_i64(&y[0]), [1, 0]);
    let p = int64(&[1, 0, 1, 0], &[4]);
    let q = int64(&[1, 1, 0, 0], &[4]);
    let not = Check::new("Not").fixed(p.clone()).outputs();
    assert_eq!(to_i64(&not[0]), [0, 1, 0, 1]);
    let and = Check::new("And")
        .fixed(p.clone())
        .fixed(q.clone())
        .outputs();
    assert_eq!(to_i64(&and[0]), [1, 0, 0, 0]);
    let or = Check::new("Or").fixed(p).fixed(q).outputs();
    assert_eq!(to_i64(&or[0]), [1, 1, 1, 0]);
}

/// `Where` differentiated in both branches, the condition broadcast over rows and a branch
/// broadcast from a scalar; and its values.
#[test]
fn where_picks_and_routes_gradients() {
    let condition = int64(&[1, 0, 1], &[3]);
    Check::new("Where")
        .fixed(condition.clone())
        .uniform(&[2, 3], -1.0, 1.0)
        .uniform(&[2, 3], -1.0, 1.0)
        .dims(&[2, 3])
        .run();
    Check::new("Where")
        .fixed(int64(&[1, 0, 0, 1], &[2, 2]))
        .uniform(&[2, 2], -1.0, 1.0)
        .uniform(&[1], -1.0, 1.0)
        .dims(&[2, 2])
        .run();
    let y = Check::new("Where")
        .fixed(condition)
        .values(&[3], vec![1.0, 2.0, 3.0])
        .values(&[1], vec![-9.0])
        .outputs();
    assert_close(&to_f64(&y[0]), &[1.0, -9.0, 3.0], 0.0, "Where forward");
}

/// `Max` and `Min` of two and three broadcast inputs: the gradient goes to the input that
/// holds the extreme.
#[test]
fn max_and_min_of_several_inputs() {
    for op in ["Max", "Min"] {
        Check::new(op)
            .uniform(&[3, 4], -1.0, 1.0)
            .uniform(&[4], -1.0, 1.0)
            .dims(&[3, 4])
            .run();
        Check::new(op)
            .uniform(&[2, 3], -1.0, 1.0)
            .uniform(&[2, 3], -1.0, 1.0)
            .uniform(&[1, 3], -1.0, 1.0)
            .run();
    }
    let y = Check::new("Max")
        .fixed(int64(&[1, 7], &[2]))
        .fixed(int64(&[4], &[1]))
        .outputs();
    assert_eq!(to_i64(&y[0]), [4, 7]);
}

/// `ReduceMax` and `ReduceMin` over attribute and input axes, kept and dropped.
#[test]
fn reduce_max_and_min() {
    for op in ["ReduceMax", "ReduceMin"] {
        Check::new(op)
            .ints("axes", &[1])
            .uniform(&[2, 5, 3], -1.0, 1.0)
            .dims(&[2, 1, 3])
            .run();
        Check::new(op)
            .int("keepdims", 0)
            .uniform(&[2, 5, 3], -1.0, 1.0)
            .int64(&[0, 2])
            .dims(&[5])
            .run();
    }
    let y = Check::new("ReduceMax")
        .int("keepdims", 0)
        .values(&[2, 2], vec![1.0, 4.0, 3.0, 2.0])
        .int64(&[1])
        .outputs();
    assert_close(&to_f64(&y[0]), &[4.0, 3.0], 0.0, "ReduceMax forward");
}

/// `GatherElements` along both axes, with negative and repeated indices (whose gradients add
/// up) and indices smaller than the data on the other axis.
#[test]
fn gather_elements() {
    Check::new("GatherElements")
        .int("axis", 1)
        .uniform(&[3, 4], -1.0, 1.0)
        .fixed(int64(&[0, -1, 1, 1, 2, 0], &[3, 2]))
        .dims(&[3, 2])
        .run();
    Check::new("GatherElements")
        .uniform(&[3, 4], -1.0, 1.0)
        .fixed(int64(&[2, 0, 1], &[1, 3]))
        .dims(&[1, 3])
        .run();
    let y = Check::new("GatherElements")
        .int("axis", 1)
        .values(&[2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
        .fixed(int64(&[2, 0, -1, 1], &[2, 2]))
        .outputs();
    assert_close(
        &to_f64(&y[0]),
        &[3.0, 1.0, 6.0, 5.0],
        0.0,
        "GatherElements forward",
    );
}

/// `GatherND` of whole rows, of single elements, and with a batch axis.
#[test]
fn gather_nd() {
    Check::new("GatherND")
        .uniform(&[3, 4], -1.0, 1.0)
        .fixed(int64(&[2, 0, 2], &[3, 1]))
        .dims(&[3, 4])
        .run();
    Check::new("GatherND")
        .uniform(&[2, 3, 4], -1.0, 1.0)
        .fixed(int64(&[0, 1, 1, -1], &[2, 2]))
        .dims(&[2, 4])
        .run();
    Check::new("GatherND")
        .int("batch_dims", 1)
        .uniform(&[2, 3, 4], -1.0, 1.0)
        .fixed(int64(&[2, 0], &[2, 1]))
        .dims(&[2, 4])
        .run();
    let y = Check::new("GatherND")
        .int("batch_dims", 1)
        .values(&[2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
        .fixed(int64(&[2, 0], &[2, 1]))
        .outputs();
    assert_close(&to_f64(&y[0]), &[3.0, 4.0], 0.0, "GatherND forward");
}

/// `Split` into three outputs by sizes (input) and into equal parts, each part differentiated.
#[test]
fn split() {
    Check::new("Split")
        .int("axis", 1)
        .uniform(&[2, 4], -1.0, 1.0)
        .int64(&[1, 2, 1])
        .dims(&[2, 1])
        .run();
    Check::new("Split")
        .uniform(&[6, 2], -1.0, 1.0)
        .dims(&[2, 2])
        .run();
    let parts = Check::new("Split")
        .values(&[7], (0..7).map(f64::from).collect())
        .outputs();
    let sizes: Vec<usize> = parts.iter().map(|part| part.elem_count()).collect();
    assert_eq!(sizes, [3, 3, 1], "opset 18: the last part is the smaller");
}

/// `Range` of integers and of floats, and an empty one.
#[test]
fn range() {
    let scalar = |value: i64| int64(&[value], &[]);
    let y = Check::new("Range")
        .fixed(scalar(2))
        .fixed(scalar(9))
        .fixed(scalar(3))
        .outputs();
    assert_eq!(to_i64(&y[0]), [2, 5, 8]);
    let y = Check::new("Range")
        .fixed(float64(&[1.0], &[]))
        .fixed(float64(&[0.0], &[]))
        .fixed(float64(&[-0.25], &[]))
        .outputs();
    assert_close(&to_f64(&y[0]), &[1.0, 0.75, 0.5, 0.25], 1e-6, "Range");
    let y = Check::new("Range")
        .fixed(scalar(5))
        .fixed(scalar(1))
        .fixed(scalar(1))
        .outputs();
    assert_eq!(y[0].elem_count(), 0);
}

/// `Pad` in every mode, with negative pads (cropping), an `axes` input and the attribute form
/// of opset 2.
#[test]
fn pad_modes() {
    for mode in ["constant", "edge", "reflect", "wrap"] {
        Check::new("Pad")
            .string("mode", mode)
            .uniform(&[2, 4], -1.0, 1.0)
            .int64(&[1, 2, 0, 1])
            .dims(&[3, 7])
            .run();
    }
    Check::new("Pad")
        .uniform(&[2, 3, 4], -1.0, 1.0)
        .int64(&[1, -1, 2, 0])
        .fixed(float64(&[0.5], &[]))
        .int64(&[2, 1])
        .dims(&[2, 2, 7])
        .run();
    Check::new("Pad")
        .opset(2)
        .ints("pads", &[0, 1, 0, 1])
        .float("value", 2.0)
        .uniform(&[2, 2], -1.0, 1.0)
        .dims(&[2, 4])
        .run();
    let y = Check::new("Pad")
        .string("mode", "reflect")
        .values(&[3], vec![1.0, 2.0, 3.0])
        .int64(&[2, 1])
        .outputs();
    assert_close(
        &to_f64(&y[0]),
        &[3.0, 2.0, 1.0, 2.0, 3.0, 2.0],
        0.0,
        "Pad reflect",
    );
}

/// `BatchNormalization` in training mode: the gradient of the output through the batch's
/// statistics (all three float inputs that learn), and the running statistics it returns.
#[test]
fn batch_normalization_training_mode() {
    for dims in [&[4, 3, 2][..], &[3, 2, 2, 2], &[5, 3]] {
        let channels = dims[1];
        Check::new("BatchNormalization")
            .int("training_mode", 1)
            .float("epsilon", 1e-3)
            .uniform(dims, -2.0, 2.0)
            .uniform(&[channels], 0.5, 1.5)
            .uniform(&[channels], -0.5, 0.5)
            .uniform(&[channels], -0.5, 0.5)
            .uniform(&[channels], 0.5, 1.5)
            .in_f32()
            .differentiating_outputs(1)
            .dims(dims)
            .run();
    }
    let y = Check::new("BatchNormalization")
        .int("training_mode", 1)
        .float("epsilon", 0.0)
        .float("momentum", 0.75)
        .values(&[2, 1, 2], vec![1.0, 3.0, 5.0, 7.0])
        .values(&[1], vec![2.0])
        .values(&[1], vec![1.0])
        .values(&[1], vec![0.0])
        .values(&[1], vec![1.0])
        .in_f32()
        .outputs();
    // Batch mean 4, population variance 5: (x − 4)/√5 · 2 + 1; running mean 0.75·0 + 0.25·4,
    // running variance 0.75·1 + 0.25·5.
    let root = 5f64.sqrt();
    let expected: Vec<f64> = [1.0, 3.0, 5.0, 7.0]
        .iter()
        .map(|x| (x - 4.0) / root * 2.0 + 1.0)
        .collect();
    assert_close(&to_f64(&y[0]), &expected, 1e-5, "normalised");
    assert_close(&to_f64(&y[1]), &[1.0], 1e-6, "running mean");
    assert_close(&to_f64(&y[2]), &[2.0], 1e-6, "running variance");
}
