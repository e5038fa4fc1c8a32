//! `Pad`: constant, edge, reflect and wrap padding, and cropping by negative pads. Every mode
//! is a concatenation or a row selection, so the gradient reaches the positions copied.

use candle_core::Tensor;

use super::{input, optional, single_value, Node};
use crate::node::{axis, int_values, NodeResult};
use crate::Result;

/// How the new positions are filled.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Constant,
    Edge,
    Reflect,
    Wrap,
}

/// `Pad`: pads and the constant are inputs from opset 11 (with an `axes` input from 18),
/// attributes before.
pub fn pad(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    let x = input(node, inputs, 0)?;
    let mode = match node.string("mode").as_deref().unwrap_or("constant") {
        "constant" => Mode::Constant,
        "edge" => Mode::Edge,
        "reflect" => Mode::Reflect,
        "wrap" => Mode::Wrap,
        other => return Err(node.error(format!("padding mode {other:?} is not supported"))),
    };
    let (pads, value) = if node.opset >= 11 {
        let pads = int_values(input(node, inputs, 1)?, node)?;
        let value = optional(inputs, 2).map(single_value).transpose().at(node)?;
        (pads, value.unwrap_or(0.0))
    } else {
        let pads = node
            .ints("pads")
            .ok_or_else(|| node.error("pads are required"))?;
        (pads, f64::from(node.float("value").unwrap_or(0.0)))
    };
    let axes: Vec<usize> = match optional(inputs, 3) {
        Some(axes) => int_values(axes, node)?
            .iter()
            .map(|&a| axis(a, x.rank(), node))
            .collect::<Result<_>>()?,
        None => (0..x.rank()).collect(),
    };
    if pads.len() != 2 * axes.len() {
        return Err(node.error(format!(
            "{} pads for {} axes (two per axis are needed)",
            pads.len(),
            axes.len()
        )));
    }
    let mut y = x.clone();
    for (k, &a) in axes.iter().enumerate() {
        let (before, after) = (pads[k], pads[k + axes.len()]);
        y = pad_axis(node, &y, a, before, after, mode, value)?;
    }
    Ok(vec![y])
}

/// `x` padded (or cropped, where negative) by `before` and `after` positions along axis `a`.
fn pad_axis(
    node: &Node<'_>,
    x: &Tensor,
    a: usize,
    before: i64,
    after: i64,
    mode: Mode,
    value: f64,
) -> Result<Tensor> {
    let len = x.dim(a).at(node)? as i64;
    let (crop_before, crop_after) = ((-before).max(0), (-after).max(0));
    if crop_before + crop_after > len {
        return Err(node.error(format!(
            "negative pads remove {} positions of {len}",
            crop_before + crop_after
        )));
    }
    let x = x
        .narrow(
            a,
            crop_before as usize,
            (len - crop_before - crop_after) as usize,
        )
        .at(node)?;
    let (before, after) = (before.max(0) as usize, after.max(0) as usize);
    if before == 0 && after == 0 {
        return Ok(x);
    }
    let len = x.dim(a).at(node)?;
    if mode == Mode::Constant {
        return pad_constant(node, &x, a, before, after, value);
    }
    if len == 0 || (mode == Mode::Reflect && (len < 2 || before >= len || after >= len)) {
        return Err(node.error(format!(
            "{len} positions cannot be padded by {before} and {after} in this mode"
        )));
    }
    let last = len as i64 - 1;
    let source: Vec<i64> = (-(before as i64)..len as i64 + after as i64)
        .map(|i| match mode {
            Mode::Edge => i.clamp(0, last),
            Mode::Reflect if i < 0 => -i,
            Mode::Reflect if i > last => 2 * last - i,
            Mode::Wrap => i.rem_euclid(len as i64),
            _ => i,
        })
        .collect();
    let count = source.len();
    let source = Tensor::from_vec(source, count, x.device()).at(node)?;
    x.contiguous()
        .and_then(|x| x.index_select(&source, a))
        .at(node)
}

/// `x` with `before` and `after` positions of `value` added along axis `a`.
pub(crate) fn pad_constant(
    node: &Node<'_>,
    x: &Tensor,
    a: usize,
    before: usize,
    after: usize,
    value: f64,
) -> Result<Tensor> {
    if before == 0 && after == 0 {
        return Ok(x.clone());
    }
    let block = |count: usize| -> Result<Tensor> {
        let mut dims = x.dims().to_vec();
        dims[a] = count;
        Tensor::full(value, dims, x.device())
            .and_then(|t| t.to_dtype(x.dtype()))
            .at(node)
    };
    Tensor::cat(&[&block(before)?, x, &block(after)?], a).at(node)
}
