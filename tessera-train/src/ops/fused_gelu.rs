//! The exact GELU, `x · Φ(x)`, as one operation with a hand-written gradient. Exporters spell it
//! as five element-wise nodes (`Div`, `Erf`, `Add`, `Mul`, `Mul`), which candle differentiates
//! with about twenty passes over the activations; this takes one pass forward and one back.

use candle_core::{CpuStorage, CustomOp1, CustomOp3, Layout, Shape, Tensor};

use crate::storage::{run_elementwise, run_kernel, Kernel, Real};

/// `x · Φ(x)` element by element, Φ being the standard normal distribution function.
pub fn gelu_erf(x: &Tensor) -> candle_core::Result<Tensor> {
    if !x.device().is_cpu() {
        return x.gelu_erf();
    }
    x.contiguous()?.apply_op1(Gelu)
}

/// The forward pass.
#[derive(Clone, Copy)]
struct Gelu;

/// The gradient: `∂y/∂x · grad` from `x`, `y` and `grad`.
#[derive(Clone, Copy)]
struct GeluGradient;

impl Kernel for Gelu {
    const NAME: &'static str = "GELU";

    #[inline(always)]
    fn run<T: Real>(&self, values: &[&[T]]) -> candle_core::Result<Vec<T>> {
        let &[x] = values else {
            candle_core::bail!("GELU takes one tensor");
        };
        let (half, root_half) = (
            T::from_f64(0.5),
            T::from_f64(std::f64::consts::FRAC_1_SQRT_2),
        );
        // Into a filled buffer, as the gradient below: collected, the loop stayed scalar.
        let mut y = vec![T::zero(); x.len()];
        for (out, &v) in y.iter_mut().zip(x) {
            *out = half * v * (T::one() + (v * root_half).erf());
        }
        Ok(y)
    }
}

impl Kernel for GeluGradient {
    const NAME: &'static str = "GELU's gradient";

    #[inline(always)]
    fn run<T: Real>(&self, values: &[&[T]]) -> candle_core::Result<Vec<T>> {
        let &[x, y, grad] = values else {
            candle_core::bail!("GELU's gradient takes three tensors");
        };
        let half = T::from_f64(0.5);
        let density = T::from_f64(1.0 / (2.0 * std::f64::consts::PI).sqrt());
        // Written into a filled buffer through zipped slices: collected from a zip of three
        // iterators, the loop did not vectorise.
        let mut dx = vec![T::zero(); x.len()];
        for (((d, &v), &out), &g) in dx.iter_mut().zip(x).zip(y).zip(grad) {
            // Φ(x) = y / x, read back from the output instead of a second erf.
            let ratio = out / v;
            let cumulative = if v == T::zero() { half } else { ratio };
            *d = g * (cumulative + v * density * (-half * v * v).exponential());
        }
        Ok(dx)
    }
}

impl CustomOp1 for Gelu {
    fn name(&self) -> &'static str {
        "gelu"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        run_elementwise(self, storage, layout)
    }

    fn bwd(&self, x: &Tensor, y: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(x.apply_op3_no_bwd(
            y,
            &grad.contiguous()?,
            &GeluGradient,
        )?))
    }
}

impl CustomOp3 for GeluGradient {
    fn name(&self) -> &'static str {
        "gelu-gradient"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        y: &CpuStorage,
        y_layout: &Layout,
        grad: &CpuStorage,
        grad_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let dx = run_kernel(self, &[(x, x_layout), (y, y_layout), (grad, grad_layout)])?;
        Ok((dx, x_layout.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::largest_difference;
    use candle_core::{Device, Var};

    /// Values and gradients equal candle's composed `gelu_erf`.
    #[test]
    fn matches_candle_values_and_gradients() {
        let values: Vec<f32> = (0..40).map(|i| i as f32 * 0.25 - 5.0).collect();
        let x = Var::from_vec(values, (4, 10), &Device::Cpu).unwrap();
        let fused = gelu_erf(x.as_tensor()).unwrap();
        let composed = x.as_tensor().gelu_erf().unwrap();
        assert!(largest_difference(&fused, &composed) < 1e-6);
        let weights = Tensor::arange(0f32, 40.0, &Device::Cpu)
            .unwrap()
            .reshape((4, 10))
            .unwrap();
        let gradient = |y: &Tensor| {
            let grads = (y * &weights)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            grads.get(x.as_tensor()).unwrap().clone()
        };
        assert!(largest_difference(&gradient(&fused), &gradient(&composed)) < 1e-4);
    }
}
