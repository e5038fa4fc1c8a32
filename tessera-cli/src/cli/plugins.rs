//! `tessera plugins list` and `tessera plugins check PATH`.

use std::path::PathBuf;

use tessera_host::plugin::{is_plugin_file_name, LoadedPlugin, PluginRegistry};

use super::output::{field, print_json, print_text};
use tessera_host::jobs::plugin_registry;

/// Arguments of `tessera plugins`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: PluginsCommand,
}

#[derive(Debug, clap::Subcommand)]
enum PluginsCommand {
    /// List every plugin found (name, version, ABI, adapters, stages, file) and every library
    /// that failed to load.
    List,
    /// Load one plugin library and report what it provides, or why it cannot be used.
    Check {
        /// The plugin library (e.g. target/release/libtessera_plugin_mine.so).
        path: PathBuf,
    },
}

/// Runs `tessera plugins`.
pub fn run(args: &Args, config: Option<&std::path::Path>, json: bool) -> anyhow::Result<()> {
    match &args.command {
        PluginsCommand::List => {
            let registry = plugin_registry(config)?;
            if json {
                return print_json(&serde_json::json!({
                    "plugins": registry.plugins.iter().map(plugin_json).collect::<Vec<_>>(),
                    "failures": registry.failures,
                    "shadowed": registry.shadowed,
                }));
            }
            let mut lines = Vec::new();
            for plugin in &registry.plugins {
                lines.extend(plugin_lines(plugin));
            }
            for failure in &registry.failures {
                lines.push(format!(
                    "not loaded: {} — {}",
                    failure.path.display(),
                    failure.message
                ));
            }
            for skipped in &registry.shadowed {
                lines.push(format!(
                    "skipped: {} — {}",
                    skipped.path.display(),
                    skipped.message
                ));
            }
            print_text(&lines.join("\n"))
        }
        PluginsCommand::Check { path } => {
            let mut registry = PluginRegistry::default();
            registry.add_library(path.clone());
            if let Some(failure) = registry.failures.first() {
                anyhow::bail!("{}", failure.message);
            }
            let plugin = &registry.plugins[0];
            if json {
                return print_json(&plugin_json(plugin));
            }
            let mut lines = vec![format!("ok: {} is a usable plugin", path.display())];
            lines.extend(plugin_lines(plugin));
            let conventional = path
                .file_name()
                .and_then(|name| name.to_str())
                .is_some_and(is_plugin_file_name);
            if !conventional {
                lines.push(
                    "note: folder searches only find libraries named libtessera_plugin_<name> \
                     (.so, .dylib, .dll); name it so, or list the file itself in \
                     TESSERA_PLUGIN_PATH or tessera.toml"
                        .into(),
                );
            }
            print_text(&lines.join("\n"))
        }
    }
}

fn plugin_json(plugin: &LoadedPlugin) -> serde_json::Value {
    serde_json::json!({
        "name": plugin.description.info.name,
        "version": plugin.description.info.version,
        "description": plugin.description.info.description,
        "abi": plugin.abi.to_string(),
        "api_version": plugin.description.api_version,
        "adapters": plugin.description.adapters,
        "stages": plugin.description.stages,
        "path": plugin.path.as_ref().map(|path| path.display().to_string()),
    })
}

fn plugin_lines(plugin: &LoadedPlugin) -> Vec<String> {
    let info = &plugin.description.info;
    let stages: Vec<String> = plugin
        .description
        .stages
        .iter()
        .map(|stage| format!("{} ({:?})", stage.name, stage.kind).to_lowercase())
        .collect();
    vec![
        format!("{} {} — {}", info.name, info.version, info.description),
        field("ABI", plugin.abi),
        field("adapters", or_dash(plugin.description.adapters.join(", "))),
        field("stages", or_dash(stages.join(", "))),
        field(
            "loaded from",
            plugin.path.as_ref().map_or_else(
                || "built into the host".into(),
                |path| path.display().to_string(),
            ),
        ),
    ]
}

fn or_dash(text: String) -> String {
    if text.is_empty() {
        "-".into()
    } else {
        text
    }
}
