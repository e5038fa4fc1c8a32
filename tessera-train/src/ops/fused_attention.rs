//! Scaled dot-product attention, `softmax(c · Q·Kᵀ)·V` over the last two axes, as one node.
//! Both PyTorch exporters write it as a scaling `Mul` on each side, a batched `MatMul`, a
//! `Softmax` and a second `MatMul`; candle's backward pass then allocates, adds into and
//! keeps a gradient for each of the four intermediates of every head. Here the forward pass
//! keeps the attention weights for the backward pass, which gives the three gradients at once.

use std::sync::OnceLock;

use candle_core::{CpuStorage, CustomOp3, Device, Layout, Shape, Tensor, WithDType};

use super::fused_chain::record;
use super::fused_softmax::{softmax_gradient_into, softmax_into};
use super::linalg::{product_into, Operands, Sizes};
use super::single_value;
use crate::node::{Node, NodeResult};
use crate::storage::{run_kernel, run_kernel_on, Kernel, Real};
use crate::Result;

/// The fused operator's name in [`FUSED_DOMAIN`](super::fused_chain::FUSED_DOMAIN).
pub const ATTENTION: &str = "Attention";

/// Which of the scale factors (the inputs after Q, Kᵀ and V) divide instead of multiply: one
/// 0 or 1 per factor.
pub const DIVIDES_ATTRIBUTE: &str = "divides";

/// Attention on the node's inputs Q (`… × queries × depth`), Kᵀ (`… × depth × keys`) and V
/// (`… × keys × width`), scaled by the product of the single numbers after them.
pub fn attention(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Result<Vec<Tensor>> {
    let [Some(q), Some(k_t), Some(v), factors @ ..] = inputs else {
        return Err(node.error("attention needs Q, Kᵀ and V"));
    };
    let scalars = factors
        .iter()
        .all(|factor| factor.as_ref().is_some_and(|f| f.elem_count() == 1));
    let same_kind = [k_t, v]
        .iter()
        .all(|t| t.dtype() == q.dtype() && t.device().same_device(q.device()));
    let applies = scalars && same_kind && q.device().is_cpu() && q.dtype().is_float();
    if let Some(op) = Attention::of_shapes(q.dims(), k_t.dims(), v.dims()).filter(|_| applies) {
        let divides = node.ints(DIVIDES_ATTRIBUTE).unwrap_or_default();
        let mut scale = 1.0;
        for (index, factor) in factors.iter().flatten().enumerate() {
            let value = single_value(factor).at(node)?;
            scale = if divides.get(index) == Some(&1) {
                scale / value
            } else {
                scale * value
            };
        }
        let op = Attention { scale, ..op };
        let (q, k_t, v) = (
            q.contiguous().at(node)?,
            k_t.contiguous().at(node)?,
            v.contiguous().at(node)?,
        );
        return Ok(vec![q.apply_op3(&k_t, &v, op).at(node)?]);
    }
    // Recorded node by node where the kernel does not apply (batch axes broadcast, a scale
    // that is not one number, another device or type).
    record(node, inputs)
}

/// The attention of `heads` independent heads (the product of the leading axes).
#[derive(Clone, Debug)]
struct Attention {
    scale: f64,
    leading: Vec<usize>,
    heads: usize,
    queries: usize,
    depth: usize,
    keys: usize,
    width: usize,
    /// The forward pass's attention weights, every head's, for the backward pass.
    weights: OnceLock<Tensor>,
}

impl Attention {
    /// The sizes, if Q, Kᵀ and V have the same leading axes and agree on depth and keys.
    fn of_shapes(q: &[usize], k_t: &[usize], v: &[usize]) -> Option<Self> {
        let rank = q.len();
        if rank < 2 || k_t.len() != rank || v.len() != rank {
            return None;
        }
        let leading = &q[..rank - 2];
        let (queries, depth, keys, width) = (q[rank - 2], q[rank - 1], k_t[rank - 1], v[rank - 1]);
        let sizes = [queries, depth, keys, width];
        (k_t[..rank - 2] == *leading
            && v[..rank - 2] == *leading
            && sizes.iter().chain(leading).all(|&size| size > 0)
            && k_t[rank - 2] == depth
            && v[rank - 2] == keys)
            .then(|| Attention {
                scale: 1.0,
                leading: leading.to_vec(),
                heads: leading.iter().product(),
                queries,
                depth,
                keys,
                width,
                weights: OnceLock::new(),
            })
    }

    /// The output (the first `count` values), the weights after it kept for the backward pass.
    fn keep_weights<T: WithDType>(
        &self,
        mut values: Vec<T>,
        count: usize,
    ) -> candle_core::Result<Vec<T>> {
        let weights = values.split_off(count);
        let len = weights.len();
        // A second forward pass of the same operator would find the weights kept already;
        // candle runs each operator once.
        let _ = self
            .weights
            .set(Tensor::from_vec(weights, len, &Device::Cpu)?);
        Ok(values)
    }

    fn output_dims(&self) -> Vec<usize> {
        let mut dims = self.leading.clone();
        dims.extend([self.queries, self.width]);
        dims
    }

    /// One head's attention weights `softmax(c · q·kᵀ)` into `weights`, its scores into
    /// `scores` (both queries × keys).
    #[inline(always)]
    fn weights<T: Real>(
        &self,
        q: &[T],
        k_t: &[T],
        scores: &mut [T],
        weights: &mut [T],
    ) -> candle_core::Result<()> {
        let sizes = Sizes {
            rows: self.queries,
            inner: self.depth,
            columns: self.keys,
        };
        product_into(scores, q, k_t, sizes, Operands::Plain, self.scale())?;
        for (row, out) in scores.chunks(self.keys).zip(weights.chunks_mut(self.keys)) {
            softmax_into(row, out);
        }
        Ok(())
    }

    fn scale<T: Real>(&self) -> T {
        T::from(self.scale).unwrap_or_else(T::nan)
    }

    /// The gradients of Q, Kᵀ and V, one after the other in one buffer.
    #[inline(always)]
    fn backward<T: Real>(
        &self,
        q: &[T],
        k_t: &[T],
        v: &[T],
        grad: &[T],
        weights: &[T],
    ) -> candle_core::Result<Vec<T>> {
        let (t, d, s, e) = (self.queries, self.depth, self.keys, self.width);
        let sizes = |rows, inner, columns| Sizes {
            rows,
            inner,
            columns,
        };
        let heads = self.heads;
        let mut gradients = vec![T::zero(); heads * (t * d + d * s + s * e)];
        let (dq, rest) = gradients.split_at_mut(heads * t * d);
        let (dk_t, dv) = rest.split_at_mut(heads * d * s);
        let mut d_weights = vec![T::zero(); t * s];
        let mut d_scores = vec![T::zero(); t * s];
        let inputs = q
            .chunks_exact(t * d)
            .zip(k_t.chunks_exact(d * s))
            .zip(v.chunks_exact(s * e).zip(grad.chunks_exact(t * e)))
            .zip(weights.chunks_exact(t * s));
        let outputs = dq
            .chunks_exact_mut(t * d)
            .zip(dk_t.chunks_exact_mut(d * s))
            .zip(dv.chunks_exact_mut(s * e));
        let (one, scale) = (T::one(), self.scale());
        for ((((q, k_t), (v, grad)), weights), ((dq, dk_t), dv)) in inputs.zip(outputs) {
            product_into(
                dv,
                weights,
                grad,
                sizes(s, t, e),
                Operands::LeftTransposed,
                one,
            )?;
            let d_weights_sizes = sizes(t, e, s);
            product_into(
                &mut d_weights,
                grad,
                v,
                d_weights_sizes,
                Operands::RightTransposed,
                one,
            )?;
            let rows = weights.chunks(s).zip(d_weights.chunks(s));
            for ((row, d_row), out) in rows.zip(d_scores.chunks_mut(s)) {
                softmax_gradient_into(row, d_row, out);
            }
            product_into(
                dq,
                &d_scores,
                k_t,
                sizes(t, s, d),
                Operands::RightTransposed,
                scale,
            )?;
            product_into(
                dk_t,
                q,
                &d_scores,
                sizes(d, t, s),
                Operands::LeftTransposed,
                scale,
            )?;
        }
        Ok(gradients)
    }

    /// The gradients of Q, Kᵀ and V from the output's.
    fn gradients(
        &self,
        q: &Tensor,
        k_t: &Tensor,
        v: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (dq_len, dk_len, dv_len) = (q.elem_count(), k_t.elem_count(), v.elem_count());
        let gradient = AttentionGradient(self.clone());
        let grad = grad.contiguous()?;
        let weights = self.weights.get().ok_or_else(|| {
            candle_core::Error::Msg("attention's backward pass ran before its forward pass".into())
        })?;
        let all = run_kernel_on(
            &gradient,
            &[q, k_t, v, &grad, weights],
            dq_len + dk_len + dv_len,
        )?;
        Ok((
            Some(all.narrow(0, 0, dq_len)?.reshape(q.shape())?),
            Some(all.narrow(0, dq_len, dk_len)?.reshape(k_t.shape())?),
            Some(all.narrow(0, dq_len + dk_len, dv_len)?.reshape(v.shape())?),
        ))
    }
}

/// The backward pass: the gradients of Q, Kᵀ and V from theirs, the output's and the weights.
struct AttentionGradient(Attention);

impl Kernel for AttentionGradient {
    const NAME: &'static str = "attention's gradient";

    #[inline(always)]
    fn run<T: Real>(&self, values: &[&[T]]) -> candle_core::Result<Vec<T>> {
        let &[q, k_t, v, grad, weights] = values else {
            candle_core::bail!(
                "attention's gradient takes Q, Kᵀ, V, the output's gradient and the weights"
            );
        };
        self.0.backward(q, k_t, v, grad, weights)
    }
}

impl Kernel for Attention {
    const NAME: &'static str = "attention";

    #[inline(always)]
    fn run<T: Real>(&self, values: &[&[T]]) -> candle_core::Result<Vec<T>> {
        let &[q, k_t, v] = values else {
            candle_core::bail!("attention takes Q, Kᵀ and V");
        };
        let (t, d, s, e) = (self.queries, self.depth, self.keys, self.width);
        // The output, then every head's weights.
        let mut values = vec![T::zero(); self.heads * (t * e + t * s)];
        let (out, weights) = values.split_at_mut(self.heads * t * e);
        let mut scores = vec![T::zero(); t * s];
        let heads = q
            .chunks_exact(t * d)
            .zip(k_t.chunks_exact(d * s))
            .zip(v.chunks_exact(s * e));
        let sizes = Sizes {
            rows: t,
            inner: s,
            columns: e,
        };
        let outputs = out
            .chunks_exact_mut(t * e)
            .zip(weights.chunks_exact_mut(t * s));
        for (((q, k_t), v), (out, weights)) in heads.zip(outputs) {
            self.weights(q, k_t, &mut scores, weights)?;
            product_into(out, weights, v, sizes, Operands::Plain, T::one())?;
        }
        Ok(values)
    }
}

impl CustomOp3 for Attention {
    fn name(&self) -> &'static str {
        "attention"
    }

    fn cpu_fwd(
        &self,
        q: &CpuStorage,
        q_layout: &Layout,
        k_t: &CpuStorage,
        k_t_layout: &Layout,
        v: &CpuStorage,
        v_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let values = run_kernel(self, &[(q, q_layout), (k_t, k_t_layout), (v, v_layout)])?;
        let output = self.output_dims();
        let count = output.iter().product();
        let out = match values {
            CpuStorage::F32(values) => CpuStorage::F32(self.keep_weights(values, count)?),
            CpuStorage::F64(values) => CpuStorage::F64(self.keep_weights(values, count)?),
            _ => candle_core::bail!("attention gives float32 or float64 values"),
        };
        Ok((out, Shape::from(output)))
    }

    fn bwd(
        &self,
        q: &Tensor,
        k_t: &Tensor,
        v: &Tensor,
        _out: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        self.gradients(q, k_t, v, grad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::NEWEST_OPSET;
    use crate::ops::fused_chain::fused_node;
    use crate::ops::{largest_difference, weighted_gradients};
    use candle_core::{Device, Var};
    use tessera_onnx::proto::attribute_proto::AttributeType;
    use tessera_onnx::proto::{AttributeProto, NodeProto};

    fn step(op: &str, inputs: &[&str], output: &str) -> NodeProto {
        NodeProto {
            op_type: op.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            attribute: (op == "Softmax")
                .then(|| AttributeProto {
                    name: "axis".into(),
                    r#type: AttributeType::Int as i32,
                    i: -1,
                    ..AttributeProto::default()
                })
                .into_iter()
                .collect(),
            ..NodeProto::default()
        }
    }

    fn values(dims: &[usize], seed: f32, device: &Device) -> Var {
        let count = dims.iter().product::<usize>();
        let values: Vec<f32> = (0..count).map(|i| (i as f32 * 0.71 + seed).sin()).collect();
        Var::from_vec(values, dims, device).unwrap()
    }

    /// The fused attention against the same nodes recorded one by one: each side and the
    /// scores scaled, heads over two leading axes; and with a factor that is not one number,
    /// which the fused node runs as its nodes.
    #[test]
    fn attention_computes_and_differentiates_as_its_nodes() {
        let device = Device::Cpu;
        let (q, k_t, v) = (
            values(&[2, 3, 4, 5], 0.1, &device),
            values(&[2, 3, 5, 6], 0.7, &device),
            values(&[2, 3, 6, 7], 1.3, &device),
        );
        let chain = vec![
            step("Mul", &["q", "a"], "qa"),
            step("Mul", &["b", "kt"], "kb"),
            step("MatMul", &["qa", "kb"], "scores"),
            step("Div", &["scores", "c"], "scaled"),
            step("Softmax", &["scaled"], "weights"),
            step("MatMul", &["weights", "v"], "out"),
        ];
        let divides = AttributeProto {
            name: DIVIDES_ATTRIBUTE.into(),
            r#type: AttributeType::Ints as i32,
            ints: vec![1, 0, 0],
            ..AttributeProto::default()
        };
        let inputs = ["q", "kt", "v", "c", "a", "b"];
        let proto = fused_node(ATTENTION, &inputs, "out", chain, vec![divides]);
        let node = Node {
            proto: &proto,
            device: &device,
            opset: NEWEST_OPSET,
        };
        let number = |value: f32| Tensor::new(value, &device).unwrap();
        for a in [
            number(0.6),
            Tensor::new(&[0.6f32, 0.5, 0.4, 0.3, 0.2], &device).unwrap(),
        ] {
            let inputs = [
                Some(q.as_tensor().clone()),
                Some(k_t.as_tensor().clone()),
                Some(v.as_tensor().clone()),
                Some(number(1.7)),
                Some(a),
                Some(number(0.8)),
            ];
            let fused = attention(&node, &inputs).unwrap().remove(0);
            let recorded = record(&node, &inputs).unwrap().remove(0);
            assert_eq!(fused.dims(), [2, 3, 4, 7]);
            if inputs[4].as_ref().unwrap().elem_count() == 1 {
                // The kernel itself ran.
                let kernel = Attention {
                    scale: 0.6 * 0.8 / 1.7,
                    ..Attention::of_shapes(q.dims(), k_t.dims(), v.dims()).unwrap()
                };
                let direct = q.as_tensor().apply_op3(&k_t, &v, kernel).unwrap();
                assert!(largest_difference(&fused, &direct) <= 1e-7);
            }
            assert!(largest_difference(&fused, &recorded) <= 1e-6);
            let gradients = |y: &Tensor| {
                weighted_gradients(y, &[q.as_tensor(), k_t.as_tensor(), v.as_tensor()])
            };
            for (fused, recorded) in gradients(&fused).iter().zip(&gradients(&recorded)) {
                assert!(largest_difference(fused, recorded) <= 1e-5);
            }
        }
    }

    /// Batch axes that differ (broadcast) or depths that disagree are not the kernel's.
    #[test]
    fn only_matching_shapes_take_the_kernel() {
        let attention = Attention::of_shapes(&[2, 4, 5], &[2, 5, 6], &[2, 6, 7]).unwrap();
        assert_eq!(
            (attention.heads, attention.output_dims()),
            (2, vec![2, 4, 7])
        );
        assert!(Attention::of_shapes(&[2, 4, 5], &[1, 5, 6], &[2, 6, 7]).is_none());
        assert!(Attention::of_shapes(&[2, 4, 5], &[2, 4, 6], &[2, 6, 7]).is_none());
        assert!(Attention::of_shapes(&[4, 5], &[5, 6], &[6, 7]).is_some());
        assert!(Attention::of_shapes(&[5], &[5], &[5]).is_none());
    }
}
