//! Optimisers for the trainable graph: AdamW and SGD with momentum, a learning-rate schedule,
//! and clipping of the global gradient norm. Deterministic: no randomness is involved.

use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, Device, InplaceOp1, Layout, Tensor, Var, WithDType};

use super::storage::{self, span, widest, Wide};
use crate::{Error, Result};

/// The update rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OptimizerKind {
    /// Adam with decoupled weight decay (Loshchilov & Hutter).
    AdamW {
        /// First-moment decay (0.9).
        beta1: f64,
        /// Second-moment decay (0.999).
        beta2: f64,
        /// Denominator floor (1e-8).
        epsilon: f64,
        /// Decoupled weight decay (0.01 in PyTorch's AdamW; 0 makes it Adam).
        weight_decay: f64,
    },
    /// Stochastic gradient descent with (heavy-ball) momentum.
    Sgd {
        /// Momentum (0 for plain SGD).
        momentum: f64,
        /// L2 weight decay added to the gradient.
        weight_decay: f64,
    },
}

impl OptimizerKind {
    /// Adam as PyTorch's `torch.optim.Adam` defaults (no weight decay).
    pub const ADAM: OptimizerKind = OptimizerKind::AdamW {
        beta1: 0.9,
        beta2: 0.999,
        epsilon: 1e-8,
        weight_decay: 0.0,
    };
}

/// How the learning rate changes over the steps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Schedule {
    /// The base rate throughout.
    Constant,
    /// Linear warm-up over `warmup` steps, then the base rate.
    Warmup {
        /// Steps of linear warm-up.
        warmup: usize,
    },
    /// Linear warm-up over `warmup` steps, then cosine decay to zero at `total` steps.
    WarmupCosine {
        /// Steps of linear warm-up.
        warmup: usize,
        /// Total steps.
        total: usize,
    },
}

/// Everything an optimiser is configured with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OptimizerOptions {
    /// The update rule.
    pub kind: OptimizerKind,
    /// Base learning rate.
    pub learning_rate: f64,
    /// The schedule.
    pub schedule: Schedule,
    /// Scale gradients down so their global L2 norm is at most this.
    pub clip_norm: Option<f64>,
}

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct StepReport {
    /// Learning rate used.
    pub learning_rate: f64,
    /// Global gradient norm before clipping.
    pub gradient_norm: f64,
}

/// An optimiser over a fixed list of variables.
pub struct Optimizer {
    options: OptimizerOptions,
    variables: Vec<Var>,
    rate_scales: Vec<f64>,
    moments: Vec<Moments>,
    averaging: Option<Averaging>,
    steps: usize,
}

/// The running average of the variables' values: its decay per step, and the step after
/// which it starts.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Averaging {
    decay: f64,
    from_step: usize,
}

/// The optimiser's state for one variable, as plain vectors (empty until its first gradient):
/// Adam's first and second moments, or SGD's velocity in `first`; with averaging, the running
/// average of the variable's values after each averaged step, and how many steps it holds.
/// Kept and updated in float32, as PyTorch keeps it for float32 weights: the update reads and
/// writes every value of the state once a step, and in float64 it moved twice the memory.
#[derive(Default)]
struct Moments {
    first: Vec<f32>,
    second: Vec<f32>,
    average: Vec<f32>,
    averaged_steps: i32,
}

/// What a candle error of the optimiser is reported as.
const OPTIMISER_STEP: &str = "optimiser step failed";

impl Optimizer {
    /// An optimiser for `variables`.
    pub fn new(variables: Vec<Var>, options: OptimizerOptions) -> Self {
        let count = variables.len();
        Self {
            options,
            variables,
            rate_scales: vec![1.0; count],
            moments: (0..count).map(|_| Moments::default()).collect(),
            averaging: None,
            steps: 0,
        }
    }

    /// Keeps an exponential moving average of every variable's values over the steps after
    /// `from_step`, with `decay` per step (bias-corrected, so it holds only those steps), to be
    /// put in place by [`use_averages`](Self::use_averages). The average of the last
    /// ~1/(1−decay) steps lands nearer the minimum than the last, noisy step does (Polyak
    /// averaging).
    pub fn with_averaging(mut self, decay: f64, from_step: usize) -> Result<Self> {
        if !(0.0..1.0).contains(&decay) {
            return Err(Error::InvalidOption(format!(
                "the weight-averaging decay must lie in [0, 1), not {decay}"
            )));
        }
        self.averaging = Some(Averaging { decay, from_step });
        Ok(self)
    }

    /// Replaces every variable's values by its running average (see
    /// [`with_averaging`](Self::with_averaging)) over the averaged steps that updated it;
    /// variables no averaged step updated, and every variable when averaging is off, keep their
    /// values.
    pub fn use_averages(&self) -> Result<()> {
        let Some(Averaging { decay, .. }) = self.averaging else {
            return Ok(());
        };
        for (variable, moments) in self.variables.iter().zip(&self.moments) {
            if moments.averaged_steps == 0 {
                continue;
            }
            let correction = (1.0 / (1.0 - decay.powi(moments.averaged_steps))) as f32;
            let tensor = variable.as_tensor();
            let values: Vec<f32> = moments.average.iter().map(|v| v * correction).collect();
            let averaged = Tensor::from_vec(values, tensor.shape(), tensor.device())
                .and_then(|average| average.to_dtype(tensor.dtype()))
                .map_err(Error::compute(OPTIMISER_STEP))?;
            variable
                .set(&averaged)
                .map_err(Error::compute(OPTIMISER_STEP))?;
        }
        Ok(())
    }

    /// Backs off from a state the caller has put back: multiplies the base learning rate by
    /// `factor` for every later step (the schedule's shape is kept) and restarts the weight
    /// average from the next step, so that it holds none of the steps before.
    pub fn back_off(&mut self, factor: f64) {
        self.options.learning_rate *= factor;
        for moments in &mut self.moments {
            moments.average.clear();
            moments.averaged_steps = 0;
        }
    }

    /// Multiplies each variable's learning rate by its entry of `scales`, given in the order of
    /// the variables passed to [`new`](Self::new): a table whose rows move only when their
    /// index is read (an embedding) may need a larger rate than the dense weights.
    pub fn with_rate_scales(mut self, scales: Vec<f64>) -> Result<Self> {
        if scales.len() != self.variables.len() {
            return Err(Error::InvalidOption(format!(
                "{} learning-rate scales for {} variables",
                scales.len(),
                self.variables.len()
            )));
        }
        if let Some(bad) = scales
            .iter()
            .find(|scale| !(scale.is_finite() && **scale > 0.0))
        {
            return Err(Error::InvalidOption(format!(
                "a learning-rate scale must be a positive number, not {bad}"
            )));
        }
        self.rate_scales = scales;
        Ok(self)
    }

    /// The learning rate of the next step.
    pub fn learning_rate(&self) -> f64 {
        let base = self.options.learning_rate;
        let step = self.steps as f64;
        let warming = |warmup: usize| base * (step + 1.0) / warmup as f64;
        match self.options.schedule {
            Schedule::Constant => base,
            Schedule::Warmup { warmup } if self.steps < warmup => warming(warmup),
            Schedule::Warmup { .. } => base,
            Schedule::WarmupCosine { warmup, total } => {
                if self.steps < warmup {
                    warming(warmup)
                } else {
                    let span = total.saturating_sub(warmup).max(1) as f64;
                    let progress = ((step - warmup as f64) / span).min(1.0);
                    base * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
                }
            }
        }
    }

    /// Applies one update from `gradients` (variables without a gradient are left alone).
    pub fn step(&mut self, gradients: &GradStore) -> Result<StepReport> {
        let learning_rate = self.learning_rate();
        // Gradients carry the backward graph, which references every activation of the step;
        // only their values are kept, on the CPU where the update runs.
        let grads: Vec<Option<Tensor>> = self
            .variables
            .iter()
            .map(|var| {
                gradients
                    .get(var.as_tensor())
                    .map(|grad| grad.detach().to_device(&Device::Cpu)?.contiguous())
                    .transpose()
            })
            .collect::<candle_core::Result<_>>()
            .map_err(Error::compute(OPTIMISER_STEP))?;
        let mut squared = 0.0;
        for grad in grads.iter().flatten() {
            squared += on_cpu(grad, |gradient, layout| match gradient {
                CpuStorage::F32(_) => sum_of_squares::<f32>(gradient, layout),
                _ => sum_of_squares::<f64>(gradient, layout),
            })?;
        }
        let gradient_norm = squared.sqrt();
        if !gradient_norm.is_finite() {
            return Err(Error::Diverged(format!(
                "the gradient norm is {gradient_norm}; lower the learning rate or clip gradients"
            )));
        }
        let gradient_scale = match self.options.clip_norm {
            Some(limit) if gradient_norm > limit => limit / gradient_norm,
            _ => 1.0,
        };
        self.steps += 1;
        for (index, grad) in grads.iter().enumerate() {
            let Some(grad) = grad else { continue };
            on_cpu(grad, |gradient, layout| {
                let update = Update {
                    kind: self.options.kind,
                    learning_rate: learning_rate * self.rate_scales[index],
                    gradient_scale,
                    step: self.steps as i32,
                    gradient: (gradient, layout),
                    averaging: self
                        .averaging
                        .filter(|averaging| self.steps > averaging.from_step)
                        .map(|averaging| averaging.decay),
                    moments: std::cell::RefCell::new(&mut self.moments[index]),
                };
                update_in_place(&self.variables[index], &update)
            })?;
        }
        Ok(StepReport {
            learning_rate,
            gradient_norm,
        })
    }
}

/// One variable's update, applied to its values in place in a single pass that also advances
/// its moments (composed of tensor operations it took a dozen passes, each allocating).
struct Update<'a> {
    kind: OptimizerKind,
    learning_rate: f64,
    gradient_scale: f64,
    step: i32,
    gradient: (&'a CpuStorage, &'a Layout),
    /// The decay of the running average, when this step is averaged.
    averaging: Option<f64>,
    moments: std::cell::RefCell<&'a mut Moments>,
}

/// Runs `f` on a tensor's values, which must be on the CPU (the gradients are moved there).
fn on_cpu<R>(
    tensor: &Tensor,
    f: impl FnOnce(&CpuStorage, &Layout) -> candle_core::Result<R>,
) -> Result<R> {
    let (storage, layout) = tensor.storage_and_layout();
    match &*storage {
        candle_core::Storage::Cpu(storage) => {
            f(storage, layout).map_err(Error::compute(OPTIMISER_STEP))
        }
        _ => Err(Error::Device {
            device: format!("{:?}", tensor.device()),
            message: "the optimiser reads gradients from the CPU".into(),
        }),
    }
}

/// Applies `update` to a variable's values: in place on the CPU; on another device, to a CPU
/// copy that then replaces the variable's values, so every device runs the same arithmetic.
fn update_in_place(variable: &Var, update: &Update<'_>) -> candle_core::Result<()> {
    let values = variable.as_tensor();
    if values.device().is_cpu() {
        return values.inplace_op1(update);
    }
    let copy = values.to_device(&Device::Cpu)?.contiguous()?;
    copy.inplace_op1(update)?;
    variable.set(&copy.to_device(values.device())?)
}

fn sum_of_squares<T: WithDType>(
    gradient: &CpuStorage,
    layout: &Layout,
) -> candle_core::Result<f64> {
    Ok(storage::values::<T>((gradient, layout), "optimiser")?
        .iter()
        .map(|value| value.to_f64().powi(2))
        .sum())
}

impl Update<'_> {
    #[inline(always)]
    fn apply<T: WithDType>(&self, values: &mut [T]) -> candle_core::Result<()> {
        let gradient = storage::values::<T>(self.gradient, "optimiser")?;
        if gradient.len() != values.len() {
            candle_core::bail!(
                "a gradient of {} values for a variable of {}",
                gradient.len(),
                values.len()
            );
        }
        let mut moments = self.moments.borrow_mut();
        let Moments {
            first,
            second,
            average,
            averaged_steps,
        } = &mut **moments;
        first.resize(values.len(), 0.0);
        let rate = self.learning_rate;
        match self.kind {
            OptimizerKind::AdamW {
                beta1,
                beta2,
                epsilon,
                weight_decay,
            } => {
                second.resize(values.len(), 0.0);
                let first_correction = (1.0 / (1.0 - beta1.powi(self.step))) as f32;
                let second_correction = (1.0 / (1.0 - beta2.powi(self.step))) as f32;
                let decay = (1.0 - rate * weight_decay) as f32;
                let (beta1, beta2, epsilon) = (beta1 as f32, beta2 as f32, epsilon as f32);
                let (rate, gradient_scale) = (rate as f32, self.gradient_scale as f32);
                for (((value, grad), m), v) in values
                    .iter_mut()
                    .zip(gradient)
                    .zip(first.iter_mut())
                    .zip(second.iter_mut())
                {
                    let grad = grad.to_f64() as f32 * gradient_scale;
                    *m = beta1 * *m + (1.0 - beta1) * grad;
                    *v = beta2 * *v + (1.0 - beta2) * grad * grad;
                    let step =
                        (*m * first_correction) / ((*v * second_correction).sqrt() + epsilon);
                    *value = T::from_f64(f64::from(value.to_f64() as f32 * decay - rate * step));
                }
            }
            OptimizerKind::Sgd {
                momentum,
                weight_decay,
            } => {
                let (momentum, weight_decay) = (momentum as f32, weight_decay as f32);
                let (rate, gradient_scale) = (rate as f32, self.gradient_scale as f32);
                for ((value, grad), velocity) in
                    values.iter_mut().zip(gradient).zip(first.iter_mut())
                {
                    let weight = value.to_f64() as f32;
                    let grad = grad.to_f64() as f32 * gradient_scale + weight_decay * weight;
                    *velocity = if momentum != 0.0 && self.step > 1 {
                        momentum * *velocity + grad
                    } else {
                        grad
                    };
                    *value = T::from_f64(f64::from(weight - rate * *velocity));
                }
            }
        }
        if let Some(decay) = self.averaging {
            average.resize(values.len(), 0.0);
            for (mean, value) in average.iter_mut().zip(values.iter()) {
                *mean = decay as f32 * *mean + (1.0 - decay) as f32 * value.to_f64() as f32;
            }
            *averaged_steps += 1;
        }
        Ok(())
    }
}

/// An update applied to a variable's values, as wide as the processor allows.
struct Apply<'u, 'o, 'v, T>(&'u Update<'o>, &'v mut [T]);

impl<T: WithDType> Wide for Apply<'_, '_, '_, T> {
    type Output = candle_core::Result<()>;

    #[inline(always)]
    fn run(self) -> Self::Output {
        self.0.apply(self.1)
    }
}

impl InplaceOp1 for Update<'_> {
    fn name(&self) -> &'static str {
        "optimiser-update"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> candle_core::Result<()> {
        let (start, end) = span(layout, "optimiser")?;
        match storage {
            CpuStorage::F32(values) => widest(Apply(self, &mut values[start..end])),
            CpuStorage::F64(values) => widest(Apply(self, &mut values[start..end])),
            _ => candle_core::bail!("the optimiser updates float32 or float64 variables"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Minimises ½‖x − 3‖² from x = 0 and returns x after `steps` steps.
    fn minimise(options: OptimizerOptions, steps: usize) -> f32 {
        let x = Var::from_tensor(&Tensor::zeros(4, candle_core::DType::F32, &Device::Cpu).unwrap())
            .unwrap();
        let mut optimizer = Optimizer::new(vec![x.clone()], options);
        for _ in 0..steps {
            let loss = x
                .as_tensor()
                .affine(1.0, -3.0)
                .unwrap()
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap()
                .affine(0.5, 0.0)
                .unwrap();
            optimizer.step(&loss.backward().unwrap()).unwrap();
        }
        x.as_tensor().to_vec1::<f32>().unwrap()[0]
    }

    fn options(kind: OptimizerKind, learning_rate: f64) -> OptimizerOptions {
        OptimizerOptions {
            kind,
            learning_rate,
            schedule: Schedule::Constant,
            clip_norm: None,
        }
    }

    #[test]
    fn adam_and_sgd_with_momentum_converge() {
        assert!((minimise(options(OptimizerKind::ADAM, 0.1), 300) - 3.0).abs() < 1e-2);
        let sgd = OptimizerKind::Sgd {
            momentum: 0.9,
            weight_decay: 0.0,
        };
        assert!((minimise(options(sgd, 0.05), 300) - 3.0).abs() < 1e-3);
    }

    #[test]
    fn the_first_adam_step_moves_each_weight_by_the_learning_rate() {
        // Bias-corrected Adam's first step is lr · g / (|g| + ε) ≈ lr in the gradient's sign.
        let x = minimise(options(OptimizerKind::ADAM, 0.01), 1);
        assert!((x - 0.01).abs() < 1e-6, "{x}");
    }

    #[test]
    fn each_variable_moves_by_its_scaled_rate() {
        let zeros = || {
            Var::from_tensor(&Tensor::zeros(2, candle_core::DType::F32, &Device::Cpu).unwrap())
                .unwrap()
        };
        let (dense, table) = (zeros(), zeros());
        let mut optimizer = Optimizer::new(
            vec![dense.clone(), table.clone()],
            options(OptimizerKind::ADAM, 0.01),
        )
        .with_rate_scales(vec![1.0, 30.0])
        .unwrap();
        let loss = (dense.as_tensor().sum_all().unwrap() + table.as_tensor().sum_all().unwrap())
            .unwrap()
            .neg()
            .unwrap();
        optimizer.step(&loss.backward().unwrap()).unwrap();
        let moved = |var: &Var| var.as_tensor().to_vec1::<f32>().unwrap()[0];
        assert!((moved(&dense) - 0.01).abs() < 1e-6);
        assert!((moved(&table) - 0.3).abs() < 1e-5);
        assert!(
            Optimizer::new(vec![zeros()], options(OptimizerKind::ADAM, 0.01))
                .with_rate_scales(vec![1.0, 2.0])
                .is_err()
        );
        assert!(
            Optimizer::new(vec![zeros()], options(OptimizerKind::ADAM, 0.01))
                .with_rate_scales(vec![0.0])
                .is_err()
        );
    }

    #[test]
    fn averaging_puts_the_mean_of_the_averaged_steps_in_place() {
        let plain = OptimizerKind::Sgd {
            momentum: 0.0,
            weight_decay: 0.0,
        };
        let zero = || {
            Var::from_tensor(&Tensor::zeros(1, candle_core::DType::F32, &Device::Cpu).unwrap())
                .unwrap()
        };
        // Returns x, which has a gradient of −1 at every step (its value after step t is t),
        // and y, which has one only at step 3.
        let run = |averaging: Option<(f64, usize)>| {
            let (x, y) = (zero(), zero());
            let mut optimizer = Optimizer::new(vec![x.clone(), y.clone()], options(plain, 1.0));
            if let Some((decay, from_step)) = averaging {
                optimizer = optimizer.with_averaging(decay, from_step).unwrap();
            }
            for step in 1..=4 {
                let mut loss = x.as_tensor().sum_all().unwrap().neg().unwrap();
                if step == 3 {
                    loss = (loss - y.as_tensor().sum_all().unwrap()).unwrap();
                }
                optimizer.step(&loss.backward().unwrap()).unwrap();
            }
            optimizer.use_averages().unwrap();
            let value = |var: &Var| var.as_tensor().to_vec1::<f32>().unwrap()[0];
            (value(&x), value(&y))
        };
        assert_eq!(run(None), (4.0, 1.0));
        // Decay ½ over steps 3 and 4: (½·3 + 4)·½ / (1 − ¼) = 11/3; y's average holds step 3.
        let (x, y) = run(Some((0.5, 2)));
        assert!(
            (x - 11.0 / 3.0).abs() < 1e-6 && (y - 1.0).abs() < 1e-6,
            "{x} {y}"
        );
        // Decay 0 keeps only the last step.
        assert_eq!(run(Some((0.0, 0))), (4.0, 1.0));
        assert!(Optimizer::new(vec![zero()], options(plain, 1.0))
            .with_averaging(1.0, 0)
            .is_err());
    }

    #[test]
    fn clipping_bounds_the_step() {
        let plain = OptimizerKind::Sgd {
            momentum: 0.0,
            weight_decay: 0.0,
        };
        // The gradient is (−3, −3, −3, −3), norm 6; clipped to 0.6 it is a tenth.
        let clipped = OptimizerOptions {
            clip_norm: Some(0.6),
            ..options(plain, 1.0)
        };
        assert!((minimise(clipped, 1) - 0.3).abs() < 1e-6);
        assert!((minimise(options(plain, 1.0), 1) - 3.0).abs() < 1e-6);
    }

    #[test]
    fn warm_up_then_cosine_decay() {
        let x = Var::from_tensor(&Tensor::zeros(1, candle_core::DType::F32, &Device::Cpu).unwrap())
            .unwrap();
        let schedule = Schedule::WarmupCosine {
            warmup: 2,
            total: 6,
        };
        let mut optimizer = Optimizer::new(
            vec![x],
            OptimizerOptions {
                schedule,
                ..options(OptimizerKind::ADAM, 1.0)
            },
        );
        let mut rates = Vec::new();
        for _ in 0..6 {
            rates.push(optimizer.learning_rate());
            optimizer.steps += 1;
        }
        assert_eq!(rates[0], 0.5);
        assert_eq!(rates[1], 1.0);
        assert_eq!(rates[2], 1.0);
        assert!((rates[4] - 0.5).abs() < 1e-12);
        assert!(rates[5] < rates[4]);
    }

    #[test]
    fn warm_up_then_constant() {
        let x = Var::from_tensor(&Tensor::zeros(1, candle_core::DType::F32, &Device::Cpu).unwrap())
            .unwrap();
        let mut optimizer = Optimizer::new(
            vec![x],
            OptimizerOptions {
                schedule: Schedule::Warmup { warmup: 4 },
                ..options(OptimizerKind::ADAM, 2.0)
            },
        );
        let mut rates = Vec::new();
        for _ in 0..6 {
            rates.push(optimizer.learning_rate());
            optimizer.steps += 1;
        }
        assert_eq!(rates, [0.5, 1.0, 1.5, 2.0, 2.0, 2.0]);
    }
}
