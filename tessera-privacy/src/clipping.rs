//! Per-record clipping: the step that bounds how much any one record can move a release.
//!
//! Differential privacy needs a known sensitivity; nothing bounds the norm of a real record, so
//! every record (row) is scaled down to L2 norm at most C before it is used. Rows already within
//! C are left exactly as they were.

use ndarray::{Array2, ArrayView1, ArrayView2, ArrayViewMut1};

use crate::{Error, Result};

/// Relative excess over the clip norm that counts as float rounding rather than clipping.
const ROUNDING_SLACK: f64 = 1e-6;

/// Records after clipping every row to L2 norm at most the clip norm, with how many rows had to
/// be scaled down (a large count means the clip norm cuts into the signal).
#[derive(Debug, Clone, PartialEq)]
pub struct ClippedRecords {
    /// The records, one per row, each with L2 norm ≤ the clip norm.
    pub records: Array2<f32>,
    /// How many rows had a norm above the clip norm (by more than float rounding) and were
    /// scaled down.
    pub rows_clipped: usize,
}

/// Scales every row of `records` whose L2 norm exceeds `clip_norm` down to norm `clip_norm`
/// (direction kept), leaving the other rows bit-for-bit unchanged, so that each record's
/// contribution is bounded.
///
/// Norms are computed in f64; a scaled row is checked after rounding to f32 and shrunk further
/// if rounding pushed it over. Errors: no rows or no columns, a NaN or infinite value (its row
/// and column are named), `clip_norm` not a finite number > 0.
pub fn clip_rows(records: ArrayView2<f32>, clip_norm: f64) -> Result<ClippedRecords> {
    validate_clip_norm(clip_norm)?;
    validate_records(records)?;
    let mut clipped = records.to_owned();
    let mut rows_clipped = 0;
    for (original, output) in records.outer_iter().zip(clipped.outer_iter_mut()) {
        let norm = l2_norm(original);
        if norm > clip_norm {
            scale_into(original, output, clip_norm / norm, clip_norm);
            // Rows normalised to exactly C in f32 (unit hub vectors) land a rounding error
            // above it; they are scaled like any other but not reported as losing signal.
            rows_clipped += usize::from(norm > clip_norm * (1.0 + ROUNDING_SLACK));
        }
    }
    Ok(ClippedRecords {
        records: clipped,
        rows_clipped,
    })
}

/// Checks a clip norm: a finite number > 0.
pub(super) fn validate_clip_norm(clip_norm: f64) -> Result<()> {
    if clip_norm > 0.0 && clip_norm.is_finite() {
        Ok(())
    } else {
        Err(Error::InvalidParameter(format!(
            "clip_norm must be a finite number > 0, got {clip_norm}"
        )))
    }
}

/// Checks records: at least one row and one column, every value finite (the first bad value's
/// row and column are named).
pub(super) fn validate_records(records: ArrayView2<f32>) -> Result<()> {
    let (rows, columns) = records.dim();
    if rows == 0 || columns == 0 {
        return Err(Error::InvalidParameter(format!(
            "records must have at least one row and one column, got shape [{rows}, {columns}]"
        )));
    }
    if let Some(((row, column), value)) = records.indexed_iter().find(|(_, v)| !v.is_finite()) {
        return Err(Error::InvalidParameter(format!(
            "records[{row}, {column}] is {value}; every value must be finite"
        )));
    }
    Ok(())
}

/// The Euclidean norm of a row, accumulated in f64 (squares of f32 values are exact there).
fn l2_norm(row: ArrayView1<f32>) -> f64 {
    row.iter()
        .map(|&value| f64::from(value) * f64::from(value))
        .sum::<f64>()
        .sqrt()
}

/// Writes `original · scale` into `output`, shrinking `scale` until the rounded f32 row has norm
/// ≤ `clip_norm`. The shrink step doubles from 2^-23 and reaches 1 (scale 0, norm 0) after 23
/// tries, so the loop ends; in practice the first or second try succeeds.
fn scale_into(
    original: ArrayView1<f32>,
    mut output: ArrayViewMut1<f32>,
    mut scale: f64,
    clip_norm: f64,
) {
    let mut shrink = f64::from(f32::EPSILON);
    loop {
        for (target, &value) in output.iter_mut().zip(original.iter()) {
            *target = (f64::from(value) * scale) as f32;
        }
        if l2_norm(output.view()) <= clip_norm {
            return;
        }
        scale *= (1.0 - shrink).max(0.0);
        shrink *= 2.0;
    }
}

#[cfg(test)]
mod tests {
    use ndarray::array;

    use super::*;

    #[test]
    fn unit_rows_are_kept_within_the_norm_without_counting_as_clipped() {
        let raw = Array2::from_shape_fn((200, 37), |(row, column)| {
            ((row * 37 + column) as f32 * 0.731).sin()
        });
        let unit = &raw
            / &raw
                .map_axis(ndarray::Axis(1), |r| r.dot(&r).sqrt())
                .insert_axis(ndarray::Axis(1));
        let clipped = clip_rows(unit.view(), 1.0).unwrap();
        assert_eq!(clipped.rows_clipped, 0);
        assert!(clipped.records.outer_iter().all(|row| l2_norm(row) <= 1.0));
        let doubled = unit.mapv(|value| value * 2.0);
        assert_eq!(clip_rows(doubled.view(), 1.0).unwrap().rows_clipped, 200);
    }

    #[test]
    fn rows_within_the_norm_are_untouched_and_others_scaled_to_it() {
        let records = array![[3.0_f32, 4.0], [0.3, 0.4], [-30.0, 40.0], [0.1, -0.7]];
        let clipped = clip_rows(records.view(), 1.0).unwrap();
        assert_eq!(clipped.rows_clipped, 2);
        assert_eq!(clipped.records.row(1), records.row(1));
        assert_eq!(clipped.records.row(3), records.row(3));
        for (index, expected) in [(0, [0.6_f32, 0.8]), (2, [-0.6, 0.8])] {
            let row = clipped.records.row(index);
            assert!(l2_norm(row) <= 1.0);
            for (&got, &want) in row.iter().zip(expected.iter()) {
                assert!((got - want).abs() < 1e-6, "row {index}: {row}");
            }
        }
    }

    #[test]
    fn a_row_exactly_at_the_norm_is_not_counted() {
        let records = array![[3.0_f32, 4.0]];
        let clipped = clip_rows(records.view(), 5.0).unwrap();
        assert_eq!(clipped.rows_clipped, 0);
        assert_eq!(clipped.records, records);
    }

    #[test]
    fn clipped_norm_never_exceeds_the_bound_after_rounding() {
        let width = 513;
        let records = Array2::from_shape_fn((200, width), |(row, column)| {
            ((row * 7919 + column * 104_729) % 1_000) as f32 * 0.37 + 1e3 * row as f32
        });
        for &clip_norm in &[0.1, 1.0, 3.3, 1e4] {
            let clipped = clip_rows(records.view(), clip_norm).unwrap();
            assert!(clipped
                .records
                .outer_iter()
                .all(|row| l2_norm(row) <= clip_norm));
        }
    }

    #[test]
    fn refuses_bad_input() {
        let message = |records: ArrayView2<f32>, clip_norm: f64| {
            clip_rows(records, clip_norm).unwrap_err().to_string()
        };
        let good = array![[1.0_f32, 2.0]];
        assert!(message(good.view(), 0.0).contains("clip_norm"));
        assert!(message(good.view(), -1.0).contains("clip_norm"));
        assert!(message(good.view(), f64::NAN).contains("clip_norm"));
        assert!(message(good.view(), f64::INFINITY).contains("clip_norm"));
        assert!(message(Array2::<f32>::zeros((0, 3)).view(), 1.0).contains("[0, 3]"));
        assert!(message(Array2::<f32>::zeros((2, 0)).view(), 1.0).contains("[2, 0]"));
        let with_nan = array![[1.0_f32, 2.0], [3.0, f32::NAN]];
        assert!(message(with_nan.view(), 1.0).contains("records[1, 1] is NaN"));
        let with_inf = array![[f32::NEG_INFINITY, 2.0]];
        assert!(message(with_inf.view(), 1.0).contains("records[0, 0] is -inf"));
    }
}
