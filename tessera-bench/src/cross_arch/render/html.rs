//! The self-contained HTML page of a benchmark run: inline CSS, no scripts, charts embedded as
//! `data:image/png;base64,` URLs. Per task: the context, a summary line per variant, the full pair
//! table of each variant, the predecessor side by side with the default variant, and the charts.

use std::fmt::Write as _;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

use super::{
    default_variant, pair_label, predecessor_of, rows_of, summarise, variants, Chart,
    VariantSummary,
};
use crate::cross_arch::results::{CrossArchResults, PairResult, TaskResults};

const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;\
margin:2rem auto;max-width:1200px;padding:0 1rem;color:#222;line-height:1.4}\
h1{font-size:1.6rem}h2{font-size:1.3rem;margin-top:2.5rem;border-bottom:1px solid #ccc}\
h3{font-size:1.05rem;margin-top:1.6rem}\
table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:.85rem}\
th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}\
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}\
td.up{color:#1a7f37}td.down{color:#b42318}\
.scroll{overflow-x:auto}.muted{color:#666}\
ul.summary li{margin:.3rem 0}\
figure{margin:1rem 0}figure img{max-width:100%;height:auto;border:1px solid #eee}\
figcaption{font-size:.85rem;color:#555}";

/// The whole page. `charts[i]` are the charts of `results.tasks[i]`.
pub(super) fn page(results: &CrossArchResults, charts: &[Vec<Chart>]) -> String {
    let mut out = String::new();
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = writeln!(
        out,
        "<title>Tessera cross-architecture benchmark, {}</title>",
        escape(&results.started)
    );
    let _ = writeln!(out, "<style>{STYLE}</style>\n</head>\n<body>");
    out.push_str("<h1>Tessera cross-architecture transfer benchmark</h1>\n");
    let _ = writeln!(
        out,
        "<p class=\"muted\">Run started {}; {} mode; {} task{}.</p>",
        escape(&results.started),
        escape(&results.mode),
        results.tasks.len(),
        if results.tasks.len() == 1 { "" } else { "s" }
    );
    if results.tasks.len() > 1 {
        out.push_str("<p>Tasks: ");
        for (i, task) in results.tasks.iter().enumerate() {
            let separator = if i == 0 { "" } else { ", " };
            let _ = write!(
                out,
                "{separator}<a href=\"#task-{i}\">{}</a>",
                escape(&task.task)
            );
        }
        out.push_str("</p>\n");
    }
    for (i, task) in results.tasks.iter().enumerate() {
        let no_charts = Vec::new();
        task_section(
            &mut out,
            results,
            task,
            i,
            charts.get(i).unwrap_or(&no_charts),
        );
    }
    out.push_str("</body>\n</html>\n");
    out
}

/// One task's section.
fn task_section(
    out: &mut String,
    results: &CrossArchResults,
    task: &TaskResults,
    index: usize,
    charts: &[Chart],
) {
    let _ = writeln!(
        out,
        "<section id=\"task-{index}\">\n<h2>Task {}</h2>",
        escape(&task.task)
    );

    out.push_str("<h3>Context</h3>\n<table class=\"context\">\n");
    let context = [
        ("Machine", results.machine.clone()),
        ("Mode", results.mode.clone()),
        ("Hub width", results.hub_dim.to_string()),
        (
            "Unlabelled training inputs per transfer",
            task.train_inputs.to_string(),
        ),
        ("Held-out validation inputs", task.val_inputs.to_string()),
        (
            "Total time of the run",
            format!("{} s", seconds(results.total_seconds)),
        ),
        (
            "Peak memory of the run",
            format!("{:.1} MiB", results.peak_rss_mib),
        ),
    ];
    for (name, value) in context {
        let _ = writeln!(
            out,
            "<tr><th>{}</th><td>{}</td></tr>",
            escape(name),
            escape(&value)
        );
    }
    out.push_str("</table>\n");

    let summaries = summarise(task);
    out.push_str("<h3>Summary</h3>\n");
    if summaries.is_empty() {
        out.push_str("<p class=\"muted\">No transfers were recorded for this task.</p>\n");
    } else {
        out.push_str("<ul class=\"summary\">\n");
        for (i, summary) in summaries.iter().enumerate() {
            summary_item(out, summary, i == 0);
        }
        out.push_str("</ul>\n");
    }

    for (variant, description) in variants(task) {
        let _ = writeln!(out, "<h3>Pairs, variant {}</h3>", escape(&variant));
        if !description.is_empty() {
            let _ = writeln!(out, "<p class=\"muted\">{}</p>", escape(&description));
        }
        pair_table(out, &rows_of(task, &variant));
    }

    predecessor_section(out, task);

    if !charts.is_empty() {
        out.push_str("<h3>Charts</h3>\n");
        for chart in charts {
            let _ = writeln!(
                out,
                "<figure><img src=\"data:image/png;base64,{}\" alt=\"{}\"><figcaption>{} \
                 <span class=\"muted\">({})</span></figcaption></figure>",
                BASE64.encode(&chart.png),
                escape(&chart.title),
                escape(&chart.title),
                escape(&chart.file_name)
            );
        }
    }
    out.push_str("</section>\n");
}

/// One variant's summary line.
fn summary_item(out: &mut String, summary: &VariantSummary, is_default: bool) {
    let _ = write!(out, "<li><strong>{}</strong>", escape(&summary.variant));
    if is_default {
        out.push_str(" (default)");
    }
    if !summary.description.is_empty() {
        let _ = write!(
            out,
            " <span class=\"muted\">{}</span>",
            escape(&summary.description)
        );
    }
    if summary.pairs == 0 {
        out.push_str(": no pairs.</li>\n");
        return;
    }
    let _ = writeln!(
        out,
        ": mean agreement {} → {}; mean receiver accuracy after {} (before {}) vs mean \
         transmitter accuracy {}; agreement improved in {} of {} pairs; {} s per transfer \
         (mean).</li>",
        optional(summary.mean_agreement_before, number),
        optional(summary.mean_agreement_after, number),
        optional(summary.mean_rx_accuracy_after, number),
        optional(summary.mean_rx_accuracy_before, number),
        optional(summary.mean_tx_accuracy, number),
        summary.improved,
        summary.pairs,
        optional(summary.mean_seconds, seconds),
    );
}

/// Every field of every row of one variant.
fn pair_table(out: &mut String, rows: &[&PairResult]) {
    if rows.is_empty() {
        out.push_str("<p class=\"muted\">No pairs.</p>\n");
        return;
    }
    out.push_str(
        "<div class=\"scroll\"><table>\n<tr><th>Transmitter</th><th>Receiver</th>\
         <th>Tx accuracy</th><th>Rx accuracy before</th><th>Rx accuracy after</th>\
         <th>Δ rx accuracy</th><th>Agreement before</th><th>Agreement after</th>\
         <th>KL before</th><th>KL after</th><th>CKA after</th><th>Hub retrieval</th>\
         <th>Round-trip error</th><th>Drift</th><th>Seconds</th></tr>\n",
    );
    for row in rows {
        let trend = if row.agreement_after > row.agreement_before {
            "num up"
        } else if row.agreement_after < row.agreement_before {
            "num down"
        } else {
            "num"
        };
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td>",
            escape(&row.transmitter),
            escape(&row.receiver)
        );
        for value in [
            row.tx_accuracy,
            row.rx_accuracy_before,
            row.rx_accuracy_after,
        ] {
            cell(out, "num", &number(value));
        }
        cell(
            out,
            "num",
            &signed(row.rx_accuracy_after - row.rx_accuracy_before),
        );
        cell(out, "num", &number(row.agreement_before));
        cell(out, trend, &number(row.agreement_after));
        for value in [
            row.kl_before,
            row.kl_after,
            row.cka_after,
            row.hub_retrieval,
            row.round_trip_error,
            row.drift,
        ] {
            cell(out, "num", &number(value));
        }
        cell(out, "num", &seconds(row.seconds));
        out.push_str("</tr>\n");
    }
    out.push_str("</table></div>\n");
}

/// The predecessor's figures beside the default variant's, for the pairs both have.
fn predecessor_section(out: &mut String, task: &TaskResults) {
    if task.predecessor.is_empty() {
        return;
    }
    let variant = default_variant(task).unwrap_or_default();
    let _ = writeln!(
        out,
        "<h3>Predecessor, side by side with variant {}</h3>",
        escape(&variant)
    );
    let rows = rows_of(task, &variant);
    let matched: Vec<_> = rows
        .iter()
        .filter_map(|row| predecessor_of(task, row).map(|pair| (*row, pair)))
        .collect();
    if matched.is_empty() {
        out.push_str("<p class=\"muted\">None of the predecessor's pairs was run here.</p>\n");
    } else {
        out.push_str(
            "<div class=\"scroll\"><table>\n<tr><th rowspan=\"2\">Transmitter</th>\
             <th rowspan=\"2\">Receiver</th><th rowspan=\"2\">Published Δ accuracy (points)</th>\
             <th colspan=\"2\">Agreement after</th><th colspan=\"2\">Rx accuracy after</th>\
             <th colspan=\"2\">Tx accuracy</th><th colspan=\"2\">Seconds</th>\
             <th rowspan=\"2\">Time ratio predecessor / ours</th></tr>\n<tr>\
             <th>predecessor</th><th>ours</th><th>predecessor</th><th>ours</th>\
             <th>predecessor</th><th>ours</th><th>predecessor</th><th>ours</th></tr>\n",
        );
        for (row, pair) in &matched {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td>",
                escape(&row.transmitter),
                escape(&row.receiver)
            );
            cell(
                out,
                "num",
                &optional(pair.published_accuracy_change, signed),
            );
            cell(out, "num", &optional(pair.agreement_after, number));
            cell(out, "num", &number(row.agreement_after));
            cell(out, "num", &optional(pair.rx_accuracy_after, number));
            cell(out, "num", &number(row.rx_accuracy_after));
            cell(out, "num", &optional(pair.tx_accuracy, number));
            cell(out, "num", &number(row.tx_accuracy));
            cell(out, "num", &optional(pair.seconds, seconds));
            cell(out, "num", &seconds(row.seconds));
            let ratio = pair
                .seconds
                .filter(|_| row.seconds > 0.0)
                .map(|theirs| theirs / row.seconds);
            cell(out, "num", &optional(ratio, |r| format!("{r:.2}×")));
            out.push_str("</tr>\n");
        }
        out.push_str("</table></div>\n");
    }
    let unmatched: Vec<String> = task
        .predecessor
        .iter()
        .filter(|pair| {
            !rows
                .iter()
                .any(|row| row.transmitter == pair.transmitter && row.receiver == pair.receiver)
        })
        .map(|pair| pair_label(&pair.transmitter, &pair.receiver))
        .collect();
    if !unmatched.is_empty() {
        let _ = writeln!(
            out,
            "<p class=\"muted\">Predecessor pairs not run here: {}.</p>",
            escape(&unmatched.join(", "))
        );
    }
}

/// A table cell of class `class` holding already formatted (unescaped) text.
fn cell(out: &mut String, class: &str, text: &str) {
    let _ = write!(out, "<td class=\"{class}\">{}</td>", escape(text));
}

/// A figure to 3 decimals.
fn number(value: f64) -> String {
    format!("{value:.3}")
}

/// A change to 3 decimals, with its sign.
fn signed(value: f64) -> String {
    format!("{value:+.3}")
}

/// Seconds to 1 decimal.
fn seconds(value: f64) -> String {
    format!("{value:.1}")
}

/// A formatted optional figure, `—` when absent.
fn optional(value: Option<f64>, format: impl Fn(f64) -> String) -> String {
    value.map_or_else(|| "—".to_string(), format)
}

/// `text` safe to put in HTML element content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::tests::sample;
    use super::super::{render, RenderedReport};
    use super::*;

    fn report() -> RenderedReport {
        render(&sample()).expect("report")
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape(r#"<a href="x">Tom & Jerry's</a>"#),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&#39;s&lt;/a&gt;"
        );
        assert_eq!(escape("plain→text"), "plain→text");
    }

    #[test]
    fn page_has_context_summaries_tables_and_charts() {
        let report = report();
        let html = &report.html;
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.trim_end().ends_with("</html>"));
        // Self-contained: no external resources.
        assert!(
            !html.contains("src=\"http") && !html.contains("<link") && !html.contains("<script")
        );

        // Context, escaped.
        assert!(html.contains("<h2>Task toy</h2>"));
        assert!(html.contains("2 cores &amp; 8 GiB"));
        assert!(html.contains("<td>64</td>"));
        assert!(html.contains("<td>1000</td>") && html.contains("<td>200</td>"));
        assert!(html.contains("16.5 s") && html.contains("512.8 MiB"));

        // Summary lines, with hand-computed means.
        assert!(html.contains(
            "<li><strong>full</strong> (default) <span class=\"muted\">every loss term</span>: \
             mean agreement 0.400 → 0.633; mean receiver accuracy after 0.700 (before 0.500) vs \
             mean transmitter accuracy 0.800; agreement improved in 2 of 3 pairs; 4.0 s per \
             transfer (mean).</li>"
        ));
        assert!(html.contains("agreement improved in 1 of 3 pairs"));
        assert!(html.contains("outputs only, no &lt;hub&gt; terms"));

        // One pair table per variant, every row, names escaped, never raw.
        assert!(html.contains("<h3>Pairs, variant full</h3>"));
        assert!(html.contains("<h3>Pairs, variant output-only</h3>"));
        assert_eq!(html.matches("<td>conv_&lt;8&gt;</td>").count(), 2 * 2 + 1);
        assert!(!html.contains("conv_<8>"));
        assert!(html.contains(
            "<tr><td>mlp_32</td><td>conv_&lt;8&gt;</td><td class=\"num\">0.900</td>\
             <td class=\"num\">0.500</td><td class=\"num\">0.800</td><td class=\"num\">+0.300</td>\
             <td class=\"num\">0.400</td><td class=\"num up\">0.850</td>\
             <td class=\"num\">1.250</td><td class=\"num\">0.125</td><td class=\"num\">0.750</td>\
             <td class=\"num\">0.875</td><td class=\"num\">0.062</td><td class=\"num\">0.500</td>\
             <td class=\"num\">2.0</td></tr>"
        ));
        assert!(html.contains("<td class=\"num down\">0.450</td>"));

        // Predecessor side by side: published change, theirs vs ours, time ratio 8 / 2.
        assert!(html.contains("<h3>Predecessor, side by side with variant full</h3>"));
        assert!(html.contains(
            "<td class=\"num\">+3.500</td><td class=\"num\">0.625</td><td class=\"num\">0.850</td>\
             <td class=\"num\">0.750</td><td class=\"num\">0.800</td><td class=\"num\">0.900</td>\
             <td class=\"num\">0.900</td><td class=\"num\">8.0</td><td class=\"num\">2.0</td>\
             <td class=\"num\">4.00×</td>"
        ));

        // Every chart embedded once, as a PNG data URL.
        assert_eq!(report.charts.len(), 4);
        assert_eq!(
            html.matches("data:image/png;base64,").count(),
            report.charts.len()
        );
        for chart in &report.charts {
            let url = format!("data:image/png;base64,{}\"", BASE64.encode(&chart.png));
            assert!(html.contains(&url), "{}", chart.file_name);
            assert!(html.contains(&format!("({})", chart.file_name)));
        }
    }

    #[test]
    fn missing_predecessor_figures_and_unmatched_pairs() {
        let mut results = sample();
        let task = &mut results.tasks[0];
        task.predecessor[0].seconds = None;
        task.predecessor[0].agreement_after = None;
        let mut stray = task.predecessor[0].clone();
        stray.transmitter = "gru_<4>".into();
        task.predecessor.push(stray);
        let report = render(&results).expect("report");
        assert!(report
            .html
            .contains("Predecessor pairs not run here: gru_&lt;4&gt;→conv_&lt;8&gt;."));
        assert!(report
            .html
            .contains("<td class=\"num\">+3.500</td><td class=\"num\">—</td>"));
        assert!(report.html.contains(
            "<td class=\"num\">—</td><td class=\"num\">2.0</td><td class=\"num\">—</td>"
        ));
        // Without the predecessor's seconds, the time chart has only our bars; still 4 charts.
        assert_eq!(report.charts.len(), 4);
    }
}
