//! Layer normalisation as one operation with a hand-written gradient. Composed of candle's
//! primitives it takes about ten passes over the activations forward and twenty backward,
//! each allocating; this takes one forward and one backward.

use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor};

use crate::ops::elementary::{sum_by, sum_by_pairs};
use crate::storage::{run_kernel, run_kernel_on, Kernel, Real};

/// Normalises each row of `width` trailing elements of `x` to zero mean and unit variance,
/// then scales by `scale` and shifts by `bias` (both `[width]`).
pub fn layer_norm(
    x: &Tensor,
    scale: &Tensor,
    bias: &Tensor,
    width: usize,
    epsilon: f64,
) -> candle_core::Result<Tensor> {
    if !x.device().is_cpu() {
        return composed_layer_norm(x, scale, bias, width, epsilon);
    }
    x.contiguous()?.apply_op3(
        &scale.contiguous()?,
        &bias.contiguous()?,
        LayerNorm { width, epsilon },
    )
}

/// The same normalisation composed of candle operations, for devices the hand-written kernel
/// does not run on.
fn composed_layer_norm(
    x: &Tensor,
    scale: &Tensor,
    bias: &Tensor,
    width: usize,
    epsilon: f64,
) -> candle_core::Result<Tensor> {
    let rows = x.reshape(((), width))?;
    let centred = rows.broadcast_sub(&rows.mean_keepdim(1)?)?;
    let spread = (centred.sqr()?.mean_keepdim(1)? + epsilon)?.sqrt()?;
    centred
        .broadcast_div(&spread)?
        .broadcast_mul(scale)?
        .broadcast_add(bias)?
        .reshape(x.shape())
}

#[derive(Clone, Copy)]
struct LayerNorm {
    width: usize,
    epsilon: f64,
}

/// Mean and 1/√(variance + ε) of one row, in the row's own precision (as PyTorch computes a
/// float32 layer norm): float64 arithmetic would not vectorise and made this operator half
/// the cost of the dense layers around it.
#[inline(always)]
fn moments<T: Real>(row: &[T], epsilon: T) -> (T, T) {
    let count = T::from(row.len()).expect("a row length is a number");
    let mean = sum_by(row, |v| v) / count;
    let variance = sum_by(row, |v| (v - mean) * (v - mean)) / count;
    (mean, (variance + epsilon).sqrt().recip())
}

impl LayerNorm {
    fn epsilon<T: Real>(&self) -> T {
        T::from(self.epsilon).expect("ε is a number")
    }

    #[inline(always)]
    fn forward<T: Real>(&self, x: &[T], scale: &[T], bias: &[T]) -> Vec<T> {
        let mut y = Vec::with_capacity(x.len());
        for row in x.chunks(self.width) {
            let (mean, inverse) = moments(row, self.epsilon());
            y.extend(
                row.iter()
                    .zip(scale)
                    .zip(bias)
                    .map(|((&v, &s), &b)| (v - mean) * inverse * s + b),
            );
        }
        y
    }

    /// The gradients of `x`, `scale` and `bias` from the output's gradient `grad`.
    #[inline(always)]
    fn backward<T: Real>(&self, x: &[T], scale: &[T], grad: &[T]) -> [Vec<T>; 3] {
        let width = self.width;
        let count = T::from(width).expect("a row length is a number");
        // Room for the scale's and the bias's gradients after it (see `LayerNormGradient`).
        let mut dx = Vec::with_capacity(x.len() + 2 * width);
        let mut dscale = vec![T::zero(); width];
        let mut dbias = vec![T::zero(); width];
        let mut normalised = vec![T::zero(); width];
        let mut scaled = vec![T::zero(); width];
        for (row, dy) in x.chunks(width).zip(grad.chunks(width)) {
            let (mean, inverse) = moments(row, self.epsilon());
            // Zipped slices, not indices: the bounds checks kept this loop from vectorising.
            let columns = normalised
                .iter_mut()
                .zip(scaled.iter_mut())
                .zip(dscale.iter_mut().zip(dbias.iter_mut()))
                .zip(row.iter().zip(dy).zip(scale));
            for (((n, s), (ds, db)), ((&v, &d), &gamma)) in columns {
                *n = (v - mean) * inverse;
                *s = d * gamma;
                *ds += d * *n;
                *db += d;
            }
            let mean_scaled = sum_by(&scaled, |v| v) / count;
            let mean_dot = sum_by_pairs(&scaled, &normalised, |s, n| s * n) / count;
            dx.extend(
                scaled
                    .iter()
                    .zip(&normalised)
                    .map(|(&s, &n)| inverse * (s - mean_scaled - n * mean_dot)),
            );
        }
        [dx, dscale, dbias]
    }

    /// The gradients of `x`, `scale` and `bias`, read where the tensors lie.
    fn gradients(
        &self,
        x: &Tensor,
        scale: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (count, width) = (x.elem_count(), self.width);
        let (values, scale, grad) = (x.contiguous()?, scale.contiguous()?, grad.contiguous()?);
        let all = run_kernel_on(
            &LayerNormGradient(*self),
            &[&values, &scale, &grad],
            count + 2 * width,
        )?;
        Ok((
            Some(all.narrow(0, 0, count)?.reshape(x.shape())?),
            Some(all.narrow(0, count, width)?),
            Some(all.narrow(0, count + width, width)?),
        ))
    }
}

/// The backward pass: the gradients of `x`, `scale` and `bias`, one after the other.
struct LayerNormGradient(LayerNorm);

impl Kernel for LayerNormGradient {
    const NAME: &'static str = "layer normalisation's gradient";

    #[inline(always)]
    fn run<T: Real>(&self, values: &[&[T]]) -> candle_core::Result<Vec<T>> {
        let &[x, scale, grad] = values else {
            candle_core::bail!(
                "layer normalisation's gradient takes x, the scale and the gradient"
            );
        };
        let [mut all, dscale, dbias] = self.0.backward(x, scale, grad);
        all.extend(dscale);
        all.extend(dbias);
        Ok(all)
    }
}

impl Kernel for LayerNorm {
    const NAME: &'static str = "layer normalisation";

    #[inline(always)]
    fn run<T: Real>(&self, values: &[&[T]]) -> candle_core::Result<Vec<T>> {
        let &[x, scale, bias] = values else {
            candle_core::bail!("layer normalisation takes three tensors");
        };
        Ok(self.forward(x, scale, bias))
    }
}

impl CustomOp3 for LayerNorm {
    fn name(&self) -> &'static str {
        "layer-norm"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        scale: &CpuStorage,
        scale_layout: &Layout,
        bias: &CpuStorage,
        bias_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let y = run_kernel(
            self,
            &[(x, x_layout), (scale, scale_layout), (bias, bias_layout)],
        )?;
        Ok((y, x_layout.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        scale: &Tensor,
        _bias: &Tensor,
        _y: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        self.gradients(x, scale, grad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::largest_difference;
    use candle_core::Device;

    /// The composed form other devices use computes what the CPU kernel computes.
    #[test]
    fn composed_form_matches_the_kernel() {
        let values: Vec<f32> = (0..24).map(|i| ((i * 7) % 11) as f32 * 0.3 - 1.0).collect();
        let x = Tensor::from_vec(values, (2, 3, 4), &Device::Cpu).unwrap();
        let scale = Tensor::new(&[1.0f32, 0.5, -2.0, 1.5], &Device::Cpu).unwrap();
        let bias = Tensor::new(&[0.0f32, 0.1, 0.2, -0.3], &Device::Cpu).unwrap();
        let kernel = layer_norm(&x, &scale, &bias, 4, 1e-5).unwrap();
        let composed = composed_layer_norm(&x, &scale, &bias, 4, 1e-5).unwrap();
        let difference = largest_difference(&kernel, &composed);
        assert!(difference < 1e-5, "{difference}");
    }
}
