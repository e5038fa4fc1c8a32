//! Releasing per-record data with (ε, δ)-differential privacy: [`release_mean`] clips every
//! record, averages and adds Gaussian noise; [`release_rows`] clips every row of a matrix and adds
//! Gaussian noise to every entry. Both calibrate σ with the analytic Gaussian mechanism and report
//! the zCDP cost ρ alongside (ε, δ).

use std::fmt;

use ndarray::{Array2, ArrayView2};
use rand::rngs::{ChaCha20Rng, SysRng};
use rand::{CryptoRng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use serde::Serialize;

use super::clipping::{clip_rows, validate_clip_norm, validate_records};
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

    /// The L2 sensitivity of a matrix of rows clipped to `clip_norm` when one record can change
    /// at most `rows_per_record` of them: √k·2C under `ReplaceOne` (each changed row moves by at
    /// most 2C), √k·C under `AddRemoveOne` (each of the record's rows appears or disappears,
    /// counted as a zero row when absent; see [`release_rows`]).
    pub fn sensitivity_of_rows(self, clip_norm: f64, rows_per_record: usize) -> f64 {
        let changed_norm = match self {
            Self::ReplaceOne => 2.0 * clip_norm,
            Self::AddRemoveOne => clip_norm,
        };
        (rows_per_record as f64).sqrt() * changed_norm
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
    /// ε > 0; +∞ adds no noise (no privacy, for testing a pipeline): [`release_mean`] then
    /// returns the exact clipped mean, [`release_rows`] the rows exactly, unclipped.
    pub epsilon: f64,
    /// δ in (0, 1), typically well below 1/N.
    pub delta: f64,
    /// C: every record is clipped to this L2 norm, which bounds the sensitivity.
    pub clip_norm: f64,
    /// Which data sets count as neighbours; fixes Δ.
    pub neighbouring: Neighbouring,
}

/// What a release did and guarantees, for logs, token metadata and the
/// [`PrivacyLedger`](crate::PrivacyLedger). Serialises to JSON with the field names below;
/// infinities (ε, Δ, ρ) serialise as `null` (JSON has no infinity).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReleaseReport {
    /// What was released: "mean" ([`release_mean`]) or "rows" ([`release_rows`]).
    pub released: &'static str,
    /// The ε of the guarantee.
    pub epsilon: f64,
    /// The δ of the guarantee.
    pub delta: f64,
    /// ρ of the equivalent zCDP guarantee, Δ²/(2σ²) (Bun & Steinke 2016): what the accountant
    /// adds up under [`CompositionRule::Zcdp`](crate::CompositionRule::Zcdp). +∞ when σ = 0.
    pub rho: f64,
    /// C, the norm rows were clipped to (when `clipped`).
    pub clip_norm: f64,
    /// Whether every row was clipped to C. False only for [`release_rows`] at ε = +∞, which
    /// returns the rows exactly.
    pub clipped: bool,
    /// The number of input rows: N records averaged, or the rows released.
    pub records: usize,
    /// How many rows had a norm above C and were scaled down (0 when not `clipped`).
    pub rows_clipped: usize,
    /// The most released rows one record can change: 1 for a mean.
    pub rows_per_record: usize,
    /// The neighbouring relation, e.g. "replace-one".
    pub neighbouring: Neighbouring,
    /// Δ, the L2 sensitivity of the released values under that relation (+∞ when not
    /// `clipped`: nothing bounds it).
    pub sensitivity: f64,
    /// σ, the standard deviation of the noise added to every released value.
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
            released: "mean",
            epsilon: options.epsilon,
            delta: options.delta,
            rho: zcdp_rho(sensitivity, sigma),
            clip_norm: options.clip_norm,
            clipped: true,
            records: count,
            rows_clipped: clipped.rows_clipped,
            rows_per_record: 1,
            neighbouring: options.neighbouring,
            sensitivity,
            sigma,
            mechanism: "analytic-gaussian",
        },
    })
}

/// A differentially private matrix, one noisy row per input row, and the report that states its
/// guarantee.
#[derive(Debug, Clone, PartialEq)]
pub struct RowRelease {
    /// The released rows, the same shape as the input.
    pub rows: Array2<f32>,
    /// The parameters and guarantee of this release.
    pub report: ReleaseReport,
}

/// Releases every row of `records` (e.g. a model's centred, temperature-scaled logits on each
/// reference input, plus rows for synthetic inputs built from records) with (ε, δ)-differential
/// privacy for each record under `options.neighbouring`.
///
/// Every row is clipped to L2 norm C = `options.clip_norm` ([`clip_rows`]) and independent
/// N(0, σ²) noise is added to every entry. `rows_per_record` (k ≥ 1) must bound how many rows any
/// one record can change, e.g. 1 + the number of synthetic inputs it takes part in; the matrix
/// then has L2 sensitivity Δ = √k·2C under `ReplaceOne` and √k·C under `AddRemoveOne`
/// ([`Neighbouring::sensitivity_of_rows`]), and σ comes from [`analytic_gaussian_sigma`] at Δ.
/// `AddRemoveOne` treats the number of rows as public and holds only if every row a record
/// influences is absent (a zero row) without it; where such rows would instead be recomputed from
/// other records, use `ReplaceOne`.
///
/// ε = +∞ adds no noise and does no clipping: the rows come back exactly, the report says
/// `clipped: false`, Δ = ρ = +∞. `rng` must be a cryptographically secure generator
/// ([`secure_rng`] for real releases); noise is drawn row by row. Errors: k = 0, no rows or
/// columns, a value that is not finite, a bad clip norm (also at ε = +∞), bad ε or δ (see
/// [`analytic_gaussian_sigma`]).
pub fn release_rows(
    records: ArrayView2<f32>,
    options: &ReleaseOptions,
    rows_per_record: usize,
    rng: &mut impl CryptoRng,
) -> Result<RowRelease> {
    if rows_per_record == 0 {
        return Err(Error::InvalidParameter(
            "rows_per_record must be at least 1 (each record's own row), got 0".into(),
        ));
    }
    validate_clip_norm(options.clip_norm)?;
    validate_records(records)?;
    let bounded = options
        .neighbouring
        .sensitivity_of_rows(options.clip_norm, rows_per_record);
    let sigma = analytic_gaussian_sigma(options.epsilon, options.delta, bounded)?;
    let (rows, rows_clipped, clipped, sensitivity) = if options.epsilon == f64::INFINITY {
        (records.to_owned(), 0, false, f64::INFINITY)
    } else {
        let clipped = clip_rows(records, options.clip_norm)?;
        let mut rows = clipped.records;
        for value in rows.iter_mut() {
            let noise: f64 = StandardNormal.sample(rng);
            *value = (f64::from(*value) + sigma * noise) as f32;
        }
        (rows, clipped.rows_clipped, true, bounded)
    };
    Ok(RowRelease {
        report: ReleaseReport {
            released: "rows",
            epsilon: options.epsilon,
            delta: options.delta,
            rho: zcdp_rho(sensitivity, sigma),
            clip_norm: options.clip_norm,
            clipped,
            records: rows.nrows(),
            rows_clipped,
            rows_per_record,
            neighbouring: options.neighbouring,
            sensitivity,
            sigma,
            mechanism: "analytic-gaussian",
        },
        rows,
    })
}

/// ρ = Δ²/(2σ²), the zCDP cost of Gaussian noise σ on a query of sensitivity Δ (Bun & Steinke
/// 2016, Proposition 1.6); +∞ when σ = 0 (and Δ > 0).
fn zcdp_rho(sensitivity: f64, sigma: f64) -> f64 {
    if sigma == 0.0 {
        f64::INFINITY
    } else {
        sensitivity * sensitivity / (2.0 * sigma * sigma)
    }
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

    #[test]
    fn mean_report_states_rows_and_zcdp_cost() {
        let records = sample_records(8, 4);
        let settings = options(1.0, 1.0, Neighbouring::ReplaceOne);
        let report = release_mean(records.view(), &settings, &mut seeded_rng(3))
            .unwrap()
            .report;
        assert_eq!(report.released, "mean");
        assert_eq!(report.rows_per_record, 1);
        assert!(report.clipped);
        let expected_rho = report.sensitivity.powi(2) / (2.0 * report.sigma.powi(2));
        assert_eq!(report.rho, expected_rho);
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["released"], "mean");
        assert_eq!(json["rho"], expected_rho);
    }

    #[test]
    fn rows_sensitivity_and_sigma_follow_rows_per_record() {
        let records = sample_records(12, 5);
        for (neighbouring, changed) in [
            (Neighbouring::ReplaceOne, 2.0 * 1.5),
            (Neighbouring::AddRemoveOne, 1.5),
        ] {
            let settings = options(0.8, 1.5, neighbouring);
            let release = release_rows(records.view(), &settings, 3, &mut seeded_rng(2)).unwrap();
            let report = &release.report;
            let sensitivity = 3.0_f64.sqrt() * changed;
            assert_eq!(report.sensitivity, sensitivity);
            assert_eq!(
                neighbouring.sensitivity_of_rows(1.5, 3),
                sensitivity,
                "{neighbouring}"
            );
            assert_eq!(
                report.sigma,
                analytic_gaussian_sigma(0.8, 1e-5, sensitivity).unwrap()
            );
            let rho = sensitivity * sensitivity / (2.0 * report.sigma * report.sigma);
            assert!((report.rho / rho - 1.0).abs() < 1e-15);
            assert_eq!(report.released, "rows");
            assert_eq!((report.records, report.rows_per_record), (12, 3));
            assert!(report.clipped);
            assert_eq!(release.rows.dim(), (12, 5));
        }
    }

    #[test]
    fn rows_are_clipped_then_noised_entry_by_entry() {
        let records = sample_records(30, 7);
        let settings = options(2.0, 1.0, Neighbouring::ReplaceOne);
        let release = release_rows(records.view(), &settings, 2, &mut seeded_rng(9)).unwrap();
        let clipped = clip_rows(records.view(), 1.0).unwrap();
        assert!(clipped.rows_clipped > 0);
        assert_eq!(release.report.rows_clipped, clipped.rows_clipped);
        let sigma = release.report.sigma;
        let mut rng = seeded_rng(9);
        let expected = clipped.records.mapv(|value| {
            let noise: f64 = StandardNormal.sample(&mut rng);
            (f64::from(value) + sigma * noise) as f32
        });
        assert_eq!(release.rows, expected);
    }

    #[test]
    fn row_noise_has_the_calibrated_spread() {
        let records = sample_records(200, 100);
        let settings = options(1.0, 1.0, Neighbouring::ReplaceOne);
        let release = release_rows(records.view(), &settings, 4, &mut seeded_rng(21)).unwrap();
        let clipped = clip_rows(records.view(), 1.0).unwrap();
        let noise: Vec<f64> = release
            .rows
            .iter()
            .zip(clipped.records.iter())
            .map(|(&noisy, &exact)| f64::from(noisy) - f64::from(exact))
            .collect();
        let count = noise.len() as f64;
        let spread = (noise.iter().map(|n| n * n).sum::<f64>() / count).sqrt();
        let sigma = release.report.sigma;
        assert_eq!(
            sigma,
            analytic_gaussian_sigma(1.0, 1e-5, 4.0_f64.sqrt() * 2.0).unwrap()
        );
        assert!((spread / sigma - 1.0).abs() < 0.03, "{spread} vs σ {sigma}");
    }

    #[test]
    fn infinite_epsilon_returns_the_rows_exactly_unclipped() {
        let records = sample_records(10, 6);
        let settings = options(f64::INFINITY, 1.0, Neighbouring::ReplaceOne);
        let release = release_rows(records.view(), &settings, 3, &mut seeded_rng(1)).unwrap();
        assert_eq!(release.rows, records);
        let report = &release.report;
        assert!(!report.clipped);
        assert_eq!((report.rows_clipped, report.sigma), (0, 0.0));
        assert_eq!(report.rho, f64::INFINITY);
        assert_eq!(report.sensitivity, f64::INFINITY);
        let json = serde_json::to_value(report).unwrap();
        assert!(json["epsilon"].is_null() && json["rho"].is_null());
        assert_eq!(json["clipped"], false);
    }

    #[test]
    fn row_releases_are_reproducible_with_a_seed() {
        let records = sample_records(6, 4);
        let settings = options(1.0, 1.0, Neighbouring::AddRemoveOne);
        let first = release_rows(records.view(), &settings, 2, &mut seeded_rng(4)).unwrap();
        let again = release_rows(records.view(), &settings, 2, &mut seeded_rng(4)).unwrap();
        let other = release_rows(records.view(), &settings, 2, &mut seeded_rng(5)).unwrap();
        assert_eq!(first, again);
        assert_ne!(first.rows, other.rows);
    }

    #[test]
    fn bad_row_releases_are_refused() {
        let records = sample_records(5, 3);
        let mut rng = seeded_rng(0);
        let finite = options(1.0, 1.0, Neighbouring::ReplaceOne);
        let infinite = options(f64::INFINITY, 1.0, Neighbouring::ReplaceOne);
        let message = |records: ArrayView2<f32>, settings: &ReleaseOptions, k: usize| {
            release_rows(records, settings, k, &mut seeded_rng(0))
                .unwrap_err()
                .to_string()
        };
        assert!(message(records.view(), &finite, 0).contains("rows_per_record"));
        let mut with_nan = records.clone();
        with_nan[[2, 1]] = f32::NAN;
        for settings in [&finite, &infinite] {
            assert!(message(with_nan.view(), settings, 1).contains("records[2, 1] is NaN"));
            assert!(message(Array2::<f32>::zeros((0, 3)).view(), settings, 1).contains("[0, 3]"));
            let mut bad_clip = *settings;
            bad_clip.clip_norm = 0.0;
            assert!(message(records.view(), &bad_clip, 1).contains("clip_norm"));
            let mut bad_delta = *settings;
            bad_delta.delta = 1.0;
            assert!(message(records.view(), &bad_delta, 1).contains("delta"));
        }
        assert!(release_rows(records.view(), &finite, 1, &mut rng).is_ok());
    }
}
