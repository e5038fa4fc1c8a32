//! Direct access to tensors' CPU storage, for what is written out by hand instead of composed
//! from candle operations: the fused operators and the optimiser's in-place update.

use candle_core::{CpuStorage, Layout, Tensor, WithDType};
use ndarray::LinalgScalar;
use num_traits::Float;

/// The element types hand-written kernels run in: float32 and float64.
pub trait Real: Float + LinalgScalar + WithDType {}

impl Real for f32 {}
impl Real for f64 {}

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

/// A computation on the values of three tensors of one float type, giving new values.
pub trait Kernel3 {
    /// The operation's name, for errors.
    const NAME: &'static str;

    /// Runs on the three tensors' values.
    fn run<T: Real>(&self, first: &[T], second: &[T], third: &[T]) -> candle_core::Result<Vec<T>>;
}

/// Runs `kernel` in the element type of `first` (float32 or float64).
pub fn run_kernel3<K: Kernel3>(
    kernel: &K,
    first: (&CpuStorage, &Layout),
    second: (&CpuStorage, &Layout),
    third: (&CpuStorage, &Layout),
) -> candle_core::Result<CpuStorage> {
    let name = K::NAME;
    Ok(match first.0 {
        CpuStorage::F32(_) => CpuStorage::F32(kernel.run::<f32>(
            values(first, name)?,
            values(second, name)?,
            values(third, name)?,
        )?),
        CpuStorage::F64(_) => CpuStorage::F64(kernel.run::<f64>(
            values(first, name)?,
            values(second, name)?,
            values(third, name)?,
        )?),
        _ => candle_core::bail!("{name} needs float32 or float64 values"),
    })
}
