//! Direct access to tensors' CPU storage, for what is written out by hand instead of composed
//! from candle operations: the fused operators and the optimiser's in-place update.

use candle_core::{CpuStorage, Layout, Tensor, WithDType};
use ndarray::LinalgScalar;
use num_traits::Float;

use crate::ops::elementary;

/// The element types hand-written kernels run in: float32 and float64.
pub trait Real: Float + LinalgScalar + WithDType {
    /// The error function. In float32 within 2·10⁻⁷, in a form loops vectorise; in float64
    /// libm's, so that gradient checks see the exact function.
    fn erf(self) -> Self;

    /// `e^x` for `x ≤ 88`. In float32 within about two roundings, in a form loops vectorise;
    /// in float64 libm's.
    fn exponential(self) -> Self;
}

impl Real for f32 {
    #[inline]
    fn erf(self) -> Self {
        elementary::erf(self)
    }

    #[inline]
    fn exponential(self) -> Self {
        elementary::exp(self)
    }
}

impl Real for f64 {
    fn erf(self) -> Self {
        libm::erf(self)
    }

    fn exponential(self) -> Self {
        self.exp()
    }
}

/// Where a contiguous layout's values start and end; `op` names the caller in the error.
pub fn span(layout: &Layout, op: &'static str) -> candle_core::Result<(usize, usize)> {
    layout
        .contiguous_offsets()
        .ok_or(candle_core::Error::RequiresContiguous { op })
}

/// The values of a contiguous storage of element type `T`.
pub fn values<'s, T: WithDType>(
    (storage, layout): (&'s CpuStorage, &Layout),
    op: &'static str,
) -> candle_core::Result<&'s [T]> {
    let (start, end) = span(layout, op)?;
    Ok(&storage.as_slice::<T>()?[start..end])
}

/// A tensor's values in logical order (copied), for gradients computed by hand.
pub fn tensor_values<T: WithDType>(tensor: &Tensor) -> candle_core::Result<Vec<T>> {
    tensor.flatten_all()?.to_vec1::<T>()
}

/// A computation on the values of a few tensors of one float type, giving new values.
pub trait Kernel {
    /// The operation's name, for errors.
    const NAME: &'static str;

    /// Runs on the tensors' values, in the order they were given.
    fn run<T: Real>(&self, inputs: &[&[T]]) -> candle_core::Result<Vec<T>>;
}

/// Runs `kernel` on `inputs` (contiguous storages) in the element type of the first (float32
/// or float64).
pub fn run_kernel<K: Kernel>(
    kernel: &K,
    inputs: &[(&CpuStorage, &Layout)],
) -> candle_core::Result<CpuStorage> {
    fn typed<'s, T: WithDType>(
        inputs: &[(&'s CpuStorage, &Layout)],
        name: &'static str,
    ) -> candle_core::Result<Vec<&'s [T]>> {
        inputs.iter().map(|&input| values(input, name)).collect()
    }
    let name = K::NAME;
    Ok(match inputs.first().map(|(storage, _)| storage) {
        Some(CpuStorage::F32(_)) => CpuStorage::F32(kernel.run::<f32>(&typed(inputs, name)?)?),
        Some(CpuStorage::F64(_)) => CpuStorage::F64(kernel.run::<f64>(&typed(inputs, name)?)?),
        _ => candle_core::bail!("{name} needs float32 or float64 values"),
    })
}

/// Runs `kernel` on one tensor, giving a tensor of the same shape (a `CustomOp1`'s forward).
pub fn run_elementwise<K: Kernel>(
    kernel: &K,
    storage: &CpuStorage,
    layout: &Layout,
) -> candle_core::Result<(CpuStorage, candle_core::Shape)> {
    Ok((
        run_kernel(kernel, &[(storage, layout)])?,
        layout.shape().clone(),
    ))
}
