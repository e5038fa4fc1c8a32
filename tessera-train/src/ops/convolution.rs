//! Convolutions (1-D and 2-D) and pooling.

use candle_core::Tensor;

use super::im2col::{unfold, Windows};
use super::linear::linear;
use super::{input, optional, Node};
use crate::node::NodeResult;
use crate::Result;

/// Pads spatial axis `first + i` with `pads[i]` before and `pads[i + n]` after.
fn pad_spatial(x: &Tensor, pads: &[i64], node: &Node<'_>) -> Result<Tensor> {
    let spatial = pads.len() / 2;
    let mut y = x.clone();
    for i in 0..spatial {
        let (before, after) = (pads[i], pads[i + spatial]);
        if before < 0 || after < 0 {
            return Err(node.error("negative padding is not supported"));
        }
        if before > 0 || after > 0 {
            y = y
                .pad_with_zeros(2 + i, before as usize, after as usize)
                .at(node)?;
        }
    }
    Ok(y)
}

fn check_auto_pad(node: &Node<'_>) -> Result<()> {
    match node.string("auto_pad").as_deref() {
        None | Some("NOTSET") | Some("VALID") => Ok(()),
        Some(other) => Err(node.error(format!(
            "auto_pad {other} is not supported; export with explicit pads"
        ))),
    }
}

fn uniform(values: &[i64], what: &str, node: &Node<'_>) -> Result<usize> {
    match values.first() {
        None => Ok(1),
        Some(&first) if values.iter().all(|&v| v == first) && first > 0 => Ok(first as usize),
        _ => Err(node.error(format!(
            "{what} must be equal along every axis, found {values:?}"
        ))),
    }
}

/// `Conv` over one or two spatial axes, with groups, strides, dilations, any padding and bias.
pub fn conv(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    check_auto_pad(node)?;
    let x = input(node, inputs, 0)?;
    let weight = input(node, inputs, 1)?;
    let spatial = x.rank().saturating_sub(2);
    let pads = node.ints("pads").unwrap_or_else(|| vec![0; 2 * spatial]);
    let stride = uniform(&node.ints("strides").unwrap_or_default(), "strides", node)?;
    let dilation = uniform(
        &node.ints("dilations").unwrap_or_default(),
        "dilations",
        node,
    )?;
    let groups = node.int("group").unwrap_or(1).max(1) as usize;
    let (channels, per_group) = (x.dim(1).at(node)?, weight.dim(1).at(node)?);
    if channels != per_group * groups || weight.dim(0).at(node)? % groups != 0 {
        return Err(node.error(format!(
            "{channels} input channels in {groups} groups do not fit weights of shape {:?}",
            weight.dims()
        )));
    }
    let padded = pad_spatial(x, &pads, node)?;
    // candle's conv1d backward is wrong for batches with several output channels, and its
    // conv2d backward derives one output padding (from the height) for both axes: 1-D runs as
    // 2-D of height 1, on the input cropped to what the windows read (no output padding).
    let (padded, weight) = match spatial {
        1 => (padded.unsqueeze(2).at(node)?, weight.unsqueeze(2).at(node)?),
        2 => (padded, weight.clone()),
        other => return Err(node.error(format!("{other}-D convolution is not supported"))),
    };
    if padded.device().is_cpu() {
        let kernel = (weight.dim(2).at(node)?, weight.dim(3).at(node)?);
        if let Some(windows) = Windows::over(&padded, kernel, stride, dilation).at(node)? {
            let bias = optional(inputs, 2);
            let y = if groups == 1 {
                matrix_conv(&padded, &weight, bias, windows)
            } else {
                grouped_matrix_conv(&padded, &weight, bias, windows, groups)
            }
            .at(node)?;
            return Ok(vec![if spatial == 1 {
                y.squeeze(2).at(node)?
            } else {
                y
            }]);
        }
    }
    let mut cropped = padded.clone();
    for a in 2..4 {
        let (size, span) = (
            padded.dim(a).at(node)?,
            dilation * weight.dim(a).at(node)?.saturating_sub(1) + 1,
        );
        if size > span {
            cropped = cropped
                .narrow(a, 0, (size - span) / stride * stride + span)
                .at(node)?;
        }
    }
    let mut y = cropped
        .conv2d(&weight, 0, stride, dilation, groups)
        .at(node)?;
    if spatial == 1 {
        y = y.squeeze(2).at(node)?;
    }
    if let Some(bias) = optional(inputs, 2) {
        let mut shape = vec![1usize; y.rank()];
        shape[1] = bias.elem_count();
        y = y.broadcast_add(&bias.reshape(shape).at(node)?).at(node)?;
    }
    Ok(vec![y])
}

/// A convolution without groups as a matrix product of the input's windows
/// (`[N · positions, C · kh · kw]`) and the flattened weight, plus the bias per output channel.
fn matrix_conv(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    windows: Windows,
) -> candle_core::Result<Tensor> {
    let (batch, out_channels) = (x.dim(0)?, weight.dim(0)?);
    let (out_h, out_w) = windows.out();
    let columns = unfold(x, windows)?.reshape(((), windows.depth()))?;
    let weight = weight.reshape((out_channels, windows.depth()))?;
    linear(&columns, &weight, true, bias)?
        .reshape((batch, out_h * out_w, out_channels))?
        .transpose(1, 2)?
        .reshape((batch, out_channels, out_h, out_w))
}

/// A convolution in `groups` groups (depthwise when every group is one channel) as one batched
/// matrix product: each group's windows (`[N · positions, C/groups · kh · kw]`) with its
/// filters, where candle would run one convolution per group.
fn grouped_matrix_conv(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    windows: Windows,
    groups: usize,
) -> candle_core::Result<Tensor> {
    let (batch, out_channels) = (x.dim(0)?, weight.dim(0)?);
    let (out_h, out_w) = windows.out();
    let rows = batch * out_h * out_w;
    let per_group = windows.depth() / groups;
    let columns = unfold(x, windows)?
        .reshape((rows, groups, per_group))?
        .transpose(0, 1)?
        .contiguous()?;
    let filters = weight
        .reshape((groups, out_channels / groups, per_group))?
        .transpose(1, 2)?;
    let mut y = columns
        .matmul(&filters)?
        .transpose(0, 1)?
        .reshape((batch, out_h * out_w, out_channels))?
        .transpose(1, 2)?
        .reshape((batch, out_channels, out_h, out_w))?;
    if let Some(bias) = bias {
        y = y.broadcast_add(&bias.reshape((1, out_channels, 1, 1))?)?;
    }
    Ok(y)
}

fn pool(node: &Node<'_>, inputs: &[Option<Tensor>], max: bool) -> Result<Vec<Tensor>> {
    check_auto_pad(node)?;
    let x = input(node, inputs, 0)?;
    let kernel = node
        .ints("kernel_shape")
        .ok_or_else(|| node.error("kernel_shape is required"))?;
    let strides = node
        .ints("strides")
        .unwrap_or_else(|| vec![1; kernel.len()]);
    if node.int("ceil_mode").unwrap_or(0) != 0
        || node
            .ints("dilations")
            .is_some_and(|d| d.iter().any(|&v| v != 1))
    {
        return Err(node.error("pooling with ceil_mode or dilation is not supported"));
    }
    let as_pair = |values: &[i64]| -> (usize, usize) {
        match values {
            [only] => (1, *only as usize),
            [h, w, ..] => (*h as usize, *w as usize),
            [] => (1, 1),
        }
    };
    let (one_dimensional, x4) = match x.rank() {
        3 => (true, x.unsqueeze(2).at(node)?),
        4 => (false, x.clone()),
        rank => return Err(node.error(format!("pooling of rank-{rank} tensors is not supported"))),
    };
    // Pads as [top, left, bottom, right] of the 2-D view (a 1-D pooling has height 1).
    let pads = node.ints("pads").unwrap_or_default();
    let pads: Vec<usize> = match pads.as_slice() {
        [] => vec![0; 4],
        [before, after] => vec![0, *before as usize, 0, *after as usize],
        [top, left, bottom, right] => [top, left, bottom, right].map(|&p| p as usize).to_vec(),
        other => return Err(node.error(format!("pads {other:?} do not fit the kernel"))),
    };
    let padded = |t: &Tensor, value: f64| -> Result<Tensor> {
        let mut t = t.clone();
        for (axis, before, after) in [(2, pads[0], pads[2]), (3, pads[1], pads[3])] {
            t = super::pad::pad_constant(node, &t, axis, before, after, value)?;
        }
        Ok(t)
    };
    let (kernel, stride) = (as_pair(&kernel), as_pair(&strides));
    // candle's pooling backward needs kernel == stride, ignores a remainder and scales
    // max-pool gradients by 1/kernel size: stack the windows' elements and reduce instead.
    // A max pool's padding never wins; an average's counts only where count_include_pad says.
    let x4 = padded(&x4, if max { f64::NEG_INFINITY } else { 0.0 })?
        .contiguous()
        .at(node)?;
    let (_, _, height, width) = x4.dims4().at(node)?;
    if kernel.0 == 0
        || kernel.1 == 0
        || kernel.0 > height
        || kernel.1 > width
        || stride.0 == 0
        || stride.1 == 0
        || pads[0].max(pads[2]) >= kernel.0
        || pads[1].max(pads[3]) >= kernel.1
    {
        return Err(node.error(format!(
            "kernel {kernel:?} with strides {stride:?} and pads {pads:?} does not fit {:?}",
            x.dims()
        )));
    }
    let out = (
        (height - kernel.0) / stride.0 + 1,
        (width - kernel.1) / stride.1 + 1,
    );
    let every = |start: usize, count: usize, step: usize| -> Result<Tensor> {
        let positions: Vec<u32> = (0..count).map(|k| (start + k * step) as u32).collect();
        Tensor::new(positions.as_slice(), x.device()).at(node)
    };
    let stack_windows = |t: &Tensor| -> Result<Tensor> {
        let mut windows = Vec::with_capacity(kernel.0 * kernel.1);
        for i in 0..kernel.0 {
            let rows = t.index_select(&every(i, out.0, stride.0)?, 2).at(node)?;
            for j in 0..kernel.1 {
                windows.push(rows.index_select(&every(j, out.1, stride.1)?, 3).at(node)?);
            }
        }
        Tensor::stack(&windows, 0).at(node)
    };
    let stacked = stack_windows(&x4)?;
    let y = if max {
        // The mean of each window's maxima: tied maxima share the gradient, as in candle's kernel.
        let top = stacked.max_keepdim(0).at(node)?.detach();
        (|| {
            let mask = stacked.broadcast_eq(&top)?;
            let count = mask.to_dtype(x.dtype())?.sum(0)?;
            mask.where_cond(&stacked, &stacked.zeros_like()?)?
                .sum(0)?
                .div(&count)
        })()
        .at(node)?
    } else if pads.iter().any(|&p| p > 0) && node.int("count_include_pad").unwrap_or(0) == 0 {
        let given = (height - pads[0] - pads[2], width - pads[1] - pads[3]);
        let ones = Tensor::ones((1, 1, given.0, given.1), x.dtype(), x.device()).at(node)?;
        let counts = stack_windows(&padded(&ones, 0.0)?)?.sum(0).at(node)?;
        stacked
            .sum(0)
            .and_then(|sum| sum.broadcast_div(&counts))
            .at(node)?
    } else {
        stacked.mean(0).at(node)?
    };
    Ok(vec![if one_dimensional {
        y.squeeze(2).at(node)?
    } else {
        y
    }])
}

/// `MaxPool` (1-D or 2-D).
pub fn max_pool(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    pool(node, inputs, true)
}

/// `AveragePool` (1-D or 2-D; padding counted only with `count_include_pad`).
pub fn average_pool(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    pool(node, inputs, false)
}

/// `GlobalAveragePool`: the mean over every spatial axis, kept as axes of length 1.
pub fn global_average_pool(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    let x = input(node, inputs, 0)?;
    let spatial: Vec<usize> = (2..x.rank()).collect();
    if spatial.is_empty() {
        return Err(node.error(format!(
            "the input has rank {}; global pooling needs spatial axes after [N, C]",
            x.rank()
        )));
    }
    Ok(vec![x.mean_keepdim(spatial).at(node)?])
}
