//! Activation ranges from the values a model produced on calibration inputs: min/max, a
//! percentile, or the range whose grid reproduces the values with the least squared error.

use crate::grid::{Grid, QuantParams};
use crate::scheme::RangeMethod;

/// At most this many values per tensor are kept for choosing a range; beyond it every k-th is.
const KEPT_VALUES: usize = 1 << 16;

/// Candidate ranges the MSE search tries: min/max shrunk to `i / MSE_CANDIDATES` of itself.
const MSE_CANDIDATES: usize = 100;

/// The values one tensor took during calibration (a uniform subsample beyond 65 536).
#[derive(Debug, Clone, Default)]
pub struct RangeObserver {
    kept: Vec<f32>,
    seen: usize,
    stride: usize,
    min: f32,
    max: f32,
}

impl RangeObserver {
    /// An observer that has seen nothing.
    pub fn new() -> Self {
        Self {
            kept: Vec::new(),
            seen: 0,
            stride: 1,
            min: f32::INFINITY,
            max: f32::NEG_INFINITY,
        }
    }

    /// Records `values`; non-finite ones are counted in neither the range nor the sample.
    pub fn observe(&mut self, values: impl IntoIterator<Item = f32>) {
        for value in values.into_iter().filter(|v| v.is_finite()) {
            self.min = self.min.min(value);
            self.max = self.max.max(value);
            if self.seen.is_multiple_of(self.stride) {
                self.kept.push(value);
                if self.kept.len() >= 2 * KEPT_VALUES {
                    // Keep every other value and halve the rate from here on.
                    self.kept = self.kept.iter().step_by(2).copied().collect();
                    self.stride *= 2;
                }
            }
            self.seen += 1;
        }
    }

    /// Values seen.
    pub fn seen(&self) -> usize {
        self.seen
    }

    /// The smallest and largest finite value seen, if any.
    pub fn min_max(&self) -> Option<(f32, f32)> {
        (self.seen > 0).then_some((self.min, self.max))
    }

    /// The grid `method` chooses for the values seen, on `grid` (asymmetric unless
    /// `symmetric`); `None` when nothing finite was seen.
    pub fn params(&self, method: RangeMethod, grid: Grid, symmetric: bool) -> Option<QuantParams> {
        let (min, max) = self.min_max()?;
        let (low, high) = match method {
            RangeMethod::MinMax => (min, max),
            RangeMethod::Percentile { percentile } => {
                let mut sorted = self.kept.clone();
                sorted.sort_unstable_by(f32::total_cmp);
                let at = |p: f64| {
                    let index = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
                    sorted[index.min(sorted.len() - 1)]
                };
                (at(100.0 - percentile), at(percentile))
            }
            RangeMethod::Mse => {
                return Some(self.least_squared_error(min, max, grid, symmetric));
            }
        };
        Some(QuantParams::from_range(low, high, grid, symmetric))
    }

    /// The range with the least mean squared quantisation error over the kept values, found
    /// one end at a time: the top end among `max·f` for f in (0, 1] with the bottom at `min`,
    /// then the bottom end among `min·f` with the top fixed (symmetric grids have one end).
    fn least_squared_error(&self, min: f32, max: f32, grid: Grid, symmetric: bool) -> QuantParams {
        let search = |range: &dyn Fn(f32) -> (f32, f32)| {
            let mut best = (f64::INFINITY, range(1.0));
            for step in (1..=MSE_CANDIDATES).rev() {
                let (low, high) = range(step as f32 / MSE_CANDIDATES as f32);
                let error =
                    self.squared_error(&QuantParams::from_range(low, high, grid, symmetric));
                if error < best.0 {
                    best = (error, (low, high));
                }
            }
            best.1
        };
        let (_, high) = search(&|f| (min, max * f));
        let (low, high) = if symmetric {
            (min, high)
        } else {
            search(&|f| (min * f, high))
        };
        QuantParams::from_range(low, high, grid, symmetric)
    }

    fn squared_error(&self, params: &QuantParams) -> f64 {
        self.kept
            .iter()
            .map(|&value| {
                let error = (value - params.fake_quantize(value)) as f64;
                error * error
            })
            .sum::<f64>()
            / self.kept.len().max(1) as f64
    }

    /// The share of the values seen (of the kept sample) that `params` saturates.
    pub fn clipping(&self, params: &QuantParams) -> f64 {
        if self.kept.is_empty() {
            return 0.0;
        }
        self.kept.iter().filter(|&&v| params.clips(v)).count() as f64 / self.kept.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observer(values: &[f32]) -> RangeObserver {
        let mut observer = RangeObserver::new();
        observer.observe(values.iter().copied());
        observer
    }

    #[test]
    fn min_max_covers_everything() {
        let observer = observer(&[-1.0, 0.5, 3.0, f32::NAN]);
        assert_eq!(observer.min_max(), Some((-1.0, 3.0)));
        assert_eq!(observer.seen(), 3);
        let params = observer
            .params(RangeMethod::MinMax, Grid::INT8, false)
            .unwrap();
        assert_eq!(
            params,
            QuantParams::from_range(-1.0, 3.0, Grid::INT8, false)
        );
        assert_eq!(observer.clipping(&params), 0.0);
        assert!(RangeObserver::new()
            .params(RangeMethod::MinMax, Grid::INT8, false)
            .is_none());
    }

    #[test]
    fn a_percentile_lets_outliers_saturate() {
        let mut values: Vec<f32> = (0..1000).map(|i| i as f32 / 1000.0).collect();
        values.push(100.0);
        let observer = observer(&values);
        let params = observer
            .params(
                RangeMethod::Percentile { percentile: 99.0 },
                Grid::INT8,
                false,
            )
            .unwrap();
        let (_, high) = params.range();
        assert!(high < 1.1, "the outlier does not set the range: {high}");
        assert!(observer.clipping(&params) > 0.0);
    }

    #[test]
    fn mse_clips_a_heavy_tail_and_keeps_min_max_for_a_uniform_spread() {
        // Laplace-distributed values (quantiles of a deterministic grid): a long thin tail. On
        // 4 bits the best clip is about half the largest value; on 8 bits it is nearly all of it.
        let count = 20_000;
        let values: Vec<f32> = (1..count)
            .map(|i| {
                let u = i as f32 / count as f32;
                if u < 0.5 {
                    (2.0 * u).ln()
                } else {
                    -(2.0 * (1.0 - u)).ln()
                }
            })
            .collect();
        let observer = observer(&values);
        let minmax = observer
            .params(RangeMethod::MinMax, Grid::INT4, false)
            .unwrap();
        let mse = observer
            .params(RangeMethod::Mse, Grid::INT4, false)
            .unwrap();
        assert!(observer.squared_error(&mse) < 0.8 * observer.squared_error(&minmax));
        assert!(mse.range().1 < minmax.range().1 && observer.clipping(&mse) > 0.0);
        let uniform = self::observer(&(0..10_000).map(|i| i as f32 / 10_000.0).collect::<Vec<_>>());
        let mse = uniform.params(RangeMethod::Mse, Grid::INT8, false).unwrap();
        let minmax = uniform
            .params(RangeMethod::MinMax, Grid::INT8, false)
            .unwrap();
        assert!(uniform.squared_error(&mse) <= uniform.squared_error(&minmax));
        assert!(uniform.clipping(&mse) < 0.01);
    }

    #[test]
    fn long_streams_are_subsampled() {
        let mut observer = RangeObserver::new();
        observer.observe((0..5 * KEPT_VALUES).map(|i| i as f32));
        assert_eq!(observer.seen(), 5 * KEPT_VALUES);
        assert!(observer.kept.len() < 2 * KEPT_VALUES);
        assert_eq!(
            observer.min_max(),
            Some((0.0, (5 * KEPT_VALUES - 1) as f32))
        );
    }
}
