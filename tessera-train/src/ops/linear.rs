//! A dense layer, `x · W + b` over the last axis of `x`, as one operation. Composed of candle's
//! primitives it is a reshape, a matrix product, a reshape back and a broadcast bias, and
//! candle's backward pass allocates a zero gradient and adds into it for every one of those
//! nodes; here the bias is written into the result before the product adds onto it, and the
//! backward pass is two matrix products and a column sum.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Shape, Tensor};

use crate::storage::{run_kernel, Kernel, Real};

/// `x · W (+ bias)`: `x` is `[..., K]`, `weight` `[K, N]` (`[N, K]` when `transposed`, as
/// `Gemm` with `transB` and PyTorch's `Linear` store it) and `bias`, when given, holds N
/// values. The result is `[..., N]`.
pub fn linear(
    x: &Tensor,
    weight: &Tensor,
    transposed: bool,
    bias: Option<&Tensor>,
) -> candle_core::Result<Tensor> {
    let (k, n) = match (weight.dims2()?, transposed) {
        ((k, n), false) | ((n, k), true) => (k, n),
    };
    if k == 0 || x.rank() == 0 || x.dims()[x.rank() - 1] != k {
        candle_core::bail!(
            "a dense layer of {k} inputs cannot take a tensor of shape {:?}",
            x.dims()
        );
    }
    if let Some(bias) = bias {
        if bias.elem_count() != n {
            candle_core::bail!(
                "a dense layer of {n} outputs cannot add a bias of shape {:?}",
                bias.dims()
            );
        }
    }
    if !x.device().is_cpu() {
        return composed_linear(x, weight, transposed, bias);
    }
    let op = Linear { k, n, transposed };
    let (x, weight) = (x.contiguous()?, weight.contiguous()?);
    match bias {
        Some(bias) if bias.rank() == 1 => x.apply_op3(&weight, &bias.contiguous()?, op),
        Some(bias) => x.apply_op3(&weight, &bias.flatten_all()?.contiguous()?, op),
        None => x.apply_op2(&weight, op),
    }
}

/// The same layer composed of candle operations, for devices the hand-written kernel does not
/// run on.
fn composed_linear(
    x: &Tensor,
    weight: &Tensor,
    transposed: bool,
    bias: Option<&Tensor>,
) -> candle_core::Result<Tensor> {
    let weight = if transposed {
        weight.t()?
    } else {
        weight.clone()
    };
    let mut shape = x.dims().to_vec();
    let k = shape.pop().expect("the input has a last axis");
    shape.push(weight.dim(1)?);
    let mut y = x.reshape(((), k))?.matmul(&weight)?;
    if let Some(bias) = bias {
        y = y.broadcast_add(&bias.flatten_all()?)?;
    }
    y.reshape(shape)
}

/// The layer's geometry: K inputs, N outputs, and how the weight is stored.
#[derive(Clone, Copy)]
struct Linear {
    k: usize,
    n: usize,
    transposed: bool,
}

impl Linear {
    /// The result's shape for an input of shape `x`.
    fn output_shape(&self, x: &Layout) -> Shape {
        let mut dims = x.dims().to_vec();
        *dims.last_mut().expect("the input has a last axis") = self.n;
        Shape::from(dims)
    }

    /// The gradients of the input, the weight and the bias, each only where it learns or
    /// depends on something that does.
    fn gradients(
        &self,
        x: &Tensor,
        weight: &Tensor,
        bias: Option<&Tensor>,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?.reshape(((), self.n))?;
        let weight_learns = weight.track_op();
        let weight = weight.detach();
        let dx = if x.track_op() {
            let back = if self.transposed {
                weight.clone()
            } else {
                weight.t()?
            };
            Some(grad.matmul(&back)?.reshape(x.shape())?)
        } else {
            None
        };
        let dw = if weight_learns {
            let rows = x.detach().reshape(((), self.k))?;
            Some(if self.transposed {
                grad.t()?.matmul(&rows)?
            } else {
                rows.t()?.matmul(&grad)?
            })
        } else {
            None
        };
        let db = match bias {
            Some(bias) if bias.track_op() => Some(
                grad.apply_op1_no_bwd(&ColumnSums { width: self.n })?
                    .reshape(bias.shape())?,
            ),
            _ => None,
        };
        Ok((dx, dw, db))
    }
}

/// The sum of each column of a `[rows, width]` matrix: the bias's gradient. candle's sum over
/// the first axis walks the matrix column by column; this adds whole rows.
#[derive(Clone, Copy)]
struct ColumnSums {
    width: usize,
}

impl Kernel for ColumnSums {
    const NAME: &'static str = "column sums";

    fn run<T: Real>(&self, inputs: &[&[T]]) -> candle_core::Result<Vec<T>> {
        let &[matrix] = inputs else {
            candle_core::bail!("column sums take one matrix");
        };
        let mut sums = vec![T::zero(); self.width];
        for row in matrix.chunks_exact(self.width) {
            for (sum, &value) in sums.iter_mut().zip(row) {
                *sum += value;
            }
        }
        Ok(sums)
    }
}

impl CustomOp1 for ColumnSums {
    fn name(&self) -> &'static str {
        "column-sums"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        Ok((
            run_kernel(self, &[(storage, layout)])?,
            Shape::from(self.width),
        ))
    }
}

impl Kernel for Linear {
    const NAME: &'static str = "dense layer";

    fn run<T: Real>(&self, inputs: &[&[T]]) -> candle_core::Result<Vec<T>> {
        let (x, weight, bias) = match inputs {
            [x, weight] => (*x, *weight, None),
            [x, weight, bias] => (*x, *weight, Some(*bias)),
            _ => candle_core::bail!("a dense layer takes an input, a weight and a bias"),
        };
        let (k, n) = (self.k, self.n);
        let rows = x.len() / k;
        let mut y: Vec<T> = Vec::with_capacity(rows * n);
        if let Some(bias) = bias {
            for _ in 0..rows {
                y.extend_from_slice(bias);
            }
        }
        // The weight's element (i, j) of the [K, N] product operand.
        let (weight_row_stride, weight_column_stride) = if self.transposed {
            (1, k as isize)
        } else {
            (n as isize, 1)
        };
        let threads = candle_core::utils::get_num_threads();
        let parallelism = if threads > 1 {
            gemm::Parallelism::Rayon(threads)
        } else {
            gemm::Parallelism::None
        };
        // SAFETY: `y` has room for rows · n values; the product writes every one of them
        // (adding onto the bias rows when there is a bias) before the length is set; `x`
        // holds rows · k values and `weight` k · n, read with the strides above.
        unsafe {
            gemm::gemm(
                rows,
                n,
                k,
                y.as_mut_ptr(),
                1,
                n as isize,
                bias.is_some(),
                x.as_ptr(),
                1,
                k as isize,
                weight.as_ptr(),
                weight_column_stride,
                weight_row_stride,
                T::one(),
                T::one(),
                false,
                false,
                false,
                parallelism,
            );
            y.set_len(rows * n);
        }
        Ok(y)
    }
}

impl CustomOp2 for Linear {
    fn name(&self) -> &'static str {
        "linear"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        weight: &CpuStorage,
        weight_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let y = run_kernel(self, &[(x, x_layout), (weight, weight_layout)])?;
        Ok((y, self.output_shape(x_layout)))
    }

    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        _y: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let (dx, dw, _) = self.gradients(x, weight, None, grad)?;
        Ok((dx, dw))
    }
}

impl CustomOp3 for Linear {
    fn name(&self) -> &'static str {
        "linear-with-bias"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        weight: &CpuStorage,
        weight_layout: &Layout,
        bias: &CpuStorage,
        bias_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let y = run_kernel(
            self,
            &[(x, x_layout), (weight, weight_layout), (bias, bias_layout)],
        )?;
        Ok((y, self.output_shape(x_layout)))
    }

    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        bias: &Tensor,
        _y: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        self.gradients(x, weight, Some(bias), grad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::largest_difference;
    use candle_core::Device;

    /// The composed form other devices use computes what the CPU kernel computes, with the
    /// weight stored either way, with and without a bias.
    #[test]
    fn composed_form_matches_the_kernel() {
        let values = |count: usize, step: usize| -> Vec<f32> {
            (0..count)
                .map(|i| ((i * step) % 13) as f32 * 0.2 - 1.2)
                .collect()
        };
        let x = Tensor::from_vec(values(24, 7), (2, 3, 4), &Device::Cpu).unwrap();
        let bias = Tensor::from_vec(values(5, 3), 5, &Device::Cpu).unwrap();
        for (transposed, dims) in [(false, (4, 5)), (true, (5, 4))] {
            let weight = Tensor::from_vec(values(20, 5), dims, &Device::Cpu).unwrap();
            for bias in [None, Some(&bias)] {
                let kernel = linear(&x, &weight, transposed, bias).unwrap();
                let composed = composed_linear(&x, &weight, transposed, bias).unwrap();
                assert_eq!(kernel.dims(), [2, 3, 5]);
                let difference = largest_difference(&kernel, &composed);
                assert!(difference < 1e-5, "{difference}");
            }
        }
    }
}
