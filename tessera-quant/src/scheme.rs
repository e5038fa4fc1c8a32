//! What a quantisation-aware transfer is asked for: the precision of the weights, how their
//! grid is laid, whether activations are quantised, and how activation ranges are calibrated.

use serde::{Deserialize, Serialize};

/// The number format the receiver's weights are stored in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Precision {
    /// 8-bit integers in the QDQ layout, activations quantised too (unless asked otherwise).
    #[default]
    Int8,
    /// 4-bit integers, weight-only; activations stay floating-point.
    Int4,
    /// IEEE half precision, weight storage; computation stays float32.
    Fp16,
}

impl Precision {
    /// Every precision, for listing the choices.
    pub const ALL: [Precision; 3] = [Precision::Int8, Precision::Int4, Precision::Fp16];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Precision::Int8 => "int8",
            Precision::Int4 => "int4",
            Precision::Fp16 => "fp16",
        }
    }

    /// Whether weights are integers on a grid (INT8, INT4), as opposed to a float format.
    pub fn is_integer(self) -> bool {
        !matches!(self, Precision::Fp16)
    }
}

impl std::str::FromStr for Precision {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        parse_named(text, &Self::ALL, |p| p.name(), "precision")
    }
}

/// Whether the activations feeding and leaving quantised operators are quantised.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActivationPrecision {
    /// 8-bit integers, asymmetric, one scale per tensor, ranges calibrated on the inputs.
    #[default]
    Int8,
    /// Floating-point (weight-only quantisation).
    Float,
}

impl ActivationPrecision {
    /// Every choice.
    pub const ALL: [ActivationPrecision; 2] =
        [ActivationPrecision::Int8, ActivationPrecision::Float];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            ActivationPrecision::Int8 => "int8",
            ActivationPrecision::Float => "float",
        }
    }
}

impl std::str::FromStr for ActivationPrecision {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        parse_named(text, &Self::ALL, |p| p.name(), "activation precision")
    }
}

/// How an activation's range is chosen from the values calibration saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "method")]
pub enum RangeMethod {
    /// The smallest and largest value seen: nothing saturates, outliers widen the step.
    MinMax,
    /// The given percentile at the top and its mirror at the bottom (e.g. 99.99): the rare
    /// extreme values saturate.
    Percentile {
        /// Percentile in (50, 100].
        percentile: f64,
    },
    /// The range, among shrinkings of min/max, whose grid reproduces the values seen with the
    /// least mean squared error.
    #[default]
    Mse,
}

impl RangeMethod {
    /// The name used on the command line and in reports (`minmax`, `percentile:99.99`, `mse`).
    pub fn name(&self) -> String {
        match self {
            RangeMethod::MinMax => "minmax".into(),
            RangeMethod::Percentile { percentile } => format!("percentile:{percentile}"),
            RangeMethod::Mse => "mse".into(),
        }
    }
}

impl std::str::FromStr for RangeMethod {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "minmax" => Ok(RangeMethod::MinMax),
            "mse" => Ok(RangeMethod::Mse),
            _ => {
                let value = text
                    .strip_prefix("percentile:")
                    .and_then(|p| p.parse::<f64>().ok())
                    .filter(|p| *p > 50.0 && *p <= 100.0)
                    .ok_or_else(|| {
                        format!(
                            "unknown calibration {text:?}; use minmax, mse or percentile:P \
                             with P in (50, 100], e.g. percentile:99.99"
                        )
                    })?;
                Ok(RangeMethod::Percentile { percentile: value })
            }
        }
    }
}

/// How 4-bit weights are stored in the exported file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Int4Storage {
    /// ONNX `int4` initializers (two per byte) with opset-21 `DequantizeLinear`: the smallest
    /// file, for runtimes that implement opset 21 (ONNX Runtime ≥ 1.20).
    #[default]
    Packed,
    /// The same 4-bit values held in `int8` initializers with opset-13 `DequantizeLinear`: runs
    /// on every runtime that runs INT8 QDQ (tract included), at the size of an INT8 file.
    Int8,
}

impl Int4Storage {
    /// Every choice.
    pub const ALL: [Int4Storage; 2] = [Int4Storage::Packed, Int4Storage::Int8];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Int4Storage::Packed => "packed",
            Int4Storage::Int8 => "int8",
        }
    }
}

impl std::str::FromStr for Int4Storage {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        parse_named(text, &Self::ALL, |p| p.name(), "int4 storage")
    }
}

/// Everything a quantisation is configured with. [`Default`]: INT8 weights, symmetric, one
/// scale per output channel; INT8 activations, asymmetric, one scale per tensor, calibrated by
/// [`RangeMethod::Mse`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct QuantisationOptions {
    /// The weights' format.
    pub precision: Precision,
    /// Weights on a grid symmetric around zero (zero point 0), or spanning their min..max.
    pub symmetric: bool,
    /// One scale per output channel of a weight, or one per tensor.
    pub per_channel: bool,
    /// Whether activations are quantised (INT8 only; INT4 and FP16 are weight-only).
    pub activations: ActivationPrecision,
    /// How activation ranges are calibrated.
    pub calibration: RangeMethod,
    /// INT4: weights share a scale in blocks of this many along the reduction axis (`None`:
    /// one scale per output channel, or per tensor). Must be a power of two of at least 16.
    pub int4_block: Option<usize>,
    /// INT4: how the 4-bit values are stored.
    pub int4_storage: Int4Storage,
    /// INT8 activations: a `MatMul`, `Gemm` or `Conv` gets an integer kernel (its input
    /// quantised) only where it does at least this many multiply-accumulates per sample and
    /// sums over at least [`MIN_INTEGER_DEPTH`] values (a `Conv` over at least
    /// [`MIN_CONV_INPUT_CHANNELS`] input channels); smaller layers keep float activations
    /// and int8 weights widened once at load, because quantising their input costs more than
    /// the integer kernel saves. 0: every compute layer gets an integer kernel.
    pub min_integer_macs: usize,
}

/// The default [`QuantisationOptions::min_integer_macs`]: below it, ONNX Runtime's integer
/// kernels with the `QuantizeLinear` in front of them ran no faster than float `Gemm`
/// (`docs/benchmarks/quant.md`, "Which layers get integer kernels").
pub const DEFAULT_MIN_INTEGER_MACS: usize = 16_384;

/// The least reduction depth (values summed per output) at which a compute layer gets an
/// integer kernel under [`QuantisationOptions::min_integer_macs`]: at a depth of 8, ONNX
/// Runtime's integer `Gemm` with its `QuantizeLinear` was slower than float at every width
/// with 64 or more rows (1.07–1.70×).
pub const MIN_INTEGER_DEPTH: usize = 32;

/// The fewest input channels (per group) at which a `Conv` gets an integer kernel under
/// [`QuantisationOptions::min_integer_macs`]: ONNX Runtime's QLinearConv with 64 input
/// channels ran at 0.24–0.84× the float time at every size measured; with 16 it was slower at
/// every size but the largest; with 32 it varied, and made a 2-D CNN 1.2–1.3× the float time
/// (`docs/benchmarks/quant.md`, "Which layers get integer kernels").
pub const MIN_CONV_INPUT_CHANNELS: usize = 64;

impl Default for QuantisationOptions {
    fn default() -> Self {
        Self {
            precision: Precision::Int8,
            symmetric: true,
            per_channel: true,
            activations: ActivationPrecision::Int8,
            calibration: RangeMethod::default(),
            int4_block: None,
            int4_storage: Int4Storage::Packed,
            min_integer_macs: DEFAULT_MIN_INTEGER_MACS,
        }
    }
}

impl QuantisationOptions {
    /// The default options at `precision`: activations INT8 with INT8 weights, float with the
    /// weight-only precisions.
    pub fn at(precision: Precision) -> Self {
        Self {
            precision,
            activations: if precision == Precision::Int8 {
                ActivationPrecision::Int8
            } else {
                ActivationPrecision::Float
            },
            ..Self::default()
        }
    }

    /// Whether activations are actually quantised: asked for, and the precision is INT8.
    pub fn quantises_activations(&self) -> bool {
        self.precision == Precision::Int8 && self.activations == ActivationPrecision::Int8
    }

    /// A short label for reports, e.g. `int8 sym per-channel, act int8 (mse)`.
    pub fn label(&self) -> String {
        if self.precision == Precision::Fp16 {
            return "fp16".into();
        }
        let grid = format!(
            "{} {} {}",
            self.precision.name(),
            if self.symmetric { "sym" } else { "asym" },
            match (self.precision, self.int4_block) {
                (Precision::Int4, Some(block)) => format!("block {block}"),
                _ if self.per_channel => "per-channel".into(),
                _ => "per-tensor".into(),
            }
        );
        if self.quantises_activations() {
            format!("{grid}, act int8 ({})", self.calibration.name())
        } else {
            format!("{grid}, act float")
        }
    }

    /// Fails with the reason when the options contradict each other.
    pub fn check(&self) -> Result<(), String> {
        if let Some(block) = self.int4_block {
            if self.precision != Precision::Int4 {
                return Err("a block size applies to int4 weights only".into());
            }
            if block < 16 || !block.is_power_of_two() {
                return Err(format!(
                    "int4 block size {block} must be a power of two of at least 16"
                ));
            }
            if self.int4_storage == Int4Storage::Int8 {
                return Err(
                    "block-wise int4 needs opset-21 DequantizeLinear; with int4 \
                            storage int8, use per-channel scales (no block size)"
                        .into(),
                );
            }
        }
        if self.precision != Precision::Int8 && self.activations == ActivationPrecision::Int8 {
            // Weight-only precisions ignore the activation choice; say so rather than guess.
            return Err(format!(
                "{} quantisation is weight-only; activations stay float (use activations float)",
                self.precision.name()
            ));
        }
        Ok(())
    }
}

fn parse_named<T: Copy>(
    text: &str,
    all: &[T],
    name: impl Fn(T) -> &'static str,
    what: &str,
) -> Result<T, String> {
    all.iter()
        .copied()
        .find(|item| name(*item) == text)
        .ok_or_else(|| {
            let names: Vec<&str> = all.iter().map(|item| name(*item)).collect();
            format!("unknown {what} {text:?}; use {}", names.join(", "))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back() {
        for precision in Precision::ALL {
            assert_eq!(precision.name().parse::<Precision>().unwrap(), precision);
        }
        assert_eq!("mse".parse::<RangeMethod>().unwrap(), RangeMethod::Mse);
        assert_eq!(
            "percentile:99.9".parse::<RangeMethod>().unwrap(),
            RangeMethod::Percentile { percentile: 99.9 }
        );
        assert!("percentile:20".parse::<RangeMethod>().is_err());
        assert!("int3"
            .parse::<Precision>()
            .unwrap_err()
            .contains("int8, int4, fp16"));
    }

    #[test]
    fn contradictions_are_refused() {
        let mut options = QuantisationOptions::at(Precision::Int4);
        options.check().unwrap();
        options.activations = ActivationPrecision::Int8;
        assert!(options.check().is_err(), "int4 with int8 activations");
        options.activations = ActivationPrecision::Float;
        options.int4_block = Some(24);
        assert!(options.check().is_err());
        options.int4_block = Some(32);
        options.check().unwrap();
        options.int4_storage = Int4Storage::Int8;
        assert!(options.check().is_err());
        QuantisationOptions::default().check().unwrap();
        assert_eq!(
            QuantisationOptions::default().label(),
            "int8 sym per-channel, act int8 (mse)"
        );
    }
}
