//! Releasing the mean of per-record vectors with (ε, δ)-differential privacy: clip every record,
//! average, add Gaussian noise calibrated by the analytic Gaussian mechanism.

use std::fmt;

use ndarray::{Array2, ArrayView2};
use rand::rngs::{ChaCha20Rng, SysRng};
use rand::{CryptoRng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use serde::Serialize;

use super::clipping::clip_rows;
use super::mechanism::analytic_gaussian_sigma;
use crate::{Error, Result};

/// What "neighbouring data sets" means for a release: the privacy guarantee bounds what the
/// output reveals about the difference between any two neighbours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Neighbouring {
    /// Neighbours differ by replacing one record with another; N is the same in both. The mean
    /// of rows clipped to norm C then moves by at most Δ = 2C/N.
    ReplaceOne,
    /// Neighbours differ by adding or removing one record. Δ = C/N is used: the sensitivity of
    /// the sum (C) divided by N, treating N as public and unchanged. This is an approximation:
    /// N itself changes between neighbours, and the exact worst case for the mean is up to
    /// 2C/(N + 1). Use it only where N is public anyway; otherwise prefer `ReplaceOne`.
    AddRemoveOne,
}

impl Neighbouring {
    /// The L2 sensitivity of the mean of `records` rows clipped to `clip_norm` under this
    /// relation (see each variant).
    pub fn sensitivity_of_mean(self, clip_norm: f64, records: usize) -> f64 {
        let changed_norm = match self {
            Self::ReplaceOne => 2.0 * clip_norm,
            Self::AddRemoveOne => clip_norm,
        };
        changed_norm / records as f64
    }

    /// The relation's name as reports show it: "replace-one" or "add-remove-one".
    pub fn name(self) -> &'static str {
        match self {
            Self::ReplaceOne => "replace-one",
            Self::AddRemoveOne => "add-remove-one",
        }
    }
}

impl fmt::Display for Neighbouring {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

/// The privacy parameters of one release.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReleaseOptions {
    /// ε > 0; +∞ releases the exact clipped mean (no privacy, for testing a pipeline).
    pub epsilon: f64,
    /// δ in (0, 1), typically well below 1/N.
    pub delta: f64,
    /// C: every record is clipped to this L2 norm, which bounds the sensitivity.
    pub clip_norm: f64,
    /// Which data sets count as neighbours; fixes Δ.
    pub neighbouring: Neighbouring,
}

/// What a release did and guarantees, for logs and token metadata. Serialises to JSON with the
/// field names below; ε = +∞ serialises as `null` (JSON has no infinity).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReleaseReport {
    /// The ε of the guarantee.
    pub epsilon: f64,
    /// The δ of the guarantee.
    pub delta: f64,
    /// C, the norm every record was clipped to.
    pub clip_norm: f64,
    /// N, the number of records averaged.
    pub records: usize,
    /// How many records had a norm above C and were scaled down.
    pub rows_clipped: usize,
    /// The neighbouring relation, e.g. "replace-one".
    pub neighbouring: Neighbouring,
    /// Δ, the L2 sensitivity of the clipped mean under that relation.
    pub sensitivity: f64,
    /// σ, the standard deviation of the noise added to every coordinate.
    pub sigma: f64,
    /// How σ was calibrated: always "analytic-gaussian" (Balle & Wang 2018).
    pub mechanism: &'static str,
}

/// A differentially private mean and the report that states its guarantee.
#[derive(Debug, Clone, PartialEq)]
pub struct Release {
    /// The noisy mean, one value per column of the records.
    pub vector: Vec<f32>,
    /// The parameters and guarantee of this release.
    pub report: ReleaseReport,
}

/// Releases the mean of the rows of `records` (one record per row, e.g. N hub vectors of width
/// H) with (ε, δ)-differential privacy under `options.neighbouring`.
///
/// Every row is clipped to L2 norm `options.clip_norm`, the rows are averaged (in f64), and
/// independent N(0, σ²) noise is added to every coordinate, σ from
/// [`analytic_gaussian_sigma`] at the mean's sensitivity. `rng` must be a cryptographically
/// secure generator: [`secure_rng`] for real releases. Errors: bad records or clip norm (see
/// [`clip_rows`]) and bad ε or δ (see [`analytic_gaussian_sigma`]).
pub fn release_mean(
    records: ArrayView2<f32>,
    options: &ReleaseOptions,
    rng: &mut impl CryptoRng,
) -> Result<Release> {
    let clipped = clip_rows(records, options.clip_norm)?;
    let count = clipped.records.nrows();
    let sensitivity = options
        .neighbouring
        .sensitivity_of_mean(options.clip_norm, count);
    let sigma = analytic_gaussian_sigma(options.epsilon, options.delta, sensitivity)?;
    let mean = row_mean(&clipped.records);
    let vector = if sigma == 0.0 {
        mean.iter().map(|&value| value as f32).collect()
    } else {
        mean.iter()
            .map(|&value| {
                let noise: f64 = StandardNormal.sample(rng);
                (value + sigma * noise) as f32
            })
            .collect()
    };
    Ok(Release {
        vector,
        report: ReleaseReport {
            epsilon: options.epsilon,
            delta: options.delta,
            clip_norm: options.clip_norm,
            records: count,
            rows_clipped: clipped.rows_clipped,
            neighbouring: options.neighbouring,
            sensitivity,
            sigma,
            mechanism: "analytic-gaussian",
        },
    })
}

/// A cryptographically secure generator for real releases: ChaCha20 seeded with 256 bits from
/// the operating system's entropy source. Errors if the operating system cannot supply entropy.
pub fn secure_rng() -> Result<ChaCha20Rng> {
    ChaCha20Rng::try_from_rng(&mut SysRng).map_err(|error| {
        Error::Entropy(format!(
            "the operating system's random number source failed ({error}); no release can be \
             made without it"
        ))
    })
}

/// A ChaCha20 generator seeded from `seed`, so that tests and examples are reproducible.
///
/// NOT for real releases: anyone who knows or guesses the seed can subtract the noise, and a
/// 64-bit seed can be searched. Use [`secure_rng`] for anything that leaves the machine.
pub fn seeded_rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// The mean of the rows, accumulated in f64.
fn row_mean(records: &Array2<f32>) -> Vec<f64> {
    let mut sum = vec![0.0_f64; records.ncols()];
    for row in records.outer_iter() {
        for (total, &value) in sum.iter_mut().zip(row.iter()) {
            *total += f64::from(value);
        }
    }
    let count = records.nrows() as f64;
    sum.iter().map(|total| total / count).collect()
}

#[cfg(test)]
mod tests {
    use ndarray::Array2;

    use super::*;

    fn options(epsilon: f64, clip_norm: f64, neighbouring: Neighbouring) -> ReleaseOptions {
        ReleaseOptions {
            epsilon,
            delta: 1e-5,
            clip_norm,
            neighbouring,
        }
    }

    /// Deterministic records with norms well above and below 1.
    fn sample_records(rows: usize, width: usize) -> Array2<f32> {
        Array2::from_shape_fn((rows, width), |(row, column)| {
            let phase = (row * 31 + column * 17) as f32;
            phase.sin() * (1.0 + (row % 4) as f32)
        })
    }

    fn l2_distance(left: &[f64], right: &[f64]) -> f64 {
        left.iter()
            .zip(right)
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f64>()
            .sqrt()
    }

    #[test]
    fn infinite_epsilon_releases_the_clipped_mean_exactly() {
        let records = sample_records(10, 6);
        let release = release_mean(
            records.view(),
            &options(f64::INFINITY, 1.0, Neighbouring::ReplaceOne),
            &mut seeded_rng(1),
        )
        .unwrap();
        let clipped = clip_rows(records.view(), 1.0).unwrap();
        let expected: Vec<f32> = row_mean(&clipped.records)
            .iter()
            .map(|&value| value as f32)
            .collect();
        assert_eq!(release.vector, expected);
        assert_eq!(release.report.sigma, 0.0);
        assert!(release.report.rows_clipped > 0);
    }

    #[test]
    fn noise_has_the_calibrated_spread() {
        let width = 20_000;
        let records = sample_records(50, width);
        let settings = options(1.0, 1.0, Neighbouring::ReplaceOne);
        let release = release_mean(records.view(), &settings, &mut seeded_rng(7)).unwrap();
        let clipped = clip_rows(records.view(), 1.0).unwrap();
        let noise: Vec<f64> = row_mean(&clipped.records)
            .iter()
            .zip(&release.vector)
            .map(|(&mean, &noisy)| f64::from(noisy) - mean)
            .collect();
        let sigma = release.report.sigma;
        let expected_sigma = analytic_gaussian_sigma(1.0, 1e-5, 2.0 / 50.0).unwrap();
        assert_eq!(sigma, expected_sigma);
        let count = noise.len() as f64;
        let noise_mean = noise.iter().sum::<f64>() / count;
        let noise_std =
            (noise.iter().map(|n| (n - noise_mean).powi(2)).sum::<f64>() / (count - 1.0)).sqrt();
        assert!(
            (noise_std / sigma - 1.0).abs() < 0.03,
            "std {noise_std} vs σ {sigma}"
        );
        assert!(
            noise_mean.abs() < 3.0 * sigma / count.sqrt(),
            "mean {noise_mean}"
        );
    }

    #[test]
    fn one_outlier_moves_the_clipped_mean_by_at_most_the_sensitivity() {
        let (rows, clip_norm) = (40, 2.0);
        let records = sample_records(rows, 64);
        let mut poisoned = records.clone();
        poisoned.row_mut(13).fill(1e30);
        let before = row_mean(&clip_rows(records.view(), clip_norm).unwrap().records);
        let after = row_mean(&clip_rows(poisoned.view(), clip_norm).unwrap().records);
        let bound = Neighbouring::ReplaceOne.sensitivity_of_mean(clip_norm, rows);
        assert_eq!(bound, 2.0 * clip_norm / rows as f64);
        assert!(l2_distance(&before, &after) <= bound * (1.0 + 1e-9));
    }

    #[test]
    fn report_states_the_guarantee() {
        let records = sample_records(8, 4);
        let settings = options(2.0, 0.5, Neighbouring::AddRemoveOne);
        let release = release_mean(records.view(), &settings, &mut seeded_rng(3)).unwrap();
        let report = &release.report;
        assert_eq!(report.sensitivity, 0.5 / 8.0);
        assert_eq!(
            report.sigma,
            analytic_gaussian_sigma(2.0, 1e-5, 0.5 / 8.0).unwrap()
        );
        let json = serde_json::to_value(report).unwrap();
        assert_eq!(json["neighbouring"], "add-remove-one");
        assert_eq!(json["mechanism"], "analytic-gaussian");
        assert_eq!(json["records"], 8);
        assert_eq!(json["rows_clipped"], report.rows_clipped);
        assert_eq!(Neighbouring::ReplaceOne.to_string(), "replace-one");
        assert_eq!(release.vector.len(), 4);
    }

    #[test]
    fn same_seed_same_noise_and_secure_generator_works() {
        let records = sample_records(5, 8);
        let settings = options(1.0, 1.0, Neighbouring::ReplaceOne);
        let first = release_mean(records.view(), &settings, &mut seeded_rng(11)).unwrap();
        let again = release_mean(records.view(), &settings, &mut seeded_rng(11)).unwrap();
        assert_eq!(first, again);
        let secure = release_mean(records.view(), &settings, &mut secure_rng().unwrap()).unwrap();
        assert_ne!(secure.vector, first.vector);
    }

    #[test]
    fn bad_options_are_refused() {
        let records = sample_records(5, 8);
        let mut rng = seeded_rng(0);
        let mut settings = options(1.0, 1.0, Neighbouring::ReplaceOne);
        settings.delta = 0.0;
        assert!(release_mean(records.view(), &settings, &mut rng).is_err());
        settings = options(f64::NAN, 1.0, Neighbouring::ReplaceOne);
        assert!(release_mean(records.view(), &settings, &mut rng)
            .unwrap_err()
            .to_string()
            .contains("epsilon"));
        settings = options(1.0, 0.0, Neighbouring::ReplaceOne);
        assert!(release_mean(records.view(), &settings, &mut rng).is_err());
        let empty = Array2::<f32>::zeros((0, 8));
        assert!(release_mean(
            empty.view(),
            &options(1.0, 1.0, Neighbouring::ReplaceOne),
            &mut rng
        )
        .is_err());
    }
}
