//! Recurrent layers (`LSTM`, `GRU`), forward, reverse or bidirectional, unrolled over time with
//! differentiable operations.

use candle_core::{Tensor, D};

use super::broadcast::rows_broadcast;
use super::elementwise::logistic;
use super::fused_lstm::lstm_direction;
use super::linear::linear;
use super::{input, optional, Node};
use crate::node::{int_values, NodeResult};
use crate::Result;

/// The settings every recurrent operator shares.
struct Recurrence {
    directions: usize,
    hidden: usize,
    batch_first: bool,
}

fn recurrence(node: &Node<'_>, inputs: &[Option<Tensor>], gates: usize) -> Result<Recurrence> {
    let directions = match node.string("direction").as_deref() {
        None | Some("forward") | Some("reverse") => 1,
        Some("bidirectional") => 2,
        Some(other) => return Err(node.error(format!("unknown direction {other}"))),
    };
    if node.ints("activations").is_some() || node.float("clip").is_some() {
        return Err(node.error("custom activations and clipping are not supported"));
    }
    if node.int("input_forget").unwrap_or(0) != 0 {
        return Err(node.error("input_forget is not supported"));
    }
    let weight = input(node, inputs, 1)?;
    let hidden = weight.dim(1).at(node)? / gates;
    if let Some(lengths) = optional(inputs, 4) {
        let steps = input(node, inputs, 0)?.dim(0).at(node)? as i64;
        if int_values(lengths, node)?.iter().any(|&len| len != steps) {
            return Err(
                node.error("sequences of different lengths (sequence_lens) are not supported")
            );
        }
    }
    Ok(Recurrence {
        directions,
        hidden,
        batch_first: node.int("layout").unwrap_or(0) == 1,
    })
}

/// The time order of direction `direction`.
fn reversed(node: &Node<'_>, direction: usize) -> bool {
    direction == 1 || node.string("direction").as_deref() == Some("reverse")
}

/// The sequence as `[T, B, I]`.
fn sequence(node: &Node<'_>, inputs: &[Option<Tensor>], settings: &Recurrence) -> Result<Tensor> {
    let x = input(node, inputs, 0)?;
    if settings.batch_first {
        x.transpose(0, 1).at(node)
    } else {
        Ok(x.clone())
    }
}

/// The initial state of direction `direction` from input `index`, or zeros.
fn initial(
    node: &Node<'_>,
    inputs: &[Option<Tensor>],
    index: usize,
    direction: usize,
    batch: usize,
    settings: &Recurrence,
    like: &Tensor,
) -> Result<Tensor> {
    match optional(inputs, index) {
        Some(state) => {
            let state = if settings.batch_first {
                state.transpose(0, 1).at(node)?
            } else {
                state.clone()
            };
            state.get(direction).at(node)
        }
        None => Tensor::zeros((batch, settings.hidden), like.dtype(), like.device()).at(node),
    }
}

/// Input projections for every step at once (`[T, B, gates·H]`) with the input bias added in,
/// and the recurrent bias as well when `with_recurrent_bias` (an LSTM adds both before its
/// gates); also the recurrent weights and the recurrent bias left to add, if any.
fn project(
    node: &Node<'_>,
    inputs: &[Option<Tensor>],
    x: &Tensor,
    direction: usize,
    (gates, hidden): (usize, usize),
    with_recurrent_bias: bool,
) -> Result<(Tensor, Tensor, Option<Tensor>)> {
    let w = input(node, inputs, 1)?.get(direction).at(node)?;
    let r = input(node, inputs, 2)?.get(direction).at(node)?;
    let (input_bias, recurrent_bias) = match optional(inputs, 3) {
        Some(bias) => {
            let bias = bias.get(direction).at(node)?;
            (
                Some(bias.narrow(0, 0, gates * hidden).at(node)?),
                Some(bias.narrow(0, gates * hidden, gates * hidden).at(node)?),
            )
        }
        None => (None, None),
    };
    let (bias, left) = match (input_bias, recurrent_bias) {
        (Some(input), Some(recurrent)) if with_recurrent_bias => {
            (Some((input + recurrent).at(node)?), None)
        }
        (input, recurrent) => (input, recurrent),
    };
    let projected = linear(x, &w, true, bias.as_ref()).at(node)?;
    Ok((projected, r, left))
}

fn gate(all: &Tensor, index: usize, hidden: usize) -> candle_core::Result<Tensor> {
    all.narrow(D::Minus1, index * hidden, hidden)
}

fn add_optional(x: Tensor, bias: &Option<Tensor>) -> candle_core::Result<Tensor> {
    match bias {
        Some(bias) => rows_broadcast(&x, bias, Tensor::broadcast_add),
        None => Ok(x),
    }
}

/// Stacks per-direction outputs: `Y` `[T, dirs, B, H]` (or batch-first), and the final states.
fn outputs(
    node: &Node<'_>,
    settings: &Recurrence,
    sequences: Vec<Tensor>,
    finals: Vec<Vec<Tensor>>,
) -> Result<Vec<Tensor>> {
    let mut y = Tensor::stack(&sequences, 1).at(node)?;
    if settings.batch_first {
        y = y.permute((2, 0, 1, 3)).at(node)?;
    }
    let mut result = vec![y];
    for states in finals {
        let mut state = Tensor::stack(&states, 0).at(node)?;
        if settings.batch_first {
            state = state.transpose(0, 1).at(node)?;
        }
        result.push(state);
    }
    Ok(result)
}

/// `LSTM` (gate order i, o, f, c; no peepholes). Outputs `Y`, `Y_h`, `Y_c`.
pub fn lstm(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    if optional(inputs, 7).is_some() {
        return Err(node.error("peephole connections are not supported"));
    }
    if !node.device.is_cpu() {
        return Err(node.error(
            "the LSTM kernel (backpropagation through time written out) runs on the CPU only; \
             train this model with --device cpu",
        ));
    }
    let settings = recurrence(node, inputs, 4)?;
    let x = sequence(node, inputs, &settings)?;
    let (steps, batch, _) = x.dims3().at(node)?;
    if steps == 0 {
        return Err(node.error("the input sequence has no time steps"));
    }
    let hidden = settings.hidden;
    let (mut sequences, mut final_h, mut final_c) = (Vec::new(), Vec::new(), Vec::new());
    for direction in 0..settings.directions {
        let (gate_inputs, r, _) = project(node, inputs, &x, direction, (4, hidden), true)?;
        let h = initial(node, inputs, 5, direction, batch, &settings, &x)?;
        let c = initial(node, inputs, 6, direction, batch, &settings, &x)?;
        let reverse = reversed(node, direction);
        let states = Tensor::stack(&[h, c], 0)
            .and_then(|initial| lstm_direction(&gate_inputs, &r, &initial, reverse))
            .at(node)?;
        let last = states.get(if reverse { 0 } else { steps - 1 }).at(node)?;
        sequences.push(states.narrow(2, 0, hidden).at(node)?);
        final_h.push(last.narrow(1, 0, hidden).at(node)?);
        final_c.push(last.narrow(1, hidden, hidden).at(node)?);
    }
    outputs(node, &settings, sequences, vec![final_h, final_c])
}

/// `GRU` (gate order z, r, h; `linear_before_reset` honoured). Outputs `Y`, `Y_h`.
pub fn gru(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    let settings = recurrence(node, inputs, 3)?;
    let x = sequence(node, inputs, &settings)?;
    let (steps, batch, _) = x.dims3().at(node)?;
    let hidden = settings.hidden;
    let linear_before_reset = node.int("linear_before_reset").unwrap_or(0) == 1;
    let (mut sequences, mut final_h) = (Vec::new(), Vec::new());
    for direction in 0..settings.directions {
        let (projected, r, recurrent_bias) =
            project(node, inputs, &x, direction, (3, hidden), false)?;
        let mut h = initial(node, inputs, 5, direction, batch, &settings, &x)?;
        let mut states = vec![None; steps];
        let order: Vec<usize> = if reversed(node, direction) {
            (0..steps).rev().collect()
        } else {
            (0..steps).collect()
        };
        let recurrent_gate = |index: usize| -> candle_core::Result<(Tensor, Option<Tensor>)> {
            let weights = r.narrow(0, index * hidden, hidden)?.t()?;
            let bias = match &recurrent_bias {
                Some(bias) => Some(bias.narrow(0, index * hidden, hidden)?),
                None => None,
            };
            Ok((weights, bias))
        };
        let ((rz, bz), (rr, br), (rh, bh)) = (
            recurrent_gate(0).at(node)?,
            recurrent_gate(1).at(node)?,
            recurrent_gate(2).at(node)?,
        );
        for t in order {
            let step = (|| {
                let projected_t = projected.get(t)?;
                let z = logistic(&add_optional(
                    gate(&projected_t, 0, hidden)?.add(&h.matmul(&rz)?)?,
                    &bz,
                )?)?;
                let reset = logistic(&add_optional(
                    gate(&projected_t, 1, hidden)?.add(&h.matmul(&rr)?)?,
                    &br,
                )?)?;
                let recurrent = if linear_before_reset {
                    reset.mul(&add_optional(h.matmul(&rh)?, &bh)?)?
                } else {
                    add_optional(reset.mul(&h)?.matmul(&rh)?, &bh)?
                };
                let candidate = gate(&projected_t, 2, hidden)?.add(&recurrent)?.tanh()?;
                // h' = (1 − z) ⊙ candidate + z ⊙ h
                candidate.sub(&z.mul(&candidate)?)?.add(&z.mul(&h)?)
            })()
            .at(node)?;
            h = step;
            states[t] = Some(h.clone());
        }
        let ordered: Vec<Tensor> = states.into_iter().flatten().collect();
        sequences.push(Tensor::stack(&ordered, 0).at(node)?);
        final_h.push(h);
    }
    outputs(node, &settings, sequences, vec![final_h])
}
