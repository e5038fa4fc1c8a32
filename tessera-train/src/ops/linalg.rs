//! Matrix products.

use candle_core::Tensor;

use super::broadcast::rows_broadcast;
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
        (rank, 2) if rank > 2 => {
            // Rows of every batch element times one matrix: a single product. Broadcasting
            // the matrix instead would make its gradient one product per batch element, summed
            // afterwards, which costs more than the forward pass.
            let dims = a.dims();
            let (batch, features) = dims.split_at(rank - 1);
            let rows = a
                .reshape((batch.iter().product::<usize>(), features[0]))
                .at(node)?;
            let mut shape = batch.to_vec();
            shape.push(b.dim(1).at(node)?);
            rows.matmul(b).and_then(|y| y.reshape(shape)).at(node)?
        }
        _ => a.broadcast_matmul(b).at(node)?,
    };
    Ok(vec![product])
}

/// `Gemm`: `alpha · A' · B' + beta · C`, with optional transposes and a broadcast `C`.
pub fn gemm(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    let mut a = input(node, inputs, 0)?.clone();
    let mut b = input(node, inputs, 1)?.clone();
    if node.int("transA").unwrap_or(0) == 1 {
        a = a.t().at(node)?;
    }
    if node.int("transB").unwrap_or(0) == 1 {
        b = b.t().at(node)?;
    }
    let alpha = f64::from(node.float("alpha").unwrap_or(1.0));
    let beta = f64::from(node.float("beta").unwrap_or(1.0));
    let mut y = a.matmul(&b).at(node)?;
    if alpha != 1.0 {
        y = y.affine(alpha, 0.0).at(node)?;
    }
    if let Some(c) = optional(inputs, 2) {
        let c = if beta == 1.0 {
            c.clone()
        } else {
            c.affine(beta, 0.0).at(node)?
        };
        y = rows_broadcast(&y, &c, Tensor::broadcast_add).at(node)?;
    }
    Ok(vec![y])
}
