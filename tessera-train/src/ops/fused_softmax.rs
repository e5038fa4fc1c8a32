//! Softmax along the last axis as one operation with a hand-written gradient. Composed of
//! candle operations (maximum, subtraction, exponential, sum, logarithm) it takes six passes
//! forward, each allocating, and more back; this takes one each way.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape, Tensor};

use crate::functional::log_softmax;
use crate::ops::elementary::{sum_by, sum_by_pairs};
use crate::storage::{run_elementwise, run_kernel, Kernel, Real};

/// `exp(x) / Σ exp(x)` over the last axis, stabilised by each row's maximum.
pub fn softmax_last(x: &Tensor) -> candle_core::Result<Tensor> {
    let width = x.dims().last().copied().unwrap_or(1);
    if !x.device().is_cpu() || width == 0 {
        return log_softmax(x, x.rank().saturating_sub(1))?.exp();
    }
    x.contiguous()?.apply_op1(Softmax { width })
}

/// The forward pass over rows of `width` values.
#[derive(Clone, Copy)]
struct Softmax {
    width: usize,
}

/// The gradient `y ⊙ (grad − Σ grad ⊙ y)` from `y` and `grad`, row by row.
#[derive(Clone, Copy)]
struct SoftmaxGradient {
    width: usize,
}

/// `row`'s softmax into `out` (of the same length), stabilised by the row's maximum.
#[inline(always)]
pub(crate) fn softmax_into<T: Real>(row: &[T], out: &mut [T]) {
    let largest = row
        .iter()
        .copied()
        .fold(T::neg_infinity(), num_traits::Float::max);
    for (out, &v) in out.iter_mut().zip(row) {
        *out = (v - largest).exponential();
    }
    let inverse = T::one() / sum_by(out, |v| v);
    out.iter_mut().for_each(|v| *v *= inverse);
}

/// The gradient of one row's softmax `y` from its output's gradient `grad`, into `out`.
#[inline(always)]
pub(crate) fn softmax_gradient_into<T: Real>(y: &[T], grad: &[T], out: &mut [T]) {
    let dot = sum_by_pairs(y, grad, |v, d| v * d);
    for ((out, &v), &d) in out.iter_mut().zip(y).zip(grad) {
        *out = v * (d - dot);
    }
}

impl Kernel for Softmax {
    const NAME: &'static str = "softmax";

    #[inline(always)]
    fn run<T: Real>(&self, values: &[&[T]]) -> candle_core::Result<Vec<T>> {
        let &[x] = values else {
            candle_core::bail!("softmax takes one tensor");
        };
        let mut y = vec![T::zero(); x.len()];
        for (row, out) in x.chunks(self.width).zip(y.chunks_mut(self.width)) {
            softmax_into(row, out);
        }
        Ok(y)
    }
}

impl Kernel for SoftmaxGradient {
    const NAME: &'static str = "softmax's gradient";

    #[inline(always)]
    fn run<T: Real>(&self, values: &[&[T]]) -> candle_core::Result<Vec<T>> {
        let &[y, grad] = values else {
            candle_core::bail!("softmax's gradient takes two tensors");
        };
        let mut dx = vec![T::zero(); y.len()];
        let rows = y.chunks(self.width).zip(grad.chunks(self.width));
        for ((row, g), out) in rows.zip(dx.chunks_mut(self.width)) {
            softmax_gradient_into(row, g, out);
        }
        Ok(dx)
    }
}

impl CustomOp1 for Softmax {
    fn name(&self) -> &'static str {
        "softmax"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        run_elementwise(self, storage, layout)
    }

    fn bwd(&self, _x: &Tensor, y: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let gradient = SoftmaxGradient { width: self.width };
        Ok(Some(y.apply_op2_no_bwd(&grad.contiguous()?, &gradient)?))
    }
}

impl CustomOp2 for SoftmaxGradient {
    fn name(&self) -> &'static str {
        "softmax-gradient"
    }

    fn cpu_fwd(
        &self,
        y: &CpuStorage,
        y_layout: &Layout,
        grad: &CpuStorage,
        grad_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let dx = run_kernel(self, &[(y, y_layout), (grad, grad_layout)])?;
        Ok((dx, y_layout.shape().clone()))
    }
}
