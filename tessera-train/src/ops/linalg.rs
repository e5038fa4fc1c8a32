//! Matrix products.

use candle_core::Tensor;

use super::broadcast::rows_broadcast;
use super::linear::linear;
use super::{input, optional, Node};
use crate::node::NodeResult;
use crate::storage::Real;
use crate::Result;

/// `MatMul` with numpy semantics for the batch dimensions.
pub fn matmul(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    let (a, b) = (input(node, inputs, 0)?, input(node, inputs, 1)?);
    let product = match (a.rank(), b.rank()) {
        (1, _) | (_, 1) => {
            return Err(node.error("one-dimensional MatMul operands are not supported"))
        }
        // Rows of every batch element times one matrix: a dense layer, one product. Broadcasting
        // the matrix instead would make its gradient one product per batch element, summed
        // afterwards, which costs more than the forward pass.
        (_, 2) if a.dtype().is_float() => linear(a, b, false, None).at(node)?,
        _ => a.broadcast_matmul(b).at(node)?,
    };
    Ok(vec![product])
}

/// `Gemm`: `alpha · A' · B' + beta · C`, with optional transposes and a broadcast `C`. `A` may
/// have leading batch dimensions when it is not transposed: the fused plan writes a `MatMul`
/// by a matrix followed by the addition of a bias that way (see `fusion`).
pub fn gemm(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    let (a, b) = (input(node, inputs, 0)?, input(node, inputs, 1)?);
    let transposed_a = node.int("transA").unwrap_or(0) == 1;
    let transposed_b = node.int("transB").unwrap_or(0) == 1;
    let alpha = f64::from(node.float("alpha").unwrap_or(1.0));
    let beta = f64::from(node.float("beta").unwrap_or(1.0));
    if transposed_a && a.rank() != 2 {
        return Err(node.error(format!(
            "Gemm's A must be a matrix, found shape {:?}",
            a.dims()
        )));
    }
    let a = if transposed_a {
        a.t().at(node)?
    } else {
        a.clone()
    };
    let c = optional(inputs, 2);
    let outputs = if transposed_b { b.dim(0) } else { b.dim(1) }.at(node)?;
    // The common case, PyTorch's `Linear`: one dense layer with the bias added in (alpha
    // scales the product alone, so only where it is 1).
    let bias = c.filter(|c| alpha == 1.0 && beta == 1.0 && is_row(c, outputs));
    let mut y = linear(&a, b, transposed_b, bias).at(node)?;
    if alpha != 1.0 {
        y = y.affine(alpha, 0.0).at(node)?;
    }
    if let Some(c) = c.filter(|_| bias.is_none()) {
        let c = if beta == 1.0 {
            c.clone()
        } else {
            c.affine(beta, 0.0).at(node)?
        };
        y = rows_broadcast(&y, &c, Tensor::broadcast_add).at(node)?;
    }
    Ok(vec![y])
}

/// Whether `c` is one row of `width` values (`[width]`, `[1, width]`, ...), added to every row.
fn is_row(c: &Tensor, width: usize) -> bool {
    c.elem_count() == width && c.dims().last() == Some(&width)
}

/// The sizes of a matrix product: `rows × inner` times `inner × columns`.
#[derive(Clone, Copy, Debug)]
pub struct Sizes {
    pub rows: usize,
    pub inner: usize,
    pub columns: usize,
}

/// How a product reads its operands, all row-major.
#[derive(Clone, Copy, Debug)]
pub enum Operands {
    /// `a · b`: `a` is stored rows × inner, `b` inner × columns.
    Plain,
    /// `aᵀ · b`: `a` is stored inner × rows.
    LeftTransposed,
    /// `a · bᵀ`: `b` is stored columns × inner.
    RightTransposed,
}

/// `out = scale · (a · b)`, the operands stored as `operands` says, on the calling thread
/// (`gemm` with the strides of each form: no transposed copy is made).
pub fn product_into<T: Real>(
    out: &mut [T],
    a: &[T],
    b: &[T],
    sizes: Sizes,
    operands: Operands,
    scale: T,
) -> candle_core::Result<()> {
    let Sizes {
        rows,
        inner,
        columns,
    } = sizes;
    if out.len() != rows * columns || a.len() != rows * inner || b.len() != inner * columns {
        candle_core::bail!(
            "a product of {rows}×{inner} and {inner}×{columns} given {}, {} and {} values",
            a.len(),
            b.len(),
            out.len()
        );
    }
    let (rows_i, inner_i, columns_i) = (rows as isize, inner as isize, columns as isize);
    // Strides (along a column index, along a row index) of each operand.
    let ((a_column, a_row), (b_column, b_row)) = match operands {
        Operands::Plain => ((1, inner_i), (1, columns_i)),
        Operands::LeftTransposed => ((rows_i, 1), (1, columns_i)),
        Operands::RightTransposed => ((1, inner_i), (inner_i, 1)),
    };
    // SAFETY: the lengths were checked against the sizes above, and each operand is read
    // within them with these strides; `out` is written, not read.
    unsafe {
        gemm::gemm(
            rows,
            columns,
            inner,
            out.as_mut_ptr(),
            1,
            columns_i,
            false,
            a.as_ptr(),
            a_column,
            a_row,
            b.as_ptr(),
            b_column,
            b_row,
            T::zero(),
            scale,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The three forms of a product against the definition, for sizes from 1 up; operands
    /// of the wrong length are refused.
    #[test]
    fn products_in_each_form_compute_the_definition() {
        for (rows, inner, columns) in [(1, 1, 1), (3, 5, 2), (4, 9, 17), (16, 16, 16)] {
            let sizes = Sizes {
                rows,
                inner,
                columns,
            };
            let a: Vec<f64> = (0..rows * inner).map(|i| (i as f64 * 0.37).sin()).collect();
            let b: Vec<f64> = (0..inner * columns)
                .map(|i| (i as f64 * 0.53).cos())
                .collect();
            let expected: Vec<f64> = (0..rows * columns)
                .map(|cell| {
                    let (i, j) = (cell / columns, cell % columns);
                    0.5 * (0..inner)
                        .map(|p| a[i * inner + p] * b[p * columns + j])
                        .sum::<f64>()
                })
                .collect();
            let transpose = |m: &[f64], r: usize, c: usize| -> Vec<f64> {
                (0..r * c)
                    .map(|cell| m[(cell % r) * c + cell / r])
                    .collect()
            };
            let forms = [
                (Operands::Plain, a.clone(), b.clone()),
                (
                    Operands::LeftTransposed,
                    transpose(&a, rows, inner),
                    b.clone(),
                ),
                (
                    Operands::RightTransposed,
                    a.clone(),
                    transpose(&b, inner, columns),
                ),
            ];
            for (operands, a, b) in forms {
                let mut out = vec![f64::NAN; rows * columns];
                product_into(&mut out, &a, &b, sizes, operands, 0.5).unwrap();
                let worst = out
                    .iter()
                    .zip(&expected)
                    .map(|(x, y)| (x - y).abs())
                    .fold(0.0, f64::max);
                assert!(worst < 1e-12, "{operands:?} {sizes:?}: {worst}");
            }
        }
        let sizes = Sizes {
            rows: 2,
            inner: 3,
            columns: 2,
        };
        let mut out = [0.0f32; 4];
        assert!(product_into(&mut out, &[1.0; 6], &[1.0; 5], sizes, Operands::Plain, 1.0).is_err());
    }
}
