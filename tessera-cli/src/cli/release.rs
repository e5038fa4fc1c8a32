//! `tessera release RECORDS.npy --out TOKEN.tbf`: per-record vectors through the stage chain
//! (by default `privacy` then `tbf-export`).

use std::path::{Path, PathBuf};

use tessera_api::{Metadata, StageToken};
use tessera_host::array_io::read_npy;
use tessera_host::config::Config;
use tessera_host::plugin::PluginRegistry;
use tessera_host::tensor::Tensor;

use super::output::{field, print_json, print_text};
use super::token_args::TokenArgs;

/// Arguments of `tessera release`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Per-record vectors, float32 [records, width] (.npy), e.g. one hub vector per sample.
    records: PathBuf,

    /// Where the token is written (atomically).
    #[arg(long, value_name = "TOKEN.tbf")]
    out: PathBuf,

    #[command(flatten)]
    token: TokenArgs,
}

/// Runs `tessera release`.
pub fn run(args: &Args, config_path: Option<&Path>, json: bool) -> anyhow::Result<()> {
    let config = Config::discover(config_path)?;
    let registry = PluginRegistry::discover(&config, tessera_host::chain::builtin_stages());
    let Tensor::F32(records) = read_npy(&args.records)? else {
        anyhow::bail!("{}: records must be float32", args.records.display());
    };
    let shape: Vec<u64> = records.shape().iter().map(|&dim| dim as u64).collect();
    if shape.len() != 2 || shape[0] == 0 {
        anyhow::bail!(
            "{}: expected a non-empty [records, width] array, found shape {:?}",
            args.records.display(),
            records.shape()
        );
    }
    let token = StageToken::new(records.iter().copied().collect(), shape, Metadata::new());
    let (stages, released) = args
        .token
        .release(token, &registry, &config, &args.out, None)?;
    let report = serde_json::json!({
        "records": args.records.display().to_string(),
        "out": args.out.display().to_string(),
        "stages": stages,
        "shape": released.shape,
        "metadata": released.metadata,
    });
    if json {
        return print_json(&report);
    }
    let mut lines = vec![
        format!(
            "released {} through {}",
            args.records.display(),
            stages.join(" -> ")
        ),
        field("shape", format!("{:?}", released.shape)),
    ];
    if let Some(privacy) = released.metadata.get("privacy") {
        lines.push(field("privacy", privacy.to_string()));
    }
    lines.push(field("written", args.out.display()));
    print_text(&lines.join("\n"))
}
