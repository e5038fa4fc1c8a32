//! A chain of view operators (`Reshape`, `Flatten`, `Squeeze`, `Unsqueeze`, `Transpose`, and a
//! `Gather` of one position) as one node of the backward pass. Exported attention spells out
//! its head split and merge as some fifteen such nodes per layer. For each of them candle's
//! backward pass allocates a zero gradient, adds the node's gradient into it and copies it
//! whenever a reshape follows a transpose. Here the chain is planned from shapes alone, as
//! strided views of its data; its values are copied once for each reshape that no view can
//! express (once in all for most chains), and its gradient is scattered back the same way.

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};

use tessera_onnx::proto::GraphProto;

use super::fused_chain::{chain, record};
use super::shape::{permutation, view_dims};
use crate::node::{axis, int_values, Node, NodeResult};
use crate::storage::span;
use crate::Result;

/// The fused chain's operator name in [`FUSED_DOMAIN`](super::fused_chain::FUSED_DOMAIN).
pub const VIEWS: &str = "Views";

/// Runs the chain in the node's `chain` attribute on its first input. The other inputs are
/// the chain's shapes, axes and indices, by the names its nodes give them.
pub fn views(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    let x = inputs
        .first()
        .and_then(Option::as_ref)
        .ok_or_else(|| node.error("a fused view chain needs its data"))?;
    let chain = chain(node)?;
    if x.device().is_cpu() && x.dtype().is_float() {
        if let Some(plan) = ViewPlan::of(node, chain, inputs, x.dims())? {
            let x = x.contiguous().at(node)?;
            let op = ViewChain {
                plan: Arc::new(plan),
                backward: false,
            };
            return Ok(vec![x.apply_op1(op).at(node)?]);
        }
    }
    // Recorded step by step on other devices and types, and where a `Gather` picks several
    // positions.
    record(node, inputs)
}

/// The chain's step `proto` as a node, and its arguments: the fused node's inputs the step
/// names, its data's place left empty.
fn step_of<'a>(
    node: &Node<'a>,
    proto: &'a tessera_onnx::proto::NodeProto,
    inputs: &[Option<Tensor>],
) -> Result<(Node<'a>, Vec<Option<Tensor>>)> {
    let step = Node {
        proto,
        device: node.device,
        opset: node.opset,
    };
    if proto.input.is_empty() {
        return Err(step.error("a view takes its data first"));
    }
    let arguments = std::iter::once(None)
        .chain(proto.input[1..].iter().map(|name| {
            let index = node.proto.input.iter().position(|input| input == name)?;
            inputs.get(index).cloned().flatten()
        }))
        .collect();
    Ok((step, arguments))
}

/// A strided view of a contiguous source: which of its positions, in what order.
#[derive(Clone, Debug, PartialEq)]
struct StridedView {
    /// The source's dimensions.
    source: Vec<usize>,
    dims: Vec<usize>,
    strides: Vec<usize>,
    offset: usize,
    /// Every source position is read (no `Gather` in it).
    covers: bool,
}

impl StridedView {
    /// All of a contiguous tensor of `dims`.
    fn whole(dims: &[usize]) -> Self {
        StridedView {
            source: dims.to_vec(),
            dims: dims.to_vec(),
            strides: contiguous_strides(dims),
            offset: 0,
            covers: true,
        }
    }

    /// The source read in its own order: nothing to move.
    fn is_identity(&self) -> bool {
        self.covers
            && self.offset == 0
            && self
                .dims
                .iter()
                .zip(&self.strides)
                .zip(contiguous_strides(&self.dims))
                .all(|((&dim, &stride), expected)| dim == 1 || stride == expected)
    }

    /// The view in `dims` without moving data, when strides can express it (as NumPy
    /// decides whether a reshape copies).
    fn reshaped(&self, dims: &[usize]) -> Option<Self> {
        let count: usize = self.dims.iter().product();
        let strides = if count == 0 {
            contiguous_strides(dims)
        } else {
            let (old_dims, old_strides): (Vec<usize>, Vec<usize>) = self
                .dims
                .iter()
                .zip(&self.strides)
                .filter(|(&dim, _)| dim != 1)
                .map(|(&dim, &stride)| (dim, stride))
                .unzip();
            let mut strides = vec![1; dims.len()];
            let (mut old, mut new) = (0, 0);
            // Groups of old and new axes of equal size; each group's old axes must be one run.
            while old < old_dims.len() && new < dims.len() {
                let (mut old_end, mut new_end) = (old + 1, new + 1);
                let (mut old_size, mut new_size) = (old_dims[old], dims[new]);
                while old_size != new_size {
                    if new_size < old_size {
                        new_size *= dims[new_end];
                        new_end += 1;
                    } else {
                        old_size *= old_dims[old_end];
                        old_end += 1;
                    }
                }
                if (old..old_end - 1)
                    .any(|k| old_strides[k] != old_dims[k + 1] * old_strides[k + 1])
                {
                    return None;
                }
                strides[new_end - 1] = old_strides[old_end - 1];
                for k in (new + 1..new_end).rev() {
                    strides[k - 1] = strides[k] * dims[k];
                }
                (old, new) = (old_end, new_end);
            }
            strides
        };
        Some(StridedView {
            dims: dims.to_vec(),
            strides,
            ..self.clone()
        })
    }

    fn permuted(&self, perm: &[usize]) -> Self {
        StridedView {
            dims: perm.iter().map(|&a| self.dims[a]).collect(),
            strides: perm.iter().map(|&a| self.strides[a]).collect(),
            ..self.clone()
        }
    }

    /// Position `index` of `axis`, the axis dropped.
    fn picked(&self, axis: usize, index: usize) -> Self {
        let mut view = self.clone();
        view.offset += index * view.strides.remove(axis);
        view.dims.remove(axis);
        view.covers = false;
        view
    }

    /// Calls `row(start, count, step, len)` for each row the view reads, in the view's order:
    /// `count` runs of `len` consecutive source positions, `step` apart, from `start`.
    fn for_each_row(&self, mut row: impl FnMut(usize, usize, usize, usize)) {
        if self.dims.contains(&0) {
            return;
        }
        let (mut len, mut outer) = (1, self.dims.len());
        while outer > 0 && (self.dims[outer - 1] == 1 || self.strides[outer - 1] == len) {
            len *= self.dims[outer - 1];
            outer -= 1;
        }
        let Some(last) = outer.checked_sub(1) else {
            return row(self.offset, 1, 0, len);
        };
        let (count, step) = (self.dims[last], self.strides[last]);
        let mut index = vec![0; last];
        let mut at = self.offset;
        loop {
            row(at, count, step, len);
            let mut axis = last;
            loop {
                if axis == 0 {
                    return;
                }
                axis -= 1;
                index[axis] += 1;
                at += self.strides[axis];
                if index[axis] < self.dims[axis] {
                    break;
                }
                at -= self.strides[axis] * self.dims[axis];
                index[axis] = 0;
            }
        }
    }

    /// The view's values, copied out of `source`.
    fn gather<T: Copy>(&self, source: &[T]) -> Vec<T> {
        let mut values = Vec::with_capacity(self.dims.iter().product());
        self.for_each_row(|start, count, step, len| {
            if len == 1 {
                values.extend((0..count).map(|j| source[start + j * step]));
            } else {
                for j in 0..count {
                    let from = start + j * step;
                    values.extend_from_slice(&source[from..from + len]);
                }
            }
        });
        values
    }

    /// The source's gradient from the view's: each value put back where it was read from,
    /// zeros where nothing was read. A view that reads every position once is a permutation,
    /// whose inverse is read instead (no zeros written first).
    fn scatter<T: Copy + num_traits::Zero>(&self, gradient: &[T]) -> Vec<T> {
        if self.covers {
            return self.inverse().gather(gradient);
        }
        let mut source = vec![T::zero(); self.source.iter().product()];
        let mut read = 0;
        self.for_each_row(|start, count, step, len| {
            for j in 0..count {
                let to = start + j * step;
                source[to..to + len].copy_from_slice(&gradient[read..read + len]);
                read += len;
            }
        });
        source
    }

    /// For a view that reads every source position once: the view of its values that reads
    /// them back in source order (its axes by decreasing stride).
    fn inverse(&self) -> Self {
        let value_strides = contiguous_strides(&self.dims);
        let mut axes: Vec<usize> = (0..self.dims.len())
            .filter(|&k| self.dims[k] != 1)
            .collect();
        axes.sort_by_key(|&k| std::cmp::Reverse(self.strides[k]));
        StridedView {
            source: self.dims.clone(),
            dims: axes.iter().map(|&k| self.dims[k]).collect(),
            strides: axes.iter().map(|&k| value_strides[k]).collect(),
            offset: 0,
            covers: true,
        }
    }
}

fn contiguous_strides(dims: &[usize]) -> Vec<usize> {
    let mut strides = vec![1; dims.len()];
    for k in (1..dims.len()).rev() {
        strides[k - 1] = strides[k] * dims[k];
    }
    strides
}

/// A chain as strided views, each of the one before copied out.
#[derive(Debug)]
struct ViewPlan {
    input: Vec<usize>,
    views: Vec<StridedView>,
}

impl ViewPlan {
    /// Plans the chain for data of `dims` from shapes alone; `None` when a `Gather` picks
    /// several positions.
    fn of(
        node: &Node<'_>,
        chain: &GraphProto,
        inputs: &[Option<Tensor>],
        dims: &[usize],
    ) -> Result<Option<Self>> {
        let mut views = Vec::new();
        let mut view = StridedView::whole(dims);
        for proto in &chain.node {
            let (step, arguments) = step_of(node, proto, inputs)?;
            view = match proto.op_type.as_str() {
                "Transpose" => view.permuted(&permutation(&step, view.dims.len())?),
                "Gather" => {
                    let indices = arguments
                        .get(1)
                        .and_then(Option::as_ref)
                        .ok_or_else(|| step.error("input 1 is required"))?;
                    if indices.rank() != 0 {
                        return Ok(None);
                    }
                    let along = axis(step.int("axis").unwrap_or(0), view.dims.len(), &step)?;
                    let length = view.dims[along] as i64;
                    let index = int_values(indices, &step)?[0];
                    if index < -length || index >= length {
                        return Err(step.error(format!(
                            "index {index} is out of range for a dimension of {length}"
                        )));
                    }
                    view.picked(
                        along,
                        (if index < 0 { index + length } else { index }) as usize,
                    )
                }
                op => {
                    let dims = view_dims(&step, &view.dims, &arguments)?
                        .ok_or_else(|| step.error(format!("{op} is not a view")))?;
                    match view.reshaped(&dims) {
                        Some(reshaped) => reshaped,
                        None => {
                            views.push(view);
                            StridedView::whole(&dims)
                        }
                    }
                }
            };
        }
        views.push(view);
        Ok(Some(ViewPlan {
            input: dims.to_vec(),
            views,
        }))
    }

    fn output(&self) -> &[usize] {
        self.views.last().map_or(&self.input, |view| &view.dims)
    }

    /// The chain's values from its data's, or (`backward`) the data's gradient from the
    /// chain's.
    fn run<T: Copy + num_traits::Zero>(&self, values: &[T], backward: bool) -> Vec<T> {
        if backward {
            self.backward(values)
        } else {
            self.forward(values)
        }
    }

    /// The chain's values from its data's.
    fn forward<T: Copy>(&self, data: &[T]) -> Vec<T> {
        let mut values: Option<Vec<T>> = None;
        for view in self.views.iter().filter(|view| !view.is_identity()) {
            values = Some(view.gather(values.as_deref().unwrap_or(data)));
        }
        values.unwrap_or_else(|| data.to_vec())
    }

    /// The data's gradient from the chain's.
    fn backward<T: Copy + num_traits::Zero>(&self, gradient: &[T]) -> Vec<T> {
        let mut values: Option<Vec<T>> = None;
        for view in self.views.iter().rev().filter(|view| !view.is_identity()) {
            values = Some(view.scatter(values.as_deref().unwrap_or(gradient)));
        }
        values.unwrap_or_else(|| gradient.to_vec())
    }
}

/// `f32s` or `f64s` on a contiguous float storage's values.
fn on_storage(
    storage: &CpuStorage,
    layout: &Layout,
    f32s: impl FnOnce(&[f32]) -> Vec<f32>,
    f64s: impl FnOnce(&[f64]) -> Vec<f64>,
) -> candle_core::Result<CpuStorage> {
    let (start, end) = span(layout, "views")?;
    Ok(match storage {
        CpuStorage::F32(values) => CpuStorage::F32(f32s(&values[start..end])),
        CpuStorage::F64(values) => CpuStorage::F64(f64s(&values[start..end])),
        _ => candle_core::bail!("a fused view chain runs on float32 or float64 values"),
    })
}

/// The chain run on its data (forward), tied to it for the backward pass; or (backward) the
/// chain's gradient scattered back to its data's shape.
struct ViewChain {
    plan: Arc<ViewPlan>,
    backward: bool,
}

impl CustomOp1 for ViewChain {
    fn name(&self) -> &'static str {
        if self.backward {
            "views-gradient"
        } else {
            "views"
        }
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (plan, backward) = (&self.plan, self.backward);
        let values = on_storage(
            storage,
            layout,
            |values| plan.run(values, backward),
            |values| plan.run(values, backward),
        )?;
        let dims = if backward {
            &plan.input[..]
        } else {
            plan.output()
        };
        Ok((values, Shape::from(dims)))
    }

    fn bwd(
        &self,
        _data: &Tensor,
        _result: &Tensor,
        gradient: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let gradient = gradient.contiguous()?;
        Ok(Some(gradient.apply_op1_no_bwd(&ViewChain {
            plan: self.plan.clone(),
            backward: true,
        })?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::NEWEST_OPSET;
    use crate::ops::fused_chain::fused_node;
    use crate::ops::lookup;
    use crate::ops::{largest_difference, weighted_gradients};
    use candle_core::{Device, Var};
    use tessera_onnx::proto::attribute_proto::AttributeType;
    use tessera_onnx::proto::{AttributeProto, GraphProto, NodeProto};

    fn step(op: &str, inputs: &[&str], output: &str, perm: Option<&[i64]>) -> NodeProto {
        NodeProto {
            op_type: op.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            attribute: perm
                .map(|perm| AttributeProto {
                    name: "perm".into(),
                    r#type: AttributeType::Ints as i32,
                    ints: perm.to_vec(),
                    ..AttributeProto::default()
                })
                .into_iter()
                .collect(),
            ..NodeProto::default()
        }
    }

    /// The fused chain's values and gradients against the same steps recorded one by one.
    fn assert_chain_matches(steps: Vec<NodeProto>, arguments: &[(&str, Tensor)]) {
        let device = Device::Cpu;
        let values: Vec<f32> = (0..24).map(|i| (i as f32 * 0.37).sin()).collect();
        let x = Var::from_vec(values, (2, 3, 4), &device).unwrap();
        let inputs: Vec<&str> = std::iter::once("x")
            .chain(arguments.iter().map(|(name, _)| *name))
            .collect();
        let proto = fused_node(VIEWS, &inputs, "y", steps.clone(), Vec::new());
        let node = Node {
            proto: &proto,
            device: &device,
            opset: NEWEST_OPSET,
        };
        let inputs: Vec<Option<Tensor>> = std::iter::once(x.as_tensor().clone())
            .chain(arguments.iter().map(|(_, value)| value.clone()))
            .map(Some)
            .collect();
        let fused = views(&node, &inputs).unwrap().remove(0);
        let mut spelled_out = x.as_tensor().clone();
        for proto in &steps {
            let step = Node {
                proto,
                device: &device,
                opset: NEWEST_OPSET,
            };
            let mut step_inputs = vec![Some(spelled_out)];
            step_inputs.extend(proto.input[1..].iter().map(|name| {
                arguments
                    .iter()
                    .find(|(argument, _)| argument == name)
                    .map(|(_, value)| value.clone())
            }));
            let op = lookup("", &proto.op_type).unwrap();
            spelled_out = op(&step, &step_inputs).unwrap().remove(0);
        }
        assert_eq!(fused.dims(), spelled_out.dims());
        assert_eq!(largest_difference(&fused, &spelled_out), 0.0);
        let gradient = |y: &Tensor| weighted_gradients(y, &[x.as_tensor()]).remove(0);
        let difference = largest_difference(&gradient(&fused), &gradient(&spelled_out));
        assert_eq!(difference, 0.0, "{steps:?}");
    }

    /// A `Gather` of one position (planned as a view), a negative one, and of several
    /// positions (recorded step by step).
    #[test]
    fn a_chain_with_a_gather_computes_and_differentiates_as_its_steps() {
        let device = Device::Cpu;
        for index in [
            Tensor::new(2i64, &device).unwrap(),
            Tensor::new(-1i64, &device).unwrap(),
            Tensor::new(&[0i64, 5], &device).unwrap(),
        ] {
            let steps = vec![
                step("Reshape", &["x", "shape"], "r", None),
                step("Transpose", &["r"], "t", Some(&[1, 0])),
                step("Gather", &["t", "index"], "g", None),
            ];
            let shape = Tensor::new(&[4i64, 6], &device).unwrap();
            assert_chain_matches(steps, &[("shape", shape), ("index", index)]);
        }
    }

    /// Reshapes strides can express (merging axes a transpose kept in order, splitting one), one
    /// they cannot (the values are copied there), and a chain of
    /// reshapes alone, which moves nothing.
    #[test]
    fn a_chain_of_reshapes_and_transposes_computes_and_differentiates_as_its_steps() {
        let device = Device::Cpu;
        let ints = |values: &[i64]| Tensor::new(values, &device).unwrap();
        let steps = vec![
            step("Transpose", &["x"], "a", Some(&[2, 0, 1])),
            step("Reshape", &["a", "merge"], "b", None),
            step("Reshape", &["b", "split"], "c", None),
            step("Transpose", &["c"], "d", Some(&[0, 2, 1])),
            step("Reshape", &["d", "merge"], "e", None),
            step("Unsqueeze", &["e", "axes"], "f", None),
            step("Flatten", &["f"], "g", None),
        ];
        let plan = |steps: &[NodeProto], arguments: &[(&str, Tensor)]| {
            let proto = NodeProto {
                input: std::iter::once("x")
                    .chain(arguments.iter().map(|(name, _)| *name))
                    .map(String::from)
                    .collect(),
                ..NodeProto::default()
            };
            let node = Node {
                proto: &proto,
                device: &device,
                opset: NEWEST_OPSET,
            };
            let inputs: Vec<Option<Tensor>> = std::iter::once(None)
                .chain(arguments.iter().map(|(_, value)| Some(value.clone())))
                .collect();
            let chain = GraphProto {
                node: steps.to_vec(),
                ..GraphProto::default()
            };
            ViewPlan::of(&node, &chain, &inputs, &[2, 3, 4])
                .unwrap()
                .unwrap()
        };
        let arguments = [
            ("merge", ints(&[4, -1])),
            ("split", ints(&[2, 2, 6])),
            ("axes", ints(&[0])),
        ];
        // Copied once where the second merge cannot be a view, and once at the end.
        let copies = plan(&steps, &arguments).views.len();
        assert_eq!(copies, 2);
        assert_chain_matches(steps, &arguments);
        let steps = vec![
            step("Reshape", &["x", "merge"], "a", None),
            step("Squeeze", &["a"], "b", None),
            step("Unsqueeze", &["b", "axes"], "c", None),
        ];
        let arguments = [("merge", ints(&[1, 24])), ("axes", ints(&[1]))];
        let plan = plan(&steps, &arguments);
        assert!(plan.views.iter().all(StridedView::is_identity));
        assert_chain_matches(steps, &arguments);
    }

    /// NumPy's rule: split axes always take strides, merged ones only when they are one run.
    #[test]
    fn a_reshape_is_a_view_only_where_strides_express_it() {
        let transposed = StridedView::whole(&[2, 3, 4]).permuted(&[0, 2, 1]);
        assert_eq!(transposed.strides, [12, 1, 4]);
        let split = transposed.reshaped(&[2, 2, 2, 3]).unwrap();
        assert_eq!(split.strides, [12, 2, 1, 4]);
        assert!(transposed.reshaped(&[2, 12]).is_none());
        assert_eq!(
            transposed.reshaped(&[1, 2, 4, 3, 1]).unwrap().strides[1..4],
            [12, 1, 4]
        );
        let whole = StridedView::whole(&[2, 3, 4]);
        assert!(whole.reshaped(&[6, 4]).unwrap().is_identity());
        assert!(!transposed.is_identity());
        assert!(!whole.picked(0, 0).is_identity());
        let values: Vec<u32> = (0..24).collect();
        let permuted = split.permuted(&[3, 1, 0, 2]);
        assert_eq!(permuted.inverse().gather(&permuted.gather(&values)), values);
    }
}
