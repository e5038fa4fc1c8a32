//! A plugin: a named bundle of adapters and stages, exported with [`export_plugin!`](crate::export_plugin).

use serde::{Deserialize, Serialize};

use crate::adapter::ArchitectureAdapter;
use crate::stage::{StageKind, TokenStage};

/// Who a plugin is. Built with [`PluginInfo::new`] or [`plugin_info!`](crate::plugin_info).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct PluginInfo {
    /// A short unique name.
    pub name: String,
    /// The plugin's own version.
    pub version: String,
    /// One line on what it provides.
    pub description: String,
}

impl PluginInfo {
    /// The plugin `name` at `version`, described by `description`.
    pub fn new(
        name: impl Into<String>,
        version: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            description: description.into(),
        }
    }
}

/// What a plugin provides, as the host sees it after loading. Built with
/// [`PluginDescription::of`] (from the plugin's adapters and stages) or
/// [`PluginDescription::new`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct PluginDescription {
    /// Who it is.
    pub info: PluginInfo,
    /// The version of `tessera-api` it was built against.
    pub api_version: String,
    /// Names of its architecture adapters.
    pub adapters: Vec<String>,
    /// Its chain stages.
    pub stages: Vec<StageDescription>,
}

impl PluginDescription {
    /// The description of a plugin with `info` providing the adapters named `adapters` and the
    /// stages `stages`, built against this version of `tessera-api`.
    pub fn new(info: PluginInfo, adapters: Vec<String>, stages: Vec<StageDescription>) -> Self {
        Self {
            info,
            api_version: env!("CARGO_PKG_VERSION").to_string(),
            adapters,
            stages,
        }
    }

    /// The description of a plugin with `info` providing `adapters` and `stages`, built against
    /// this version of `tessera-api`.
    pub fn of(
        info: PluginInfo,
        adapters: &[Box<dyn ArchitectureAdapter>],
        stages: &[Box<dyn TokenStage>],
    ) -> Self {
        Self::new(
            info,
            adapters
                .iter()
                .map(|adapter| adapter.name().to_string())
                .collect(),
            stages
                .iter()
                .map(|stage| StageDescription::new(stage.name(), stage.kind()))
                .collect(),
        )
    }
}

/// A stage as listed by the host. Built with [`StageDescription::new`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct StageDescription {
    /// The stage's name.
    pub name: String,
    /// What it does.
    pub kind: StageKind,
}

impl StageDescription {
    /// The stage `name` of kind `kind`.
    pub fn new(name: impl Into<String>, kind: StageKind) -> Self {
        Self {
            name: name.into(),
            kind,
        }
    }
}

/// Implemented once per plugin library.
pub trait Plugin: Send + Sync {
    /// Who the plugin is.
    fn info(&self) -> PluginInfo;

    /// The architecture adapters it provides.
    fn adapters(&self) -> Vec<Box<dyn ArchitectureAdapter>> {
        Vec::new()
    }

    /// The chain stages it provides.
    fn stages(&self) -> Vec<Box<dyn TokenStage>> {
        Vec::new()
    }
}

/// A plugin made of one architecture adapter — the common case — so that a plugin crate needs
/// no `Plugin` implementation of its own:
/// `tessera_api::export_plugin!(AdapterPlugin::new(tessera_api::plugin_info!(), MyAdapter));`
#[non_exhaustive]
pub struct AdapterPlugin<A> {
    info: PluginInfo,
    adapter: A,
}

impl<A: ArchitectureAdapter + Clone + 'static> AdapterPlugin<A> {
    /// The plugin `info` providing `adapter`.
    pub fn new(info: PluginInfo, adapter: A) -> Self {
        Self { info, adapter }
    }
}

impl<A: ArchitectureAdapter + Clone + 'static> Plugin for AdapterPlugin<A> {
    fn info(&self) -> PluginInfo {
        self.info.clone()
    }

    fn adapters(&self) -> Vec<Box<dyn ArchitectureAdapter>> {
        vec![Box::new(self.adapter.clone())]
    }
}

/// The [`PluginInfo`] of the crate invoking it: its package name without a `tessera-plugin-`
/// prefix, its version and its description, from `Cargo.toml`.
#[macro_export]
macro_rules! plugin_info {
    () => {
        $crate::PluginInfo::new(
            env!("CARGO_PKG_NAME").trim_start_matches("tessera-plugin-"),
            env!("CARGO_PKG_VERSION"),
            env!("CARGO_PKG_DESCRIPTION"),
        )
    };
}
