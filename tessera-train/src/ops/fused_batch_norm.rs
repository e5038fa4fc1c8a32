//! Batch normalisation as one operation with a hand-written gradient. Composed of candle's
//! primitives, each per-channel statistic and each broadcast's gradient is a reduction over
//! every axis but the channels, which candle runs element by element through strided
//! indices: in a MobileNetV2 that was most of a training step. This runs over the contiguous
//! `[N, C, positions]` values: one pass for the statistics, one forward, two backward.

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};

use crate::ops::elementary::{sum_by, sum_by_pairs};
use crate::storage::{run_kernel, run_kernel_on, Kernel, Real};

/// Where the mean and variance a batch normalisation divides by come from.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Statistics {
    /// The running statistics given (inference): constants to the gradient.
    Running,
    /// The batch's own, which the gradient flows through (training).
    Batch,
}

/// `x` (`[N, C, …]`) normalised per channel: `(x − mean) / √(variance + ε) · scale + bias`,
/// with the given running `mean` and `variance` or the batch's ([`Statistics`]). Returns the
/// output and the mean and (population) variance it used, each `[C]`.
pub fn batch_norm(
    x: &Tensor,
    [scale, bias, mean, variance]: [&Tensor; 4],
    statistics: Statistics,
    epsilon: f64,
) -> candle_core::Result<(Tensor, Tensor, Tensor)> {
    if !x.device().is_cpu() {
        return composed(x, [scale, bias, mean, variance], statistics, epsilon);
    }
    let (batch, channels) = (x.dim(0)?, x.dim(1)?);
    let geometry = Geometry {
        batch,
        channels,
        positions: x.elem_count() / (batch * channels).max(1),
    };
    let x = x.contiguous()?;
    let (mean, variance) = match statistics {
        Statistics::Running => (mean.flatten_all()?, variance.flatten_all()?),
        Statistics::Batch => {
            let moments = run_kernel_on(&Moments(geometry), &[&x.detach()], 2 * channels)?;
            (
                moments.narrow(0, 0, channels)?,
                moments.narrow(0, channels, channels)?,
            )
        }
    };
    let dtype = x.dtype();
    let per_channel = |t: &Tensor| t.flatten_all()?.to_dtype(dtype);
    let parameters = Tensor::stack(
        &[
            per_channel(scale)?,
            per_channel(bias)?,
            mean.to_dtype(dtype)?.detach(),
            variance.to_dtype(dtype)?.detach(),
        ],
        0,
    )?;
    let op = BatchNorm {
        geometry,
        epsilon,
        statistics,
    };
    Ok((x.apply_op2(&parameters, op)?, mean, variance))
}

/// [`batch_norm`] composed of candle operations, for devices the kernels do not run on.
fn composed(
    x: &Tensor,
    [scale, bias, mean, variance]: [&Tensor; 4],
    statistics: Statistics,
    epsilon: f64,
) -> candle_core::Result<(Tensor, Tensor, Tensor)> {
    let mut dims = vec![1usize; x.rank()];
    dims[1] = x.dim(1)?;
    let channel = |t: &Tensor| t.to_dtype(x.dtype())?.reshape(dims.as_slice());
    let (mean, variance) = match statistics {
        Statistics::Running => (channel(mean)?, channel(variance)?),
        Statistics::Batch => {
            let axes: Vec<usize> = (0..x.rank()).filter(|&a| a != 1).collect();
            let mean = x.mean_keepdim(axes.as_slice())?;
            let variance = x
                .broadcast_sub(&mean)?
                .sqr()?
                .mean_keepdim(axes.as_slice())?;
            (mean, variance)
        }
    };
    let y = x
        .broadcast_sub(&mean)?
        .broadcast_div(&variance.affine(1.0, epsilon)?.sqrt()?)?
        .broadcast_mul(&channel(scale)?)?
        .broadcast_add(&channel(bias)?)?;
    Ok((
        y,
        mean.detach().flatten_all()?,
        variance.detach().flatten_all()?,
    ))
}

/// The layout of the normalised values: `batch` blocks of `channels` runs of `positions`.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    batch: usize,
    channels: usize,
    positions: usize,
}

impl Geometry {
    /// The runs of `values` that belong to `channel`.
    fn runs<'v, T>(&self, values: &'v [T], channel: usize) -> impl Iterator<Item = &'v [T]> {
        let (channels, positions) = (self.channels, self.positions);
        (0..self.batch).map(move |n| {
            let start = (n * channels + channel) * positions;
            &values[start..start + positions]
        })
    }

    fn count<T: Real>(&self) -> T {
        T::from(self.batch * self.positions).expect("a count is a number")
    }
}

/// Each channel's mean, then each channel's population variance (`[2 · C]`).
struct Moments(Geometry);

impl Kernel for Moments {
    const NAME: &'static str = "batch statistics";

    #[inline(always)]
    fn run<T: Real>(&self, values: &[&[T]]) -> candle_core::Result<Vec<T>> {
        let &[x] = values else {
            candle_core::bail!("batch statistics take one tensor");
        };
        let geometry = self.0;
        let count = geometry.count::<T>();
        let mut moments = vec![T::zero(); 2 * geometry.channels];
        for c in 0..geometry.channels {
            let mean = geometry
                .runs(x, c)
                .fold(T::zero(), |total, run| total + sum_by(run, |v| v))
                / count;
            let variance = geometry.runs(x, c).fold(T::zero(), |total, run| {
                total + sum_by(run, |v| (v - mean) * (v - mean))
            }) / count;
            moments[c] = mean;
            moments[geometry.channels + c] = variance;
        }
        Ok(moments)
    }
}

#[derive(Clone, Copy)]
struct BatchNorm {
    geometry: Geometry,
    epsilon: f64,
    statistics: Statistics,
}

impl BatchNorm {
    /// Each channel's scale, bias, mean and 1/√(variance + ε).
    fn channel<T: Real>(&self, parameters: &[T], c: usize) -> (T, T, T, T) {
        let channels = self.geometry.channels;
        let epsilon = T::from(self.epsilon).expect("ε is a number");
        (
            parameters[c],
            parameters[channels + c],
            parameters[2 * channels + c],
            (parameters[3 * channels + c] + epsilon).sqrt().recip(),
        )
    }
}

impl Kernel for BatchNorm {
    const NAME: &'static str = "batch normalisation";

    #[inline(always)]
    fn run<T: Real>(&self, values: &[&[T]]) -> candle_core::Result<Vec<T>> {
        let &[x, parameters] = values else {
            candle_core::bail!("batch normalisation takes x and its parameters");
        };
        let geometry = self.geometry;
        let mut y = vec![T::zero(); x.len()];
        for (block, (input, output)) in x
            .chunks(geometry.positions.max(1))
            .zip(y.chunks_mut(geometry.positions.max(1)))
            .enumerate()
        {
            let (scale, bias, mean, inverse) = self.channel(parameters, block % geometry.channels);
            let (multiplier, shift) = (scale * inverse, bias - mean * scale * inverse);
            for (o, &v) in output.iter_mut().zip(input) {
                *o = v * multiplier + shift;
            }
        }
        Ok(y)
    }
}

/// The backward pass: the gradient of `x`, then of the parameters (`[4, C]`: scale, bias, and
/// zeros for the statistics, which learn nothing).
struct BatchNormGradient(BatchNorm);

impl Kernel for BatchNormGradient {
    const NAME: &'static str = "batch normalisation's gradient";

    #[inline(always)]
    fn run<T: Real>(&self, values: &[&[T]]) -> candle_core::Result<Vec<T>> {
        let &[x, parameters, grad] = values else {
            candle_core::bail!(
                "batch normalisation's gradient takes x, its parameters and the gradient"
            );
        };
        let op = &self.0;
        let geometry = op.geometry;
        let channels = geometry.channels;
        let count = geometry.count::<T>();
        let mut all = vec![T::zero(); x.len() + 4 * channels];
        let (dx, dparameters) = all.split_at_mut(x.len());
        for c in 0..channels {
            let (scale, _, mean, inverse) = op.channel(parameters, c);
            // Σ dy and Σ dy · x̂ over the channel's values.
            let (mut sum_dy, mut sum_dy_normalised) = (T::zero(), T::zero());
            for (run, dy) in geometry.runs(x, c).zip(geometry.runs(grad, c)) {
                sum_dy += sum_by(dy, |d| d);
                sum_dy_normalised += sum_by_pairs(run, dy, |v, d| d * (v - mean)) * inverse;
            }
            dparameters[c] = sum_dy_normalised;
            dparameters[channels + c] = sum_dy;
            let (mean_dy, mean_dy_normalised) = match op.statistics {
                Statistics::Running => (T::zero(), T::zero()),
                Statistics::Batch => (sum_dy / count, sum_dy_normalised / count),
            };
            let factor = scale * inverse;
            for n in 0..geometry.batch {
                let start = (n * channels + c) * geometry.positions;
                let range = start..start + geometry.positions;
                for ((out, &v), &d) in dx[range.clone()]
                    .iter_mut()
                    .zip(&x[range.clone()])
                    .zip(&grad[range])
                {
                    let normalised = (v - mean) * inverse;
                    *out = factor * (d - mean_dy - normalised * mean_dy_normalised);
                }
            }
        }
        Ok(all)
    }
}

impl CustomOp2 for BatchNorm {
    fn name(&self) -> &'static str {
        "batch-norm"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        parameters: &CpuStorage,
        parameters_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let y = run_kernel(self, &[(x, x_layout), (parameters, parameters_layout)])?;
        Ok((y, x_layout.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        parameters: &Tensor,
        _y: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let count = x.elem_count();
        let channels = self.geometry.channels;
        let (parameters, grad) = (parameters.contiguous()?, grad.contiguous()?);
        let all = run_kernel_on(
            &BatchNormGradient(*self),
            &[x, &parameters, &grad],
            count + 4 * channels,
        )?;
        Ok((
            Some(all.narrow(0, 0, count)?.reshape(x.shape())?),
            Some(all.narrow(0, count, 4 * channels)?.reshape((4, channels))?),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{largest_difference, weighted_gradients};
    use candle_core::{Device, Var};

    /// The composed form other devices use computes what the CPU kernels compute, forward and
    /// backward, in both modes.
    #[test]
    fn composed_form_matches_the_kernels() {
        let values: Vec<f32> = (0..48).map(|i| ((i * 7) % 11) as f32 * 0.3 - 1.0).collect();
        let x = Var::from_tensor(&Tensor::from_vec(values, (2, 3, 2, 4), &Device::Cpu).unwrap())
            .unwrap();
        let channel = |v: [f32; 3]| Var::from_tensor(&Tensor::new(&v, &Device::Cpu).unwrap());
        let scale = channel([1.0, 0.5, -2.0]).unwrap();
        let bias = channel([0.0, 0.1, 0.2]).unwrap();
        let mean = Tensor::new(&[0.1f32, -0.2, 0.3], &Device::Cpu).unwrap();
        let variance = Tensor::new(&[1.5f32, 0.5, 2.0], &Device::Cpu).unwrap();
        for statistics in [Statistics::Running, Statistics::Batch] {
            let (kernel, _, _) = batch_norm(
                x.as_tensor(),
                [scale.as_tensor(), bias.as_tensor(), &mean, &variance],
                statistics,
                1e-3,
            )
            .unwrap();
            let (reference, _, _) = composed(
                x.as_tensor(),
                [scale.as_tensor(), bias.as_tensor(), &mean, &variance],
                statistics,
                1e-3,
            )
            .unwrap();
            assert!(largest_difference(&kernel, &reference) < 1e-5);
            let of = [x.as_tensor(), scale.as_tensor(), bias.as_tensor()];
            let got = weighted_gradients(&kernel, &of);
            let expected = weighted_gradients(&reference, &of);
            for (g, e) in got.iter().zip(&expected) {
                let difference = largest_difference(g, e);
                assert!(difference < 1e-4, "{statistics:?}: {difference}");
            }
        }
    }
}
