//! Architecture adapters as plugins: discovery, loading, and choosing the adapter for a model.
//!
//! Every adapter — in a plugin library or built in — implements
//! [`tessera_api::ArchitectureAdapter`] and every chain stage [`tessera_api::TokenStage`]; the
//! host sees no difference between them once loaded. The built-in plugin provides the fallback
//! adapter (and the host's own stages), so every graph gets a plan.

mod discovery;
mod dynamic;
mod fallback;
mod graph_summary;
mod validate;

use std::collections::HashSet;
use std::path::PathBuf;

use tessera_api::{
    AbiVersion, AdapterPlan, ArchitectureAdapter, GraphSummary, PluginDescription, PluginInfo,
    TokenStage, ABI_VERSION,
};

use crate::config::Config;
use crate::{Error, Result};
use tessera_onnx::OnnxModel;

pub use discovery::{
    is_plugin_file_name, plugin_files, search_paths, PathSource, PLUGIN_PATH_VARIABLE,
};
pub use fallback::{FallbackAdapter, FALLBACK_ADAPTER, FALLBACK_SCORE};
pub use graph_summary::summarise;
pub use validate::check_plan;

/// Name of the plugin built into the host.
pub const BUILTIN_PLUGIN: &str = "builtin";

/// A plugin ready to use.
pub struct LoadedPlugin {
    /// What it says about itself.
    pub description: PluginDescription,
    /// The library it came from (`None` for the built-in plugin).
    pub path: Option<PathBuf>,
    /// The ABI version it was built with.
    pub abi: AbiVersion,
    /// Its architecture adapters.
    pub adapters: Vec<Box<dyn ArchitectureAdapter>>,
    /// Its chain stages.
    pub stages: Vec<Box<dyn TokenStage>>,
}

impl LoadedPlugin {
    /// The plugin built into the host: the fallback adapter and the given stages.
    pub fn builtin(stages: Vec<Box<dyn TokenStage>>) -> Self {
        let adapters: Vec<Box<dyn ArchitectureAdapter>> = vec![Box::new(FallbackAdapter)];
        Self {
            description: PluginDescription::of(
                PluginInfo::new(
                    BUILTIN_PLUGIN,
                    env!("CARGO_PKG_VERSION"),
                    "fallback adapter for any graph, and the host's own stages",
                ),
                &adapters,
                &stages,
            ),
            path: None,
            abi: ABI_VERSION,
            adapters,
            stages,
        }
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.description.info.name
    }
}

/// A library that looked like a plugin but could not be used.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PluginFailure {
    /// The library.
    pub path: PathBuf,
    /// Why it was not loaded.
    pub message: String,
}

/// Every plugin found, every library that failed to load, and every library skipped because
/// a plugin of the same name was found first.
#[derive(Default)]
pub struct PluginRegistry {
    /// Loaded plugins, the built-in one first.
    pub plugins: Vec<LoadedPlugin>,
    /// Libraries that were found but not loaded.
    pub failures: Vec<PluginFailure>,
    /// Libraries not loaded because an earlier search path provided a plugin of the same name
    /// (e.g. a debug and a release build of it).
    pub shadowed: Vec<PluginFailure>,
}

/// What one adapter said about a model.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AdapterVerdict {
    /// The adapter.
    pub adapter: String,
    /// Its plugin.
    pub plugin: String,
    /// Its score, if it recognised the model with a usable plan.
    pub score: Option<f32>,
    /// Why its plan was refused or it failed, if so.
    pub error: Option<String>,
}

/// The adapter chosen for a model, with its checked plan.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AdapterChoice {
    /// The adapter.
    pub adapter: String,
    /// Its plugin.
    pub plugin: String,
    /// The plan.
    pub plan: AdapterPlan,
    /// What every adapter said.
    pub verdicts: Vec<AdapterVerdict>,
}

impl PluginRegistry {
    /// The built-in plugin with `stages`, plus every plugin library found on the search paths
    /// of `config` (see [`search_paths`]). A library that fails to load is recorded in
    /// `failures`; the rest still load.
    pub fn discover(config: &Config, stages: Vec<Box<dyn TokenStage>>) -> Self {
        let mut registry = Self {
            plugins: vec![LoadedPlugin::builtin(stages)],
            ..Self::default()
        };
        let mut seen = HashSet::new();
        for (path, source) in search_paths(config) {
            if source != PathSource::Executable && !path.exists() {
                registry.failures.push(PluginFailure {
                    path,
                    message: "no such file or folder".into(),
                });
                continue;
            }
            for file in plugin_files(&path) {
                let identity = file.canonicalize().unwrap_or_else(|_| file.clone());
                if seen.insert(identity) {
                    registry.add_library(file);
                }
            }
        }
        registry
    }

    /// Loads one library and adds it, recording why if it cannot be used. A plugin whose name
    /// was already loaded is skipped (`shadowed`); one whose adapter or stage names clash with
    /// another plugin's is refused, since names select them.
    pub fn add_library(&mut self, path: PathBuf) {
        let loaded = dynamic::load(&path).and_then(|plugin| match self.name_clash(&plugin) {
            Some(message) => Err(Error::Plugin {
                subject: format!("plugin {}", path.display()),
                message,
            }),
            None => Ok(plugin),
        });
        match loaded {
            Ok(plugin) => match self
                .plugins
                .iter()
                .find(|other| other.name() == plugin.name())
            {
                Some(other) => self.shadowed.push(PluginFailure {
                    message: format!(
                        "a plugin named {:?} was already loaded from {}",
                        plugin.name(),
                        other
                            .path
                            .as_ref()
                            .map_or_else(|| "the host".into(), |path| path.display().to_string())
                    ),
                    path,
                }),
                None => self.plugins.push(plugin),
            },
            Err(error) => self.failures.push(PluginFailure {
                path,
                message: error.to_string(),
            }),
        }
    }

    /// Why `plugin` cannot join: an adapter or stage name another plugin (of another name)
    /// already uses.
    fn name_clash(&self, plugin: &LoadedPlugin) -> Option<String> {
        self.plugins
            .iter()
            .filter(|other| other.name() != plugin.name())
            .find_map(|other| {
                let adapter = plugin
                    .description
                    .adapters
                    .iter()
                    .find(|name| other.description.adapters.contains(name));
                let stage = plugin.description.stages.iter().find(|stage| {
                    other
                        .description
                        .stages
                        .iter()
                        .any(|theirs| theirs.name == stage.name)
                });
                adapter
                    .map(|name| {
                        format!(
                            "its adapter {name:?} is already provided by plugin {}",
                            other.name()
                        )
                    })
                    .or_else(|| {
                        stage.map(|stage| {
                            format!(
                                "its stage {:?} is already provided by plugin {}",
                                stage.name,
                                other.name()
                            )
                        })
                    })
            })
    }

    /// The stage named `name`, from whichever plugin provides it.
    pub fn stage(&self, name: &str) -> Option<&dyn TokenStage> {
        self.plugins
            .iter()
            .flat_map(|plugin| &plugin.stages)
            .find(|stage| stage.name() == name)
            .map(|stage| stage.as_ref())
    }

    /// Asks every adapter (or only `requested`) about `model` and returns the best checked
    /// plan. A tie between the best adapters is an error: name one with `requested`.
    pub fn choose_adapter(
        &self,
        model: &OnnxModel,
        requested: Option<&str>,
    ) -> Result<AdapterChoice> {
        self.choose_for_summary(&summarise(model), model.name(), requested)
    }

    /// [`choose_adapter`](Self::choose_adapter) for a graph already summarised.
    pub fn choose_for_summary(
        &self,
        graph: &GraphSummary,
        model_name: &str,
        requested: Option<&str>,
    ) -> Result<AdapterChoice> {
        let adapters: Vec<(&LoadedPlugin, &dyn ArchitectureAdapter)> = self
            .plugins
            .iter()
            .flat_map(|plugin| {
                plugin
                    .adapters
                    .iter()
                    .map(move |adapter| (plugin, adapter.as_ref()))
            })
            .filter(|(_, adapter)| requested.is_none_or(|name| adapter.name() == name))
            .collect();
        if let (Some(name), true) = (requested, adapters.is_empty()) {
            let available: Vec<&str> = self
                .plugins
                .iter()
                .flat_map(|plugin| plugin.adapters.iter().map(|adapter| adapter.name()))
                .collect();
            let hint = if self.failures.is_empty() {
                String::new()
            } else {
                format!(
                    "; {} plugin libraries failed to load, see `tessera plugins list`",
                    self.failures.len()
                )
            };
            return Err(Error::Plugin {
                subject: format!("adapter {name}"),
                message: format!(
                    "no adapter has this name (available: {}){hint}",
                    available.join(", ")
                ),
            });
        }
        let mut verdicts = Vec::new();
        let mut plans: Vec<(usize, AdapterPlan)> = Vec::new();
        for (plugin, adapter) in adapters {
            let outcome = adapter.analyse(graph).and_then(|plan| match plan {
                Some(plan) => check_plan(graph, &plan).map(|()| Some(plan)),
                None => Ok(None),
            });
            let (score, error) = match outcome {
                Ok(Some(plan)) => {
                    let score = plan.score;
                    plans.push((verdicts.len(), plan));
                    (Some(score), None)
                }
                Ok(None) => (None, None),
                Err(message) => (None, Some(message)),
            };
            verdicts.push(AdapterVerdict {
                adapter: adapter.name().to_string(),
                plugin: plugin.name().to_string(),
                score,
                error,
            });
        }
        plans.sort_by(|a, b| b.1.score.total_cmp(&a.1.score));
        let mut ranked = plans.into_iter();
        let Some((index, plan)) = ranked.next() else {
            let reasons: Vec<String> = verdicts
                .iter()
                .map(|verdict| match &verdict.error {
                    Some(error) => format!("{} ({}): {error}", verdict.adapter, verdict.plugin),
                    None => format!("{} ({}): not recognised", verdict.adapter, verdict.plugin),
                })
                .collect();
            return Err(Error::Plugin {
                subject: requested
                    .map_or_else(|| "adapters".into(), |name| format!("adapter {name}")),
                message: format!("no usable plan for {model_name}: {}", reasons.join("; ")),
            });
        };
        if let Some((other, tied)) = ranked.next() {
            if tied.score == plan.score {
                return Err(Error::Plugin {
                    subject: format!("adapter {}", verdicts[index].adapter),
                    message: format!(
                        "ties with adapter {} at score {} for {model_name}; choose one with --adapter",
                        verdicts[other].adapter, plan.score
                    ),
                });
            }
        }
        Ok(AdapterChoice {
            adapter: verdicts[index].adapter.clone(),
            plugin: verdicts[index].plugin.clone(),
            plan,
            verdicts,
        })
    }
}
