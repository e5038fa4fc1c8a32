//! The quantisation-aware transfer (ModeAQ) options shared by `tessera transfer` and
//! `tessera absorb`.

use std::path::{Path, PathBuf};

use tessera_host::quant::export::ActivationStorage;
use tessera_host::quant::{
    ActivationPrecision, Int4Storage, Precision, QuantisationOptions, RangeMethod,
    DEFAULT_MIN_INTEGER_MACS,
};
use tessera_host::transfer::{QatTeacher, QuantisationAware, QuantisationReport};

use super::output::field;
use super::transfer::number;

/// Which transfer runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Mode A: the receiver stays floating-point.
    A,
    /// ModeAQ: Mode A, then fine-tuning on the integer grid; the receiver is written quantised.
    Aq,
}

/// How ModeAQ quantises the receiver.
#[derive(Debug, clap::Args)]
pub struct QuantArgs {
    /// a: float receiver; aq: quantisation-aware, the receiver is written quantised (INT8 QDQ,
    /// INT4 weight-only or FP16 ONNX) and measured against its float counterpart.
    #[arg(long, value_enum, default_value_t = Mode::A)]
    mode: Mode,

    /// The receiver's number format (with --mode aq): int8, int4 or fp16.
    #[arg(long, default_value = "int8")]
    quant: Precision,

    /// Weights on a grid that spans their min..max (zero point ≠ 0) instead of one symmetric
    /// around zero.
    #[arg(long)]
    asymmetric: bool,

    /// One weight scale per tensor instead of one per output channel.
    #[arg(long)]
    per_tensor: bool,

    /// Activations around quantised layers: int8 (INT8 only) or float [default: int8 with
    /// --quant int8, float otherwise].
    #[arg(long)]
    activations: Option<ActivationPrecision>,

    /// INT8 activations: a MatMul, Gemm or Conv gets an integer kernel only where it does at
    /// least N multiply-accumulates per sample (and sums over at least 32 values; a Conv over
    /// at least 64 input channels); smaller layers keep float inputs and int8 weights widened
    /// at load. 0: every layer.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MIN_INTEGER_MACS)]
    min_integer_macs: usize,

    /// How activation ranges are calibrated on the inputs: mse, minmax or percentile:P.
    #[arg(long, default_value = "mse")]
    calibration: RangeMethod,

    /// Quantisation-aware epochs after the float ones (0: calibrate and quantise only).
    #[arg(long, default_value_t = QuantisationAware::default().epochs)]
    qat_epochs: usize,

    /// Of those, the last this many keep the activation ranges frozen.
    #[arg(long, default_value_t = QuantisationAware::default().frozen_epochs)]
    frozen_epochs: usize,

    /// Multiplier of the learning rate while on the grid.
    #[arg(long, default_value_t = QuantisationAware::default().learning_rate_scale)]
    qat_rate_scale: f64,

    /// Whose outputs the receiver learns on the grid: float (its own float counterpart's: the
    /// quantised receiver keeps the float one's behaviour) or knowledge (the transmitter's, as
    /// in Mode A: it may gain more, or drift from the float receiver).
    #[arg(long, default_value = "float")]
    qat_teacher: QatTeacher,

    /// INT4: one scale per this many weights along the reduction axis (opset 21 block
    /// quantisation) instead of one per output channel.
    #[arg(long, value_name = "N")]
    int4_block: Option<usize>,

    /// INT4: packed (ONNX int4, opset 21: ONNX Runtime ≥ 1.20) or int8 (4-bit values in int8
    /// initializers: runs wherever INT8 QDQ runs, tract included).
    #[arg(long, default_value = "packed")]
    int4_storage: Int4Storage,

    /// How INT8 activations are stored: uint8 (ONNX Runtime's x86 integer kernels) or int8;
    /// the same grid either way.
    #[arg(long, default_value = "uint8")]
    activation_storage: ActivationStorage,

    /// Also write the float receiver of a ModeAQ transfer here (atomically).
    #[arg(long, value_name = "B.float.onnx")]
    float_out: Option<PathBuf>,
}

impl QuantArgs {
    /// The ModeAQ settings, or `None` for Mode A (which refuses ModeAQ-only flags).
    pub fn aware(&self) -> anyhow::Result<Option<QuantisationAware>> {
        if self.mode == Mode::A {
            if self.float_out.is_some() {
                anyhow::bail!("--float-out applies to --mode aq only");
            }
            return Ok(None);
        }
        let activations = self
            .activations
            .unwrap_or(if self.quant == Precision::Int8 {
                ActivationPrecision::Int8
            } else {
                ActivationPrecision::Float
            });
        let aware = QuantisationAware {
            quantisation: QuantisationOptions {
                precision: self.quant,
                symmetric: !self.asymmetric,
                per_channel: !self.per_tensor,
                activations,
                calibration: self.calibration,
                int4_block: self.int4_block,
                int4_storage: self.int4_storage,
                min_integer_macs: self.min_integer_macs,
            },
            epochs: self.qat_epochs,
            frozen_epochs: self.frozen_epochs,
            learning_rate_scale: self.qat_rate_scale,
            teacher: self.qat_teacher,
            activation_storage: self.activation_storage,
        };
        aware.check()?;
        Ok(Some(aware))
    }

    /// Where the float receiver of a ModeAQ transfer went, if written.
    pub fn float_out(&self) -> Option<&Path> {
        self.float_out.as_deref()
    }
}

/// The readable lines of a ModeAQ report.
pub fn quantisation_lines(report: &QuantisationReport) -> Vec<String> {
    let row = |label: &str, float: String, quantised: String| {
        format!("  {label:<24}{float:>10}{quantised:>10}")
    };
    let mut lines = vec![
        format!(
            "ModeAQ: {} ({} weights, {} activations quantised; {} epochs on the grid learning \
             from the {} teacher, {} steps)",
            report.label,
            report.quantised_weights,
            report.quantised_activations,
            report.epochs,
            report.teacher,
            report.steps
        ),
        row("", "float".into(), "quantised".into()),
        row(
            "agreement",
            number(report.float_fidelity.agreement),
            number(report.fidelity.agreement),
        ),
        row(
            "output KL (nats)",
            number(report.float_fidelity.output_kl),
            number(report.fidelity.output_kl),
        ),
        row(
            "accuracy",
            number(report.float_fidelity.accuracy),
            number(report.fidelity.accuracy),
        ),
        row(
            "model bytes",
            report.float_bytes.to_string(),
            report.quantised_bytes.to_string(),
        ),
    ];
    if let Some(inference) = &report.inference {
        lines.push(row(
            "inference (ms)",
            format!("{:.2}", inference.float_seconds * 1e3),
            format!("{:.2}", inference.quantised_seconds * 1e3),
        ));
    }
    lines.push(field(
        "quantised vs float",
        format!(
            "agreement {:.3}, KL {:.4}, logits SQNR {:.1} dB, clipping {:.4} %",
            report.agreement_with_float,
            report.kl_from_float,
            report.logits_sqnr_db,
            report.mean_clipping * 100.0
        ),
    ));
    lines.push(field(
        "size and speed",
        match &report.inference {
            Some(inference) => format!(
                "{:.2}x smaller (weights {:.2}x); inference {:.2}x the float time in {}",
                report.compression, report.weight_compression, inference.ratio, inference.executor
            ),
            None => format!(
                "{:.2}x smaller (weights {:.2}x); measured on {}",
                report.compression, report.weight_compression, report.measured_on
            ),
        },
    ));
    if !report.kept_float.is_empty() {
        lines.push(field("kept float", report.kept_float.join(", ")));
    }
    if !report.weight_only.is_empty() {
        lines.push(field("weight-only", report.weight_only.join(", ")));
    }
    lines
}
