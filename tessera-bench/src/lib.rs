//! Benchmarks that print reports: Tessera's speed and memory side by side with PyTorch eager
//! on the same models and machine, as ratios measured in one run, and the cross-architecture
//! transfer benchmark with its HTML report and PNG charts (plotters, and a font compiled in,
//! which is why this crate stands apart from the engine). `tessera-host` re-exports it as
//! `tessera_host::bench` with its `bench` feature.

pub mod capture;
pub mod cross_arch;
mod error;
mod memory;
pub mod protocol;
mod pytorch;
pub mod quant;
pub mod train;

pub use error::{Error, Result};
pub use memory::PeakMemory;
pub use pytorch::{run_pytorch_bench, PyTorchBench};

use tessera_engine::zoo::{Zoo, ZooModel};

/// The zoo transmitters whose model key contains `filter` (all without one); an error if none.
pub fn transmitters<'z>(zoo: &'z Zoo, filter: Option<&str>) -> Result<Vec<&'z ZooModel>> {
    let selected: Vec<&ZooModel> = zoo
        .models
        .iter()
        .filter(|model| model.role == "transmitter")
        .filter(|model| filter.is_none_or(|text| model.model_key.contains(text)))
        .collect();
    if selected.is_empty() {
        return Err(Error::InvalidOption(
            "no zoo transmitter matches the model filter".into(),
        ));
    }
    Ok(selected)
}

/// The PyTorch side of a benchmark: `bench_torch.py --only <part> <arguments>` (plus the
/// model filter) run with `python`, or why it was not measured.
pub fn pytorch_side(
    python: Option<&str>,
    zoo: &Zoo,
    part: &str,
    arguments: &[(&str, String)],
    filter: Option<&str>,
    progress: &mut dyn FnMut(&str),
) -> (Option<PyTorchBench>, Option<String>) {
    let Some(python) = python else {
        return (None, Some("not requested".into()));
    };
    progress("PyTorch eager (bench_torch.py)");
    let mut command = vec!["--only".to_string(), part.to_string()];
    for (flag, value) in arguments {
        command.extend([flag.to_string(), value.clone()]);
    }
    if let Some(filter) = filter {
        command.extend(["--models".to_string(), filter.to_string()]);
    }
    match run_pytorch_bench(python, &zoo.dir, &command) {
        Ok(report) => (Some(report), None),
        Err(reason) => (None, Some(reason)),
    }
}

/// The median of `values` (the mean of the middle two for an even count); `None` when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    match sorted.len() {
        0 => None,
        n if n % 2 == 1 => Some(sorted[middle]),
        _ => Some((sorted[middle - 1] + sorted[middle]) / 2.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }
}
