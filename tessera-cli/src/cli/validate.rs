//! `tessera validate FILE`: full structural, checksum and HMAC validation of a token.

use std::path::PathBuf;

use tessera_host::tbf;

use super::output::{print_json, print_text};
use super::read_args::ReadArgs;

/// Arguments of `tessera validate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The token to validate (.tbf).
    file: PathBuf,

    #[command(flatten)]
    read: ReadArgs,
}

/// Runs `tessera validate`. An invalid token is an error (non-zero exit); with `--json` the
/// verdict is also printed as `{"valid": false, "error": ...}`.
pub fn run(args: &Args, json: bool) -> anyhow::Result<()> {
    let loaded = match tbf::load(&args.file, &args.read.load_options()?) {
        Ok(loaded) => loaded,
        Err(error) => {
            if json {
                print_json(&serde_json::json!({
                    "file": args.file.display().to_string(),
                    "valid": false,
                    "error": error.to_string(),
                }))?;
            }
            return Err(error.into());
        }
    };
    let shape = loaded.token.shape()?;
    if json {
        return print_json(&serde_json::json!({
            "file": args.file.display().to_string(),
            "valid": true,
            "version": format!("{}.{}", loaded.version.0, loaded.version.1),
            "quantisation": loaded.quant,
            "crc_variant": loaded.crc,
            "hmac": loaded.hmac,
            "vector_count": loaded.token.vector().len(),
            "shape": shape,
        }));
    }
    let hmac = match loaded.hmac {
        tbf::HmacStatus::Verified => "HMAC verified",
        tbf::HmacStatus::Unverified => "HMAC present but not verified (no key given)",
        tbf::HmacStatus::Absent => "no HMAC",
    };
    print_text(&format!(
        "valid: {} — TBF {}.{}, {}, {} elements, {}, {}",
        args.file.display(),
        loaded.version.0,
        loaded.version.1,
        loaded.quant,
        loaded.token.vector().len(),
        loaded.crc,
        hmac
    ))
}
