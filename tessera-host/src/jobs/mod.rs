//! Whole jobs as every front end runs them — the `tessera` program, the Python package, the C
//! API and the MCP server: a transfer with its token released and written, the two halves of
//! the two-party protocol (emit, absorb), token and model inspection, capture. Each front end
//! only turns its arguments into these.

mod absorb;
mod capture;
mod emit;
mod inspect;
mod release;
mod settings;
mod transfer;

pub use absorb::{AbsorbJob, AbsorbSummary};
pub use capture::{capture_tensors, CaptureRequest, CapturedTensors};
pub use emit::{emit_augmentation, EmitJob, EmitSummary, EMITTED_TOKEN};
pub use inspect::{inspect_token, invalid_token_verdict, validate_token, ModelInspection};
pub use release::{ledger_path, rule_name, KnowledgeRelease, Written};
pub use settings::{
    AbsorbSettings, Epsilon, InfiniteEpsilon, JobFiles, TransferSettings, ABSORB_SETTINGS, SETTINGS,
};
pub use transfer::{tuned_receiver_path, TransferJob, TransferSummary, TRANSFER_TOKEN};

use tessera_engine::chain::builtin_stages;
use tessera_engine::config::Config;
use tessera_engine::plugin::PluginRegistry;
use tessera_engine::Result;

/// Every plugin found with the configuration file at `config` (or `tessera.toml` in the
/// working directory, if present), with the built-in stages; libraries that failed to load
/// are listed in its `failures`.
pub fn plugin_registry(config: Option<&std::path::Path>) -> Result<PluginRegistry> {
    let config = Config::discover(config)?;
    Ok(PluginRegistry::discover(&config, builtin_stages()))
}
