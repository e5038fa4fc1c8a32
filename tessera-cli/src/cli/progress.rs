//! Progress bars on standard error for anything a person waits for (hidden when not a terminal).

use indicatif::{ProgressBar, ProgressStyle};

/// A bar counting up to `total`, labelled `what`.
pub fn progress_bar(total: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    let style = ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} ({elapsed})")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(what.to_string());
    bar
}

/// A spinner with a changing message, for work whose length is not known in advance.
pub fn spinner() -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}

/// One bar per phase of a transfer or an absorption, replaced as the phase changes.
#[derive(Default)]
pub struct PhaseBars {
    current: Option<(tessera_host::transfer::Phase, ProgressBar)>,
}

impl PhaseBars {
    /// Shows `progress`, starting a new bar when its phase changes.
    pub fn update(&mut self, progress: tessera_host::transfer::Progress) {
        if self.current.as_ref().map(|(phase, _)| *phase) != Some(progress.phase) {
            self.finish();
            let bar = progress_bar(progress.total as u64, progress.phase.label());
            self.current = Some((progress.phase, bar));
        }
        if let Some((_, bar)) = &self.current {
            bar.set_position(progress.done as u64);
        }
    }

    /// Clears the last bar.
    pub fn finish(&mut self) {
        if let Some((_, bar)) = self.current.take() {
            bar.finish_and_clear();
        }
    }
}
