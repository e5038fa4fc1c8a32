//! Reducing tap activations to one feature vector per sample (`[N, width]`), following the
//! layout and pooling an adapter declared for the tap.

use ndarray::{Array2, ArrayD, Axis, Ix3};
use tessera_api::{Pooling, TapLayout, TapPoint};

use crate::{Error, Result};

/// `activations` of `tap` (as captured, batch along the layout's batch axis) as `[N, width]`.
pub fn pool(activations: &ArrayD<f32>, tap: &TapPoint) -> Result<Array2<f32>> {
    let mismatch = || {
        Error::Shape(format!(
            "tap {:?} has shape {:?}, which does not fit layout {:?}",
            tap.tensor,
            activations.shape(),
            tap.layout
        ))
    };
    if activations.ndim() != tap.layout.rank() {
        return Err(mismatch());
    }
    // Bring every layout to [N, T, D].
    let sequence = match tap.layout {
        TapLayout::BatchFeature => {
            return activations
                .clone()
                .into_dimensionality()
                .map_err(|_| mismatch());
        }
        TapLayout::BatchTimeFeature => activations.view().into_dimensionality::<Ix3>(),
        TapLayout::BatchFeatureTime => activations
            .view()
            .permuted_axes(vec![0, 2, 1])
            .into_dimensionality::<Ix3>(),
        TapLayout::OnnxRecurrent => {
            // [T, dirs, N, H] -> [N, T, dirs, H] -> [N, T, dirs·H]
            let shape = activations.shape();
            let (steps, directions, samples, hidden) = (shape[0], shape[1], shape[2], shape[3]);
            let ordered = activations
                .view()
                .permuted_axes(vec![2, 0, 1, 3])
                .as_standard_layout()
                .into_owned();
            return reduce(
                ordered
                    .into_shape_with_order((samples, steps, directions * hidden))
                    .map_err(|_| mismatch())?
                    .view(),
                tap.pooling,
            )
            .ok_or_else(mismatch);
        }
        TapLayout::BatchFeatureHeightWidth => {
            // [N, C, H, W] -> [N, C, H·W] -> [N, H·W, C]
            let shape = activations.shape();
            let (samples, channels, positions) = (shape[0], shape[1], shape[2] * shape[3]);
            let flat = activations
                .as_standard_layout()
                .into_owned()
                .into_shape_with_order((samples, channels, positions))
                .map_err(|_| mismatch())?;
            return reduce(flat.view().permuted_axes([0, 2, 1]), tap.pooling).ok_or_else(mismatch);
        }
        _ => return Err(unknown(tap)),
    }
    .map_err(|_| mismatch())?;
    reduce(sequence, tap.pooling).ok_or_else(mismatch)
}

/// [`pool`] on the trainable graph: `activations` (a candle tensor laid out as `tap` says)
/// reduced to `[B, width]`, differentiably, so a loss on pooled features reaches the weights.
pub fn pool_trainable(
    activations: &candle_core::Tensor,
    tap: &TapPoint,
) -> candle_core::Result<candle_core::Tensor> {
    let dims = activations.dims().to_vec();
    if dims.len() != tap.layout.rank() {
        candle_core::bail!(
            "tap {:?} has shape {dims:?}, which does not fit layout {:?}",
            tap.tensor,
            tap.layout
        );
    }
    let (sequence, time_axis) = match tap.layout {
        TapLayout::BatchFeature => return Ok(activations.clone()),
        TapLayout::BatchTimeFeature => (activations.clone(), 1),
        TapLayout::BatchFeatureTime => (activations.clone(), 2),
        TapLayout::OnnxRecurrent => (
            activations.permute((2, 0, 1, 3))?.contiguous()?.reshape((
                dims[2],
                dims[0],
                dims[1] * dims[3],
            ))?,
            1,
        ),
        TapLayout::BatchFeatureHeightWidth => (
            activations.reshape((dims[0], dims[1], dims[2] * dims[3]))?,
            2,
        ),
        _ => candle_core::bail!("{}", unknown(tap)),
    };
    let steps = sequence.dim(time_axis)?;
    match tap.pooling {
        Pooling::Mean => sequence.mean(time_axis),
        Pooling::Last => sequence.narrow(time_axis, steps - 1, 1)?.squeeze(time_axis),
        Pooling::First => sequence.narrow(time_axis, 0, 1)?.squeeze(time_axis),
        Pooling::Max => sequence.max(time_axis),
        Pooling::None if steps == 1 => sequence.squeeze(time_axis),
        Pooling::None => candle_core::bail!(
            "tap {:?} has {steps} steps but declares no pooling",
            tap.tensor
        ),
        _ => candle_core::bail!("{}", unknown(tap)),
    }
}

/// The error for a tap whose layout or pooling comes from a newer plugin interface than this
/// host knows.
fn unknown(tap: &TapPoint) -> Error {
    Error::Shape(format!(
        "tap {:?} declares layout {:?} with pooling {:?}, which this host cannot apply; update \
         the host",
        tap.tensor, tap.layout, tap.pooling
    ))
}

fn reduce(sequence: ndarray::ArrayView3<f32>, pooling: Pooling) -> Option<Array2<f32>> {
    let steps = sequence.len_of(Axis(1));
    if steps == 0 {
        return None;
    }
    match pooling {
        Pooling::Mean => sequence.mean_axis(Axis(1)),
        Pooling::Last => Some(sequence.index_axis(Axis(1), steps - 1).to_owned()),
        Pooling::First => Some(sequence.index_axis(Axis(1), 0).to_owned()),
        Pooling::Max => Some(sequence.fold_axis(Axis(1), f32::NEG_INFINITY, |a, &b| a.max(b))),
        Pooling::None => (steps == 1).then(|| sequence.index_axis(Axis(1), 0).to_owned()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::IxDyn;

    fn tap(layout: TapLayout, pooling: Pooling) -> TapPoint {
        TapPoint::new("t", layout, pooling)
    }

    #[test]
    fn every_layout_pools_to_samples_by_features() {
        // Value = 100·sample + 10·time + feature, laid out three ways.
        let btd = ArrayD::from_shape_fn(IxDyn(&[2, 3, 4]), |i| {
            (100 * i[0] + 10 * i[1] + i[2]) as f32
        });
        let bdt = btd
            .view()
            .permuted_axes(vec![0, 2, 1])
            .as_standard_layout()
            .into_owned();
        let expected_mean =
            ndarray::Array2::from_shape_fn((2, 4), |(n, d)| (100 * n + 10 + d) as f32);
        let mean = |layout, array: &ArrayD<f32>| pool(array, &tap(layout, Pooling::Mean)).unwrap();
        assert_eq!(mean(TapLayout::BatchTimeFeature, &btd), expected_mean);
        assert_eq!(
            mean(TapLayout::BatchFeatureTime, &bdt.into_dyn()),
            expected_mean
        );
        let last = pool(&btd, &tap(TapLayout::BatchTimeFeature, Pooling::Last)).unwrap();
        assert_eq!(last[[1, 2]], 122.0);
        let max = pool(&btd, &tap(TapLayout::BatchTimeFeature, Pooling::Max)).unwrap();
        assert_eq!(max[[0, 3]], 23.0);
    }

    #[test]
    fn recurrent_outputs_put_directions_side_by_side() {
        // [T=2, dirs=2, N=1, H=2]; value = 10·dir + time.
        let y = ArrayD::from_shape_fn(IxDyn(&[2, 2, 1, 2]), |i| (10 * i[1] + i[0]) as f32);
        let pooled = pool(&y, &tap(TapLayout::OnnxRecurrent, Pooling::Mean)).unwrap();
        assert_eq!(pooled.shape(), &[1, 4]);
        assert_eq!(pooled.row(0).to_vec(), vec![0.5, 0.5, 10.5, 10.5]);
    }

    #[test]
    fn images_pool_over_both_spatial_axes() {
        // [N=1, C=2, H=2, W=3]; value = 10·channel + position.
        let y = ArrayD::from_shape_fn(IxDyn(&[1, 2, 2, 3]), |i| {
            (10 * i[1] + 3 * i[2] + i[3]) as f32
        });
        let layout = TapLayout::BatchFeatureHeightWidth;
        let mean = pool(&y, &tap(layout, Pooling::Mean)).unwrap();
        assert_eq!(mean.row(0).to_vec(), vec![2.5, 12.5]);
        let max = pool(&y, &tap(layout, Pooling::Max)).unwrap();
        assert_eq!(max.row(0).to_vec(), vec![5.0, 15.0]);
        let graph = candle_core::Tensor::from_vec(
            y.iter().copied().collect::<Vec<f32>>(),
            (1, 2, 2, 3),
            &candle_core::Device::Cpu,
        )
        .unwrap();
        let pooled = pool_trainable(&graph, &tap(layout, Pooling::Mean)).unwrap();
        assert_eq!(pooled.to_vec2::<f32>().unwrap(), vec![vec![2.5, 12.5]]);
    }

    #[test]
    fn wrong_ranks_are_errors() {
        let flat = ArrayD::zeros(IxDyn(&[2, 4]));
        assert!(pool(&flat, &tap(TapLayout::BatchTimeFeature, Pooling::Mean)).is_err());
        assert_eq!(
            pool(&flat, &tap(TapLayout::BatchFeature, Pooling::None))
                .unwrap()
                .shape(),
            &[2, 4]
        );
    }
}
