//! Top-1 agreement between two models, and accuracy against labels.

use ndarray::{ArrayView1, ArrayView2, Axis};

use super::{argmax, check_matrix, check_same_shape};
use crate::{Error, Result};

/// The share (0 to 1) of samples on which two models predict the same class: rows of `a_logits`
/// and `b_logits` are the two models' logits `[samples, classes]` for the same samples, and a
/// row counts when their argmaxes agree (ties go to the lowest class index).
///
/// This is the plainest test of a transfer: does the receiver now decide like the transmitter?
/// Both arrays must have the same shape (same samples, same classes), at least one row and
/// column, and finite values.
pub fn top1_agreement(a_logits: ArrayView2<f32>, b_logits: ArrayView2<f32>) -> Result<f64> {
    check_matrix("a_logits", a_logits)?;
    check_matrix("b_logits", b_logits)?;
    check_same_shape("a_logits", a_logits, "b_logits", b_logits)?;
    let agreeing = a_logits
        .axis_iter(Axis(0))
        .zip(b_logits.axis_iter(Axis(0)))
        .filter(|(a, b)| argmax(*a) == argmax(*b))
        .count();
    Ok(agreeing as f64 / a_logits.nrows() as f64)
}

/// The share (0 to 1) of samples whose argmax of `logits` (`[samples, classes]`, ties to the
/// lowest index) equals their label in `labels` (one per row).
///
/// Why: a transfer is only worth keeping if the receiver does not get worse at its task. Labels
/// must lie in `0..classes` (a label outside is an error, not a miss, since it usually means
/// the wrong label file or an ignore marker such as −100); logits must be finite and non-empty.
pub fn accuracy(logits: ArrayView2<f32>, labels: ArrayView1<i64>) -> Result<f64> {
    check_matrix("logits", logits)?;
    let (rows, classes) = logits.dim();
    if labels.len() != rows {
        return Err(Error::Shape(format!(
            "labels must hold one label per row of logits, found {} labels for {rows} rows",
            labels.len()
        )));
    }
    if let Some((row, &label)) = labels
        .iter()
        .enumerate()
        .find(|(_, &label)| label < 0 || label as u64 >= classes as u64)
    {
        return Err(Error::Shape(format!(
            "labels must lie in 0..{classes} (the number of logit columns), found {label} at \
             row {row}"
        )));
    }
    let correct = logits
        .axis_iter(Axis(0))
        .zip(labels.iter())
        .filter(|(row, &label)| argmax(*row) as u64 == label as u64)
        .count();
    Ok(correct as f64 / rows as f64)
}

#[cfg(test)]
mod tests {
    use ndarray::{array, Array1, Array2};

    use super::*;

    #[test]
    fn agreement_counts_rows_with_equal_argmax() {
        let a = array![
            [0.1f32, 0.9, 0.0],
            [2.0, 1.0, 0.0],
            [0.0, 0.0, 1.0],
            [1.0, 1.0, 0.0]
        ];
        // Scaled and shifted logits keep the argmax; row 2 differs; row 3 is a tie in `a`
        // (index 0 wins) and a clear 0 in `b`.
        let b = array![
            [-5.0f32, 4.0, -6.0],
            [3.0, 0.0, 0.0],
            [0.0, 1.0, 0.5],
            [2.0, 1.0, 1.0]
        ];
        assert_eq!(top1_agreement(a.view(), b.view()).unwrap(), 0.75);
        assert_eq!(top1_agreement(a.view(), a.view()).unwrap(), 1.0);
    }

    #[test]
    fn agreement_ties_go_to_lowest_index() {
        let tie = array![[1.0f32, 1.0]];
        assert_eq!(
            top1_agreement(tie.view(), array![[1.0f32, 0.0]].view()).unwrap(),
            1.0
        );
        assert_eq!(
            top1_agreement(tie.view(), array![[0.0f32, 1.0]].view()).unwrap(),
            0.0
        );
    }

    #[test]
    fn agreement_rejects_bad_shapes_and_values() {
        let a = Array2::<f32>::zeros((3, 4));
        let message = top1_agreement(a.view(), Array2::<f32>::zeros((2, 4)).view())
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("[3, 4]") && message.contains("[2, 4]"),
            "{message}"
        );
        let message = top1_agreement(a.view(), Array2::<f32>::zeros((3, 5)).view())
            .unwrap_err()
            .to_string();
        assert!(message.contains("same shape"), "{message}");
        let empty = Array2::<f32>::zeros((0, 4));
        assert!(top1_agreement(empty.view(), empty.view()).is_err());
        let mut with_nan = a.clone();
        with_nan[[1, 2]] = f32::NAN;
        let message = top1_agreement(a.view(), with_nan.view())
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("b_logits") && message.contains("NaN"),
            "{message}"
        );
    }

    #[test]
    fn accuracy_against_labels() {
        let logits = array![[0.1f32, 0.9], [2.0, 1.0], [0.0, 3.0], [1.0, 1.0]];
        let labels = array![1i64, 0, 0, 0];
        assert_eq!(accuracy(logits.view(), labels.view()).unwrap(), 0.75);
    }

    #[test]
    fn accuracy_rejects_bad_labels() {
        let logits = Array2::<f32>::zeros((2, 3));
        let message = accuracy(logits.view(), array![0i64].view())
            .unwrap_err()
            .to_string();
        assert!(message.contains("1 labels for 2 rows"), "{message}");
        let message = accuracy(logits.view(), array![0i64, 3].view())
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("0..3") && message.contains("found 3 at row 1"),
            "{message}"
        );
        let message = accuracy(logits.view(), array![-100i64, 0].view())
            .unwrap_err()
            .to_string();
        assert!(message.contains("-100"), "{message}");
        let empty = Array2::<f32>::zeros((0, 3));
        assert!(accuracy(empty.view(), Array1::<i64>::zeros(0).view()).is_err());
        let inf = array![[f32::INFINITY, 0.0]];
        assert!(accuracy(inf.view(), array![0i64].view()).is_err());
    }
}
