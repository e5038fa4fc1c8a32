//! Command-line parsing and one module per subcommand.

mod absorb;
mod bench;
mod capture;
mod convert;
mod emit;
mod inspect;
mod inspect_model;
mod keygen;
mod knowledge_args;
mod mcp;
mod output;
mod plugins;
mod privacy;
mod progress;
mod quant_args;
mod read_args;
mod release;
mod schedule_args;
mod token_args;
mod train;
mod transfer;
mod validate;
mod version;

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use tessera_host::jobs::plugin_registry;
use tessera_host::plugin::PluginRegistry;

/// Transfer what one trained neural network knows into another of a different architecture,
/// and work with the TBF v1.1 tokens that carry it.
#[derive(Debug, Parser)]
#[command(name = "tessera", version, propagate_version = true)]
pub struct Cli {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,

    /// Configuration file [default: tessera.toml in the working directory, if present].
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show a token's header, metadata and vector statistics.
    Inspect(inspect::Args),
    /// Check a token's structure, checksums and (with a key) its HMAC.
    Validate(validate::Args),
    /// Re-encode a token with another quantisation, CRC variant or HMAC key.
    Convert(convert::Args),
    /// Show an ONNX model's inputs, outputs, operators, parameters and candidate tap points.
    InspectModel(inspect_model::Args),
    /// Run a dataset through an ONNX model and save its outputs and tap activations (.npz).
    Capture(capture::Args),
    /// Release per-record vectors (.npy, [records, width]) as a token through the stage chain:
    /// by default clipped, averaged and privatised, then written as TBF.
    Release(release::Args),
    /// Transfer a trained model's behaviour into a model of another architecture, without
    /// labels (Mode A), in one process; writes the tuned receiver and the knowledge token.
    Transfer(Box<transfer::Args>),
    /// The transmitter's half of a transfer: run only the transmitter on reference inputs
    /// and write its knowledge as a token.
    Emit(Box<emit::Args>),
    /// The receiver's half: learn from a knowledge token on the same reference inputs,
    /// without the transmitter, and write the tuned receiver.
    Absorb(Box<absorb::Args>),
    /// Create an Ed25519 key pair for signing knowledge tokens.
    Keygen(keygen::Args),
    /// The privacy ledger: what releases over each data set have spent.
    Privacy(privacy::Args),
    /// Train an ONNX model on labelled data (supervised, cross-entropy) and write it back.
    Train(train::Args),
    /// List the architecture-adapter plugins found, or check one plugin library.
    Plugins(plugins::Args),
    /// Benchmark reports: speed and memory against PyTorch eager.
    Bench(bench::Args),
    /// Serve the Model Context Protocol over standard input and output: tools that inspect
    /// tokens and models and run transfers, on files under the given roots only.
    Mcp(mcp::Args),
    /// Show the versions of this program, its plugin ABI and the token format.
    Version,
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Inspect(args) => inspect::run(&args, cli.json),
        Command::Validate(args) => validate::run(&args, cli.json),
        Command::Convert(args) => convert::run(&args, cli.json),
        Command::InspectModel(args) => inspect_model::run(&args, cli.config.as_deref(), cli.json),
        Command::Capture(args) => capture::run(&args, cli.config.as_deref(), cli.json),
        Command::Plugins(args) => plugins::run(&args, cli.config.as_deref(), cli.json),
        Command::Release(args) => release::run(&args, cli.config.as_deref(), cli.json),
        Command::Train(args) => train::run(&args, cli.json),
        Command::Transfer(args) => transfer::run(&args, cli.config.as_deref(), cli.json),
        Command::Emit(args) => emit::run(&args, cli.config.as_deref(), cli.json),
        Command::Absorb(args) => absorb::run(&args, cli.config.as_deref(), cli.json),
        Command::Keygen(args) => keygen::run(&args, cli.json),
        Command::Privacy(args) => privacy::run(&args, cli.json),
        Command::Bench(args) => bench::run(&args, cli.config.as_deref(), cli.json),
        Command::Mcp(args) => mcp::run(&args, cli.config.as_deref()),
        Command::Version => version::run(cli.json),
    }
}

/// [`plugin_registry`], warning on standard error about every library that failed to load.
fn registry(config: Option<&Path>) -> anyhow::Result<PluginRegistry> {
    let registry = plugin_registry(config)?;
    for failure in &registry.failures {
        eprintln!("warning: {}", failure.message);
    }
    Ok(registry)
}
