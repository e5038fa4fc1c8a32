//! Writing results to standard output, tolerating a closed pipe (`tessera inspect ... | head`).

use std::io::{self, Write};

/// Prints `text` followed by a newline.
pub fn print_text(text: &str) -> anyhow::Result<()> {
    let mut stdout = io::stdout().lock();
    match writeln!(stdout, "{text}").and_then(|()| stdout.flush()) {
        Err(error) if error.kind() != io::ErrorKind::BrokenPipe => Err(error.into()),
        _ => Ok(()),
    }
}

/// Prints `value` as pretty JSON.
pub fn print_json(value: &serde_json::Value) -> anyhow::Result<()> {
    print_text(&serde_json::to_string_pretty(value)?)
}

/// A label and value on one aligned line.
pub fn field(label: &str, value: impl std::fmt::Display) -> String {
    format!("  {label:<18}{value}")
}
