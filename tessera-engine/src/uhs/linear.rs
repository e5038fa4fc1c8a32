//! A learnable affine map `x·W + b` with PyTorch's default initialisation (uniform in
//! ±1/√fan_in), drawn from a seeded generator so a hub is reproducible.

use candle_core::{Device, Tensor, Var};
use rand::rngs::ChaCha8Rng;
use rand::RngExt;

use super::HUB_COMPUTATION;
use crate::{Error, Result};

pub(super) struct Linear {
    weight: Var,
    bias: Var,
}

impl Linear {
    pub(super) fn new(
        inputs: usize,
        outputs: usize,
        rng: &mut ChaCha8Rng,
        device: &Device,
    ) -> Result<Self> {
        let bound = 1.0 / (inputs as f32).sqrt();
        let mut draw = |count: usize| -> Vec<f32> {
            (0..count)
                .map(|_| rng.random_range(-bound..bound))
                .collect()
        };
        let weight = Tensor::from_vec(draw(inputs * outputs), (inputs, outputs), device);
        let bias = Tensor::from_vec(draw(outputs), (1, outputs), device);
        let variables = || -> candle_core::Result<Self> {
            Ok(Self {
                weight: Var::from_tensor(&weight?)?,
                bias: Var::from_tensor(&bias?)?,
            })
        };
        variables().map_err(Error::compute(HUB_COMPUTATION))
    }

    pub(super) fn forward(&self, input: &Tensor) -> candle_core::Result<Tensor> {
        input
            .matmul(self.weight.as_tensor())?
            .broadcast_add(self.bias.as_tensor())
    }

    pub(super) fn variables(&self) -> Vec<Var> {
        vec![self.weight.clone(), self.bias.clone()]
    }
}
