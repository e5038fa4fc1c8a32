//! Peak resident memory of this process over a stretch of work (Linux: `VmHWM`, reset through
//! `/proc/self/clear_refs`).

/// A window over which the process's peak resident set size is measured.
pub struct PeakMemory {
    reset: bool,
}

impl PeakMemory {
    /// Starts a window, resetting the kernel's high-water mark where the system allows it.
    pub fn start() -> Self {
        let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
        Self { reset }
    }

    /// The peak resident set size since [`start`](Self::start), in MiB; `None` where it cannot
    /// be read. Without a reset it is the peak since the process began.
    pub fn peak_mib(&self) -> Option<f64> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let kib: f64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kib / 1024.0)
    }

    /// Whether the window really started at [`start`](Self::start).
    pub fn was_reset(&self) -> bool {
        self.reset
    }
}
