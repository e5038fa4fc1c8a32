//! The folders an MCP client may reach: every path argument is resolved — symbolic links
//! included — and refused unless it lies under one of them.

use std::path::{Component, Path, PathBuf};

/// The resolved roots of a server.
#[derive(Debug, Clone)]
pub struct Roots {
    roots: Vec<PathBuf>,
}

impl Roots {
    /// Resolves each root (they must exist and be folders).
    pub fn new(roots: &[PathBuf]) -> anyhow::Result<Self> {
        if roots.is_empty() {
            anyhow::bail!("name at least one --root folder the server may read and write under");
        }
        let roots = roots
            .iter()
            .map(|root| {
                let resolved = root
                    .canonicalize()
                    .map_err(|error| anyhow::anyhow!("--root {}: {error}", root.display()))?;
                if !resolved.is_dir() {
                    anyhow::bail!("--root {} is not a folder", root.display());
                }
                Ok(resolved)
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self { roots })
    }

    /// `path` (relative paths are taken from the first root) resolved, if it lies under a
    /// root. `existing`: the file must exist (an input); otherwise its folder must, and the
    /// file, if present, is resolved too (an output).
    pub fn resolve(&self, path: &str, existing: bool) -> Result<PathBuf, String> {
        let given = Path::new(path);
        let joined = if given.is_absolute() {
            given.to_path_buf()
        } else {
            self.roots[0].join(given)
        };
        let resolved = if existing || joined.exists() {
            joined
                .canonicalize()
                .map_err(|error| format!("{path}: {error}"))?
        } else {
            let name = match joined.components().next_back() {
                Some(Component::Normal(name)) => name.to_owned(),
                _ => return Err(format!("{path}: not a file name")),
            };
            let folder = joined
                .parent()
                .ok_or_else(|| format!("{path}: no folder"))?
                .canonicalize()
                .map_err(|error| format!("{path}: its folder: {error}"))?;
            folder.join(name)
        };
        if self.roots.iter().any(|root| resolved.starts_with(root)) {
            Ok(resolved)
        } else {
            Err(format!(
                "{path} resolves to {}, outside the server's roots ({}); only files under them \
                 can be read or written",
                resolved.display(),
                self.roots
                    .iter()
                    .map(|root| root.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_outside_the_roots_are_refused_however_they_are_spelled() {
        let outer = tempfile::tempdir().unwrap();
        let root = outer.path().join("root");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join("inside.tbf"), b"x").unwrap();
        std::fs::write(outer.path().join("outside.tbf"), b"x").unwrap();
        std::os::unix::fs::symlink(outer.path().join("outside.tbf"), root.join("link.tbf"))
            .unwrap();
        std::os::unix::fs::symlink(outer.path(), root.join("escape")).unwrap();
        let roots = Roots::new(std::slice::from_ref(&root)).unwrap();

        assert!(roots.resolve("inside.tbf", true).is_ok());
        let absolute = root.join("inside.tbf");
        assert!(roots.resolve(absolute.to_str().unwrap(), true).is_ok());
        assert!(roots.resolve("new.onnx", false).is_ok());
        for escaping in [
            "../outside.tbf",
            "link.tbf",
            "escape/outside.tbf",
            "escape/new.tbf",
        ] {
            let error = roots.resolve(escaping, false).unwrap_err();
            assert!(
                error.contains("outside the server's roots"),
                "{escaping}: {error}"
            );
        }
        let outside = outer.path().join("outside.tbf");
        assert!(roots.resolve(outside.to_str().unwrap(), true).is_err());
        assert!(roots.resolve("missing.tbf", true).is_err());
        assert!(roots.resolve("..", false).is_err());
    }
}
