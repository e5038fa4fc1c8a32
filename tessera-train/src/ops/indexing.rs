//! Gathers by element and by coordinate tuple. The indices are small integer tensors read on the
//! host; the data keeps its gradient (candle scatters it back to the positions read).

use candle_core::Tensor;

use super::{input, Node};
use crate::node::{axis, int_values, NodeResult};
use crate::Result;

/// `index` counted from the end when negative, checked against a dimension of `len`.
fn resolved(node: &Node<'_>, index: i64, len: usize) -> Result<i64> {
    let len = len as i64;
    if index < -len || index >= len {
        return Err(node.error(format!(
            "index {index} is out of range for a dimension of {len}"
        )));
    }
    Ok(if index < 0 { index + len } else { index })
}

/// `GatherElements`: `out[i][j][k] = data[indices[i][j][k]][j][k]` along `axis` (default 0).
pub fn gather_elements(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    let data = input(node, inputs, 0)?;
    let indices = input(node, inputs, 1)?;
    if indices.rank() != data.rank() {
        return Err(node.error(format!(
            "indices of rank {} for data of rank {}",
            indices.rank(),
            data.rank()
        )));
    }
    let a = axis(node.int("axis").unwrap_or(0), data.rank(), node)?;
    let len = data.dim(a).at(node)?;
    let fixed = int_values(indices, node)?
        .into_iter()
        .map(|index| resolved(node, index, len))
        .collect::<Result<Vec<i64>>>()?;
    let fixed = Tensor::from_vec(fixed, indices.dims(), data.device()).at(node)?;
    // The data's other dimensions cut to the indices' (the ones read).
    let mut window = data.clone();
    for (d, (&have, &want)) in data.dims().iter().zip(indices.dims()).enumerate() {
        if d != a && want != have {
            if want > have {
                return Err(node.error(format!(
                    "indices dimension {d} is {want}, larger than the data's {have}"
                )));
            }
            window = window.narrow(d, 0, want).at(node)?;
        }
    }
    let picked = window
        .contiguous()
        .and_then(|w| w.gather(&fixed, a))
        .at(node)?;
    Ok(vec![picked])
}

/// `GatherND`: each row of the last axis of `indices` is a coordinate tuple into the data's
/// axes after its first `batch_dims` (which data and indices share); the result holds the
/// slices they address.
pub fn gather_nd(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    let data = input(node, inputs, 0)?;
    let indices = input(node, inputs, 1)?;
    let batch_dims = node.int("batch_dims").unwrap_or(0).max(0) as usize;
    let (data_dims, index_dims) = (data.dims(), indices.dims());
    let depth = *index_dims
        .last()
        .ok_or_else(|| node.error("indices must have at least one axis"))?;
    if batch_dims >= index_dims.len()
        || batch_dims + depth > data_dims.len()
        || data_dims[..batch_dims] != index_dims[..batch_dims]
    {
        return Err(node.error(format!(
            "indices of shape {index_dims:?} cannot address data of shape {data_dims:?} with \
             batch_dims {batch_dims}"
        )));
    }
    // Each tuple becomes one row of the data with its batch and addressed axes flattened.
    let addressed = &data_dims[batch_dims..batch_dims + depth];
    let per_batch: usize = addressed.iter().product();
    let tuples_per_batch: usize = index_dims[batch_dims..index_dims.len() - 1]
        .iter()
        .product();
    let values = int_values(indices, node)?;
    let mut rows = Vec::with_capacity(values.len() / depth.max(1));
    for (t, tuple) in values.chunks(depth.max(1)).enumerate() {
        let batch = t.checked_div(tuples_per_batch).unwrap_or(0);
        let mut row = 0;
        for (&index, &len) in tuple.iter().zip(addressed) {
            row = row * len as i64 + resolved(node, index, len)?;
        }
        rows.push(batch as i64 * per_batch as i64 + row);
    }
    let slice = &data_dims[batch_dims + depth..];
    let mut flat_dims = vec![data_dims[..batch_dims + depth].iter().product::<usize>()];
    flat_dims.extend_from_slice(slice);
    let count = rows.len();
    let rows = Tensor::from_vec(rows, count, data.device()).at(node)?;
    let mut out_dims = index_dims[..index_dims.len() - 1].to_vec();
    out_dims.extend_from_slice(slice);
    let picked = data
        .reshape(flat_dims)
        .and_then(|flat| flat.index_select(&rows, 0))
        .and_then(|picked| picked.reshape(out_dims))
        .at(node)?;
    Ok(vec![picked])
}
