//! The windows a 2-D convolution reads, laid out as the rows of a matrix (im2col), with the
//! gradient folded back by hand (col2im). A convolution is then one matrix product forward and
//! two back, where candle differentiates its own convolution with a transposed convolution
//! written as loops over every output element.

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};

use crate::storage::{run_kernel, Kernel, Real};

/// Window geometry over an input of `[batch, channels, height, width]`.
#[derive(Clone, Copy, Debug)]
pub struct Windows {
    batch: usize,
    channels: usize,
    height: usize,
    width: usize,
    kernel: (usize, usize),
    stride: usize,
    dilation: usize,
}

impl Windows {
    /// The windows of `kernel` at `stride` and `dilation` over `x` (`[N, C, H, W]`), if at
    /// least one fits.
    pub fn over(
        x: &Tensor,
        kernel: (usize, usize),
        stride: usize,
        dilation: usize,
    ) -> candle_core::Result<Option<Self>> {
        let (batch, channels, height, width) = x.dims4()?;
        let windows = Self {
            batch,
            channels,
            height,
            width,
            kernel,
            stride,
            dilation,
        };
        let fits = |size: usize, k: usize| k > 0 && stride > 0 && dilation * (k - 1) < size;
        Ok((fits(height, kernel.0) && fits(width, kernel.1)).then_some(windows))
    }

    /// Output positions along each axis.
    pub fn out(&self) -> (usize, usize) {
        let along = |size: usize, k: usize| (size - self.dilation * (k - 1) - 1) / self.stride + 1;
        (
            along(self.height, self.kernel.0),
            along(self.width, self.kernel.1),
        )
    }

    /// Values in one window: `channels · kh · kw`, in the order of a flattened weight.
    pub fn depth(&self) -> usize {
        self.channels * self.kernel.0 * self.kernel.1
    }

    /// For every (sample, output position, column), the input element it reads, as offsets
    /// into the sample's `[C, H, W]` values; `visit(sample, row, column, input offset)`.
    fn each(&self, mut visit: impl FnMut(usize, usize, usize, usize)) {
        let (out_h, out_w) = self.out();
        let (kh, kw) = self.kernel;
        let plane = self.height * self.width;
        for n in 0..self.batch {
            for oh in 0..out_h {
                for ow in 0..out_w {
                    let row = oh * out_w + ow;
                    for c in 0..self.channels {
                        for i in 0..kh {
                            let y = oh * self.stride + i * self.dilation;
                            for j in 0..kw {
                                let x = ow * self.stride + j * self.dilation;
                                let column = (c * kh + i) * kw + j;
                                visit(n, row, column, c * plane + y * self.width + x);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The windows of `x` as `[N, out_h · out_w, C · kh · kw]`.
pub fn unfold(x: &Tensor, windows: Windows) -> candle_core::Result<Tensor> {
    x.contiguous()?.apply_op1(Unfold(windows))
}

/// The forward pass.
struct Unfold(Windows);

/// The gradient: each column's gradient added back onto the input element it read.
struct Fold(Windows);

impl Kernel for Unfold {
    const NAME: &'static str = "im2col";

    fn run<T: Real>(&self, values: &[&[T]]) -> candle_core::Result<Vec<T>> {
        let &[x] = values else {
            candle_core::bail!("im2col takes one tensor");
        };
        let w = &self.0;
        let (out_h, out_w) = w.out();
        let (rows, depth, sample) = (out_h * out_w, w.depth(), w.channels * w.height * w.width);
        let mut columns = vec![T::zero(); w.batch * rows * depth];
        w.each(|n, row, column, offset| {
            columns[(n * rows + row) * depth + column] = x[n * sample + offset];
        });
        Ok(columns)
    }
}

impl Kernel for Fold {
    const NAME: &'static str = "col2im";

    fn run<T: Real>(&self, values: &[&[T]]) -> candle_core::Result<Vec<T>> {
        let &[grad] = values else {
            candle_core::bail!("col2im takes one tensor");
        };
        let w = &self.0;
        let (out_h, out_w) = w.out();
        let (rows, depth, sample) = (out_h * out_w, w.depth(), w.channels * w.height * w.width);
        let mut dx = vec![T::zero(); w.batch * sample];
        w.each(|n, row, column, offset| {
            let target = &mut dx[n * sample + offset];
            *target += grad[(n * rows + row) * depth + column];
        });
        Ok(dx)
    }
}

impl CustomOp1 for Unfold {
    fn name(&self) -> &'static str {
        "im2col"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (out_h, out_w) = self.0.out();
        let shape = Shape::from((self.0.batch, out_h * out_w, self.0.depth()));
        Ok((run_kernel(self, &[(storage, layout)])?, shape))
    }

    fn bwd(
        &self,
        _x: &Tensor,
        _columns: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(grad.contiguous()?.apply_op1_no_bwd(&Fold(self.0))?))
    }
}

impl CustomOp1 for Fold {
    fn name(&self) -> &'static str {
        "col2im"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let w = &self.0;
        let shape = Shape::from((w.batch, w.channels, w.height, w.width));
        Ok((run_kernel(self, &[(storage, layout)])?, shape))
    }
}
