//! `tessera convert IN OUT`: re-encode a token with another quantisation, CRC variant or key.

use std::path::PathBuf;

use anyhow::bail;
use tessera_host::tbf::{
    self, CrcVariant, HmacStatus, QuantType, SaveOptions, SignatureStatus, SigningKey,
    SIGNATURE_KEY,
};

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

    /// Sign the output with this Ed25519 secret key file (replacing any signature).
    #[arg(long, value_name = "KEY")]
    sign_key: Option<PathBuf>,

    /// Drop the input's Ed25519 signature, which re-encoding with another quantisation breaks.
    #[arg(long, conflicts_with = "sign_key")]
    drop_signature: bool,

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
    let quant = args.quant.unwrap_or(loaded.quant);
    let mut token = loaded.token;
    let carries_signature = matches!(loaded.signature, SignatureStatus::Valid { .. });
    if args.drop_signature {
        token.metadata.custom.shift_remove(SIGNATURE_KEY);
    } else if carries_signature && args.sign_key.is_none() && quant != loaded.quant {
        bail!(
            "{} carries an Ed25519 signature over its {} payload, which re-encoding as {quant} \
             breaks; pass --sign-key to sign the output anew, or --drop-signature",
            args.input.display(),
            loaded.quant
        );
    }
    let save = SaveOptions {
        quant,
        crc: args.crc,
        hmac_key: options.hmac_key,
        signing_key: args.sign_key.as_deref().map(SigningKey::load).transpose()?,
    };
    let written = tbf::save(&args.output, &token, &save)?;
    let signed = save.hmac_key.is_some();
    if json {
        return print_json(&serde_json::json!({
            "input": args.input.display().to_string(),
            "output": args.output.display().to_string(),
            "quantisation": save.quant,
            "crc_variant": save.crc,
            "signed": signed,
            "ed25519_signed": save.signing_key.is_some() || (carries_signature && !args.drop_signature),
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
