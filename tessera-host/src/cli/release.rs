//! `tessera release RECORDS.npy --out TOKEN.tbf`: per-record vectors through the stage chain
//! (by default `privacy` then `tbf-export`).

use std::path::{Path, PathBuf};

use tessera_api::StageToken;
use tessera_host::array_io::read_npy;
use tessera_host::chain::{Chain, PRIVACY_STAGE, TBF_EXPORT_STAGE};
use tessera_host::config::Config;
use tessera_host::plugin::PluginRegistry;
use tessera_host::tensor::Tensor;

use super::output::{field, print_json, print_text};

/// Arguments of `tessera release`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Per-record vectors, float32 [records, width] (.npy), e.g. one hub vector per sample.
    records: PathBuf,

    /// Where the token is written (atomically).
    #[arg(long, value_name = "TOKEN.tbf")]
    out: PathBuf,

    /// Stages to run, comma-separated [default: `[chain] stages` in tessera.toml, else
    /// privacy,tbf-export].
    #[arg(long, value_delimiter = ',')]
    stages: Option<Vec<String>>,

    /// Privacy budget ε of the release (`inf`: no noise) [default: 1.0].
    #[arg(long)]
    epsilon: Option<String>,

    /// Privacy parameter δ [default: 1e-5].
    #[arg(long)]
    delta: Option<f64>,

    /// Records are clipped to this L2 norm before averaging [default: 1.0].
    #[arg(long)]
    clip_norm: Option<f64>,

    /// Payload quantisation of the token [default: float32].
    #[arg(long)]
    quant: Option<String>,

    /// CRC variant of the token: crc32c or ieee [default: crc32c].
    #[arg(long)]
    crc: Option<String>,
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
    let mut overrides = serde_json::Map::new();
    let mut privacy = serde_json::Map::new();
    if let Some(epsilon) = &args.epsilon {
        let value: serde_json::Value = if epsilon.eq_ignore_ascii_case("inf") {
            "inf".into()
        } else {
            epsilon
                .parse::<f64>()
                .map_err(|_| anyhow::anyhow!("--epsilon {epsilon:?} is not a number or inf"))?
                .into()
        };
        privacy.insert("epsilon".into(), value);
    }
    if let Some(delta) = args.delta {
        privacy.insert("delta".into(), delta.into());
    }
    if let Some(clip_norm) = args.clip_norm {
        privacy.insert("clip_norm".into(), clip_norm.into());
    }
    let mut export = serde_json::Map::new();
    if let Some(quant) = &args.quant {
        export.insert("quant".into(), quant.clone().into());
    }
    if let Some(crc) = &args.crc {
        export.insert("crc".into(), crc.clone().into());
    }
    overrides.insert(PRIVACY_STAGE.into(), privacy.into());
    overrides.insert(TBF_EXPORT_STAGE.into(), export.into());
    let names = args
        .stages
        .clone()
        .unwrap_or_else(|| config.chain.stages.clone());
    let chain = Chain::new(&registry, &names, &config, &overrides, Some(&args.out))?;
    let token = StageToken {
        vector: records.iter().copied().collect(),
        shape,
        metadata: serde_json::Map::new(),
    };
    let released = chain.run(token)?;
    let report = serde_json::json!({
        "records": args.records.display().to_string(),
        "out": args.out.display().to_string(),
        "stages": chain.names(),
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
            chain.names().join(" -> ")
        ),
        field("shape", format!("{:?}", released.shape)),
    ];
    if let Some(privacy) = released.metadata.get("privacy") {
        lines.push(field("privacy", privacy.to_string()));
    }
    lines.push(field("written", args.out.display()));
    print_text(&lines.join("\n"))
}
