//! Direct access to tensors' CPU storage, for what is written out by hand instead of composed
//! from candle operations: the fused operators and the optimiser's in-place update.

use candle_core::{CpuStorage, Layout, Tensor, WithDType};
use ndarray::{ArrayView2, LinalgScalar};
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

/// `values` as a matrix of `dims` (rows, columns), row after row.
pub fn matrix<T>(values: &[T], dims: (usize, usize)) -> candle_core::Result<ArrayView2<'_, T>> {
    ArrayView2::from_shape(dims, values).map_err(|error| candle_core::Error::Msg(error.to_string()))
}

/// A computation on the values of a few tensors of one float type, giving new values.
pub trait Kernel {
    /// The operation's name, for errors.
    const NAME: &'static str;

    /// Runs on the tensors' values, in the order they were given.
    fn run<T: Real>(&self, inputs: &[&[T]]) -> candle_core::Result<Vec<T>>;
}

/// Work for [`widest`]: `run` is marked `#[inline(always)]`, and so is what it calls by hand,
/// so that all of it is compiled for the wider instructions.
pub trait Wide {
    /// What the work gives.
    type Output;

    /// Does the work.
    fn run(self) -> Self::Output;
}

/// Runs `work` compiled for AVX2 and FMA on x86-64 processors that have them (twice the
/// lanes of the baseline's SSE2), else as the caller is compiled. The results are the same:
/// nothing is contracted into fused multiply-adds.
pub fn widest<W: Wide>(work: W) -> W::Output {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the processor has the features `on_avx2` is compiled for.
        return unsafe { on_avx2(work) };
    }
    work.run()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn on_avx2<W: Wide>(work: W) -> W::Output {
    work.run()
}

/// A kernel on its inputs' values.
struct KernelRun<'k, 'v, K, T> {
    kernel: &'k K,
    values: Vec<&'v [T]>,
}

impl<K: Kernel, T: Real> Wide for KernelRun<'_, '_, K, T> {
    type Output = candle_core::Result<Vec<T>>;

    #[inline(always)]
    fn run(self) -> Self::Output {
        self.kernel.run::<T>(&self.values)
    }
}

/// Runs `kernel` on `inputs` (contiguous storages) in the element type of the first (float32
/// or float64), vectorised as wide as the processor allows ([`widest`]).
pub fn run_kernel<K: Kernel>(
    kernel: &K,
    inputs: &[(&CpuStorage, &Layout)],
) -> candle_core::Result<CpuStorage> {
    fn typed<'k, 's, K, T: WithDType>(
        kernel: &'k K,
        inputs: &[(&'s CpuStorage, &Layout)],
        name: &'static str,
    ) -> candle_core::Result<KernelRun<'k, 's, K, T>> {
        let values = inputs
            .iter()
            .map(|&input| values(input, name))
            .collect::<candle_core::Result<_>>()?;
        Ok(KernelRun { kernel, values })
    }
    let name = K::NAME;
    match inputs.first().map(|(storage, _)| storage) {
        Some(CpuStorage::F32(_)) => widest(typed(kernel, inputs, name)?).map(CpuStorage::F32),
        Some(CpuStorage::F64(_)) => widest(typed(kernel, inputs, name)?).map(CpuStorage::F64),
        _ => candle_core::bail!("{name} needs float32 or float64 values"),
    }
}

/// Runs `kernel` on contiguous CPU tensors' values where they lie, without copying them out
/// (as a backward pass receives its tensors), giving a tensor of `dims`.
pub fn run_kernel_on<K: Kernel>(
    kernel: &K,
    tensors: &[&Tensor],
    dims: impl Into<candle_core::Shape>,
) -> candle_core::Result<Tensor> {
    let name = K::NAME;
    let guards: Vec<_> = tensors.iter().map(|t| t.storage_and_layout()).collect();
    let inputs = guards
        .iter()
        .map(|(storage, layout)| match &**storage {
            candle_core::Storage::Cpu(values) => Ok((values, *layout)),
            _ => candle_core::bail!("{name} runs on the CPU"),
        })
        .collect::<candle_core::Result<Vec<_>>>()?;
    let device = tensors
        .first()
        .map(|tensor| tensor.device().clone())
        .ok_or_else(|| candle_core::Error::Msg(format!("{name} needs its tensors")))?;
    match run_kernel(kernel, &inputs)? {
        CpuStorage::F32(values) => Tensor::from_vec(values, dims, &device),
        CpuStorage::F64(values) => Tensor::from_vec(values, dims, &device),
        _ => candle_core::bail!("{name} gives float32 or float64 values"),
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::elementary::sum_by;

    /// Exponentials, error functions and lane sums, the arithmetic of the fused kernels.
    struct Arithmetic;

    impl Kernel for Arithmetic {
        const NAME: &'static str = "arithmetic";

        #[inline(always)]
        fn run<T: Real>(&self, inputs: &[&[T]]) -> candle_core::Result<Vec<T>> {
            let values = inputs[0];
            let total = sum_by(values, |v| v * v);
            Ok(values
                .iter()
                .map(|&v| v.exponential() * v.erf() + total)
                .collect())
        }
    }

    /// The widest instructions give the results the baseline's give, bit for bit.
    #[test]
    fn kernels_give_the_same_values_however_wide_they_run() {
        let values: Vec<f32> = (0..1000).map(|i| (i as f32 * 0.013).sin() * 5.0).collect();
        let storage = CpuStorage::F32(values.clone());
        let layout = Layout::contiguous(values.len());
        let wide = run_kernel(&Arithmetic, &[(&storage, &layout)]).unwrap();
        let narrow = Arithmetic.run::<f32>(&[&values]).unwrap();
        assert_eq!(wide.as_slice::<f32>().unwrap(), narrow.as_slice());
    }
}
