//! The arithmetic the fused operators' loops are made of, written so that they vectorise: the
//! exponential and the error function in float32 without branches or library calls (libm's
//! `expf` and `erff` are one call per element, and were most of a GELU's time), and sums in
//! running lanes.

use crate::storage::Real;

/// 1.5 · 2²³: adding it rounds a float32 of magnitude below 2²² to the nearest integer, which
/// is then the low bits of the sum's representation (SSE2 has no rounding instruction).
const ROUNDING: f32 = 12_582_912.0;

/// `e^x` within about two float32 roundings for `x ≤ 88`; above, e^88 (near the largest
/// float32, so `1 / (1 + e^x)` still comes out near zero). Below −87.3 it returns about
/// 10⁻³⁸ instead of a subnormal or zero.
#[inline]
pub fn exp(x: f32) -> f32 {
    // Split x into k·ln 2 + r with |r| ≤ ln 2 / 2; ln 2 in two parts keeps r exact.
    const LN_2_HIGH: f32 = 0.693_359_4;
    const LN_2_LOW: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.3, 88.0);
    let shifted = x * std::f32::consts::LOG2_E + ROUNDING;
    let k = shifted - ROUNDING;
    let r = x - k * LN_2_HIGH - k * LN_2_LOW;
    // e^r by its Taylor series to r⁷: the first term left out is below 6·10⁻⁹ relative.
    let mut series = 1.0 / 5040.0;
    for coefficient in [
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ] {
        series = series * r + coefficient;
    }
    let power = shifted.to_bits().wrapping_sub(ROUNDING.to_bits()) as i32;
    series * f32::from_bits(((power + 127) as u32) << 23)
}

/// (−1)ⁿ / (n! (2n + 1)) for n = 0..=10: erf(x) = 2/√π · Σ cₙ x²ⁿ⁺¹.
const TAYLOR: [f32; 11] = {
    let mut coefficients = [0.0; 11];
    let (mut n, mut factorial) = (0, 1.0);
    while n < 11 {
        let sign = if n % 2 == 0 { 1.0 } else { -1.0 };
        coefficients[n] = sign / (factorial * (2 * n + 1) as f32);
        n += 1;
        factorial *= n as f32;
    }
    coefficients
};

/// The error function within 2·10⁻⁷. Below 1 in magnitude, its Taylor series to x²¹ (the
/// first term left out is under 2·10⁻⁸ of the value); from 1 on, Abramowitz and Stegun's
/// formula 7.1.26 (error at most 1.5·10⁻⁷), which near zero would lose digits to the
/// cancellation in `1 − …`.
#[inline]
pub fn erf(x: f32) -> f32 {
    const P: f32 = 0.327_591_1;
    const A: [f32; 5] = [
        0.254_829_6,
        -0.284_496_74,
        1.421_413_7,
        -1.453_152_1,
        1.061_405_4,
    ];
    let magnitude = x.abs();
    let t = 1.0 / (1.0 + P * magnitude);
    let polynomial = A.iter().rev().fold(0.0, |sum, &a| sum * t + a) * t;
    let tail = 1.0 - polynomial * exp(-magnitude * magnitude);
    let square = magnitude * magnitude;
    let series = TAYLOR.iter().rev().fold(0.0, |sum, &c| sum * square + c);
    let near_zero = std::f32::consts::FRAC_2_SQRT_PI * magnitude * series;
    (if magnitude < 1.0 { near_zero } else { tail }).copysign(x)
}

/// `term(v)` summed over `values`, in eight running sums so that the additions vectorise (one
/// running sum is a chain the processor cannot overlap).
#[inline]
pub fn sum_by<T: Real>(values: &[T], term: impl Fn(T) -> T) -> T {
    sum_by_pairs(values, values, |v, _| term(v))
}

/// `term(a, b)` summed over the pairs of `a` and `b` (of one length), as [`sum_by`] sums.
#[inline]
pub fn sum_by_pairs<T: Real>(a: &[T], b: &[T], term: impl Fn(T, T) -> T) -> T {
    const LANES: usize = 8;
    debug_assert_eq!(a.len(), b.len());
    let mut lanes = [T::zero(); LANES];
    let (whole_a, whole_b) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let rest = whole_a
        .remainder()
        .iter()
        .zip(whole_b.remainder())
        .fold(T::zero(), |total, (&x, &y)| total + term(x, y));
    for (chunk_a, chunk_b) in whole_a.zip(whole_b) {
        for ((total, &x), &y) in lanes.iter_mut().zip(chunk_a).zip(chunk_b) {
            *total += term(x, y);
        }
    }
    lanes.into_iter().fold(rest, |total, lane| total + lane)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Points spread over `[from, to]`, the ends included.
    fn grid(from: f32, to: f32) -> impl Iterator<Item = f32> {
        const POINTS: usize = 200_001;
        (0..POINTS).map(move |i| from + (to - from) * i as f32 / (POINTS - 1) as f32)
    }

    #[test]
    fn sums_take_every_term_once() {
        for len in 0..20 {
            let values: Vec<f32> = (1..=len).map(|i| i as f32).collect();
            let expected = (len * (len + 1) / 2) as f32;
            assert_eq!(sum_by(&values, |v| v), expected, "{len} terms");
            let ones = vec![1.0; len];
            assert_eq!(sum_by_pairs(&values, &ones, |a, b| a * b), expected);
        }
    }

    #[test]
    fn exp_is_within_two_roundings_of_libm() {
        let worst = grid(-87.0, 88.0)
            .map(|x| {
                let (fast, exact) = (f64::from(exp(x)), f64::from(x).exp());
                ((fast - exact) / exact).abs()
            })
            .fold(0.0, f64::max);
        assert!(worst < 2.5e-7, "worst relative error {worst:e}");
        assert_eq!(exp(0.0), 1.0);
        assert!(exp(-1000.0) < 1e-37 && exp(-1000.0) >= 0.0);
    }

    #[test]
    fn erf_is_within_its_bound_of_libm() {
        let worst = grid(-6.0, 6.0)
            .map(|x| (f64::from(erf(x)) - libm::erf(f64::from(x))).abs())
            .fold(0.0, f64::max);
        assert!(worst < 2e-7, "worst absolute error {worst:e}");
        assert!(erf(0.0).abs() < 2e-7);
        assert_eq!(erf(10.0), 1.0);
        assert_eq!(erf(-10.0), -1.0);
    }
}
