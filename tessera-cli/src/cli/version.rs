//! `tessera version`: what this build speaks.

use tessera_host::tbf::{VERSION_MAJOR, VERSION_MINOR};
use tessera_host::ABI_VERSION;

use super::output::{print_json, print_text};

/// Prints the program, plugin ABI and token format versions.
pub fn run(json: bool) -> anyhow::Result<()> {
    let program = env!("CARGO_PKG_VERSION");
    let tbf = format!("{VERSION_MAJOR}.{VERSION_MINOR}");
    if json {
        print_json(&serde_json::json!({
            "tessera": program,
            "plugin_abi": ABI_VERSION.to_string(),
            "tbf": tbf,
        }))
    } else {
        print_text(&format!(
            "tessera {program} (plugin ABI {ABI_VERSION}, TBF {tbf})"
        ))
    }
}
