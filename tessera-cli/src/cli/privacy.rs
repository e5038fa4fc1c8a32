//! `tessera privacy ledger show`: what has been spent, per data set, in the privacy ledger.

use std::path::PathBuf;

use tessera_host::privacy::PrivacyLedger;

use super::output::{field, print_json, print_text};
use tessera_host::jobs::{ledger_path, rule_name};

/// Arguments of `tessera privacy`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// The privacy ledger.
    Ledger {
        #[command(subcommand)]
        command: LedgerCommand,
    },
}

#[derive(Debug, clap::Subcommand)]
enum LedgerCommand {
    /// Print every data set's budget, releases and totals.
    Show {
        /// The ledger file [default: as `tessera emit` uses].
        #[arg(long, value_name = "FILE")]
        ledger: Option<PathBuf>,

        /// Only this data set.
        #[arg(long, value_name = "ID")]
        dataset: Option<String>,
    },
}

/// Runs `tessera privacy`.
pub fn run(args: &Args, json: bool) -> anyhow::Result<()> {
    let Command::Ledger {
        command: LedgerCommand::Show { ledger, dataset },
    } = &args.command;
    let ledger = PrivacyLedger::open(ledger_path(ledger.as_deref())?)?;
    let ids: Vec<String> = match dataset {
        Some(id) if ledger.dataset(id).is_none() => {
            anyhow::bail!("{}: no data set {id:?}", ledger.path().display())
        }
        Some(id) => vec![id.clone()],
        None => ledger.datasets().into_iter().map(String::from).collect(),
    };
    let mut entries = Vec::new();
    for id in &ids {
        if let (Some(entry), Some(summary)) = (ledger.dataset(id), ledger.summary(id)?) {
            entries.push((id, entry, summary));
        }
    }
    if json {
        return print_json(&serde_json::json!({
            "ledger": ledger.path().display().to_string(),
            "datasets": entries.iter().map(|(id, entry, summary)| serde_json::json!({
                "dataset": id,
                "budget": entry.budget,
                "releases": entry.releases,
                "summary": summary,
            })).collect::<Vec<_>>(),
        }));
    }
    let mut lines = vec![format!(
        "privacy ledger {} ({} data sets)",
        ledger.path().display(),
        entries.len()
    )];
    for (id, entry, summary) in &entries {
        lines.push(id.to_string());
        lines.push(field(
            "budget",
            entry
                .budget
                .map(|b| format!("epsilon {}, delta {}", b.epsilon, b.delta))
                .unwrap_or_else(|| "none".into()),
        ));
        lines.push(field(
            "spent",
            format!(
                "epsilon {:.4}, delta {:.2e} ({} composition; basic: epsilon {:.4})",
                summary.total.epsilon,
                summary.total.delta,
                rule_name(summary.rule),
                summary.basic.epsilon
            ),
        ));
        for release in &entry.releases {
            lines.push(field(
                "release",
                format!(
                    "{} epsilon {}, delta {:.2e}: {}",
                    release.recorded_at, release.epsilon, release.delta, release.label
                ),
            ));
        }
    }
    print_text(&lines.join("\n"))
}
