//! Renders a [`CrossArchResults`] for people: one self-contained HTML page (inline CSS, charts
//! embedded as PNG data URLs) and the PNG charts themselves, plus the per-variant summaries that
//! both the page and the command-line table show.
//!
//! Charts are drawn with `plotters` on an in-memory RGB buffer and encoded with `png`; their text
//! uses DejaVu Sans, compiled into the binary, so rendering needs no system fonts or libraries.

mod charts;
mod html;

pub use charts::line_chart;

use super::results::{CrossArchResults, PairResult, PredecessorPair, TaskResults};

/// A rendered report: the HTML page and the charts it embeds, as PNG files.
#[derive(Debug, Clone)]
pub struct RenderedReport {
    /// The self-contained page (UTF-8, charts embedded as `data:image/png;base64,` URLs).
    pub html: String,
    /// Every chart of every task, in page order.
    pub charts: Vec<Chart>,
}

/// One chart, encoded as a PNG file.
#[derive(Debug, Clone)]
pub struct Chart {
    /// File name to save it under, e.g. `toy-accuracy.png` (letters, digits, `-` and `_` only).
    pub file_name: String,
    /// What it shows, in words (also its caption on the page).
    pub title: String,
    /// The PNG file's bytes.
    pub png: Vec<u8>,
}

/// Renders the HTML page and the PNG charts of a benchmark run.
pub fn render(results: &CrossArchResults) -> crate::Result<RenderedReport> {
    let mut used_stems = Vec::new();
    let mut per_task = Vec::with_capacity(results.tasks.len());
    for task in &results.tasks {
        let stem = unique_stem(&task.task, &mut used_stems);
        per_task.push(charts::task_charts(task, &stem)?);
    }
    let html = html::page(results, &per_task);
    Ok(RenderedReport {
        html,
        charts: per_task.into_iter().flatten().collect(),
    })
}

/// The headline figures of one objective variant over a task's pairs.
#[derive(Debug, Clone, PartialEq)]
pub struct VariantSummary {
    /// Variant name.
    pub variant: String,
    /// What the variant changes, in words (empty for a variant the task does not describe).
    pub description: String,
    /// How many pairs (rows) it ran.
    pub pairs: usize,
    /// Pairs whose agreement with the transmitter is higher after the transfer than before.
    pub improved: usize,
    /// Mean agreement with the transmitter before transfer (`None` without pairs).
    pub mean_agreement_before: Option<f64>,
    /// Mean agreement with the transmitter after transfer.
    pub mean_agreement_after: Option<f64>,
    /// Mean receiver accuracy before transfer.
    pub mean_rx_accuracy_before: Option<f64>,
    /// Mean receiver accuracy after transfer.
    pub mean_rx_accuracy_after: Option<f64>,
    /// Mean transmitter accuracy over the same pairs.
    pub mean_tx_accuracy: Option<f64>,
    /// Mean wall-clock seconds per transfer.
    pub mean_seconds: Option<f64>,
}

/// One summary per variant of `task`: its listed variants in order (the default first), then any
/// variant that appears only in the rows.
pub fn summarise(task: &TaskResults) -> Vec<VariantSummary> {
    variants(task)
        .into_iter()
        .map(|(variant, description)| {
            let rows = rows_of(task, &variant);
            let mean = |field: fn(&PairResult) -> f64| {
                (!rows.is_empty())
                    .then(|| rows.iter().map(|row| field(row)).sum::<f64>() / rows.len() as f64)
            };
            VariantSummary {
                pairs: rows.len(),
                improved: rows
                    .iter()
                    .filter(|row| row.agreement_after > row.agreement_before)
                    .count(),
                mean_agreement_before: mean(|row| row.agreement_before),
                mean_agreement_after: mean(|row| row.agreement_after),
                mean_rx_accuracy_before: mean(|row| row.rx_accuracy_before),
                mean_rx_accuracy_after: mean(|row| row.rx_accuracy_after),
                mean_tx_accuracy: mean(|row| row.tx_accuracy),
                mean_seconds: mean(|row| row.seconds),
                variant,
                description,
            }
        })
        .collect()
}

/// A pair's label: `transmitter→receiver`.
pub fn pair_label(transmitter: &str, receiver: &str) -> String {
    format!("{transmitter}→{receiver}")
}

/// The task's variants as (name, description): the listed ones in order, then names that only
/// rows carry, in order of first appearance.
fn variants(task: &TaskResults) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = task
        .variants
        .iter()
        .map(|info| (info.name.clone(), info.description.clone()))
        .collect();
    for row in &task.rows {
        if !out.iter().any(|(name, _)| *name == row.variant) {
            out.push((row.variant.clone(), String::new()));
        }
    }
    out
}

/// The default variant: the first listed, else the first found in the rows.
fn default_variant(task: &TaskResults) -> Option<String> {
    variants(task).into_iter().next().map(|(name, _)| name)
}

/// The rows of one variant, in recorded order.
fn rows_of<'t>(task: &'t TaskResults, variant: &str) -> Vec<&'t PairResult> {
    task.rows
        .iter()
        .filter(|row| row.variant == variant)
        .collect()
}

/// The predecessor's figures for the pair of `row`, if it has them.
fn predecessor_of<'t>(task: &'t TaskResults, row: &PairResult) -> Option<&'t PredecessorPair> {
    task.predecessor
        .iter()
        .find(|pair| pair.transmitter == row.transmitter && pair.receiver == row.receiver)
}

/// A file-name stem for a task: its name with anything but ASCII letters, digits, `-` and `_`
/// replaced by `-`, made unique among `used` by a numeric suffix.
fn unique_stem(task: &str, used: &mut Vec<String>) -> String {
    let mut base: String = task
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if base.is_empty() {
        base = "task".into();
    }
    let mut stem = base.clone();
    let mut n = 2;
    while used.contains(&stem) {
        stem = format!("{base}-{n}");
        n += 1;
    }
    used.push(stem.clone());
    stem
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cross_arch::results::VariantInfo;

    #[allow(clippy::too_many_arguments)]
    fn row(
        variant: &str,
        tx: &str,
        rx: &str,
        tx_acc: f64,
        rx_before: f64,
        rx_after: f64,
        agree_before: f64,
        agree_after: f64,
        seconds: f64,
    ) -> PairResult {
        PairResult {
            variant: variant.into(),
            transmitter: tx.into(),
            receiver: rx.into(),
            tx_accuracy: tx_acc,
            rx_accuracy_before: rx_before,
            rx_accuracy_after: rx_after,
            agreement_before: agree_before,
            agreement_after: agree_after,
            kl_before: 1.25,
            kl_after: 0.125,
            cka_after: 0.75,
            hub_retrieval: 0.875,
            round_trip_error: 0.0625,
            drift: 0.5,
            seconds,
        }
    }

    /// One task, two variants, three pairs each, one predecessor entry; one name needs escaping.
    pub(crate) fn sample() -> CrossArchResults {
        let pairs = [
            ("mlp_32", "conv_<8>"),
            ("conv_<8>", "lstm_16"),
            ("lstm_16", "mlp_32"),
        ];
        let mut rows = Vec::new();
        let full = [
            (0.9, 0.5, 0.8, 0.4, 0.85, 2.0),
            (0.8, 0.6, 0.7, 0.5, 0.45, 4.0),
            (0.7, 0.4, 0.6, 0.3, 0.6, 6.0),
        ];
        let ablation = [
            (0.9, 0.5, 0.6, 0.4, 0.5, 1.0),
            (0.8, 0.6, 0.6, 0.5, 0.5, 1.5),
            (0.7, 0.4, 0.5, 0.3, 0.2, 2.0),
        ];
        for (variant, figures) in [("full", full), ("output-only", ablation)] {
            for ((tx, rx), (t, rb, ra, ab, aa, s)) in pairs.iter().zip(figures) {
                rows.push(row(variant, tx, rx, t, rb, ra, ab, aa, s));
            }
        }
        CrossArchResults {
            started: "2026-01-02T03:04:05Z".into(),
            machine: "2 cores & 8 GiB".into(),
            mode: "quick".into(),
            hub_dim: 64,
            peak_rss_mib: 512.75,
            total_seconds: 16.5,
            tasks: vec![TaskResults {
                task: "toy".into(),
                train_inputs: 1000,
                val_inputs: 200,
                variants: vec![
                    VariantInfo {
                        name: "full".into(),
                        description: "every loss term".into(),
                    },
                    VariantInfo {
                        name: "output-only".into(),
                        description: "outputs only, no <hub> terms".into(),
                    },
                ],
                rows,
                predecessor: vec![PredecessorPair {
                    transmitter: "mlp_32".into(),
                    receiver: "conv_<8>".into(),
                    published_accuracy_change: Some(3.5),
                    agreement_after: Some(0.625),
                    rx_accuracy_after: Some(0.75),
                    tx_accuracy: Some(0.9),
                    seconds: Some(8.0),
                }],
            }],
        }
    }

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-12)
    }

    #[test]
    fn summaries_are_hand_computed_means() {
        let results = sample();
        let summaries = summarise(&results.tasks[0]);
        assert_eq!(summaries.len(), 2);
        let full = &summaries[0];
        assert_eq!(full.variant, "full");
        assert_eq!(full.description, "every loss term");
        assert_eq!(full.pairs, 3);
        assert_eq!(full.improved, 2);
        assert!(close(full.mean_agreement_before, 0.4));
        assert!(close(full.mean_agreement_after, (0.85 + 0.45 + 0.6) / 3.0));
        assert!(close(full.mean_rx_accuracy_before, 0.5));
        assert!(close(full.mean_rx_accuracy_after, 0.7));
        assert!(close(full.mean_tx_accuracy, 0.8));
        assert!(close(full.mean_seconds, 4.0));
        let ablation = &summaries[1];
        assert_eq!(ablation.variant, "output-only");
        assert_eq!(ablation.improved, 1);
        assert!(close(ablation.mean_agreement_after, 0.4));
        assert!(close(ablation.mean_seconds, 1.5));
    }

    #[test]
    fn summaries_cover_unlisted_variants_and_empty_ones() {
        let mut results = sample();
        let task = &mut results.tasks[0];
        task.variants.push(VariantInfo {
            name: "hub-only".into(),
            description: String::new(),
        });
        task.rows[5].variant = "stray".into();
        let summaries = summarise(task);
        let names: Vec<&str> = summaries.iter().map(|s| s.variant.as_str()).collect();
        assert_eq!(names, ["full", "output-only", "hub-only", "stray"]);
        assert_eq!(summaries[2].pairs, 0);
        assert_eq!(summaries[2].mean_agreement_after, None);
        assert_eq!(summaries[3].pairs, 1);
        assert!(close(summaries[3].mean_agreement_after, 0.2));
    }

    #[test]
    fn stems_are_safe_and_unique() {
        let mut used = Vec::new();
        assert_eq!(unique_stem("toy", &mut used), "toy");
        assert_eq!(unique_stem("toy", &mut used), "toy-2");
        assert_eq!(unique_stem("a/b c", &mut used), "a-b-c");
        assert_eq!(unique_stem("", &mut used), "task");
    }
}
