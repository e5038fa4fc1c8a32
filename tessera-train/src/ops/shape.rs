//! Shape operators and shape arithmetic. Shapes travel as int64 tensors; their arithmetic needs
//! no gradient.

use candle_core::{DType, Tensor};

use super::{input, optional, Node};
use crate::node::{axis, decode_tensor, int_values, NodeResult};
use crate::Result;

fn dims_tensor(values: Vec<i64>, like: &Tensor, node: &Node<'_>) -> Result<Tensor> {
    let len = values.len();
    Tensor::from_vec(values, len, like.device()).at(node)
}

/// Clamps a possibly negative index into `0..=len`.
fn clamp_index(value: i64, len: usize) -> usize {
    let len = len as i64;
    let resolved = if value < 0 { value + len } else { value };
    resolved.clamp(0, len) as usize
}

/// `Shape`, with the optional `start`/`end` window (opset 15).
pub fn shape(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    let x = input(node, inputs, 0)?;
    let dims: Vec<i64> = x.dims().iter().map(|&d| d as i64).collect();
    let start = clamp_index(node.int("start").unwrap_or(0), dims.len());
    let end = clamp_index(node.int("end").unwrap_or(dims.len() as i64), dims.len());
    let window = dims.get(start..end.max(start)).unwrap_or_default().to_vec();
    Ok(vec![dims_tensor(window, x, node)?])
}

/// `Reshape`: 0 copies the input's dimension (unless `allowzero`), -1 is inferred.
pub fn reshape(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    let x = input(node, inputs, 0)?;
    Ok(vec![x
        .reshape(reshape_dims(node, x.dims(), inputs)?)
        .at(node)?])
}

/// `Flatten` to two dimensions around `axis` (default 1).
pub fn flatten(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    let x = input(node, inputs, 0)?;
    Ok(vec![x.reshape(flatten_dims(node, x.dims())).at(node)?])
}

/// The dimensions `Reshape`, `Flatten`, `Squeeze` or `Unsqueeze` gives data of `dims`, the
/// node's other arguments in `inputs` (the data's place is not read); `None` for another
/// operator. What a chain of views is planned from without moving data.
pub fn view_dims(
    node: &Node<'_>,
    dims: &[usize],
    inputs: &[Option<Tensor>],
) -> Result<Option<Vec<usize>>> {
    Ok(Some(match node.proto.op_type.as_str() {
        "Reshape" => reshape_dims(node, dims, inputs)?,
        "Flatten" => flatten_dims(node, dims),
        "Squeeze" => squeeze_dims(node, dims, inputs)?,
        "Unsqueeze" => unsqueeze_dims(node, dims, inputs)?,
        _ => return Ok(None),
    }))
}

fn reshape_dims(node: &Node<'_>, from: &[usize], inputs: &[Option<Tensor>]) -> Result<Vec<usize>> {
    let requested = int_values(input(node, inputs, 1)?, node)?;
    let allow_zero = node.int("allowzero").unwrap_or(0) == 1;
    let count: usize = from.iter().product();
    let mut dims: Vec<usize> = Vec::with_capacity(requested.len());
    let mut inferred = None;
    for (index, &value) in requested.iter().enumerate() {
        match value {
            -1 => {
                inferred = Some(index);
                dims.push(1);
            }
            0 if !allow_zero => dims.push(*from.get(index).ok_or_else(|| {
                node.error(format!(
                    "shape {requested:?} copies dimension {index}, which the input lacks"
                ))
            })?),
            v if v >= 0 => dims.push(v as usize),
            v => return Err(node.error(format!("invalid dimension {v} in shape {requested:?}"))),
        }
    }
    let cannot = || node.error(format!("cannot reshape {from:?} to {requested:?}"));
    let known: usize = dims.iter().product();
    if let Some(index) = inferred {
        if known == 0 || !count.is_multiple_of(known) {
            return Err(cannot());
        }
        dims[index] = count / known;
    } else if known != count {
        return Err(cannot());
    }
    Ok(dims)
}

fn flatten_dims(node: &Node<'_>, from: &[usize]) -> Vec<usize> {
    let split = clamp_index(node.int("axis").unwrap_or(1), from.len());
    let outer: usize = from[..split].iter().product();
    vec![outer, from[split..].iter().product()]
}

/// `Transpose` by `perm` (default: reversed axes).
pub fn transpose(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    let x = input(node, inputs, 0)?;
    Ok(vec![x.permute(permutation(node, x.rank())?).at(node)?])
}

/// A `Transpose` node's `perm` for an input of `rank` (default: reversed axes).
pub fn permutation(node: &Node<'_>, rank: usize) -> Result<Vec<usize>> {
    match node.ints("perm") {
        Some(perm) => perm.iter().map(|&p| axis(p, rank, node)).collect(),
        None => Ok((0..rank).rev().collect()),
    }
}

/// `Slice` with positive steps.
pub fn slice(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    let x = input(node, inputs, 0)?;
    let values = |index: usize, attribute: &str| -> Result<Option<Vec<i64>>> {
        match optional(inputs, index) {
            Some(tensor) => int_values(tensor, node).map(Some),
            None => Ok(node.ints(attribute)),
        }
    };
    let starts = values(1, "starts")?.ok_or_else(|| node.error("starts are required"))?;
    let ends = values(2, "ends")?.ok_or_else(|| node.error("ends are required"))?;
    let axes = values(3, "axes")?.unwrap_or_else(|| (0..starts.len() as i64).collect());
    let steps = values(4, "steps")?.unwrap_or_else(|| vec![1; starts.len()]);
    let mut y = x.clone();
    for (((&start, &end), &a), &step) in starts.iter().zip(&ends).zip(&axes).zip(&steps) {
        let a = axis(a, x.rank(), node)?;
        if step <= 0 {
            return Err(node.error(format!(
                "slice step {step} is not supported (only positive steps)"
            )));
        }
        let len = y.dim(a).at(node)?;
        let (from, to) = (clamp_index(start, len), clamp_index(end, len));
        if step == 1 {
            y = y.narrow(a, from, to.saturating_sub(from)).at(node)?;
        } else {
            let picked: Vec<i64> = (from..to)
                .step_by(step as usize)
                .map(|i| i as i64)
                .collect();
            let picked = dims_tensor(picked, x, node)?;
            y = y
                .contiguous()
                .and_then(|y| y.index_select(&picked, a))
                .at(node)?;
        }
    }
    Ok(vec![y])
}

/// `Concat` along `axis`.
pub fn concat(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    let parts: Vec<&Tensor> = inputs.iter().flatten().collect();
    let first = parts
        .first()
        .ok_or_else(|| node.error("nothing to concatenate"))?;
    let a = axis(node.int("axis").unwrap_or(0), first.rank(), node)?;
    Ok(vec![Tensor::cat(&parts, a).at(node)?])
}

fn axes_from(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Option<Vec<i64>>> {
    match optional(inputs, 1) {
        Some(axes) => int_values(axes, node).map(Some),
        None => Ok(node.ints("axes")),
    }
}

/// `Unsqueeze`: axes are positions in the output.
pub fn unsqueeze(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    let x = input(node, inputs, 0)?;
    Ok(vec![x
        .reshape(unsqueeze_dims(node, x.dims(), inputs)?)
        .at(node)?])
}

/// `Squeeze` the given axes, or every axis of length 1.
pub fn squeeze(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    let x = input(node, inputs, 0)?;
    Ok(vec![x
        .reshape(squeeze_dims(node, x.dims(), inputs)?)
        .at(node)?])
}

fn unsqueeze_dims(
    node: &Node<'_>,
    from: &[usize],
    inputs: &[Option<Tensor>],
) -> Result<Vec<usize>> {
    let requested = axes_from(node, inputs)?.ok_or_else(|| node.error("axes are required"))?;
    let rank = from.len() + requested.len();
    let mut axes = requested
        .iter()
        .map(|&a| axis(a, rank, node))
        .collect::<Result<Vec<_>>>()?;
    axes.sort_unstable();
    let mut dims = from.to_vec();
    for a in axes {
        if a > dims.len() {
            return Err(node.error(format!("axis {a} is out of range for rank {rank}")));
        }
        dims.insert(a, 1);
    }
    Ok(dims)
}

fn squeeze_dims(node: &Node<'_>, from: &[usize], inputs: &[Option<Tensor>]) -> Result<Vec<usize>> {
    let axes: Vec<usize> = match axes_from(node, inputs)? {
        Some(axes) => axes
            .iter()
            .map(|&a| axis(a, from.len(), node))
            .collect::<Result<_>>()?,
        None => (0..from.len()).filter(|&a| from[a] == 1).collect(),
    };
    if let Some(&a) = axes.iter().find(|&&a| from[a] != 1) {
        return Err(node.error(format!(
            "cannot squeeze axis {a} of {from:?}: its length is not 1"
        )));
    }
    Ok((0..from.len())
        .filter(|a| !axes.contains(a))
        .map(|a| from[a])
        .collect())
}

/// `Gather` along `axis` with indices of any shape (negative indices count from the end).
pub fn gather(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    let data = input(node, inputs, 0)?;
    let indices = input(node, inputs, 1)?;
    let a = axis(node.int("axis").unwrap_or(0), data.rank(), node)?;
    let len = data.dim(a).at(node)? as i64;
    let flat = int_values(indices, node)?;
    if let Some(bad) = flat.iter().find(|&&i| i < -len || i >= len) {
        return Err(node.error(format!(
            "index {bad} is out of range for a dimension of {len}"
        )));
    }
    let fixed: Vec<i64> = flat
        .iter()
        .map(|&i| if i < 0 { i + len } else { i })
        .collect();
    if let ([], [index]) = (indices.dims(), fixed.as_slice()) {
        // One position: a view of the data, no copy (attention splits its fused projection so).
        return Ok(vec![data
            .narrow(a, *index as usize, 1)
            .and_then(|row| row.squeeze(a))
            .at(node)?]);
    }
    let positions = dims_tensor(fixed, data, node)?;
    let picked = data
        .contiguous()
        .and_then(|data| data.index_select(&positions, a))
        .at(node)?;
    let mut dims = data.dims()[..a].to_vec();
    dims.extend_from_slice(indices.dims());
    dims.extend_from_slice(&data.dims()[a + 1..]);
    Ok(vec![picked.reshape(dims).at(node)?])
}

/// `Constant`: a tensor, or a float/int (list) attribute.
pub fn constant(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    let _ = inputs;
    let device = node.device;
    let value = if let Some(tensor) = node.tensor("value") {
        decode_tensor(tensor, device).map_err(|message| node.error(message))?
    } else if let Some(value) = node.float("value_float") {
        Tensor::new(value, device).at(node)?
    } else if let Some(value) = node.int("value_int") {
        Tensor::new(value, device).at(node)?
    } else if let Some(values) = node.ints("value_ints") {
        let len = values.len();
        Tensor::from_vec(values, len, device).at(node)?
    } else {
        return Err(node.error("only tensor, float and integer constants are supported"));
    };
    Ok(vec![value])
}

/// `ConstantOfShape`: a tensor of the given shape filled with `value` (default float 0).
pub fn constant_of_shape(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    let shape_tensor = input(node, inputs, 0)?;
    let dims: Vec<usize> = int_values(shape_tensor, node)?
        .iter()
        .map(|&d| d.max(0) as usize)
        .collect();
    let fill = match node.tensor("value") {
        Some(tensor) => {
            decode_tensor(tensor, shape_tensor.device()).map_err(|message| node.error(message))?
        }
        None => Tensor::new(&[0f32], shape_tensor.device()).at(node)?,
    };
    let fill = fill
        .flatten_all()
        .and_then(|f| f.narrow(0, 0, 1))
        .at(node)?;
    let ones = Tensor::ones(dims.as_slice(), fill.dtype(), fill.device()).at(node)?;
    Ok(vec![ones.broadcast_mul(&fill).at(node)?])
}

/// `Expand` to the numpy broadcast of the input's shape and the given one.
pub fn expand(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    let x = input(node, inputs, 0)?;
    let requested = int_values(input(node, inputs, 1)?, node)?;
    let rank = x.rank().max(requested.len());
    let pad = |dims: Vec<i64>| -> Vec<i64> {
        let mut padded = vec![1; rank - dims.len()];
        padded.extend(dims);
        padded
    };
    let have = pad(x.dims().iter().map(|&d| d as i64).collect());
    let want = pad(requested.clone());
    let target = have
        .iter()
        .zip(&want)
        .map(|(&h, &w)| match (h, w) {
            (h, w) if h == w || w == 1 => Ok(h as usize),
            (1, w) => Ok(w as usize),
            _ => Err(node.error(format!("cannot expand {:?} to {requested:?}", x.dims()))),
        })
        .collect::<Result<Vec<_>>>()?;
    let reshaped = x
        .reshape(have.iter().map(|&d| d as usize).collect::<Vec<_>>())
        .at(node)?;
    let expanded = reshaped.broadcast_as(target).at(node)?;
    let expanded = if expanded.dtype() == DType::I64 {
        expanded.contiguous().at(node)?
    } else {
        expanded
    };
    Ok(vec![expanded])
}

/// `Range(start, limit, delta)`: int64 when the inputs are integers, float32 otherwise.
pub fn range(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    let start = input(node, inputs, 0)?;
    let number =
        |index: usize| -> Result<f64> { super::single_value(input(node, inputs, index)?).at(node) };
    let (first, limit, delta) = (number(0)?, number(1)?, number(2)?);
    if delta == 0.0 {
        return Err(node.error("delta is zero"));
    }
    let count = ((limit - first) / delta).ceil().max(0.0) as usize;
    let values = (0..count).map(|k| first + k as f64 * delta);
    let range = if start.dtype() == DType::I64 {
        Tensor::from_iter(values.map(|v| v.round() as i64), start.device())
    } else {
        Tensor::from_iter(values.map(|v| v as f32), start.device())
    };
    Ok(vec![range.at(node)?])
}

/// `Split` along `axis` into the node's outputs: sizes from the `split` input (opset 13) or
/// attribute, else equal parts (the last smaller when they do not divide, as opset 18 says).
pub fn split(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    let x = input(node, inputs, 0)?;
    let a = axis(node.int("axis").unwrap_or(0), x.rank(), node)?;
    let len = x.dim(a).at(node)?;
    let parts = node.proto.output.len();
    let sizes: Vec<usize> = match optional(inputs, 1) {
        Some(sizes) => int_values(sizes, node)?
            .iter()
            .map(|&s| s.max(0) as usize)
            .collect(),
        None => match node.ints("split") {
            Some(sizes) => sizes.iter().map(|&s| s.max(0) as usize).collect(),
            None => {
                let each = len.div_ceil(parts.max(1));
                (0..parts)
                    .map(|k| each.min(len.saturating_sub(k * each)))
                    .collect()
            }
        },
    };
    if sizes.iter().sum::<usize>() != len || sizes.len() != parts {
        return Err(node.error(format!(
            "parts {sizes:?} do not split {len} positions into {parts} outputs"
        )));
    }
    let mut start = 0;
    sizes
        .iter()
        .map(|&size| {
            let part = x.narrow(a, start, size).at(node);
            start += size;
            part
        })
        .collect()
}
