//! The Universal Hub Space: one shared width (2048 by default) into which each model's pooled
//! representation is encoded, so that the two models' vectors for the same input line up.
//!
//! Each side is standardised (per-feature mean and spread of its training features) and encoded
//! by a linear map into the hub. The transmitter's map is fixed (seeded), so its hub vectors
//! can be computed — and shipped in a token — without the receiver ([`HubEncoder`]). The
//! receiver's map is trained to meet them: a symmetric InfoNCE loss (CRD, Tian et al. 2020)
//! makes the two normalised hub vectors of the same input the nearest pair within a batch,
//! while a decoder and a reconstruction loss keep the receiver's side decodable (its
//! round-trip error is reported) ([`train_hub`]).

mod contrastive;
mod linear;

use std::time::Instant;

use candle_core::{Device, Tensor, Var};
use ndarray::{Array2, ArrayView2};
use rand::rngs::ChaCha8Rng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::{Error, Result};
use tessera_train::{from_matrix, to_matrix, Optimizer, OptimizerKind, OptimizerOptions, Schedule};

pub use contrastive::info_nce;
use linear::Linear;

/// How the hub is trained.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HubOptions {
    /// Width of the hub space.
    pub dim: usize,
    /// Passes over the training features.
    pub epochs: usize,
    /// Pairs per step; also the group size retrieval accuracy is measured in.
    pub batch_size: usize,
    /// Adam's learning rate.
    pub learning_rate: f64,
    /// InfoNCE temperature τ: similarities are divided by it before the softmax.
    pub temperature: f64,
    /// Weight of the reconstruction loss next to the alignment loss.
    pub reconstruction_weight: f64,
    /// Seed of the encoders' initial weights and of the batch order.
    pub seed: u64,
}

impl Default for HubOptions {
    fn default() -> Self {
        Self {
            dim: 2048,
            epochs: 5,
            batch_size: 256,
            learning_rate: 2e-3,
            temperature: 0.1,
            reconstruction_weight: 1.0,
            seed: 0,
        }
    }
}

/// A model's fixed way into the hub: per-feature standardisation (fitted on its training
/// features), then a seeded linear map into the hub's width. The transmitter's side is one of
/// these, never trained, so that it can be computed without seeing the receiver: emitting
/// knowledge needs only the transmitter.
pub struct HubEncoder {
    mean: Tensor,
    scale: Tensor,
    map: Linear,
    device: Device,
}

/// The receiver's way into and out of the hub: an encoder trained to meet the transmitter's
/// fixed hub vectors, and a decoder that keeps its side decodable.
pub struct HubSide {
    encoder: HubEncoder,
    decoder: Linear,
    temperature: f64,
}

/// What training the hub did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct HubReport {
    /// Optimiser steps taken.
    pub steps: usize,
    /// Mean alignment (InfoNCE) loss over the last epoch.
    pub alignment_loss: f64,
    /// Mean reconstruction loss over the last epoch.
    pub reconstruction_loss: f64,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// What a candle error of the hub is reported as.
pub(crate) const HUB_COMPUTATION: &str = "hub computation failed";

/// Mixed into the hub seed for the receiver's side, so the two sides start from different maps.
const RECEIVER_SEED: u64 = 0x5ec0_4d51_de00_0001;

/// Rows of `tensor` scaled to unit L2 norm.
pub fn normalise_rows(tensor: &Tensor) -> candle_core::Result<Tensor> {
    let norms = tensor
        .sqr()?
        .sum_keepdim(1)?
        .sqrt()?
        .clamp(1e-12, f64::MAX)?;
    tensor.broadcast_div(&norms)
}

fn check_features(features: ArrayView2<f32>, side: &str) -> Result<()> {
    if features.nrows() < 2 || features.ncols() == 0 {
        return Err(Error::Shape(format!(
            "the hub needs at least 2 samples of a non-empty representation; the {side} gave {:?}",
            features.dim()
        )));
    }
    if features.iter().any(|value| !value.is_finite()) {
        return Err(Error::Diverged(format!(
            "the {side}'s representation contains NaN or infinite values; check the model and \
             its inputs"
        )));
    }
    Ok(())
}

fn check_options(options: &HubOptions) -> Result<()> {
    if options.dim == 0 || options.batch_size < 2 {
        return Err(Error::InvalidOption(format!(
            "the hub needs a width of at least 1 and batches of at least 2 (got width {}, batch {})",
            options.dim, options.batch_size
        )));
    }
    Ok(())
}

impl HubEncoder {
    /// Fits the standardisation to `features` and draws the map into `dim` from `rng`.
    fn fit(
        features: ArrayView2<f32>,
        dim: usize,
        rng: &mut ChaCha8Rng,
        device: &Device,
    ) -> Result<Self> {
        let width = features.ncols();
        let mean = features
            .mean_axis(ndarray::Axis(0))
            .ok_or_else(|| Error::Shape("no samples".into()))?;
        let spread = features
            .std_axis(ndarray::Axis(0), 0.0)
            .mapv(|s| s.max(1e-6));
        let row = |values: ndarray::Array1<f32>| {
            Tensor::from_vec(values.to_vec(), (1, width), device)
                .map_err(Error::compute(HUB_COMPUTATION))
        };
        Ok(Self {
            mean: row(mean)?,
            scale: row(spread)?,
            map: Linear::new(width, dim, rng, device)?,
            device: device.clone(),
        })
    }

    /// The transmitter's fixed side of a hub `options` describe, fitted to its training
    /// `features` `[N, width]`; the same features and options give the same encoder.
    pub fn transmitter(
        features: ArrayView2<f32>,
        options: &HubOptions,
        device: &Device,
    ) -> Result<Self> {
        check_features(features, "transmitter")?;
        check_options(options)?;
        Self::fit(
            features,
            options.dim,
            &mut ChaCha8Rng::seed_from_u64(options.seed),
            device,
        )
    }

    /// The features standardised as this encoder was fitted.
    fn standardise(&self, features: &Tensor) -> candle_core::Result<Tensor> {
        features
            .broadcast_sub(&self.mean)?
            .broadcast_div(&self.scale)
    }

    /// Hub vectors (before normalisation) of `features` `[B, width]`; differentiable.
    pub fn encode(&self, features: &Tensor) -> candle_core::Result<Tensor> {
        self.map.forward(&self.standardise(features)?)
    }

    /// Unit-norm hub vectors of `features`, the space in which the two sides are aligned.
    pub fn embed(&self, features: &Tensor) -> candle_core::Result<Tensor> {
        normalise_rows(&self.encode(features)?)
    }

    /// [`embed`](Self::embed) on an array, for measurement and packaging.
    pub fn embed_array(&self, features: ArrayView2<f32>) -> Result<Array2<f32>> {
        let embedded = self
            .embed(&from_matrix(features, &self.device)?)
            .map_err(Error::compute(HUB_COMPUTATION))?;
        Ok(to_matrix(&embedded)?)
    }
}

impl HubSide {
    /// Hub vectors (before normalisation) of `features` `[B, width]`; differentiable.
    pub fn encode(&self, features: &Tensor) -> candle_core::Result<Tensor> {
        self.encoder.encode(features)
    }

    /// Unit-norm hub vectors of `features` as an array.
    pub fn embed_array(&self, features: ArrayView2<f32>) -> Result<Array2<f32>> {
        self.encoder.embed_array(features)
    }

    /// Relative error of encoding then decoding `features`, in the standardised space:
    /// ‖x − dec(enc(x))‖ / ‖x‖ over all rows.
    pub fn round_trip_error(&self, features: ArrayView2<f32>) -> Result<f64> {
        let failed = Error::compute(HUB_COMPUTATION);
        let standard = self
            .encoder
            .standardise(&from_matrix(features, &self.encoder.device)?)
            .map_err(&failed)?;
        let decoded = self
            .decoder
            .forward(&self.encoder.map.forward(&standard).map_err(&failed)?)
            .map_err(&failed)?;
        let original = to_matrix(&standard)?;
        Ok(tessera_metrics::relative_round_trip_error(
            original.view(),
            to_matrix(&decoded)?.view(),
        )?)
    }

    /// The InfoNCE temperature the hub was aligned at.
    pub fn temperature(&self) -> f64 {
        self.temperature
    }

    /// The learnable weights of the encoder (the decoder stays as trained).
    pub fn encoder_variables(&self) -> Vec<Var> {
        self.encoder.map.variables()
    }

    fn variables(&self) -> Vec<Var> {
        let mut all = self.encoder.map.variables();
        all.extend(self.decoder.variables());
        all
    }

    fn reconstruction_loss(&self, features: &Tensor, hub: &Tensor) -> candle_core::Result<Tensor> {
        let standard = self.encoder.standardise(features)?;
        (self.decoder.forward(hub)? - standard)?.sqr()?.mean_all()
    }
}

/// Trains the receiver's side of the hub on paired rows: row i of `transmitter_hub` (the
/// transmitter's unit-norm hub vectors, fixed) and of `receiver` (its pooled features) come
/// from the same input. `progress` is told the epoch just finished.
pub fn train_hub(
    transmitter_hub: ArrayView2<f32>,
    receiver: ArrayView2<f32>,
    options: &HubOptions,
    device: &Device,
    progress: &mut dyn FnMut(usize) -> Result<()>,
) -> Result<(HubSide, HubReport)> {
    let started = Instant::now();
    check_features(transmitter_hub, "transmitter")?;
    check_features(receiver, "receiver")?;
    check_options(options)?;
    if transmitter_hub.nrows() != receiver.nrows() {
        return Err(Error::Shape(format!(
            "the hub pairs samples: the transmitter gave {} rows, the receiver {}",
            transmitter_hub.nrows(),
            receiver.nrows()
        )));
    }
    if transmitter_hub.ncols() != options.dim {
        return Err(Error::Shape(format!(
            "the transmitter's hub vectors are {} wide, but the hub is {} wide",
            transmitter_hub.ncols(),
            options.dim
        )));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed ^ RECEIVER_SEED);
    let side = HubSide {
        encoder: HubEncoder::fit(receiver, options.dim, &mut rng, device)?,
        decoder: Linear::new(options.dim, receiver.ncols(), &mut rng, device)?,
        temperature: options.temperature,
    };
    let mut optimizer = Optimizer::new(
        side.variables(),
        OptimizerOptions {
            kind: OptimizerKind::ADAM,
            learning_rate: options.learning_rate,
            schedule: Schedule::Constant,
            clip_norm: None,
        },
    );
    let tx_all = from_matrix(transmitter_hub, device)?;
    let rx_all = from_matrix(receiver, device)?;
    let mut order: Vec<u32> = (0..receiver.nrows() as u32).collect();
    let mut report = HubReport {
        steps: 0,
        alignment_loss: f64::NAN,
        reconstruction_loss: f64::NAN,
        seconds: 0.0,
    };
    for epoch in 1..=options.epochs {
        order.shuffle(&mut rng);
        let (mut alignment_sum, mut reconstruction_sum, mut batches) = (0.0, 0.0, 0);
        // A trailing batch of one sample has no negatives; it is skipped.
        for batch in order.chunks(options.batch_size).filter(|b| b.len() > 1) {
            let index = Tensor::from_slice(batch, batch.len(), device)
                .map_err(Error::compute(HUB_COMPUTATION))?;
            let step = || -> candle_core::Result<(Tensor, f64, f64)> {
                let tx_hub = tx_all.index_select(&index, 0)?;
                let rx = rx_all.index_select(&index, 0)?;
                let rx_hub = side.encode(&rx)?;
                let alignment = info_nce(&tx_hub, &normalise_rows(&rx_hub)?, options.temperature)?;
                let reconstruction = side.reconstruction_loss(&rx, &rx_hub)?;
                let total = (&alignment + (&reconstruction * options.reconstruction_weight)?)?;
                Ok((
                    total,
                    f64::from(alignment.to_scalar::<f32>()?),
                    f64::from(reconstruction.to_scalar::<f32>()?),
                ))
            };
            let (total, alignment, reconstruction) =
                step().map_err(Error::compute(HUB_COMPUTATION))?;
            optimizer.step(&total.backward().map_err(Error::compute(HUB_COMPUTATION))?)?;
            alignment_sum += alignment;
            reconstruction_sum += reconstruction;
            batches += 1;
            report.steps += 1;
        }
        if batches > 0 {
            report.alignment_loss = alignment_sum / f64::from(batches);
            report.reconstruction_loss = reconstruction_sum / f64::from(batches);
        }
        progress(epoch)?;
    }
    if !report.alignment_loss.is_finite() && options.epochs > 0 {
        return Err(Error::Diverged(
            "hub training diverged (loss is not finite); lower the hub learning rate".into(),
        ));
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok((side, report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;
    use rand_distr::{Distribution, StandardNormal};

    fn random(rows: usize, columns: usize, seed: u64) -> Array2<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        Array2::from_shape_fn((rows, columns), |_| StandardNormal.sample(&mut rng))
    }

    /// The transmitter's fixed hub vectors of `tx`, and the receiver's side trained on `rx`.
    fn align(
        tx: &Array2<f32>,
        rx: &Array2<f32>,
        options: &HubOptions,
    ) -> (Array2<f32>, HubSide, HubReport) {
        let transmitter = HubEncoder::transmitter(tx.view(), options, &Device::Cpu).unwrap();
        let tx_hub = transmitter.embed_array(tx.view()).unwrap();
        let (hub, report) = train_hub(tx_hub.view(), rx.view(), options, &Device::Cpu, &mut |_| {
            Ok(())
        })
        .unwrap();
        (tx_hub, hub, report)
    }

    #[test]
    fn aligns_two_views_of_the_same_samples() {
        // The receiver sees a rotated, rescaled, noisy projection of the transmitter's features.
        let tx = random(256, 12, 1);
        let mixing = random(12, 20, 2);
        let rx = tx.dot(&mixing) + random(256, 20, 3) * 0.05;
        let options = HubOptions {
            dim: 32,
            epochs: 60,
            batch_size: 64,
            ..HubOptions::default()
        };
        let (tx_hub, hub, report) = align(&tx, &rx, &options);
        let rx_hub = hub.embed_array(rx.view()).unwrap();
        let retrieval =
            tessera_metrics::retrieval_accuracy(rx_hub.view(), tx_hub.view(), 64).unwrap();
        assert!(retrieval > 0.9, "retrieval {retrieval}, report {report:?}");
        assert!(hub.round_trip_error(rx.view()).unwrap() < 0.5);
        // Unrelated features cannot be aligned on held-out data.
        let unrelated = random(256, 20, 4);
        let unrelated_hub = hub.embed_array(unrelated.view()).unwrap();
        let chance =
            tessera_metrics::retrieval_accuracy(unrelated_hub.view(), tx_hub.view(), 64).unwrap();
        assert!(chance < 0.2, "unrelated retrieval {chance}");
    }

    #[test]
    fn same_seed_same_hub() {
        let tx = random(64, 6, 5);
        let rx = random(64, 9, 6);
        let options = HubOptions {
            dim: 16,
            epochs: 3,
            batch_size: 16,
            ..HubOptions::default()
        };
        let embed = || {
            let (_, hub, _) = align(&tx, &rx, &options);
            hub.embed_array(rx.view()).unwrap()
        };
        assert_eq!(embed(), embed());
    }

    #[test]
    fn refuses_bad_features() {
        let good = random(8, 4, 7);
        let mut bad = good.clone();
        bad[[3, 1]] = f32::NAN;
        let options = HubOptions::default();
        let message = train_hub(good.view(), bad.view(), &options, &Device::Cpu, &mut |_| {
            Ok(())
        })
        .err()
        .unwrap()
        .to_string();
        assert!(message.contains("NaN"), "{message}");
        let short = random(5, 4, 8);
        assert!(train_hub(
            good.view(),
            short.view(),
            &options,
            &Device::Cpu,
            &mut |_| Ok(())
        )
        .is_err());
    }
}
