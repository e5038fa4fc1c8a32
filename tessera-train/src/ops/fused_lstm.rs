//! One direction of an `LSTM` over a whole sequence as a single operation with a hand-written
//! backward pass through time. Unrolled into candle operations, every time step reads a slice
//! of the sequence's input projections, and candle differentiates each slice by padding its
//! gradient back to the whole sequence: the backward pass grew with the square of the length.
//! Here the forward pass keeps each step's gate activations, so the backward pass evaluates no
//! activation function again.

use candle_core::{CpuStorage, CustomOp3, DType, Layout, Shape, Tensor};
use ndarray::{s, Array2, Array3, ArrayView2, ArrayView3, Axis};

use crate::storage::{matrix, run_kernel, tensor_values, Kernel, Real};

/// Values kept per unit and step: h, c, the gates i, o, f, the candidate, and tanh(c).
const KEPT: usize = 7;

/// Runs one direction: `inputs` are the input projections with both biases, `[T, B, 4H]` in
/// the gate order i, o, f, c; `recurrent` is `R`, `[4H, H]`; `initial` stacks h₀ and c₀,
/// `[2, B, H]`. Returns every step's state, `[T, B, 7H]`, in the sequence's own time order
/// whichever way it was read: the hidden state in channels `..H`, the cell state in `H..2H`
/// (the rest is what the backward pass needs).
pub fn lstm_direction(
    inputs: &Tensor,
    recurrent: &Tensor,
    initial: &Tensor,
    reverse: bool,
) -> candle_core::Result<Tensor> {
    let (steps, batch, _) = inputs.dims3()?;
    let hidden = recurrent.dim(1)?;
    inputs.contiguous()?.apply_op3(
        &recurrent.contiguous()?,
        &initial.contiguous()?,
        LstmDirection {
            reverse,
            steps,
            batch,
            hidden,
        },
    )
}

#[derive(Clone, Copy)]
struct LstmDirection {
    reverse: bool,
    steps: usize,
    batch: usize,
    hidden: usize,
}

fn sigmoid<T: Real>(x: T) -> T {
    T::one() / (T::one() + (-x).exp())
}

/// `tanh` from one exponential of `-2|x|` (at most 1, so it cannot overflow): libm's `tanh`
/// goes through `expm1` for full relative precision near zero, which made it most of an LSTM
/// step; this is as close in absolute terms (about one float32 rounding), which is what the
/// gates and the cell need.
fn tanh<T: Real>(x: T) -> T {
    let decay = (-(x.abs() + x.abs())).exp();
    ((T::one() - decay) / (T::one() + decay)).copysign(x)
}

/// A row of an array this module made or laid out itself, which is always contiguous.
fn contiguous<T>(row: Option<&[T]>) -> &[T] {
    row.expect("the LSTM's rows are contiguous")
}

/// [`contiguous`] for a row written to.
fn contiguous_mut<T>(row: Option<&mut [T]>) -> &mut [T] {
    row.expect("the LSTM's rows are contiguous")
}

impl LstmDirection {
    /// Time steps in the order they are processed.
    fn order(&self, steps: usize) -> Vec<usize> {
        if self.reverse {
            (0..steps).rev().collect()
        } else {
            (0..steps).collect()
        }
    }

    /// Hidden and cell state before step `position` of `order`: the previous step's, or the
    /// initial one.
    fn previous<'a, T: Real>(
        order: &[usize],
        position: usize,
        states: ArrayView3<'a, T>,
        initial: ArrayView3<'a, T>,
        hidden: usize,
    ) -> (ArrayView2<'a, T>, ArrayView2<'a, T>) {
        match position.checked_sub(1) {
            Some(before) => {
                let state = states.index_axis_move(Axis(0), order[before]);
                (
                    state.slice_move(s![.., ..hidden]),
                    state.slice_move(s![.., hidden..2 * hidden]),
                )
            }
            None => (
                initial.index_axis_move(Axis(0), 0),
                initial.index_axis_move(Axis(0), 1),
            ),
        }
    }

    fn forward<T: Real>(
        &self,
        inputs: ArrayView3<T>,
        recurrent: ArrayView2<T>,
        initial: ArrayView3<T>,
    ) -> Array3<T> {
        let (steps, batch, _) = inputs.dim();
        let hidden = recurrent.ncols();
        let mut states = Array3::zeros((steps, batch, KEPT * hidden));
        let order = self.order(steps);
        for (position, &t) in order.iter().enumerate() {
            let (h, c) = Self::previous(&order, position, states.view(), initial, hidden);
            let a = &inputs.index_axis(Axis(0), t) + &h.dot(&recurrent.t());
            let c = c.to_owned();
            let mut state = states.index_axis_mut(Axis(0), t);
            for b in 0..batch {
                // Rows as slices of exactly `hidden` values, so the unit loop indexes without
                // bounds checks and vectorises.
                let gates = a.row(b);
                let gates = contiguous(gates.as_slice());
                let gate = |k: usize| &gates[k * hidden..(k + 1) * hidden];
                let (i_pre, o_pre, f_pre, c_pre) = (gate(0), gate(1), gate(2), gate(3));
                let before = c.row(b);
                let before = &contiguous(before.as_slice())[..hidden];
                let mut row = state.row_mut(b);
                let row = contiguous_mut(row.as_slice_mut());
                let (h_out, row) = row.split_at_mut(hidden);
                let (c_out, row) = row.split_at_mut(hidden);
                let (i_out, row) = row.split_at_mut(hidden);
                let (o_out, row) = row.split_at_mut(hidden);
                let (f_out, row) = row.split_at_mut(hidden);
                let (g_out, row) = row.split_at_mut(hidden);
                let s_out = &mut row[..hidden];
                for unit in 0..hidden {
                    let input = sigmoid(i_pre[unit]);
                    let output = sigmoid(o_pre[unit]);
                    let forget = sigmoid(f_pre[unit]);
                    let candidate = tanh(c_pre[unit]);
                    let cell = forget * before[unit] + input * candidate;
                    let squashed = tanh(cell);
                    h_out[unit] = output * squashed;
                    c_out[unit] = cell;
                    i_out[unit] = input;
                    o_out[unit] = output;
                    f_out[unit] = forget;
                    g_out[unit] = candidate;
                    s_out[unit] = squashed;
                }
            }
        }
        states
    }

    /// Gradients of the inputs, `R` and the initial state from the kept states and their
    /// gradient (which is zero beyond h and c).
    fn backward<T: Real>(
        &self,
        recurrent: ArrayView2<T>,
        initial: ArrayView3<T>,
        states: ArrayView3<T>,
        gradient: ArrayView3<T>,
    ) -> candle_core::Result<(Array3<T>, Array2<T>, Array3<T>)> {
        let (steps, batch, _) = states.dim();
        let hidden = recurrent.ncols();
        let one = T::one();
        let mut d_inputs = Array3::zeros((steps, batch, 4 * hidden));
        let mut d_recurrent = Array2::zeros((4 * hidden, hidden));
        let mut d_hidden = Array2::<T>::zeros((batch, hidden));
        let mut d_cell = Array2::<T>::zeros((batch, hidden));
        let order = self.order(steps);
        for (position, &t) in order.iter().enumerate().rev() {
            let (h, c) = Self::previous(&order, position, states, initial, hidden);
            let mut d_a = d_inputs.index_axis_mut(Axis(0), t);
            for b in 0..batch {
                let kept = states.slice(s![t, b, ..]);
                let kept = contiguous(kept.as_slice());
                let slot = |k: usize| &kept[k * hidden..(k + 1) * hidden];
                let (input, output, forget, candidate, squashed) =
                    (slot(2), slot(3), slot(4), slot(5), slot(6));
                let incoming = gradient.slice(s![t, b, ..]);
                let incoming = contiguous(incoming.as_slice());
                let (g_hidden, g_cell) = (&incoming[..hidden], &incoming[hidden..2 * hidden]);
                let before = c.row(b);
                let before = &contiguous(before.as_slice())[..hidden];
                let carried_hidden = d_hidden.row(b);
                let carried_hidden = &contiguous(carried_hidden.as_slice())[..hidden];
                let mut carried_cell = d_cell.row_mut(b);
                let carried_cell = &mut contiguous_mut(carried_cell.as_slice_mut())[..hidden];
                let mut row = d_a.row_mut(b);
                let row = contiguous_mut(row.as_slice_mut());
                let (d_i, row) = row.split_at_mut(hidden);
                let (d_o, row) = row.split_at_mut(hidden);
                let (d_f, row) = row.split_at_mut(hidden);
                let d_g = &mut row[..hidden];
                for unit in 0..hidden {
                    let (i, o, f, g, sq) = (
                        input[unit],
                        output[unit],
                        forget[unit],
                        candidate[unit],
                        squashed[unit],
                    );
                    let dh = g_hidden[unit] + carried_hidden[unit];
                    let dc = g_cell[unit] + carried_cell[unit] + dh * o * (one - sq * sq);
                    d_i[unit] = dc * g * i * (one - i);
                    d_o[unit] = dh * sq * o * (one - o);
                    d_f[unit] = dc * before[unit] * f * (one - f);
                    d_g[unit] = dc * i * (one - g * g);
                    carried_cell[unit] = dc * f;
                }
            }
            d_recurrent += &d_a.t().dot(&h);
            d_hidden = d_a.dot(&recurrent);
        }
        let d_initial = ndarray::stack(Axis(0), &[d_hidden.view(), d_cell.view()])
            .map_err(|error| candle_core::Error::Msg(error.to_string()))?;
        Ok((d_inputs, d_recurrent, d_initial))
    }

    fn run_backward<T: Real>(
        &self,
        recurrent: &Tensor,
        initial: &Tensor,
        states: &Tensor,
        gradient: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (steps, batch, hidden) = (self.steps, self.batch, self.hidden);
        let kept = KEPT * hidden;
        let (r, init) = (tensor_values::<T>(recurrent)?, tensor_values::<T>(initial)?);
        let (kept_values, gradient_values) =
            (tensor_values::<T>(states)?, tensor_values::<T>(gradient)?);
        let (d_inputs, d_recurrent, d_initial) = self.backward(
            matrix(&r, (4 * hidden, hidden))?,
            view3(&init, (2, batch, hidden))?,
            view3(&kept_values, (steps, batch, kept))?,
            view3(&gradient_values, (steps, batch, kept))?,
        )?;
        let device = recurrent.device();
        let tensor = |array: Vec<T>, shape: &[usize]| Tensor::from_vec(array, shape, device);
        Ok((
            Some(tensor(
                d_inputs.into_raw_vec_and_offset().0,
                &[steps, batch, 4 * hidden],
            )?),
            Some(tensor(
                d_recurrent.into_raw_vec_and_offset().0,
                &[4 * hidden, hidden],
            )?),
            Some(tensor(
                d_initial.into_raw_vec_and_offset().0,
                &[2, batch, hidden],
            )?),
        ))
    }
}

fn view3<T>(values: &[T], dims: (usize, usize, usize)) -> candle_core::Result<ArrayView3<'_, T>> {
    ArrayView3::from_shape(dims, values).map_err(|error| candle_core::Error::Msg(error.to_string()))
}

impl Kernel for LstmDirection {
    const NAME: &'static str = "an LSTM";

    fn run<T: Real>(&self, values: &[&[T]]) -> candle_core::Result<Vec<T>> {
        let &[inputs, recurrent, initial] = values else {
            candle_core::bail!("an LSTM direction takes three tensors");
        };
        let (steps, batch, hidden) = (self.steps, self.batch, self.hidden);
        let states = self.forward(
            view3(inputs, (steps, batch, 4 * hidden))?,
            matrix(recurrent, (4 * hidden, hidden))?,
            view3(initial, (2, batch, hidden))?,
        );
        Ok(states.into_raw_vec_and_offset().0)
    }
}

impl CustomOp3 for LstmDirection {
    fn name(&self) -> &'static str {
        "lstm"
    }

    fn cpu_fwd(
        &self,
        inputs: &CpuStorage,
        inputs_layout: &Layout,
        recurrent: &CpuStorage,
        recurrent_layout: &Layout,
        initial: &CpuStorage,
        initial_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let states = run_kernel(
            self,
            &[
                (inputs, inputs_layout),
                (recurrent, recurrent_layout),
                (initial, initial_layout),
            ],
        )?;
        Ok((
            states,
            Shape::from((self.steps, self.batch, KEPT * self.hidden)),
        ))
    }

    fn bwd(
        &self,
        _inputs: &Tensor,
        recurrent: &Tensor,
        initial: &Tensor,
        states: &Tensor,
        gradient: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        match states.dtype() {
            DType::F32 => self.run_backward::<f32>(recurrent, initial, states, gradient),
            DType::F64 => self.run_backward::<f64>(recurrent, initial, states, gradient),
            other => candle_core::bail!("an LSTM needs float32 or float64 values, not {other:?}"),
        }
    }
}
