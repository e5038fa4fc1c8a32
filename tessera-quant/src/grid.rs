//! The integer grid of ONNX `QuantizeLinear`: `q = saturate(round_half_to_even(x / scale) +
//! zero_point)`, `x̂ = (q - zero_point) · scale`, and scales and zero points chosen from a range
//! the way ONNX Runtime's quantiser chooses them, so that a model quantised here and one
//! quantised there sit on the same grid.

use serde::{Deserialize, Serialize};

/// The integers a quantised value may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grid {
    /// The smallest.
    pub min: i32,
    /// The largest.
    pub max: i32,
}

impl Grid {
    /// Signed 8-bit, full range: asymmetric activations and weights.
    pub const INT8: Grid = Grid {
        min: -128,
        max: 127,
    };
    /// Signed 8-bit without -128, so that a symmetric grid has zero point 0 (ONNX Runtime's
    /// choice for symmetric weights).
    pub const INT8_SYMMETRIC: Grid = Grid {
        min: -127,
        max: 127,
    };
    /// Signed 4-bit, full range.
    pub const INT4: Grid = Grid { min: -8, max: 7 };
    /// Signed 4-bit without -8.
    pub const INT4_SYMMETRIC: Grid = Grid { min: -7, max: 7 };

    /// The grid for `bits` (8 or 4) signed integers, symmetric or not.
    pub fn signed(bits: u32, symmetric: bool) -> Grid {
        match (bits, symmetric) {
            (4, true) => Grid::INT4_SYMMETRIC,
            (4, false) => Grid::INT4,
            (_, true) => Grid::INT8_SYMMETRIC,
            (_, false) => Grid::INT8,
        }
    }

    /// Steps between the smallest and the largest value.
    pub fn steps(self) -> f32 {
        (self.max - self.min) as f32
    }
}

/// `round(x)` with ties to the even neighbour, as ONNX `QuantizeLinear` rounds.
pub fn round_half_to_even(x: f32) -> f32 {
    x.round_ties_even()
}

/// One scale and zero point: a grid laid over a range of real values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct QuantParams {
    /// The real value of one step.
    pub scale: f32,
    /// The integer that stands for real 0.
    pub zero_point: i32,
    /// The integers allowed.
    pub grid: Grid,
}

impl QuantParams {
    /// The parameters that cover `[min, max]` (widened to include 0, so that zero is exact) on
    /// `grid`: symmetric ones have zero point 0 and cover `±max(|min|, |max|)`. A range of zero
    /// width gets scale 1. This is ONNX Runtime's `compute_scale_zp`.
    pub fn from_range(min: f32, max: f32, grid: Grid, symmetric: bool) -> QuantParams {
        let (mut low, mut high) = (min.min(0.0), max.max(0.0));
        if symmetric {
            let bound = low.abs().max(high.abs());
            low = -bound;
            high = bound;
        }
        let scale = (high - low) / grid.steps();
        if scale == 0.0 || !scale.is_finite() {
            return QuantParams {
                scale: 1.0,
                zero_point: 0,
                grid,
            };
        }
        let zero_point = if symmetric {
            0
        } else {
            (round_half_to_even(grid.min as f32 - low / scale) as i32).clamp(grid.min, grid.max)
        };
        QuantParams {
            scale,
            zero_point,
            grid,
        }
    }

    /// The integer `x` is stored as: `saturate(round_half_to_even(x / scale) + zero_point)`.
    pub fn quantize(&self, x: f32) -> i32 {
        let q = round_half_to_even(x / self.scale) + self.zero_point as f32;
        if q.is_nan() {
            return self.zero_point;
        }
        (q.clamp(self.grid.min as f32, self.grid.max as f32)) as i32
    }

    /// The real value integer `q` stands for.
    pub fn dequantize(&self, q: i32) -> f32 {
        (q - self.zero_point) as f32 * self.scale
    }

    /// `x` after a round trip through the grid.
    pub fn fake_quantize(&self, x: f32) -> f32 {
        self.dequantize(self.quantize(x))
    }

    /// Whether `x` lies outside the range the grid covers, so that it saturates.
    pub fn clips(&self, x: f32) -> bool {
        let q = round_half_to_even(x / self.scale) + self.zero_point as f32;
        q < self.grid.min as f32 || q > self.grid.max as f32
    }

    /// The smallest and the largest real value the grid represents.
    pub fn range(&self) -> (f32, f32) {
        (
            self.dequantize(self.grid.min),
            self.dequantize(self.grid.max),
        )
    }
}

/// How a weight's scales are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Granularity {
    /// One scale for the whole tensor.
    PerTensor,
    /// One scale per index of `axis` (the output channel).
    PerChannel {
        /// The axis.
        axis: usize,
    },
    /// One scale per `size` consecutive elements along `axis` (the reduction axis), for each
    /// index of every other axis: ONNX opset 21 block quantisation.
    Blocked {
        /// The axis the blocks run along.
        axis: usize,
        /// Elements per block.
        size: usize,
    },
}

/// A weight on its grid: the integers, and the parameters of each scale group.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantizedWeight {
    /// The integers, in the weight's element order.
    pub values: Vec<i32>,
    /// One entry per scale group, in the order ONNX lays out the scale tensor.
    pub params: Vec<QuantParams>,
    /// The shape of the scale (and zero-point) tensor: `[]`, `[channels]`, or the weight's
    /// shape with the blocked axis divided by the block size.
    pub scale_shape: Vec<usize>,
    /// How the scales are laid out.
    pub granularity: Granularity,
}

/// The scale group of every element of a tensor of `shape` under `granularity`, and the
/// number of groups and the scale tensor's shape.
fn groups(shape: &[usize], granularity: Granularity) -> (Vec<usize>, usize, Vec<usize>) {
    let count: usize = shape.iter().product();
    match granularity {
        Granularity::PerTensor => (vec![0; count], 1, Vec::new()),
        Granularity::PerChannel { axis } => {
            let inner: usize = shape[axis + 1..].iter().product();
            let channels = shape[axis];
            let group = (0..count).map(|i| (i / inner) % channels).collect();
            (group, channels, vec![channels])
        }
        Granularity::Blocked { axis, size } => {
            let inner: usize = shape[axis + 1..].iter().product();
            let length = shape[axis];
            let blocks = length.div_ceil(size);
            let outer = count / (inner * length);
            let mut scale_shape = shape.to_vec();
            scale_shape[axis] = blocks;
            let group = (0..count)
                .map(|i| {
                    let o = i / (inner * length);
                    let position = (i / inner) % length;
                    let r = i % inner;
                    (o * blocks + position / size) * inner + r
                })
                .collect();
            (group, outer * blocks * inner, scale_shape)
        }
    }
}

/// Quantises a weight of `shape` with one grid per scale group, each covering its group's
/// min..max (symmetric: ±max |w|).
pub fn quantize_weight(
    values: &[f32],
    shape: &[usize],
    granularity: Granularity,
    grid: Grid,
    symmetric: bool,
) -> QuantizedWeight {
    let (group, count, scale_shape) = groups(shape, granularity);
    let mut low = vec![f32::INFINITY; count];
    let mut high = vec![f32::NEG_INFINITY; count];
    for (&value, &g) in values.iter().zip(&group) {
        low[g] = low[g].min(value);
        high[g] = high[g].max(value);
    }
    let params: Vec<QuantParams> = low
        .iter()
        .zip(&high)
        .map(|(&l, &h)| {
            let (l, h) = if l.is_finite() { (l, h) } else { (0.0, 0.0) };
            QuantParams::from_range(l, h, grid, symmetric)
        })
        .collect();
    let values = values
        .iter()
        .zip(&group)
        .map(|(&value, &g)| params[g].quantize(value))
        .collect();
    QuantizedWeight {
        values,
        params,
        scale_shape,
        granularity,
    }
}

impl QuantizedWeight {
    /// The real values the integers stand for, in element order.
    pub fn dequantized(&self, shape: &[usize]) -> Vec<f32> {
        let (group, _, _) = groups(shape, self.granularity);
        self.values
            .iter()
            .zip(&group)
            .map(|(&q, &g)| self.params[g].dequantize(q))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_ties_go_to_the_even_neighbour() {
        let params = QuantParams {
            scale: 1.0,
            zero_point: 0,
            grid: Grid::INT8,
        };
        for (x, q) in [
            (0.5, 0),
            (1.5, 2),
            (2.5, 2),
            (-0.5, 0),
            (-1.5, -2),
            (-2.5, -2),
            (2.6, 3),
        ] {
            assert_eq!(params.quantize(x), q, "{x}");
        }
    }

    #[test]
    fn values_beyond_the_grid_saturate() {
        let params = QuantParams {
            scale: 0.5,
            zero_point: 10,
            grid: Grid::INT8,
        };
        assert_eq!(params.quantize(100.0), 127);
        assert_eq!(params.quantize(-100.0), -128);
        assert!(params.clips(100.0) && params.clips(-100.0) && !params.clips(0.0));
        // 1.25 / 0.5 = 2.5 → 2 (even), + 10.
        assert_eq!(params.quantize(1.25), 12);
        assert_eq!(params.dequantize(12), 1.0);
        assert_eq!(params.range(), (-69.0, 58.5));
    }

    #[test]
    fn asymmetric_ranges_get_onnx_runtimes_zero_point() {
        // [-1, 3] on int8: scale 4/255, zero point round(-128 + 1/(4/255)) = round(-64.25) = -64.
        let params = QuantParams::from_range(-1.0, 3.0, Grid::INT8, false);
        assert!((params.scale - 4.0 / 255.0).abs() < 1e-9);
        assert_eq!(params.zero_point, -64);
        assert_eq!(params.quantize(0.0), -64, "zero is exact");
        // A positive-only range still contains 0.
        let params = QuantParams::from_range(2.0, 6.0, Grid::INT8, false);
        assert_eq!(params.zero_point, -128);
        assert!((params.scale - 6.0 / 255.0).abs() < 1e-9);
    }

    #[test]
    fn symmetric_ranges_have_zero_point_zero() {
        let params = QuantParams::from_range(-0.5, 2.54, Grid::INT8_SYMMETRIC, true);
        assert_eq!(params.zero_point, 0);
        assert!((params.scale - 0.02).abs() < 1e-7);
        assert_eq!(params.quantize(2.54), 127);
        assert_eq!(params.quantize(-2.54), -127);
        let degenerate = QuantParams::from_range(0.0, 0.0, Grid::INT8, false);
        assert_eq!((degenerate.scale, degenerate.zero_point), (1.0, 0));
    }

    #[test]
    fn per_channel_weights_get_a_scale_per_output_channel() {
        // [2, 3], channels on axis 0.
        let values = [1.0, -0.5, 0.25, 10.0, 5.0, -2.5];
        let weight = quantize_weight(
            &values,
            &[2, 3],
            Granularity::PerChannel { axis: 0 },
            Grid::INT8_SYMMETRIC,
            true,
        );
        assert_eq!(weight.scale_shape, [2]);
        assert!((weight.params[0].scale - 1.0 / 127.0).abs() < 1e-9);
        assert!((weight.params[1].scale - 10.0 / 127.0).abs() < 1e-9);
        assert_eq!(weight.values, [127, -64, 32, 127, 64, -32]);
        let back = weight.dequantized(&[2, 3]);
        for (x, y) in values.iter().zip(&back) {
            assert!((x - y).abs() <= 10.0 / 127.0 / 2.0 + 1e-6);
        }
    }

    #[test]
    fn blocks_run_along_their_axis() {
        // [4, 2] with blocks of 2 along axis 0: scale shape [2, 2].
        let values = [1.0, 8.0, -2.0, 1.0, 0.5, 4.0, 0.25, -7.0];
        let weight = quantize_weight(
            &values,
            &[4, 2],
            Granularity::Blocked { axis: 0, size: 2 },
            Grid::INT4_SYMMETRIC,
            true,
        );
        assert_eq!(weight.scale_shape, [2, 2]);
        let scales: Vec<f32> = weight.params.iter().map(|p| p.scale * 7.0).collect();
        assert_eq!(scales, [2.0, 8.0, 0.5, 7.0]);
        assert_eq!(weight.values[2], -7);
        assert_eq!(weight.values[7], -7);
    }
}
