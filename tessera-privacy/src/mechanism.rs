//! Calibrating the Gaussian mechanism: how much noise makes a release (ε, δ)-differentially
//! private.
//!
//! [`analytic_gaussian_sigma`] is the analytic Gaussian mechanism of Balle & Wang (ICML 2018,
//! "Improving the Gaussian Mechanism for Differential Privacy: Analytical Calibration and Optimal
//! Denoising", Algorithm 1): the smallest σ for which adding N(0, σ²) noise to every coordinate
//! of a query with L2 sensitivity Δ is (ε, δ)-DP, exact for every ε > 0. The textbook
//! calibration, [`classical_gaussian_sigma`], is kept for comparison; it adds more noise and only
//! holds for ε ≤ 1. [`gaussian_mechanism_delta`] is the exact privacy condition (the paper's
//! Theorem 8), used to check any σ.
//!
//! The standard normal CDF is computed as Φ(x) = erfc(−x/√2)/2 with the `libm` crate's `erfc`
//! (a port of musl's, itself from FreeBSD's msun: relative error within a few units in the last
//! place across the range, including the far tails). The privacy condition
//! Φ(u) − e^ε Φ(w) (w < u) is evaluated as [Φ(u) − Φ(w)] − (e^ε − 1)·Φ(w), the first term by
//! Gauss–Legendre quadrature when the interval is short: written naively, the two terms agree
//! in up to seven leading digits for small ε and δ. Where e^ε would overflow or Φ(w) underflow
//! the product is formed in log space, so every ε > 0 can be calibrated.

use std::f64::consts::{PI, SQRT_2};

use crate::{Error, Result};

/// Below this argument Φ(−y) is a normal (not subnormal) f64 and `libm::erfc` keeps its full
/// relative accuracy; above it the asymptotic series of the normal tail is used instead.
const TAIL_SERIES_FROM: f64 = 37.0;

/// Largest ε for which e^ε − 1 is formed directly (e^709.78 overflows f64).
const DIRECT_EXP_UP_TO: f64 = 700.0;

/// Bisection stops earlier when the bracket's ends are adjacent floats; this bound (more than the
/// 1,075 halvings that separate 1.0 from the smallest subnormal) only makes termination evident.
const MAX_BISECTION_STEPS: usize = 1_100;

/// How many times the calibrated σ may be enlarged (by 2^-52, 2^-51, …, 2^-31: about 2^-30 in
/// all) if the exact privacy condition, re-evaluated at σ, is off by rounding.
const MAX_CERTIFY_STEPS: usize = 22;

/// The analytic Gaussian mechanism's noise scale: the smallest σ such that adding independent
/// N(0, σ²) noise to each coordinate of a query with L2 sensitivity `sensitivity` is
/// (`epsilon`, `delta`)-differentially private (Balle & Wang 2018, Algorithm 1), for every
/// ε > 0, with less noise than [`classical_gaussian_sigma`].
///
/// `epsilon = +∞` asks for no privacy and gives σ = 0, as does `sensitivity = 0`. The returned σ
/// is checked against the exact condition ([`gaussian_mechanism_delta`] ≤ `delta`) before it is
/// returned. Errors: ε not > 0, δ outside (0, 1), Δ negative or not finite, NaN in any of them.
pub fn analytic_gaussian_sigma(epsilon: f64, delta: f64, sensitivity: f64) -> Result<f64> {
    validate_epsilon(epsilon)?;
    validate_delta(delta)?;
    validate_non_negative("sensitivity", sensitivity)?;
    if epsilon == f64::INFINITY || sensitivity == 0.0 {
        return Ok(0.0);
    }
    // The paper's threshold δ0 = Φ(0) − e^ε Φ(−√(2ε)) = B⁺(0) = B⁻(0) picks the branch.
    let threshold = boundary_plus(epsilon, 0.0);
    let alpha = if delta >= threshold {
        // B⁺ increases with s from δ0, and α(s) = √(1 + s/2) − √(s/2) decreases: the largest s
        // with B⁺(s) ≤ δ gives the smallest private σ.
        let (private_s, _) = locate_change(|s| boundary_plus(epsilon, s) > delta, epsilon)?;
        let half = private_s / 2.0;
        1.0 / ((1.0 + half).sqrt() + half.sqrt())
    } else {
        // B⁻ decreases with s from δ0, and α(s) = √(1 + s/2) + √(s/2) increases: the smallest s
        // with B⁻(s) ≤ δ gives the smallest private σ.
        let (_, private_s) = locate_change(|s| boundary_minus(epsilon, s) <= delta, epsilon)?;
        let half = private_s / 2.0;
        (1.0 + half).sqrt() + half.sqrt()
    };
    let sigma = alpha * sensitivity / (2.0 * epsilon).sqrt();
    if !(sigma.is_finite() && sigma > 0.0) {
        return Err(Error::InvalidParameter(format!(
            "the noise scale for epsilon {epsilon}, delta {delta} and sensitivity {sensitivity} \
             is out of the range of a 64-bit float; rescale the data so that the sensitivity is \
             nearer 1"
        )));
    }
    certify(epsilon, delta, sigma, sensitivity)
}

/// The classical Gaussian calibration σ = √(2 ln(1.25/δ))·Δ/ε (Dwork & Roth 2014, Theorem A.1),
/// kept to compare against [`analytic_gaussian_sigma`], which is never larger.
///
/// The theorem holds only for ε ≤ 1, so a larger ε (including +∞) is an error rather than a
/// silently invalid σ. Other errors as for [`analytic_gaussian_sigma`].
pub fn classical_gaussian_sigma(epsilon: f64, delta: f64, sensitivity: f64) -> Result<f64> {
    validate_epsilon(epsilon)?;
    validate_delta(delta)?;
    validate_non_negative("sensitivity", sensitivity)?;
    if epsilon > 1.0 {
        return Err(Error::InvalidParameter(format!(
            "the classical Gaussian calibration holds only for epsilon <= 1, got {epsilon}; \
             use analytic_gaussian_sigma, which is exact for every epsilon"
        )));
    }
    Ok((2.0 * (1.25 / delta).ln()).sqrt() * sensitivity / epsilon)
}

/// The smallest δ for which adding N(0, σ²) noise to a query with L2 sensitivity Δ is
/// (ε, δ)-DP: δ = Φ(Δ/(2σ) − εσ/Δ) − e^ε Φ(−Δ/(2σ) − εσ/Δ) (Balle & Wang 2018, Theorem 8).
///
/// Use it to check a σ chosen elsewhere or to report the δ a σ achieves at another ε.
/// σ = 0 with Δ > 0 gives δ = 1 (no privacy); Δ = 0 or ε = +∞ gives δ = 0. Errors: ε not > 0,
/// σ or Δ negative or not finite, NaN in any of them.
pub fn gaussian_mechanism_delta(epsilon: f64, sigma: f64, sensitivity: f64) -> Result<f64> {
    validate_epsilon(epsilon)?;
    validate_non_negative("sigma", sigma)?;
    validate_non_negative("sensitivity", sensitivity)?;
    Ok(delta_of_sigma(epsilon, sigma, sensitivity))
}

/// Theorem 8's δ(ε, σ) for already validated arguments.
fn delta_of_sigma(epsilon: f64, sigma: f64, sensitivity: f64) -> f64 {
    if sensitivity == 0.0 || epsilon == f64::INFINITY {
        return 0.0;
    }
    if sigma == 0.0 {
        return 1.0;
    }
    // Φ(u) − e^ε Φ(w) with u, w = −εσ/Δ ± Δ/(2σ).
    privacy_condition(
        epsilon,
        -epsilon * sigma / sensitivity,
        sensitivity / (2.0 * sigma),
    )
}

/// Enlarges `sigma` by a few ulps at a time until the exact privacy condition, as evaluated here,
/// holds at it: whatever rounding the search met, the σ returned passes Theorem 8's check.
fn certify(epsilon: f64, delta: f64, sigma: f64, sensitivity: f64) -> Result<f64> {
    let mut candidate = sigma;
    let mut step = f64::EPSILON;
    for _ in 0..MAX_CERTIFY_STEPS {
        if delta_of_sigma(epsilon, candidate, sensitivity) <= delta {
            return Ok(candidate);
        }
        candidate *= 1.0 + step;
        step *= 2.0;
    }
    Err(Error::Calibration(format!(
        "cannot calibrate the Gaussian mechanism for epsilon {epsilon} and delta {delta}: the \
         privacy condition cannot be evaluated accurately enough there; choose epsilon and delta \
         nearer the usual ranges (e.g. 0.01..100 and 1e-12..0.1)"
    )))
}

/// Finds where `changed(s)` switches from false (at s = 0) to true on [0, ∞): doubling an upper
/// bound from 1, then bisecting until the bracket's ends are adjacent floats. Returns the bracket
/// `(last s where false, first s where true)`.
fn locate_change(changed: impl Fn(f64) -> bool, epsilon: f64) -> Result<(f64, f64)> {
    let mut unchanged_at = 0.0_f64;
    let mut changed_at = 1.0_f64;
    while !changed(changed_at) {
        unchanged_at = changed_at;
        changed_at *= 2.0;
        if !changed_at.is_finite() {
            return Err(Error::Calibration(format!(
                "epsilon {epsilon} is too small for the Gaussian mechanism to be calibrated in \
                 64-bit floating point; use a larger epsilon"
            )));
        }
    }
    for _ in 0..MAX_BISECTION_STEPS {
        let middle = unchanged_at + (changed_at - unchanged_at) / 2.0;
        if middle <= unchanged_at || middle >= changed_at {
            break;
        }
        if changed(middle) {
            changed_at = middle;
        } else {
            unchanged_at = middle;
        }
    }
    Ok((unchanged_at, changed_at))
}

/// B⁺(s) = Φ(√(εs)) − e^ε Φ(−√(ε(s + 2))): the privacy condition at σ = α(s)·Δ/√(2ε) with
/// α(s) = √(1 + s/2) − √(s/2), the branch for δ ≥ δ0 (Balle & Wang 2018, Theorem 9).
fn boundary_plus(epsilon: f64, s: f64) -> f64 {
    let (near, far) = ((epsilon * s).sqrt(), (epsilon * (s + 2.0)).sqrt());
    // The interval [−far, near]; (far − near)/2 = ε/(near + far) without cancellation.
    privacy_condition(epsilon, -epsilon / (near + far), (near + far) / 2.0)
}

/// B⁻(s) = Φ(−√(εs)) − e^ε Φ(−√(ε(s + 2))): the privacy condition at σ = α(s)·Δ/√(2ε) with
/// α(s) = √(1 + s/2) + √(s/2), the branch for δ < δ0 (Balle & Wang 2018, Theorem 9).
fn boundary_minus(epsilon: f64, s: f64) -> f64 {
    let (near, far) = ((epsilon * s).sqrt(), (epsilon * (s + 2.0)).sqrt());
    // The interval [−far, −near], of half-width ε/(near + far).
    privacy_condition(epsilon, -(near + far) / 2.0, epsilon / (near + far))
}

/// Φ(c + h) − e^ε Φ(c − h) for centre c and half-width h ≥ 0 with c − h ≤ 0, the shape shared by
/// Theorem 8 and B±, evaluated as P(c − h < Z < c + h) − (e^ε − 1)·Φ(c − h) to avoid cancellation.
fn privacy_condition(epsilon: f64, center: f64, half_width: f64) -> f64 {
    let condition = normal_mass_within(center, half_width)
        - exp_m1_times_lower_tail(epsilon, half_width - center);
    condition.max(0.0)
}

/// P(c − h < Z < c + h) for a standard normal Z, accurate relative to its value: 8-point
/// Gauss–Legendre quadrature of the density when the interval is short (relative error far below
/// 1e-16 while 2h·(|c| + h + 4) ≤ 1), else a difference of tail probabilities, which then cannot
/// cancel badly.
fn normal_mass_within(center: f64, half_width: f64) -> f64 {
    const NODES: [f64; 4] = [
        0.183_434_642_495_649_8,
        0.525_532_409_916_329,
        0.796_666_477_413_626_7,
        0.960_289_856_497_536_2,
    ];
    const WEIGHTS: [f64; 4] = [
        0.362_683_783_378_362,
        0.313_706_645_877_887_3,
        0.222_381_034_453_374_5,
        0.101_228_536_290_376_26,
    ];
    let (lower, upper) = (center - half_width, center + half_width);
    if 2.0 * half_width * (center.abs() + half_width + 4.0) <= 1.0 {
        let density = |t: f64| (-0.5 * t * t).exp() / (2.0 * PI).sqrt();
        let sum: f64 = NODES
            .iter()
            .zip(WEIGHTS)
            .map(|(&node, weight)| {
                let offset = half_width * node;
                weight * (density(center - offset) + density(center + offset))
            })
            .sum();
        half_width * sum
    } else if lower >= 0.0 {
        standard_normal_cdf(-lower) - standard_normal_cdf(-upper)
    } else {
        standard_normal_cdf(upper) - standard_normal_cdf(lower)
    }
}

/// Φ(x), the standard normal CDF, accurate relative to its value in both tails.
fn standard_normal_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x / SQRT_2)
}

/// (e^ε − 1)·Φ(−y) for y ≥ 0: directly where both factors are representable, else in log space.
fn exp_m1_times_lower_tail(epsilon: f64, y: f64) -> f64 {
    if epsilon <= DIRECT_EXP_UP_TO && y < TAIL_SERIES_FROM {
        return epsilon.exp_m1() * standard_normal_cdf(-y);
    }
    // ln(e^ε − 1) = ε + ln(1 − e^−ε), and e^−700 is far below an ulp of 1.
    let ln_growth = if epsilon <= DIRECT_EXP_UP_TO {
        epsilon.exp_m1().ln()
    } else {
        epsilon
    };
    (ln_growth + ln_lower_tail(y)).exp()
}

/// ln Φ(−y) for y ≥ 0. Beyond [`TAIL_SERIES_FROM`] it uses Φ(−y) = φ(y)/y·(1 − 1/y² + 3/y⁴ −
/// 15/y⁶ + 105/y⁸ − 945/y¹⁰ + …), whose first omitted term is below 2e-15 relative there.
fn ln_lower_tail(y: f64) -> f64 {
    if y < TAIL_SERIES_FROM {
        return standard_normal_cdf(-y).ln();
    }
    let inverse_square = 1.0 / (y * y);
    let correction = inverse_square
        * (-1.0
            + inverse_square
                * (3.0
                    + inverse_square
                        * (-15.0 + inverse_square * (105.0 - 945.0 * inverse_square))));
    -0.5 * y * y - y.ln() - 0.5 * (2.0 * PI).ln() + correction.ln_1p()
}

/// Checks ε: a number > 0, or +∞ for "no privacy".
pub(super) fn validate_epsilon(epsilon: f64) -> Result<()> {
    if epsilon > 0.0 {
        Ok(())
    } else {
        Err(Error::InvalidParameter(format!(
            "epsilon must be > 0 (or +inf for no noise), got {epsilon}"
        )))
    }
}

/// Checks δ: strictly between 0 and 1 (the Gaussian mechanism cannot give δ = 0).
fn validate_delta(delta: f64) -> Result<()> {
    if delta > 0.0 && delta < 1.0 {
        Ok(())
    } else {
        Err(Error::InvalidParameter(format!(
            "delta must satisfy 0 < delta < 1 (typically well below 1/records), got {delta}"
        )))
    }
}

/// Checks that a named scale (σ or Δ) is finite and ≥ 0.
fn validate_non_negative(name: &str, value: f64) -> Result<()> {
    if value >= 0.0 && value.is_finite() {
        Ok(())
    } else {
        Err(Error::InvalidParameter(format!(
            "{name} must be a finite number >= 0, got {value}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DELTA: f64 = 1e-5;

    /// Theorem 8 must hold at σ (up to 1e-12 relative) and fail just below it.
    fn assert_tight(epsilon: f64, delta: f64, sensitivity: f64) {
        let sigma = analytic_gaussian_sigma(epsilon, delta, sensitivity).unwrap();
        let at_sigma = gaussian_mechanism_delta(epsilon, sigma, sensitivity).unwrap();
        assert!(
            at_sigma <= delta * (1.0 + 1e-12),
            "ε={epsilon} δ={delta}: δ(σ={sigma}) = {at_sigma}"
        );
        let below = gaussian_mechanism_delta(epsilon, sigma * (1.0 - 1e-6), sensitivity).unwrap();
        assert!(
            below > delta,
            "ε={epsilon} δ={delta}: σ(1−1e-6) should not be private, δ = {below}"
        );
    }

    #[test]
    fn matches_the_paper_at_epsilon_one() {
        // Measured: 3.730631634815938; an 80-digit mpmath evaluation of Theorem 8 gives
        // 3.7306316348159418 (Balle & Wang report σ ≈ 3.73 for ε = 1, δ = 1e-5).
        let sigma = analytic_gaussian_sigma(1.0, DELTA, 1.0).unwrap();
        assert!((sigma - 3.73).abs() < 0.005, "σ = {sigma}");
    }

    #[test]
    fn returned_sigma_satisfies_theorem_8_and_is_tight() {
        for &epsilon in &[0.01, 0.1, 0.5, 1.0, 2.0, 8.0, 50.0] {
            for &delta in &[1e-12, 1e-5, 1e-2, 0.4, 0.9] {
                assert_tight(epsilon, delta, 1.0);
            }
        }
        assert_tight(1.0, DELTA, 0.37);
    }

    #[test]
    fn below_classical_for_epsilon_at_most_one() {
        for &epsilon in &[0.05, 0.1, 0.25, 0.5, 0.75, 1.0] {
            for &delta in &[1e-9, 1e-5, 1e-2] {
                let analytic = analytic_gaussian_sigma(epsilon, delta, 1.0).unwrap();
                let classical = classical_gaussian_sigma(epsilon, delta, 1.0).unwrap();
                assert!(analytic < classical, "ε={epsilon} δ={delta}");
            }
        }
    }

    #[test]
    fn decreases_as_epsilon_grows() {
        let epsilons = [0.01, 0.1, 0.5, 1.0, 2.0, 4.0, 8.0, 20.0, 100.0];
        let sigmas: Vec<f64> = epsilons
            .iter()
            .map(|&epsilon| analytic_gaussian_sigma(epsilon, DELTA, 1.0).unwrap())
            .collect();
        assert!(
            sigmas.windows(2).all(|pair| pair[1] < pair[0]),
            "{sigmas:?}"
        );
    }

    #[test]
    fn scales_linearly_with_sensitivity() {
        let unit = analytic_gaussian_sigma(0.7, DELTA, 1.0).unwrap();
        for &sensitivity in &[1e-6, 0.25, 3.0, 1e6] {
            let sigma = analytic_gaussian_sigma(0.7, DELTA, sensitivity).unwrap();
            assert!((sigma / (unit * sensitivity) - 1.0).abs() < 1e-12);
        }
    }

    #[test]
    fn no_noise_for_infinite_epsilon_or_zero_sensitivity() {
        assert_eq!(
            analytic_gaussian_sigma(f64::INFINITY, DELTA, 1.0).unwrap(),
            0.0
        );
        assert_eq!(analytic_gaussian_sigma(1.0, DELTA, 0.0).unwrap(), 0.0);
        assert_eq!(gaussian_mechanism_delta(1.0, 0.0, 1.0).unwrap(), 1.0);
        assert_eq!(
            gaussian_mechanism_delta(f64::INFINITY, 1.0, 1.0).unwrap(),
            0.0
        );
    }

    #[test]
    fn extreme_epsilons_still_calibrate() {
        for &epsilon in &[1e-9, 1e-6, 300.0, 800.0, 5_000.0, 1e12, 1e300] {
            let sigma = analytic_gaussian_sigma(epsilon, DELTA, 1.0).unwrap();
            assert!(sigma.is_finite() && sigma > 0.0, "ε={epsilon}: σ = {sigma}");
            assert!(gaussian_mechanism_delta(epsilon, sigma, 1.0).unwrap() <= DELTA);
        }
    }

    #[test]
    fn rearranged_condition_matches_the_literal_theorem_8_formula() {
        // Where the literal formula does not cancel badly, both evaluations must agree.
        let literal = |epsilon: f64, sigma: f64| {
            let (half_ratio, shift) = (1.0 / (2.0 * sigma), epsilon * sigma);
            standard_normal_cdf(half_ratio - shift)
                - epsilon.exp() * standard_normal_cdf(-half_ratio - shift)
        };
        for &(epsilon, sigma) in &[(1.0, 3.7), (0.5, 2.0), (2.0, 0.3), (8.0, 0.6), (0.1, 30.0)] {
            let expected = literal(epsilon, sigma);
            let got = gaussian_mechanism_delta(epsilon, sigma, 1.0).unwrap();
            assert!(
                (got / expected - 1.0).abs() < 1e-11,
                "ε={epsilon} σ={sigma}: {got} vs {expected}"
            );
        }
    }

    #[test]
    fn lower_tail_logarithm_matches_high_precision_values() {
        // ln Φ(−y) from mpmath at 50 digits; 36.999999 takes the erfc branch, the rest the series.
        let reference = [
            (36.999999, -689.030_548_549_903_5),
            (37.0, -689.030_585_576_890_6),
            (40.0, -804.608_442_013_753_8),
            (100.0, -5_005.524_208_694_205),
        ];
        for (y, expected) in reference {
            let got = ln_lower_tail(y);
            assert!(
                (got / expected - 1.0).abs() < 1e-14,
                "y={y}: {got} vs {expected}"
            );
        }
    }

    #[test]
    fn classical_refuses_epsilon_above_one() {
        let message = classical_gaussian_sigma(1.5, DELTA, 1.0)
            .unwrap_err()
            .to_string();
        assert!(message.contains("epsilon <= 1"), "{message}");
        assert!(classical_gaussian_sigma(f64::INFINITY, DELTA, 1.0).is_err());
        let expected = (2.0 * (1.25_f64 / DELTA).ln()).sqrt() * 2.0 / 0.5;
        assert_eq!(classical_gaussian_sigma(0.5, DELTA, 2.0).unwrap(), expected);
    }

    #[test]
    fn invalid_parameters_are_named() {
        let cases = [
            ((f64::NAN, DELTA, 1.0), "epsilon"),
            ((0.0, DELTA, 1.0), "epsilon"),
            ((-1.0, DELTA, 1.0), "epsilon"),
            ((1.0, f64::NAN, 1.0), "delta"),
            ((1.0, 0.0, 1.0), "delta"),
            ((1.0, 1.0, 1.0), "delta"),
            ((1.0, DELTA, f64::NAN), "sensitivity"),
            ((1.0, DELTA, -1.0), "sensitivity"),
            ((1.0, DELTA, f64::INFINITY), "sensitivity"),
        ];
        for ((epsilon, delta, sensitivity), named) in cases {
            let message = analytic_gaussian_sigma(epsilon, delta, sensitivity)
                .unwrap_err()
                .to_string();
            assert!(
                message.starts_with("privacy: ") && message.contains(named),
                "{message}"
            );
        }
        let message = gaussian_mechanism_delta(1.0, f64::NAN, 1.0)
            .unwrap_err()
            .to_string();
        assert!(message.contains("sigma"), "{message}");
    }
}
