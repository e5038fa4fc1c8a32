//! Where the trainable graph, its optimiser and everything trained beside it (the hub) run.

use std::fmt;
use std::str::FromStr;

use crate::{Error, Result};

/// The device training runs on. Builds without the `cuda` feature have the same type and
/// refuse [`TrainingDevice::Cuda`] with an error that says how to get it, so code written
/// against this API compiles either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TrainingDevice {
    /// The CPU (always available).
    #[default]
    Cpu,
    /// The NVIDIA GPU with this ordinal, through candle's CUDA backend.
    Cuda(usize),
}

impl TrainingDevice {
    /// Whether this build can train on CUDA devices at all.
    pub const CUDA_BUILT: bool = cfg!(feature = "cuda");

    /// The candle device, opened; fails when this build or this machine has no such device.
    pub fn open(self) -> Result<candle_core::Device> {
        match self {
            TrainingDevice::Cpu => Ok(candle_core::Device::Cpu),
            TrainingDevice::Cuda(_) if !Self::CUDA_BUILT => Err(Error::Device {
                device: self.to_string(),
                message: "this build has no CUDA support; rebuild with `--features cuda` \
                          (needs the CUDA toolkit), or train on the CPU"
                    .into(),
            }),
            TrainingDevice::Cuda(ordinal) => {
                candle_core::Device::new_cuda(ordinal).map_err(|source| Error::Device {
                    device: self.to_string(),
                    message: format!("cannot open it ({source}); check the driver and the ordinal"),
                })
            }
        }
    }
}

impl fmt::Display for TrainingDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrainingDevice::Cpu => f.write_str("cpu"),
            TrainingDevice::Cuda(0) => f.write_str("cuda"),
            TrainingDevice::Cuda(ordinal) => write!(f, "cuda:{ordinal}"),
        }
    }
}

/// Written as its name (`cpu`, `cuda`, `cuda:1`), as the command line takes it.
impl serde::Serialize for TrainingDevice {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl FromStr for TrainingDevice {
    type Err = Error;

    /// `cpu`, `cuda` (the first GPU) or `cuda:N`.
    fn from_str(text: &str) -> Result<Self> {
        let lower = text.to_ascii_lowercase();
        match lower.as_str() {
            "cpu" => Ok(TrainingDevice::Cpu),
            "cuda" | "gpu" => Ok(TrainingDevice::Cuda(0)),
            _ => lower
                .strip_prefix("cuda:")
                .and_then(|ordinal| ordinal.parse().ok())
                .map(TrainingDevice::Cuda)
                .ok_or_else(|| {
                    Error::InvalidOption(format!(
                        "unknown training device {text:?}; use cpu, cuda or cuda:N"
                    ))
                }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_devices() {
        for (text, device) in [
            ("cpu", TrainingDevice::Cpu),
            ("CUDA", TrainingDevice::Cuda(0)),
            ("cuda:1", TrainingDevice::Cuda(1)),
        ] {
            assert_eq!(text.parse::<TrainingDevice>().unwrap(), device);
        }
        assert_eq!(TrainingDevice::Cuda(1).to_string(), "cuda:1");
        assert!("tpu".parse::<TrainingDevice>().is_err());
        assert!("cuda:x".parse::<TrainingDevice>().is_err());
    }

    #[test]
    fn cpu_always_opens_and_cuda_only_in_cuda_builds() {
        assert!(TrainingDevice::Cpu.open().unwrap().is_cpu());
        if !TrainingDevice::CUDA_BUILT {
            let message = TrainingDevice::Cuda(0).open().unwrap_err().to_string();
            assert!(message.contains("--features cuda"), "{message}");
        }
    }
}
