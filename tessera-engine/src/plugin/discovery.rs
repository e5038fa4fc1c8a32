//! Where plugins are looked for: the paths in `tessera.toml`, the `TESSERA_PLUGIN_PATH`
//! environment variable (separated like `PATH`), and the folder of the `tessera` executable —
//! so a workspace build finds the bundled plugins with no configuration.

use std::path::{Path, PathBuf};

use crate::config::Config;

/// Environment variable naming extra plugin files or folders.
pub const PLUGIN_PATH_VARIABLE: &str = "TESSERA_PLUGIN_PATH";

/// Where a search path came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PathSource {
    /// `[plugins] paths` in `tessera.toml`.
    Config,
    /// The `TESSERA_PLUGIN_PATH` environment variable.
    Environment,
    /// The folder of the running executable.
    Executable,
}

/// Search paths in order, each with where it came from.
pub fn search_paths(config: &Config) -> Vec<(PathBuf, PathSource)> {
    let mut paths: Vec<(PathBuf, PathSource)> = config
        .plugins
        .paths
        .iter()
        .map(|path| (path.clone(), PathSource::Config))
        .collect();
    if let Some(variable) = std::env::var_os(PLUGIN_PATH_VARIABLE) {
        paths.extend(
            std::env::split_paths(&variable)
                .filter(|path| !path.as_os_str().is_empty())
                .map(|path| (path, PathSource::Environment)),
        );
    }
    if let Some(folder) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
    {
        paths.push((folder, PathSource::Executable));
    }
    paths
}

/// Whether a file name follows the plugin naming convention (`libtessera_plugin_*.so`,
/// `libtessera_plugin_*.dylib`, `tessera_plugin_*.dll`).
pub fn is_plugin_file_name(name: &str) -> bool {
    let stem = name.strip_prefix("lib").unwrap_or(name);
    stem.starts_with("tessera_plugin_")
        && [".so", ".dylib", ".dll"]
            .iter()
            .any(|extension| stem.ends_with(extension))
}

/// The plugin libraries a search path stands for: the file itself, or the conventionally named
/// libraries in a folder (sorted by name).
pub fn plugin_files(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_path_buf()];
    }
    let Ok(entries) = std::fs::read_dir(path) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| {
            path.is_file()
                && path
                    .file_name()
                    .and_then(|name| name.to_str())
                    .is_some_and(is_plugin_file_name)
        })
        .collect();
    files.sort();
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn naming_convention() {
        assert!(is_plugin_file_name("libtessera_plugin_lstm.so"));
        assert!(is_plugin_file_name("tessera_plugin_lstm.dll"));
        assert!(is_plugin_file_name("libtessera_plugin_x.dylib"));
        assert!(!is_plugin_file_name("libtessera_host.so"));
        assert!(!is_plugin_file_name("libtessera_plugin_lstm.rlib"));
    }

    #[test]
    fn folders_list_only_plugins() {
        let directory = tempfile::tempdir().unwrap();
        for name in [
            "libtessera_plugin_b.so",
            "libtessera_plugin_a.so",
            "notes.txt",
        ] {
            std::fs::write(directory.path().join(name), b"").unwrap();
        }
        let files = plugin_files(directory.path());
        let names: Vec<_> = files
            .iter()
            .map(|path| path.file_name().unwrap().to_str().unwrap())
            .collect();
        assert_eq!(names, ["libtessera_plugin_a.so", "libtessera_plugin_b.so"]);
    }
}
