//! `tessera inspect FILE [--full]`: header, metadata and vector statistics of a token.

use std::path::PathBuf;

use tessera_host::jobs::inspect_token;
use tessera_host::tbf::{self, HmacStatus, Loaded, VectorStats};

use super::output::{field, print_json, print_text};
use super::read_args::ReadArgs;

/// Arguments of `tessera inspect`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The token to inspect (.tbf).
    file: PathBuf,

    /// Also print every decoded vector element.
    #[arg(long)]
    full: bool,

    #[command(flatten)]
    read: ReadArgs,
}

/// Runs `tessera inspect`.
pub fn run(args: &Args, json: bool) -> anyhow::Result<()> {
    let options = args.read.load_options()?;
    if json {
        return print_json(&inspect_token(&args.file, &options, args.full)?);
    }
    let info = tbf::info(&args.file)?;
    let loaded = tbf::load(&args.file, &options)?;
    let stats = VectorStats::of(loaded.token.vector());
    let shape = loaded.token.shape()?;
    print_text(&describe(args, &info, &loaded, &stats, &shape))
}

fn hmac_text(status: HmacStatus) -> &'static str {
    match status {
        HmacStatus::Verified => "present, verified",
        HmacStatus::Unverified => "present, not verified (no key given)",
        HmacStatus::Absent => "absent",
    }
}

fn optional_number(value: Option<f64>) -> String {
    value.map_or_else(|| "-".into(), |v| format!("{v:.6}"))
}

fn describe(
    args: &Args,
    info: &tbf::Info,
    loaded: &Loaded,
    stats: &VectorStats,
    shape: &[u64],
) -> String {
    let metadata = &loaded.token.metadata;
    let json_of = |value: serde_json::Value| value.to_string();
    let meta_json = metadata.to_json();
    let weights: Vec<String> = metadata
        .modality_weights
        .iter()
        .map(|(basis, weight)| format!("{basis}={weight}"))
        .collect();
    let mut lines = vec![
        args.file.display().to_string(),
        field(
            "format",
            format!(
                "{} {}, {} bytes",
                info.format, info.version, info.total_file_bytes
            ),
        ),
        field(
            "quantisation",
            format!(
                "{}, {} bytes/element",
                info.quantisation, info.bytes_per_element
            ),
        ),
        field(
            "checksums",
            format!("{}, header and body valid", loaded.crc),
        ),
        field("HMAC", hmac_text(loaded.hmac)),
        field("metadata", format!("{} bytes", info.metadata_bytes)),
        field(
            "vector",
            format!(
                "{} elements, {} bytes, shape {shape:?}",
                info.vector_count, info.vector_bytes
            ),
        ),
        field(
            "knowledge type",
            format!(
                "{} (generation {})",
                metadata.knowledge_type, metadata.generation
            ),
        ),
        field(
            "models",
            format!(
                "{} -> {}",
                display_or_dash(&metadata.source_model_id),
                metadata.target_model_id.as_deref().unwrap_or("-")
            ),
        ),
        field(
            "privacy",
            format!(
                "epsilon {}, delta {}",
                metadata.privacy_epsilon, metadata.privacy_delta
            ),
        ),
        field("drift score", metadata.drift_score),
        field("timestamp", display_or_dash(&metadata.timestamp)),
        field("protocol version", &metadata.version),
        field("modality weights", weights.join(" ")),
        field(
            "correlation map",
            json_of(meta_json["correlation_map"].clone()),
        ),
        field("lineage", json_of(meta_json["lineage_dag"].clone())),
        field(
            "projection hints",
            json_of(meta_json["projection_hints"].clone()),
        ),
        field(
            "custom metadata",
            json_of(meta_json["custom_metadata"].clone()),
        ),
    ];
    if let Some(unknown) = meta_json.get("unknown_keys") {
        lines.push(field("unknown keys", json_of(unknown.clone())));
    }
    lines.push(field(
        "statistics",
        format!(
            "min {}  max {}  mean {}  std {}  L2 {:.6}  non-finite {}",
            optional_number(stats.min),
            optional_number(stats.max),
            optional_number(stats.mean),
            optional_number(stats.std),
            stats.l2_norm,
            stats.non_finite
        ),
    ));
    if args.full {
        lines.push("  vector:".into());
        for (row, chunk) in loaded.token.vector().chunks(8).enumerate() {
            let values: Vec<String> = chunk.iter().map(|v| format!("{v:>13.6e}")).collect();
            lines.push(format!("  {:>6}  {}", row * 8, values.join(" ")));
        }
    }
    lines.join("\n")
}

fn display_or_dash(text: &str) -> &str {
    if text.is_empty() {
        "-"
    } else {
        text
    }
}
