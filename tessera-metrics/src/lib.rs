//! Fidelity measures: how closely a receiver model, after a transfer, behaves like and represents
//! things like its transmitter.
//!
//! Every measure takes `ndarray` views of `f32` (rows = samples), computes in `f64`, and returns
//! [`Error::Shape`] rather than a meaningless number when its inputs do not fit: row
//! counts that differ, empty inputs, NaN or infinite values.
//!
//! What each one says:
//! - [`top1_agreement`] — the share of samples on which both models predict the same class. The
//!   most direct answer to "does the receiver now decide like the transmitter?".
//! - [`accuracy`] — the share of samples a model gets right against labels; the transfer should
//!   raise the receiver's, or at least keep it.
//! - [`output_kl`] — the mean KL divergence, in nats, from the transmitter's output distribution
//!   to the receiver's, at a softmax temperature; finer-grained than agreement, since it also sees
//!   how confident each model is and how it ranks the other classes.
//! - [`debiased_linear_cka`] — debiased linear CKA between two sets of activations for the same
//!   samples: whether the two representations have the same geometry (which samples lie close
//!   together), independent of width, rotation and scale. Comparable across architectures.
//! - [`retrieval_accuracy`] — whether two models' hub vectors for the same input point the same
//!   way: within a group of inputs, does each query find its own key by cosine similarity?
//! - [`relative_round_trip_error`] — how much of a vector survives an encode → decode round trip
//!   (the predecessor's `round_trip_error`).
//! - [`diagonal_gaussian_drift`] — the predecessor's (`tessera-core` 0.1.0) "drift", reproduced
//!   exactly so that old and new numbers can be put side by side.
//!
//! Which to trust: agreement, output KL and accuracy compare the models where they are
//! comparable — on the same classes — and CKA compares representations without assuming that
//! their features correspond one to one. The drift does assume that: it pairs neuron `i` of one
//! model with neuron `i` of the other, which means nothing between two different networks (and
//! not even between two trainings of the same network, whose neurons come in arbitrary order).
//! It is kept only for comparison with the predecessor's reports, never as evidence of fidelity.
//!
//! `tessera-host` re-exports this crate as `tessera_host::metrics`.

mod agreement;
mod cka;
mod divergence;
mod error;
mod retrieval;

pub use agreement::{accuracy, top1_agreement};
pub use cka::debiased_linear_cka;
pub use divergence::{diagonal_gaussian_drift, output_kl, relative_round_trip_error};
pub use error::{Error, Result};
pub use retrieval::retrieval_accuracy;

use ndarray::{ArrayView1, ArrayView2};

/// `Err` unless `array` has at least one row and one column and only finite values. `what` names
/// the argument in the message.
fn check_matrix(what: &str, array: ArrayView2<f32>) -> Result<()> {
    let (rows, columns) = array.dim();
    if rows == 0 || columns == 0 {
        return Err(Error::Shape(format!(
            "{what} must have at least one row and one column, found shape [{rows}, {columns}]"
        )));
    }
    check_finite(what, array)
}

/// `Err` naming the first NaN or infinite value of `array`, if it has one.
fn check_finite(what: &str, array: ArrayView2<f32>) -> Result<()> {
    match array.indexed_iter().find(|(_, value)| !value.is_finite()) {
        None => Ok(()),
        Some(((row, column), value)) => Err(Error::Shape(format!(
            "{what} must hold finite values only, found {value} at row {row}, column {column}"
        ))),
    }
}

/// `Err` unless `a` and `b` have the same number of rows (samples).
fn check_same_rows(
    a_name: &str,
    a: ArrayView2<f32>,
    b_name: &str,
    b: ArrayView2<f32>,
) -> Result<()> {
    if a.nrows() != b.nrows() {
        return Err(Error::Shape(format!(
            "{a_name} and {b_name} must describe the same samples (one row each), found {} rows \
             in {a_name} and {} in {b_name}",
            a.nrows(),
            b.nrows()
        )));
    }
    Ok(())
}

/// `Err` unless `a` and `b` have the same shape.
fn check_same_shape(
    a_name: &str,
    a: ArrayView2<f32>,
    b_name: &str,
    b: ArrayView2<f32>,
) -> Result<()> {
    if a.dim() != b.dim() {
        return Err(Error::Shape(format!(
            "{a_name} and {b_name} must have the same shape, found {:?} and {:?}",
            a.shape(),
            b.shape()
        )));
    }
    Ok(())
}

/// The index of the largest value of `row`; ties go to the lowest index. `row` must be
/// non-empty and finite (checked by the callers).
fn argmax(row: ArrayView1<f32>) -> usize {
    let mut best = 0;
    for (index, &value) in row.iter().enumerate().skip(1) {
        if value > row[best] {
            best = index;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use ndarray::{array, Array2};

    use super::*;

    #[test]
    fn argmax_takes_lowest_index_on_ties() {
        assert_eq!(argmax(array![1.0f32, 3.0, 3.0, 2.0].view()), 1);
        assert_eq!(argmax(array![5.0f32].view()), 0);
        assert_eq!(argmax(array![2.0f32, 2.0].view()), 0);
    }

    #[test]
    fn check_matrix_names_the_problem() {
        let empty = Array2::<f32>::zeros((0, 3));
        let message = check_matrix("logits", empty.view())
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("logits") && message.contains("[0, 3]"),
            "{message}"
        );

        let with_nan = array![[1.0f32, f32::NAN]];
        let message = check_matrix("logits", with_nan.view())
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("NaN") && message.contains("column 1"),
            "{message}"
        );

        let with_inf = array![[1.0f32], [f32::NEG_INFINITY]];
        let message = check_matrix("x", with_inf.view()).unwrap_err().to_string();
        assert!(
            message.contains("-inf") && message.contains("row 1"),
            "{message}"
        );
    }
}
