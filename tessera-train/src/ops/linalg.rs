//! Matrix products.

use candle_core::Tensor;

use super::broadcast::rows_broadcast;
use super::linear::linear;
use super::{input, optional, Node};
use crate::node::NodeResult;
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
