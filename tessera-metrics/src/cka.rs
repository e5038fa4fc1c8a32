//! Debiased linear centred kernel alignment (CKA) between two representations of the same
//! samples.

use ndarray::{Array1, Array2, ArrayView2, Axis};

use super::{check_matrix, check_same_rows};
use crate::{Error, Result};

/// Debiased linear CKA between `x` (`[n, width_x]`) and `y` (`[n, width_y]`): rows are the same
/// `n ≥ 4` samples, columns are features, and the widths may differ.
///
/// Why: CKA asks whether two representations arrange the samples alike (the same ones close, the
/// same ones far), so it can compare layers of different widths and architectures; it does not
/// change when either representation is rotated or scaled. The debiased form (the unbiased HSIC
/// estimator of Song et al. 2012, as used for CKA by Nguyen, Raghu & Kornblith 2021 and
/// Kornblith's `feature_space_linear_cka(debiased=True)`) stays near 0 for unrelated
/// representations even when features outnumber samples, where the plain estimator drifts
/// towards 1.
///
/// Features are centred (column means removed), then with Gram matrices `K = XXᵀ` and `L = YYᵀ`
/// whose diagonals are zeroed,
/// `HSIC(K, L) = [tr(KL) + 1ᵀK1·1ᵀL1 / ((n−1)(n−2)) − 2/(n−2) · 1ᵀKL1] / (n(n−3))` and
/// `CKA = HSIC(K, L) / sqrt(HSIC(K, K) · HSIC(L, L))`, all in `f64`. The result is about 1 for
/// matching geometry and about 0 for unrelated, and may fall slightly outside [0, 1] since it
/// is an unbiased estimate. The terms are computed from whichever of the Gram matrices or the
/// feature cross-products (`XᵀY`) is smaller, so neither many samples nor wide features need an
/// outsized matrix.
///
/// Errors: differing row counts, `n < 4` (the estimator divides by `n − 3`), empty or non-finite
/// inputs, and a representation with no variance estimate above 0 (for instance one whose rows
/// are all equal), for which CKA is undefined.
pub fn debiased_linear_cka(x: ArrayView2<f32>, y: ArrayView2<f32>) -> Result<f64> {
    debiased_linear_cka_with(x, y, None)
}

/// [`debiased_linear_cka`], with the choice between Gram matrices (`Some(true)`) and feature
/// cross-products (`Some(false)`) forced for tests; `None` picks the smaller.
fn debiased_linear_cka_with(
    x: ArrayView2<f32>,
    y: ArrayView2<f32>,
    use_gram: Option<bool>,
) -> Result<f64> {
    check_matrix("x", x)?;
    check_matrix("y", y)?;
    check_same_rows("x", x, "y", y)?;
    let n = x.nrows();
    if n < 4 {
        return Err(Error::Shape(format!(
            "debiased CKA needs at least 4 samples (rows), found {n}"
        )));
    }
    let x = centred(x);
    let y = centred(y);
    let (dx, dy) = (x.ncols(), y.ncols());
    // Entries each way: the two Gram matrices, or XᵀX, YᵀY and XᵀY.
    let gram_entries = 2 * n * n;
    let feature_entries = dx * dx + dy * dy + dx * dy;
    let use_gram = use_gram.unwrap_or(gram_entries <= feature_entries);
    let (tr_kk, tr_ll, tr_kl) = if use_gram {
        let k = x.dot(&x.t());
        let l = y.dot(&y.t());
        (
            frobenius_dot(&k, &k),
            frobenius_dot(&l, &l),
            frobenius_dot(&k, &l),
        )
    } else {
        let xx = x.t().dot(&x);
        let yy = y.t().dot(&y);
        let xy = x.t().dot(&y);
        let squared = |m: &Array2<f64>| m.iter().map(|v| v * v).sum::<f64>();
        (squared(&xx), squared(&yy), squared(&xy))
    };
    let kx = Terms::new(&x);
    let ly = Terms::new(&y);
    let hsic_xy = hsic(n, tr_kl, &kx, &ly);
    let hsic_xx = hsic(n, tr_kk, &kx, &kx);
    let hsic_yy = hsic(n, tr_ll, &ly, &ly);
    for (name, value) in [("x", hsic_xx), ("y", hsic_yy)] {
        if value.is_nan() || value <= 0.0 {
            return Err(Error::Shape(format!(
                "debiased CKA is undefined: {name}'s HSIC with itself is {value}, not above 0 \
                 ({name} has too little variation across its {n} samples)"
            )));
        }
    }
    Ok(hsic_xy / (hsic_xx * hsic_yy).sqrt())
}

/// `m` in `f64` with its column means subtracted.
fn centred(m: ArrayView2<f32>) -> Array2<f64> {
    let m = m.mapv(f64::from);
    // `None` only without rows, which the callers rule out.
    let mean = m
        .mean_axis(Axis(0))
        .unwrap_or_else(|| Array1::zeros(m.ncols()));
    m - &mean
}

/// `Σ a_ij b_ij`.
fn frobenius_dot(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
    a.iter().zip(b.iter()).map(|(a, b)| a * b).sum()
}

/// What the HSIC estimator needs of one zero-diagonal Gram matrix `K̃ = XXᵀ − diag(XXᵀ)` beyond
/// traces of products, computed from `X` without forming `K̃`.
struct Terms {
    /// `diag(XXᵀ)`: each row's squared norm.
    diagonal: Array1<f64>,
    /// `K̃1 = X(Xᵀ1) − diag(XXᵀ)`.
    row_sums: Array1<f64>,
    /// `1ᵀK̃1`.
    total: f64,
}

impl Terms {
    fn new(x: &Array2<f64>) -> Self {
        let diagonal: Array1<f64> = x.rows().into_iter().map(|row| row.dot(&row)).collect();
        let column_sums = x.sum_axis(Axis(0));
        let row_sums = x.dot(&column_sums) - &diagonal;
        let total = row_sums.sum();
        Terms {
            diagonal,
            row_sums,
            total,
        }
    }
}

/// The unbiased HSIC estimate for zero-diagonal Gram matrices `K̃`, `L̃` of `n` samples, given
/// `tr(KL)` of the full Gram matrices: `tr(K̃L̃) = tr(KL) − Σ k_ii l_ii`, and
/// `1ᵀK̃L̃1 = (K̃1)ᵀ(L̃1)` since both are symmetric.
fn hsic(n: usize, tr_kl: f64, k: &Terms, l: &Terms) -> f64 {
    let n = n as f64;
    let tr = tr_kl - k.diagonal.dot(&l.diagonal);
    let cross = k.row_sums.dot(&l.row_sums);
    (tr + k.total * l.total / ((n - 1.0) * (n - 2.0)) - 2.0 / (n - 2.0) * cross) / (n * (n - 3.0))
}

#[cfg(test)]
mod tests {
    use ndarray::{array, Array2};
    use rand::rngs::ChaCha8Rng;
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};

    use super::*;

    fn random(rows: usize, columns: usize, seed: u64) -> Array2<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        Array2::from_shape_simple_fn((rows, columns), || StandardNormal.sample(&mut rng))
    }

    fn close(found: f64, expected: f64, tolerance: f64) {
        assert!(
            (found - expected).abs() <= tolerance,
            "found {found}, expected {expected}"
        );
    }

    /// Both ways of computing the traces, which must agree.
    fn both_ways(x: ArrayView2<f32>, y: ArrayView2<f32>) -> f64 {
        let gram = debiased_linear_cka_with(x, y, Some(true)).unwrap();
        let features = debiased_linear_cka_with(x, y, Some(false)).unwrap();
        close(gram, features, 1e-10);
        close(debiased_linear_cka(x, y).unwrap(), gram, 1e-10);
        gram
    }

    #[test]
    fn identical_representations_give_one() {
        let x = random(40, 7, 1);
        close(both_ways(x.view(), x.view()), 1.0, 1e-12);
    }

    #[test]
    fn invariant_to_rotation_and_scale() {
        let x = random(60, 3, 2);
        // A rotation about the z axis followed by one about the x axis: orthogonal.
        let (c, s) = (0.6f32, 0.8f32);
        let rz = array![[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]];
        let rx = array![[1.0f32, 0.0, 0.0], [0.0, s, -c], [0.0, c, s]];
        let rotated = x.dot(&rz).dot(&rx);
        close(both_ways(x.view(), rotated.view()), 1.0, 1e-5);
        let scaled = x.mapv(|v| 3.5 * v);
        close(both_ways(x.view(), scaled.view()), 1.0, 1e-6);
        // An offset does not matter either: features are centred.
        let shifted = x.mapv(|v| v - 2.0);
        close(both_ways(x.view(), shifted.view()), 1.0, 1e-5);
    }

    #[test]
    fn independent_representations_give_about_zero() {
        let x = random(500, 20, 3);
        let y = random(500, 30, 4);
        let cka = both_ways(x.view(), y.view());
        assert!(cka.abs() < 0.1, "{cka}");
        // Wide features, few samples: the debiased estimate still stays small.
        let x = random(50, 400, 5);
        let y = random(50, 300, 6);
        let cka = both_ways(x.view(), y.view());
        assert!(cka.abs() < 0.1, "{cka}");
    }

    #[test]
    fn related_representations_of_different_widths() {
        let x = random(200, 8, 7);
        let projection = random(8, 3, 8);
        let y = x.dot(&projection);
        let cka = both_ways(x.view(), y.view());
        assert!(cka > 0.3 && cka <= 1.0 + 1e-9, "{cka}");
        close(cka, both_ways(y.view(), x.view()), 1e-12);
    }

    #[test]
    fn matches_numpy_on_a_small_case() {
        // Expected values from numpy (2.4), evaluating the formula of the doc comment directly
        // with n × n Gram matrices; Kornblith's feature_space_linear_cka(debiased=True) gives
        // the same values to 1e-15.
        let x = array![
            [1.0f32, 0.0],
            [0.0, 2.0],
            [-1.0, 1.0],
            [2.0, -1.0],
            [0.5, 0.5]
        ];
        let y = array![
            [1.0f32, 2.0, 0.0],
            [0.0, 1.0, 1.0],
            [-2.0, 0.0, 1.0],
            [1.0, -1.0, 0.5],
            [0.0, 0.5, -1.0]
        ];
        close(both_ways(x.view(), y.view()), 0.15808424499078702, 1e-12);
        let x = array![[1.0f32, 2.0], [3.0, -1.0], [0.0, 0.5], [-2.0, 1.0]];
        let y = array![[0.5f32], [2.0], [-1.0], [1.5]];
        close(both_ways(x.view(), y.view()), -0.9002104463244501, 1e-12);
    }

    #[test]
    fn rejects_bad_inputs() {
        let x = random(3, 2, 9);
        let message = debiased_linear_cka(x.view(), x.view())
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("at least 4") && message.contains("found 3"),
            "{message}"
        );
        let message = debiased_linear_cka(random(10, 2, 10).view(), random(9, 2, 11).view())
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("10 rows") && message.contains("9"),
            "{message}"
        );
        let mut with_nan = random(10, 2, 12);
        with_nan[[4, 1]] = f32::NAN;
        let message = debiased_linear_cka(random(10, 3, 13).view(), with_nan.view())
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("NaN") && message.contains("y"),
            "{message}"
        );
        let empty = Array2::<f32>::zeros((10, 0));
        assert!(debiased_linear_cka(empty.view(), random(10, 2, 14).view()).is_err());
        let constant = Array2::<f32>::ones((10, 3));
        let message = debiased_linear_cka(constant.view(), random(10, 2, 15).view())
            .unwrap_err()
            .to_string();
        assert!(message.contains("undefined"), "{message}");
    }
}
