//! Architecture adapters: recognise a family of networks and say where its knowledge lives.

use serde::{Deserialize, Serialize};

use crate::graph::GraphSummary;

/// How a tap tensor's dimensions are laid out.
///
/// New layouts may be added in a minor version: match with a wildcard arm. A plan using a layout
/// the host does not know is reported as unreadable, so a plugin that uses a newer layout needs a
/// host of at least the minor version that added it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TapLayout {
    /// `[B, D]`: one feature vector per sample.
    BatchFeature,
    /// `[B, T, D]`: a sequence of feature vectors (transformers, batch-first RNNs, MLP stems).
    /// The default.
    #[default]
    BatchTimeFeature,
    /// `[B, D, T]`: channels first (1-D convolutions).
    BatchFeatureTime,
    /// `[T, directions, B, H]`: the first output of an ONNX LSTM/GRU/RNN node; features are the
    /// directions' hidden states side by side (`directions × H`).
    OnnxRecurrent,
    /// `[B, C, H, W]`: channels first over two spatial axes (2-D convolutions); pooling
    /// reduces the `H × W` positions. New in ABI 1.2.
    BatchFeatureHeightWidth,
}

impl TapLayout {
    /// The rank a tensor of this layout has.
    pub const fn rank(self) -> usize {
        match self {
            TapLayout::BatchFeature => 2,
            TapLayout::BatchTimeFeature | TapLayout::BatchFeatureTime => 3,
            TapLayout::OnnxRecurrent | TapLayout::BatchFeatureHeightWidth => 4,
        }
    }

    /// The axis that holds the batch.
    pub const fn batch_axis(self) -> usize {
        match self {
            TapLayout::OnnxRecurrent => 2,
            _ => 0,
        }
    }

    /// The width of one pooled feature vector, given the tensor's shape; `None` when the shape
    /// has the wrong rank for this layout.
    pub fn feature_width(self, shape: &[u64]) -> Option<u64> {
        if shape.len() != self.rank() {
            return None;
        }
        Some(match self {
            TapLayout::BatchFeature | TapLayout::BatchTimeFeature => shape[shape.len() - 1],
            TapLayout::BatchFeatureTime | TapLayout::BatchFeatureHeightWidth => shape[1],
            TapLayout::OnnxRecurrent => shape[1] * shape[3],
        })
    }
}

/// How the sequence axis of a tap is reduced to one vector per sample.
///
/// New poolings may be added in a minor version: match with a wildcard arm.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Pooling {
    /// Average over the sequence (the zoo's families all pool this way). The default.
    #[default]
    Mean,
    /// The last position.
    Last,
    /// The first position (e.g. a class token).
    First,
    /// The element-wise maximum over the sequence.
    Max,
    /// No sequence axis: the tap already is `[B, D]`.
    None,
}

/// One tensor to read the network's representation from. Built with [`TapPoint::new`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct TapPoint {
    /// The tensor's name in the graph.
    pub tensor: String,
    /// How its dimensions are laid out.
    pub layout: TapLayout,
    /// How it is reduced to `[B, width]`.
    pub pooling: Pooling,
}

impl TapPoint {
    /// The tap on `tensor`, laid out as `layout` and reduced with `pooling`.
    pub fn new(tensor: impl Into<String>, layout: TapLayout, pooling: Pooling) -> Self {
        Self {
            tensor: tensor.into(),
            layout,
            pooling,
        }
    }
}

/// What an adapter says about a graph it recognises. Built with [`AdapterPlan::new`], then
/// [`with_trainable`](AdapterPlan::with_trainable) and [`with_frozen`](AdapterPlan::with_frozen).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct AdapterPlan {
    /// How sure the adapter is, from 0 (not at all) to 1 (certain). The host picks the highest.
    pub score: f32,
    /// The architecture family recognised, e.g. `transformer`.
    pub family: String,
    /// The model width: every tap pools to `[B, width]`.
    pub width: u64,
    /// Tap points in depth order (the last is the deepest representation).
    pub taps: Vec<TapPoint>,
    /// Initializers fine-tuning may change; empty means every floating-point initializer.
    pub trainable: Vec<String>,
    /// Initializers fine-tuning must keep (e.g. embeddings), applied after `trainable`.
    pub frozen: Vec<String>,
    /// What a quantisation-aware transfer (ModeAQ) may quantise in this family.
    pub quantisation: QuantisationChoices,
}

/// What an adapter lets a quantisation-aware transfer quantise. The host quantises the weights
/// of every `MatMul`, `Gemm` and `Conv` that reads a stored weight (and, at INT8, the
/// activations they read and a `Conv` writes), the weights of `LSTM`/`GRU` nodes, and lookup
/// tables; these choices keep parts of a family in floating point where quantising them costs
/// more than it saves. [`Default`] is the host's recommendation for a family it knows nothing about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct QuantisationChoices {
    /// Nodes, by name, that stay floating-point: neither their weights nor the activations
    /// they read are quantised.
    pub keep_float: Vec<String>,
    /// Store lookup tables read by `Gather` (token and position embeddings) quantised,
    /// weight-only, one scale per row. Default: yes.
    pub embeddings: bool,
    /// Quantise the first quantisable layer (the one nearest the input). Default: yes.
    pub first_layer: bool,
    /// Quantise the last quantisable layer (usually the classifier head). Default: yes.
    pub last_layer: bool,
}

impl Default for QuantisationChoices {
    fn default() -> Self {
        Self {
            keep_float: Vec::new(),
            embeddings: true,
            first_layer: true,
            last_layer: true,
        }
    }
}

impl QuantisationChoices {
    /// The choices with `nodes` kept floating-point.
    pub fn with_keep_float(mut self, nodes: Vec<String>) -> Self {
        self.keep_float = nodes;
        self
    }

    /// The choices with lookup tables quantised (`true`) or kept floating-point.
    pub fn with_embeddings(mut self, quantised: bool) -> Self {
        self.embeddings = quantised;
        self
    }

    /// The choices with the first and the last quantisable layer quantised or not.
    pub fn with_ends(mut self, first_layer: bool, last_layer: bool) -> Self {
        self.first_layer = first_layer;
        self.last_layer = last_layer;
        self
    }
}

impl AdapterPlan {
    /// A plan that lets fine-tuning change every floating-point initializer, embedding tables
    /// included: the choice the bundled adapters make. Restrict it with
    /// [`with_trainable`](Self::with_trainable) or [`with_frozen`](Self::with_frozen).
    pub fn new(family: impl Into<String>, score: f32, width: u64, taps: Vec<TapPoint>) -> Self {
        Self {
            score,
            family: family.into(),
            width,
            taps,
            trainable: Vec::new(),
            frozen: Vec::new(),
            quantisation: QuantisationChoices::default(),
        }
    }

    /// The plan with `quantisation` as what a quantisation-aware transfer may quantise.
    pub fn with_quantisation(mut self, quantisation: QuantisationChoices) -> Self {
        self.quantisation = quantisation;
        self
    }

    /// The plan with `trainable` as the only initializers fine-tuning may change (empty: every
    /// floating-point initializer).
    pub fn with_trainable(mut self, trainable: Vec<String>) -> Self {
        self.trainable = trainable;
        self
    }

    /// The plan with `frozen` as the initializers fine-tuning must keep, applied after
    /// `trainable`.
    pub fn with_frozen(mut self, frozen: Vec<String>) -> Self {
        self.frozen = frozen;
        self
    }
}

/// Recognises one architecture family.
///
/// Implementations must be cheap and side-effect free: the host asks every adapter about every
/// model and picks the best score.
pub trait ArchitectureAdapter: Send + Sync {
    /// A short unique name, e.g. `transformer`.
    fn name(&self) -> &str;

    /// The plan for `graph` if this adapter recognises it, `Ok(None)` if not, or an error
    /// explaining why a graph that looks like its family cannot be handled.
    fn analyse(&self, graph: &GraphSummary) -> Result<Option<AdapterPlan>, String>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_widths_follow_the_layout() {
        assert_eq!(
            TapLayout::BatchTimeFeature.feature_width(&[1, 16, 64]),
            Some(64)
        );
        assert_eq!(
            TapLayout::BatchFeatureTime.feature_width(&[1, 64, 16]),
            Some(64)
        );
        assert_eq!(
            TapLayout::OnnxRecurrent.feature_width(&[16, 2, 1, 32]),
            Some(64)
        );
        assert_eq!(TapLayout::BatchFeature.feature_width(&[1, 128]), Some(128));
        assert_eq!(TapLayout::BatchFeature.feature_width(&[1, 16, 64]), None);
        assert_eq!(TapLayout::OnnxRecurrent.batch_axis(), 2);
    }

    #[test]
    fn builders_fill_every_field() {
        let tap = TapPoint::new("y", TapLayout::OnnxRecurrent, Pooling::Last);
        let plan = AdapterPlan::new("lstm", 0.9, 64, vec![tap.clone()])
            .with_trainable(vec!["w".into()])
            .with_frozen(vec!["embedding".into()]);
        assert_eq!(plan.family, "lstm");
        assert_eq!(plan.taps, [tap]);
        assert_eq!(plan.trainable, ["w"]);
        assert_eq!(plan.frozen, ["embedding"]);
        assert_eq!(plan.quantisation, QuantisationChoices::default());
        let choices = QuantisationChoices::default()
            .with_keep_float(vec!["head".into()])
            .with_embeddings(false)
            .with_ends(false, true);
        let plan = plan.with_quantisation(choices.clone());
        assert_eq!(plan.quantisation, choices);
        assert!(!plan.quantisation.embeddings && !plan.quantisation.first_layer);
    }

    #[test]
    fn a_plan_without_quantisation_choices_reads_with_the_defaults() {
        let plan: AdapterPlan = serde_json::from_str(r#"{"family":"old","width":8}"#).unwrap();
        assert_eq!(plan.quantisation, QuantisationChoices::default());
        let choices: QuantisationChoices = serde_json::from_str(r#"{"keep_float":["n"]}"#).unwrap();
        assert!(choices.embeddings && choices.first_layer && choices.last_layer);
    }
}
