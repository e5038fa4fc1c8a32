//! Atomic file output: a write either replaces the destination completely or leaves it untouched.
//!
//! Bytes go to a temporary file in the destination's directory (so the final rename never
//! crosses a file system), are flushed to disk, and the temporary file is then renamed over the
//! destination. If anything fails, the temporary file is removed and no partial output remains.
//! [`IoError`] is how every Tessera crate reports a file the system refused.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The operating system refused a read or write of a file: what was attempted, on which file,
/// and the system's error as the source. Every Tessera crate's error holds it as its `Io` case.
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} {path}")]
pub struct IoError {
    /// What was being attempted ("read", "write", ...).
    pub action: &'static str,
    /// The file concerned.
    pub path: PathBuf,
    /// The underlying error.
    #[source]
    pub source: io::Error,
}

impl IoError {
    /// The error for `action` on `path`, given the system's error: for `map_err`.
    pub fn of<'p>(action: &'static str, path: &'p Path) -> impl FnOnce(io::Error) -> IoError + 'p {
        move |source| IoError {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Writes `bytes` to `path` atomically; see the module documentation.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomically_with(path, |file| file.write_all(bytes))
}

/// Lets `write` fill a temporary file, then moves it to `path`; see the module documentation.
pub fn write_atomically_with(
    path: &Path,
    write: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<()> {
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut temporary = tempfile::Builder::new()
        .prefix(".tessera-")
        .suffix(".partial")
        .tempfile_in(directory)?;
    write(temporary.as_file_mut())?;
    // Temporary files are private (0600); the result should be an ordinary file.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        temporary
            .as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    temporary.as_file().sync_all()?;
    temporary.persist(path).map_err(|error| error.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_existing_file_and_leaves_no_temporaries() {
        let directory = tempfile::tempdir().unwrap();
        let target = directory.path().join("out.bin");
        std::fs::write(&target, b"old contents").unwrap();
        write_atomically(&target, b"new").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        let entries: Vec<_> = std::fs::read_dir(directory.path()).unwrap().collect();
        assert_eq!(entries.len(), 1, "only the destination remains");
    }

    #[test]
    fn failure_leaves_destination_absent() {
        let directory = tempfile::tempdir().unwrap();
        let target = directory.path().join("missing-dir").join("out.bin");
        assert!(write_atomically(&target, b"x").is_err());
        assert!(!target.exists());
    }
}
