//! Options shared by every command that reads a token: the HMAC key and the reader's limits.

use std::path::PathBuf;

use anyhow::Context;
use tessera_host::tbf::{HmacKey, LoadOptions, DEFAULT_MAX_FILE_LEN};

/// How to read and authenticate a token.
#[derive(Debug, clap::Args)]
pub struct ReadArgs {
    /// File holding the HMAC-SHA256 key as hexadecimal digits.
    #[arg(long, value_name = "FILE", conflicts_with = "hmac_key_env")]
    pub hmac_key_file: Option<PathBuf>,

    /// Environment variable holding the HMAC-SHA256 key as hexadecimal digits.
    #[arg(long, value_name = "VAR")]
    pub hmac_key_env: Option<String>,

    /// Accept a token without HMAC even though a key was given (otherwise refused, since anyone
    /// can strip an HMAC).
    #[arg(long)]
    pub allow_unauthenticated: bool,

    /// Largest token accepted, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = DEFAULT_MAX_FILE_LEN >> 20)]
    pub max_file_mib: u64,
}

impl ReadArgs {
    /// The key named by `--hmac-key-file` or `--hmac-key-env`, if any.
    pub fn key(&self) -> anyhow::Result<Option<HmacKey>> {
        let text = match (&self.hmac_key_file, &self.hmac_key_env) {
            (Some(path), _) => std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the HMAC key file {}", path.display()))?,
            (None, Some(variable)) => std::env::var(variable).with_context(|| {
                format!("the environment variable {variable} (named by --hmac-key-env) is not set or not UTF-8")
            })?,
            (None, None) => return Ok(None),
        };
        Ok(Some(HmacKey::from_hex(&text)?))
    }

    /// The reader options these arguments describe.
    pub fn load_options(&self) -> anyhow::Result<LoadOptions> {
        Ok(LoadOptions {
            hmac_key: self.key()?,
            allow_unauthenticated: self.allow_unauthenticated,
            max_file_bytes: self.max_file_mib.saturating_mul(1 << 20),
        })
    }
}
