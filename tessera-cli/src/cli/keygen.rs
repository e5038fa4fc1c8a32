//! `tessera keygen`: a new Ed25519 key pair for signing knowledge tokens.

use std::path::PathBuf;

use tessera_host::tbf::SigningKey;

use super::output::{field, print_json, print_text};

/// Arguments of `tessera keygen`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Base path of the key pair: the secret key goes to <OUT>.key (readable by its owner
    /// only), the public key to <OUT>.pub.
    #[arg(long, value_name = "OUT")]
    out: PathBuf,

    /// The signer's name in the trust-file line printed.
    #[arg(long, default_value = "me")]
    name: String,
}

/// Runs `tessera keygen`.
pub fn run(args: &Args, json: bool) -> anyhow::Result<()> {
    let with_extension = |extension: &str| {
        let mut path = args.out.clone().into_os_string();
        path.push(".");
        path.push(extension);
        PathBuf::from(path)
    };
    let (secret_path, public_path) = (with_extension("key"), with_extension("pub"));
    for path in [&secret_path, &public_path] {
        if path.exists() {
            anyhow::bail!(
                "{} exists; keygen never overwrites a key, choose another --out",
                path.display()
            );
        }
    }
    let key = SigningKey::generate()?;
    let public = key.verifying_key();
    key.save(&secret_path)?;
    public.save(&public_path)?;
    let trust_line = format!("{} = \"{}\"", args.name, public.to_hex());
    if json {
        return print_json(&serde_json::json!({
            "secret_key": secret_path.display().to_string(),
            "public_key": public_path.display().to_string(),
            "public_key_hex": public.to_hex(),
            "trust_line": trust_line,
        }));
    }
    print_text(
        &[
            "new Ed25519 key pair".to_string(),
            field("secret key", secret_path.display()),
            field("public key", public_path.display()),
            field("trust file line", format!("[signers] {trust_line}")),
        ]
        .join("\n"),
    )
}
