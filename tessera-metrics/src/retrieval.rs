//! Retrieval accuracy: do two models' hub vectors for the same input line up?

use ndarray::{Array2, ArrayView2, Axis};

use super::{check_matrix, check_same_shape};
use crate::{Error, Result};

/// The share (0 to 1) of queries whose most cosine-similar key, within their group, is their own
/// row: row `i` of `queries` and row `i` of `keys` describe the same input (for instance the
/// transmitter's and the receiver's hub vectors for sample `i`), and both have the same width.
///
/// Why: if two models map the same input to the same place in the hub space, each query picks
/// out its own key among the others; chance level is `1 / group`. Grouping keeps that level
/// fixed however many samples there are.
///
/// Rows are split into consecutive groups of `group` rows; the last group may be smaller.
/// Within a group each query is compared with every key of the group, and ties go to the key
/// with the lowest row. A group of one row is correct only trivially, so it is skipped — unless
/// it is the only group (a single row), which scores 1. A row of zeros has cosine similarity 0
/// with everything (like `torch.nn.functional.cosine_similarity`, rather than NaN).
///
/// Errors: `group` of 0, queries and keys of different shapes, empty or non-finite inputs, and
/// a `group` of 1 with more than one row, which would leave no query to score.
pub fn retrieval_accuracy(
    queries: ArrayView2<f32>,
    keys: ArrayView2<f32>,
    group: usize,
) -> Result<f64> {
    check_matrix("queries", queries)?;
    check_matrix("keys", keys)?;
    check_same_shape("queries", queries, "keys", keys)?;
    if group == 0 {
        return Err(Error::Shape(
            "group must be at least 1 row, found 0".to_string(),
        ));
    }
    let rows = queries.nrows();
    if rows == 1 {
        return Ok(1.0);
    }
    if group == 1 {
        return Err(Error::Shape(format!(
            "group must be at least 2 rows for {rows} rows: groups of 1 row are correct only \
             trivially and are skipped, which would leave nothing to score"
        )));
    }
    let queries = unit_rows(queries);
    let keys = unit_rows(keys);
    let (mut scored, mut correct) = (0usize, 0usize);
    for start in (0..rows).step_by(group) {
        let end = (start + group).min(rows);
        if end - start < 2 {
            continue;
        }
        let q = queries.slice(ndarray::s![start..end, ..]);
        let k = keys.slice(ndarray::s![start..end, ..]);
        let similarities = q.dot(&k.t());
        for (own, row) in similarities.axis_iter(Axis(0)).enumerate() {
            let mut best = 0;
            for (index, &value) in row.iter().enumerate().skip(1) {
                if value > row[best] {
                    best = index;
                }
            }
            scored += 1;
            correct += usize::from(best == own);
        }
    }
    Ok(correct as f64 / scored as f64)
}

/// `m` in `f64` with each row divided by its Euclidean norm; rows of norm 0 stay zero.
fn unit_rows(m: ArrayView2<f32>) -> Array2<f64> {
    let mut m = m.mapv(f64::from);
    for mut row in m.axis_iter_mut(Axis(0)) {
        let norm = row.dot(&row).sqrt();
        if norm > 0.0 {
            row /= norm;
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use ndarray::{array, Array2};

    use super::*;

    #[test]
    fn identical_vectors_retrieve_themselves() {
        let x = array![
            [1.0f32, 0.0],
            [0.0, 1.0],
            [1.0, 1.0],
            [-1.0, 0.5],
            [0.3, -2.0]
        ];
        assert_eq!(retrieval_accuracy(x.view(), x.view(), 5).unwrap(), 1.0);
        // Groups of 2: [0,1], [2,3], and a last group of one row, skipped.
        assert_eq!(retrieval_accuracy(x.view(), x.view(), 2).unwrap(), 1.0);
    }

    #[test]
    fn uses_cosine_not_distance() {
        // Each key is its query scaled: cosine 1, whatever the length.
        let q = array![[1.0f32, 0.0], [0.0, 1.0], [1.0, 1.0]];
        let k = array![[5.0f32, 0.0], [0.0, 0.1], [30.0, 30.0]];
        assert_eq!(retrieval_accuracy(q.view(), k.view(), 3).unwrap(), 1.0);
    }

    #[test]
    fn counts_misses_within_groups() {
        // Rows 0 and 1 have their keys swapped; rows 2 and 3 line up.
        let q = array![
            [1.0f32, 0.0, 0.0],
            [0.0, 1.0, 0.0],
            [0.0, 0.0, 1.0],
            [0.0, 0.0, -1.0]
        ];
        let k = array![
            [0.0f32, 1.0, 0.0],
            [1.0, 0.0, 0.0],
            [0.0, 0.0, 2.0],
            [0.1, 0.0, -1.0]
        ];
        assert_eq!(retrieval_accuracy(q.view(), k.view(), 2).unwrap(), 0.5);
        // One group of 4: rows 0 and 1 still find each other's key, rows 2 and 3 their own.
        assert_eq!(retrieval_accuracy(q.view(), k.view(), 4).unwrap(), 0.5);
        // A group larger than the rows is one group of all of them.
        assert_eq!(retrieval_accuracy(q.view(), k.view(), 100).unwrap(), 0.5);
    }

    #[test]
    fn last_group_of_one_is_skipped() {
        // Rows 0-1 form a group that is fully wrong; row 2 alone would count as trivially right.
        let q = array![[1.0f32, 0.0], [0.0, 1.0], [1.0, 1.0]];
        let k = array![[0.0f32, 1.0], [1.0, 0.0], [-1.0, -1.0]];
        assert_eq!(retrieval_accuracy(q.view(), k.view(), 2).unwrap(), 0.0);
    }

    #[test]
    fn single_row_is_trivially_right() {
        let q = array![[1.0f32, 2.0]];
        let k = array![[-1.0f32, 0.0]];
        assert_eq!(retrieval_accuracy(q.view(), k.view(), 1).unwrap(), 1.0);
        assert_eq!(retrieval_accuracy(q.view(), k.view(), 8).unwrap(), 1.0);
    }

    #[test]
    fn ties_and_zero_rows_go_to_the_first_key() {
        // A zero query is equally (0) similar to every key: the first key of its group wins.
        let q = array![[0.0f32, 0.0], [0.0, 0.0]];
        let k = array![[1.0f32, 0.0], [0.0, 1.0]];
        assert_eq!(retrieval_accuracy(q.view(), k.view(), 2).unwrap(), 0.5);
    }

    #[test]
    fn rejects_bad_inputs() {
        let x = Array2::<f32>::ones((4, 3));
        let message = retrieval_accuracy(x.view(), Array2::<f32>::ones((4, 2)).view(), 2)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("[4, 3]") && message.contains("[4, 2]"),
            "{message}"
        );
        let message = retrieval_accuracy(x.view(), Array2::<f32>::ones((3, 3)).view(), 2)
            .unwrap_err()
            .to_string();
        assert!(message.contains("same shape"), "{message}");
        let message = retrieval_accuracy(x.view(), x.view(), 0)
            .unwrap_err()
            .to_string();
        assert!(message.contains("found 0"), "{message}");
        let message = retrieval_accuracy(x.view(), x.view(), 1)
            .unwrap_err()
            .to_string();
        assert!(message.contains("at least 2"), "{message}");
        let mut with_inf = x.clone();
        with_inf[[3, 0]] = f32::INFINITY;
        let message = retrieval_accuracy(with_inf.view(), x.view(), 2)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("queries") && message.contains("inf"),
            "{message}"
        );
        let empty = Array2::<f32>::zeros((0, 3));
        assert!(retrieval_accuracy(empty.view(), empty.view(), 2).is_err());
    }
}
