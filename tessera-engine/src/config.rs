//! `tessera.toml`: settings a project keeps beside its models. Every key is optional.
//!
//! ```toml
//! [plugins]
//! # Extra plugin libraries, or folders searched for `libtessera_plugin_*` libraries.
//! paths = ["../my-adapter/target/release"]
//!
//! [chain]
//! # The stages a token passes through before it is written, in order.
//! stages = ["privacy", "tbf-export"]
//!
//! # Settings of one stage, by its name.
//! [stages.privacy]
//! epsilon = 1.0
//! delta = 1e-5
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::{Error, Result};
use tessera_fs::IoError;

/// The file name looked for in the working directory.
pub const CONFIG_FILE: &str = "tessera.toml";

/// Where plugins are found.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginSettings {
    /// Plugin library files, or folders searched for `libtessera_plugin_*` libraries; relative
    /// paths are taken from the configuration file's folder. Default: none (the environment
    /// variable `TESSERA_PLUGIN_PATH` and the `tessera` executable's folder are always searched).
    #[serde(default)]
    pub paths: Vec<PathBuf>,
}

/// The chain of stages a token passes through.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainSettings {
    /// Stage names in order. Default: `["privacy", "tbf-export"]`.
    #[serde(default = "default_stages")]
    pub stages: Vec<String>,
}

impl Default for ChainSettings {
    fn default() -> Self {
        Self {
            stages: default_stages(),
        }
    }
}

fn default_stages() -> Vec<String> {
    vec!["privacy".into(), "tbf-export".into()]
}

/// Everything `tessera.toml` may say.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Plugin search settings.
    #[serde(default)]
    pub plugins: PluginSettings,
    /// The token chain.
    #[serde(default)]
    pub chain: ChainSettings,
    /// Settings of each stage, by stage name (handed to the stage as its parameters).
    #[serde(default)]
    pub stages: BTreeMap<String, toml::Table>,
}

impl Config {
    /// Reads `path`, resolving relative plugin paths against its folder.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(IoError::of("read", path))?;
        let mut config: Config = toml::from_str(&text).map_err(|error| Error::Config {
            path: path.to_path_buf(),
            message: error.to_string(),
        })?;
        let folder = path.parent().unwrap_or_else(|| Path::new("."));
        for plugin_path in &mut config.plugins.paths {
            if plugin_path.is_relative() {
                *plugin_path = folder.join(&*plugin_path);
            }
        }
        Ok(config)
    }

    /// `path` if given, else `tessera.toml` in the working directory if present, else defaults.
    pub fn discover(path: Option<&Path>) -> Result<Self> {
        match path {
            Some(path) => Self::load(path),
            None if Path::new(CONFIG_FILE).is_file() => Self::load(Path::new(CONFIG_FILE)),
            None => Ok(Self::default()),
        }
    }

    /// The parameters of stage `name` as JSON.
    pub fn stage_parameters(&self, name: &str) -> serde_json::Map<String, serde_json::Value> {
        self.stages
            .get(name)
            .and_then(|table| serde_json::to_value(table).ok())
            .and_then(|value| value.as_object().cloned())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_has_a_default() {
        let config: Config = toml::from_str("").unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.chain.stages, ["privacy", "tbf-export"]);
    }

    #[test]
    fn relative_plugin_paths_follow_the_file_and_typos_are_refused() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join(CONFIG_FILE);
        std::fs::write(
            &path,
            "[plugins]\npaths = [\"adapters\"]\n[stages.privacy]\nepsilon = 2.0\n",
        )
        .unwrap();
        let config = Config::load(&path).unwrap();
        assert_eq!(config.plugins.paths, [directory.path().join("adapters")]);
        assert_eq!(config.stage_parameters("privacy")["epsilon"], 2.0);
        std::fs::write(&path, "[plugin]\npaths = []\n").unwrap();
        let message = Config::load(&path).unwrap_err().to_string();
        assert!(message.contains("plugin"), "{message}");
    }
}
