//! Supervised training of an ONNX model on the trainable graph: cross-entropy against integer
//! labels, mini-batches in a seeded shuffled order, any optimiser. How a user trains or
//! calibrates a model without Python, and how tests get a trained model.

use std::time::Instant;

use candle_core::{DType, Tensor, D};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use tessera_onnx::OnnxModel;
use tessera_tensor::dataset::Dataset;

use crate::functional::log_softmax_last;
use crate::{
    Error, Optimizer, OptimizerOptions, Result, Trainable, TrainableGraph, TrainingDevice,
};

/// How to train.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// Passes over the training set.
    pub epochs: usize,
    /// Samples per step.
    pub batch_size: usize,
    /// The optimiser.
    pub optimizer: OptimizerOptions,
    /// Seed of the shuffling order; the same seed gives the same result on the CPU.
    pub seed: u64,
    /// Which initializers learn.
    pub trainable: Trainable,
    /// Where the model trains.
    pub device: TrainingDevice,
}

/// One epoch's figures.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EpochReport {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean training loss over the epoch's steps.
    pub loss: f64,
    /// Accuracy on the validation set after the epoch, if one was given.
    pub val_accuracy: Option<f64>,
}

/// What training did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TrainReport {
    /// Every epoch.
    pub epochs: Vec<EpochReport>,
    /// Optimiser steps taken.
    pub steps: usize,
    /// Number of learnable initializers.
    pub variables: usize,
    /// Learnable parameters (elements).
    pub parameters: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// What a candle error of a training step is reported as.
const TRAINING_STEP: &str = "training step failed";

fn labels_of(dataset: &Dataset) -> Result<&ndarray::Array1<i64>> {
    dataset.labels.as_ref().ok_or_else(|| {
        Error::Data(tessera_tensor::Error::Dataset {
            path: dataset.source.clone(),
            message: "training needs labels (--labels)".into(),
        })
    })
}

/// Top-1 accuracy of `graph` on `dataset` (which must have labels).
pub fn accuracy(
    graph: &TrainableGraph,
    output: &str,
    dataset: &Dataset,
    batch_size: usize,
) -> Result<f64> {
    let labels = labels_of(dataset)?;
    let mut correct = 0usize;
    for start in (0..dataset.len()).step_by(batch_size.max(1)) {
        let end = (start + batch_size).min(dataset.len());
        let batch = dataset.inputs.slice_axis(0, start..end);
        let logits = graph.forward(&[batch], &[output.to_string()])?.remove(0);
        let predicted = logits
            .argmax(D::Minus1)
            .and_then(|p| p.to_dtype(DType::I64))
            .and_then(|p| p.to_vec1::<i64>())
            .map_err(Error::compute(TRAINING_STEP))?;
        correct += predicted
            .iter()
            .zip(labels.slice(ndarray::s![start..end]))
            .filter(|(p, l)| p == l)
            .count();
    }
    Ok(correct as f64 / dataset.len() as f64)
}

/// Trains `model` on `train` (inputs and labels) and returns the trained model with a report.
/// `progress` is told the epoch just finished.
pub fn train_supervised(
    model: &OnnxModel,
    train: &Dataset,
    validation: Option<&Dataset>,
    options: &TrainOptions,
    progress: &mut dyn FnMut(&EpochReport),
) -> Result<(OnnxModel, TrainReport)> {
    let started = Instant::now();
    let labels = labels_of(train)?;
    let output = model
        .outputs()
        .first()
        .map(|spec| spec.name.clone())
        .ok_or_else(|| model.error("the model declares no output"))?;
    if options.batch_size == 0 || options.epochs == 0 {
        return Err(Error::InvalidOption(
            "epochs and batch size must be at least 1".into(),
        ));
    }
    let graph = TrainableGraph::new(model, &options.trainable, options.device.open()?)?;
    let variables: Vec<_> = graph
        .variables()
        .iter()
        .map(|(_, var)| var.clone())
        .collect();
    let parameters = variables
        .iter()
        .map(|var| var.as_tensor().elem_count())
        .sum();
    let mut optimizer = Optimizer::new(variables.clone(), options.optimizer);
    let mut rng = rand::rngs::StdRng::seed_from_u64(options.seed);
    let mut order: Vec<usize> = (0..train.len()).collect();
    let mut epochs = Vec::with_capacity(options.epochs);
    let mut steps = 0;
    for epoch in 1..=options.epochs {
        order.shuffle(&mut rng);
        let mut losses = Vec::new();
        for batch in order.chunks(options.batch_size) {
            let inputs = train.inputs.select_rows(batch);
            let targets: Vec<i64> = batch.iter().map(|&row| labels[row]).collect();
            let (mut values, statistics) =
                graph.forward_training(&[inputs], std::slice::from_ref(&output))?;
            graph.update_statistics(&[statistics])?;
            let logits = values.remove(0);
            let loss = cross_entropy(&logits, &targets).map_err(Error::compute(TRAINING_STEP))?;
            losses.push(f64::from(
                loss.to_scalar::<f32>()
                    .map_err(Error::compute(TRAINING_STEP))?,
            ));
            let gradients = loss.backward().map_err(Error::compute(TRAINING_STEP))?;
            optimizer.step(&gradients)?;
            steps += 1;
        }
        let report = EpochReport {
            epoch,
            loss: losses.iter().sum::<f64>() / losses.len() as f64,
            val_accuracy: validation
                .map(|dataset| accuracy(&graph, &output, dataset, options.batch_size.max(64)))
                .transpose()?,
        };
        progress(&report);
        epochs.push(report);
    }
    let trained = graph.trained_model()?;
    Ok((
        trained,
        TrainReport {
            epochs,
            steps,
            variables: variables.len(),
            parameters,
            seconds: started.elapsed().as_secs_f64(),
        },
    ))
}

/// Mean cross-entropy of `logits` `[B, C]` against class indices.
pub fn cross_entropy(logits: &Tensor, targets: &[i64]) -> candle_core::Result<Tensor> {
    let log_probs = log_softmax_last(logits)?;
    let indices = Tensor::from_vec(targets.to_vec(), (targets.len(), 1), logits.device())?;
    log_probs.gather(&indices, D::Minus1)?.mean_all()?.neg()
}
