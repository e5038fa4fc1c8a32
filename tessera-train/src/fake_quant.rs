//! Fake quantisation: weights and activations rounded onto the integer grid they will be
//! stored on, inside the differentiable forward pass, so that fine-tuning learns weights that
//! survive quantisation.
//!
//! The forward value is exactly ONNX `QuantizeLinear` followed by `DequantizeLinear`
//! (`x / scale` rounded half to even, plus the zero point, saturated, then scaled back). The
//! backward pass is the straight-through estimator: the gradient passes unchanged where the
//! value lies on the grid's range and is zero where it saturated. A weight's scales follow its
//! current values (per tensor, per output channel or per block, computed by
//! [`QuantParams::from_range`] as the export computes them); an activation's are fixed by
//! calibration.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use tessera_quant::grid::{Granularity, Grid, QuantParams};

use crate::{Error, Result};

/// How one weight is quantised.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WeightGrid {
    /// How its scales are laid out.
    pub granularity: Granularity,
    /// The integers allowed.
    pub grid: Grid,
    /// Zero point 0 and a range symmetric around zero.
    pub symmetric: bool,
}

/// What the forward pass rounds onto a grid: weights by initializer name, activations by
/// tensor name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FakeQuantisation {
    /// Weights (initializers).
    pub weights: HashMap<String, WeightGrid>,
    /// Activations (graph inputs or node outputs) with their calibrated grids.
    pub activations: HashMap<String, QuantParams>,
}

const FAKE_QUANTISING: &str = "fake quantisation failed";

/// `x` rounded half to even, element-wise.
fn round_half_to_even(x: &Tensor) -> candle_core::Result<Tensor> {
    let rounded = x.round()?;
    let tie = (x - x.floor()?)?.eq(0.5)?;
    let even = (x * 0.5)?.round()?.affine(2.0, 0.0)?;
    tie.where_cond(&even, &rounded)
}

/// `x` through the grid with scales `scale` and zero points `zero_point` (both broadcast
/// against `x`), with the straight-through gradient masked where `x` saturates.
fn fake_quantize(
    x: &Tensor,
    scale: &Tensor,
    zero_point: &Tensor,
    grid: Grid,
) -> candle_core::Result<Tensor> {
    let detached = x.detach();
    let q = round_half_to_even(&detached.broadcast_div(scale)?)?.broadcast_add(zero_point)?;
    let (low, high) = (grid.min as f64, grid.max as f64);
    let inside = q.ge(low)?.mul(&q.le(high)?)?.to_dtype(x.dtype())?;
    let value = q
        .clamp(low, high)?
        .broadcast_sub(zero_point)?
        .broadcast_mul(scale)?;
    // value + (x - x̄)·mask: forward `value`, gradient `mask`.
    value.detach() + (x - &detached)?.mul(&inside)?
}

/// Scale and zero-point tensors of `params`, shaped `shape`, on `device`.
fn grid_tensors(
    params: &[QuantParams],
    shape: &[usize],
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    let scales: Vec<f32> = params.iter().map(|p| p.scale).collect();
    let zero_points: Vec<f32> = params.iter().map(|p| p.zero_point as f32).collect();
    let make = |values: Vec<f32>| {
        Tensor::from_vec(values, shape, device).map_err(Error::compute(FAKE_QUANTISING))
    };
    Ok((make(scales)?, make(zero_points)?))
}

/// The smallest and largest value of each group of `view` (reduced over `axes`, highest
/// first), copied to the host.
fn group_ranges(view: &Tensor, axes: &[usize]) -> candle_core::Result<(Vec<f32>, Vec<f32>)> {
    let mut low = view.detach();
    let mut high = low.clone();
    for &axis in axes {
        low = low.min_keepdim(axis)?;
        high = high.max_keepdim(axis)?;
    }
    let host = |t: Tensor| t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>();
    Ok((host(low)?, host(high)?))
}

impl WeightGrid {
    /// `weight` on this grid, with scales from its current values.
    pub fn apply(&self, weight: &Tensor) -> Result<Tensor> {
        let dims = weight.dims().to_vec();
        let compute = Error::compute(FAKE_QUANTISING);
        let product = |range: &[usize]| range.iter().product::<usize>();
        // A view [outer, groups, inner] or [outer, blocks, size, inner] whose scale groups are
        // reduced over the listed axes.
        let (view_shape, reduce, scale_shape): (Vec<usize>, Vec<usize>, Vec<usize>) = match self
            .granularity
        {
            Granularity::PerTensor => (vec![1, product(&dims), 1], vec![2, 1, 0], vec![1, 1, 1]),
            Granularity::PerChannel { axis } => {
                let channels = dims[axis];
                (
                    vec![product(&dims[..axis]), channels, product(&dims[axis + 1..])],
                    vec![2, 0],
                    vec![1, channels, 1],
                )
            }
            Granularity::Blocked { axis, size } => {
                let length = dims[axis];
                if !length.is_multiple_of(size) {
                    return Err(Error::Shape(format!(
                        "a block size of {size} does not divide axis {axis} of length {length}"
                    )));
                }
                let (outer, inner) = (product(&dims[..axis]), product(&dims[axis + 1..]));
                (
                    vec![outer, length / size, size, inner],
                    vec![2],
                    vec![outer, length / size, 1, inner],
                )
            }
        };
        let view = weight.reshape(view_shape).map_err(&compute)?;
        let (low, high) = group_ranges(&view, &reduce).map_err(&compute)?;
        let params: Vec<QuantParams> = low
            .iter()
            .zip(&high)
            .map(|(&l, &h)| QuantParams::from_range(l, h, self.grid, self.symmetric))
            .collect();
        let (scale, zero_point) = grid_tensors(&params, &scale_shape, weight.device())?;
        fake_quantize(&view, &scale, &zero_point, self.grid)
            .and_then(|q| q.reshape(dims))
            .map_err(compute)
    }
}

/// `activation` on the calibrated grid `params`.
pub fn apply_activation(activation: &Tensor, params: &QuantParams) -> Result<Tensor> {
    let (scale, zero_point) = grid_tensors(std::slice::from_ref(params), &[], activation.device())?;
    fake_quantize(activation, &scale, &zero_point, params.grid)
        .map_err(Error::compute(FAKE_QUANTISING))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Var;

    fn values(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    }

    #[test]
    fn ties_round_to_even_like_quantize_linear() {
        let x = Tensor::new(
            &[0.5f32, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4, -2.6],
            &Device::Cpu,
        )
        .unwrap();
        assert_eq!(
            values(&round_half_to_even(&x).unwrap()),
            [0.0, 2.0, 2.0, -0.0, -2.0, -2.0, 2.0, -3.0]
        );
    }

    #[test]
    fn asymmetric_activations_saturate_and_mask_the_gradient() {
        // scale 0.5, zero point 10 on int8: representable [-69, 58.5].
        let params = QuantParams {
            scale: 0.5,
            zero_point: 10,
            grid: Grid::INT8,
        };
        let x = Var::new(&[1.25f32, 0.75, -100.0, 100.0, 58.4, -3.0], &Device::Cpu).unwrap();
        let y = apply_activation(x.as_tensor(), &params).unwrap();
        // 1.25/0.5 = 2.5 → 2; 0.75/0.5 = 1.5 → 2; saturated ends; 58.4/0.5 = 116.8 → 117+10 = 127.
        assert_eq!(values(&y), [1.0, 1.0, -69.0, 58.5, 58.5, -3.0]);
        let grads = y.sum_all().unwrap().backward().unwrap();
        let grad = values(grads.get(x.as_tensor()).unwrap());
        assert_eq!(grad, [1.0, 1.0, 0.0, 0.0, 1.0, 1.0]);
        // The host grid agrees element by element.
        for (x, y) in [1.25f32, 0.75, -100.0, 100.0, 58.4, -3.0]
            .iter()
            .zip(values(&y))
        {
            assert_eq!(params.fake_quantize(*x), y);
        }
    }

    #[test]
    fn per_channel_symmetric_weights_use_one_scale_per_output_channel() {
        // [2, 3], output channels on axis 1 (a MatMul weight): channel maxima 2, 4, 0.5.
        let w = Var::new(&[[1.0f32, -4.0, 0.25], [-2.0, 1.0, 0.5]], &Device::Cpu).unwrap();
        let grid = WeightGrid {
            granularity: Granularity::PerChannel { axis: 1 },
            grid: Grid::INT8_SYMMETRIC,
            symmetric: true,
        };
        let y = grid.apply(w.as_tensor()).unwrap();
        let expected = tessera_quant::grid::quantize_weight(
            &[1.0, -4.0, 0.25, -2.0, 1.0, 0.5],
            &[2, 3],
            Granularity::PerChannel { axis: 1 },
            Grid::INT8_SYMMETRIC,
            true,
        )
        .dequantized(&[2, 3]);
        assert_eq!(values(&y), expected);
        // 1.0 on a scale of 2/127: 63.5 → 64 (even), so 1.0 → 64·2/127.
        assert_eq!(values(&y)[0], 64.0 * (2.0f32 / 127.0));
        let grads = y.sum_all().unwrap().backward().unwrap();
        assert_eq!(values(grads.get(w.as_tensor()).unwrap()), [1.0; 6]);
    }

    #[test]
    fn asymmetric_and_blocked_weights_match_the_host_grid() {
        let data: Vec<f32> = (0..32).map(|i| ((i * 7) % 11) as f32 * 0.3 - 1.1).collect();
        let w = Tensor::from_vec(data.clone(), (16, 2), &Device::Cpu).unwrap();
        for (granularity, grid, symmetric) in [
            (Granularity::PerTensor, Grid::INT8, false),
            (Granularity::PerChannel { axis: 0 }, Grid::INT4, false),
            (
                Granularity::Blocked { axis: 0, size: 8 },
                Grid::INT4_SYMMETRIC,
                true,
            ),
        ] {
            let y = WeightGrid {
                granularity,
                grid,
                symmetric,
            }
            .apply(&w)
            .unwrap();
            let expected =
                tessera_quant::grid::quantize_weight(&data, &[16, 2], granularity, grid, symmetric)
                    .dequantized(&[16, 2]);
            assert_eq!(values(&y), expected, "{granularity:?}");
        }
        let ragged = WeightGrid {
            granularity: Granularity::Blocked { axis: 0, size: 5 },
            grid: Grid::INT4,
            symmetric: false,
        };
        assert!(ragged.apply(&w).is_err());
    }
}
