//! `tessera convert IN OUT`: re-encode a token with another quantisation, CRC variant or key.

use std::path::PathBuf;

use anyhow::bail;
use tessera_host::tbf::{self, CrcVariant, HmacStatus, QuantType, SaveOptions};

use super::output::{print_json, print_text};
use super::read_args::ReadArgs;

/// Arguments of `tessera convert`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The token to read (.tbf).
    input: PathBuf,

    /// Where to write the re-encoded token (written atomically).
    output: PathBuf,

    /// Payload quantisation of the output: float32, float16, bfloat16 or int8 [default: the
    /// input's].
    #[arg(long, value_name = "QUANT")]
    quant: Option<QuantType>,

    /// CRC variant of the output: crc32c, or ieee for peers running a default tessera-core
    /// install.
    #[arg(long, value_name = "VARIANT", default_value = "crc32c")]
    crc: CrcVariant,

    #[command(flatten)]
    read: ReadArgs,
}

/// Runs `tessera convert`. The key verifies a signed input and signs the output.
pub fn run(args: &Args, json: bool) -> anyhow::Result<()> {
    let options = args.read.load_options()?;
    let loaded = tbf::load(&args.input, &options)?;
    if loaded.hmac == HmacStatus::Unverified && !args.read.allow_unauthenticated {
        bail!(
            "{} is HMAC-signed but no key was given to verify it; pass --hmac-key-file or \
             --hmac-key-env, or --allow-unauthenticated to convert it unverified",
            args.input.display()
        );
    }
    let save = SaveOptions {
        quant: args.quant.unwrap_or(loaded.quant),
        crc: args.crc,
        hmac_key: options.hmac_key,
    };
    let written = tbf::save(&args.output, &loaded.token, &save)?;
    let signed = save.hmac_key.is_some();
    if json {
        return print_json(&serde_json::json!({
            "input": args.input.display().to_string(),
            "output": args.output.display().to_string(),
            "quantisation": save.quant,
            "crc_variant": save.crc,
            "signed": signed,
            "bytes": written,
        }));
    }
    print_text(&format!(
        "wrote {} — {}, {}, {}, {written} bytes",
        args.output.display(),
        save.quant,
        save.crc,
        if signed { "HMAC-signed" } else { "unsigned" }
    ))
}
