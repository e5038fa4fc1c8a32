//! `tessera validate FILE`: full structural, checksum and HMAC validation of a token.

use std::path::PathBuf;

use tessera_host::jobs::{invalid_token_verdict, validate_token};
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
    let (verdict, loaded) = match validate_token(&args.file, &args.read.load_options()?) {
        Ok(valid) => valid,
        Err(error) => {
            if json {
                print_json(&invalid_token_verdict(&args.file, &error))?;
            }
            return Err(error.into());
        }
    };
    if json {
        return print_json(&verdict);
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
