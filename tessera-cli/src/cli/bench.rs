//! `tessera bench ...`: benchmark reports (speed and memory against PyTorch eager).

use std::path::PathBuf;

use tessera_host::atomic_file::write_atomically;
use tessera_host::backend::Backend;
use tessera_host::bench::capture::{self, CaptureBenchOptions, CaptureBenchReport};
use tessera_host::bench::cross_arch::render::{render, summarise};
use tessera_host::bench::cross_arch::{self, CrossArchOptions};
use tessera_host::bench::protocol::{self, ProtocolOptions, ProtocolResults};
use tessera_host::bench::quant::{self, PtqOptions, QuantBenchOptions, QuantResults};
use tessera_host::bench::train::{self, TrainBenchOptions, TrainBenchReport};
use tessera_host::quant::Precision;
use tessera_host::transfer::{QatTeacher, TransferOptions};

use super::output::{print_json, print_text};
use super::progress::spinner;
use super::registry;
use super::schedule_args::ScheduleArgs;

/// Arguments of `tessera bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: BenchCommand,
}

#[derive(Debug, clap::Subcommand)]
enum BenchCommand {
    /// Samples/s capturing the logits and every tap point of each zoo transmitter, against
    /// PyTorch eager with forward hooks.
    Capture(CaptureArgs),
    /// Milliseconds per training step on the trainable graph (forward, backward, Adam), split
    /// into its parts, against PyTorch eager.
    Train(TrainArgs),
    /// Mode A over the zoo's pair matrix (every transmitter config into every other config's
    /// receiver) under the default objective and its ablations, beside the predecessor's
    /// numbers; writes JSON, an HTML report and PNG charts.
    CrossArch(CrossArchArgs),
    /// The two-party protocol: one-process transfer beside emit → absorb as separate processes
    /// (with and without hub vectors) over the zoo's pair matrices, agreement against ε, and
    /// token sizes; writes JSON and a PNG chart.
    Protocol(ProtocolArgs),
    /// The quantisation-aware transfer (ModeAQ) over the zoo's pair matrices at each
    /// precision, against the float receiver and, for INT8, against ONNX Runtime's own
    /// post-training quantiser on the same float receiver and inputs; writes results.json and
    /// summary.md.
    Quant(QuantBenchArgs),
}

/// Arguments of `tessera bench quant`.
#[derive(Debug, clap::Args)]
struct QuantBenchArgs {
    /// Zoo tasks to run, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "toy,digits")]
    tasks: Vec<String>,

    /// Precisions, comma-separated: one ModeAQ transfer per pair each.
    #[arg(long, value_delimiter = ',', default_value = "int8,int4,fp16")]
    precisions: Vec<Precision>,

    /// The model zoo folder.
    #[arg(long, default_value = "onnx-models")]
    zoo: PathBuf,

    /// Which export of each model to use: torchscript or dynamo.
    #[arg(long, default_value = "torchscript")]
    exporter: String,

    /// At most this many pairs per task [default: the whole matrix].
    #[arg(long)]
    max_pairs: Option<usize>,

    /// Whose outputs the receivers learn on the grid: float (their float counterparts') or
    /// knowledge (the transmitter's).
    #[arg(long, default_value = "float")]
    qat_teacher: QatTeacher,

    /// Python with onnxruntime, onnx and numpy for the PTQ anchor
    /// (`pip install -r tessera-bench/python/requirements.txt`) [default: $TESSERA_PYTHON,
    /// else python3].
    #[arg(long)]
    python: Option<String>,

    /// Skip the PTQ anchor.
    #[arg(long)]
    no_ptq: bool,

    /// Record a transfer or anchor that fails in the results (and the summary's notes) and
    /// go on with the next, instead of stopping at the first error.
    #[arg(long)]
    keep_going: bool,

    /// The executor that runs and times the exported models: tract or ort.
    #[arg(long, default_value = "tract")]
    backend: Backend,

    /// Width of the hub space.
    #[arg(long, default_value_t = 2048)]
    hub_dim: usize,

    /// Seed of every transfer.
    #[arg(long, default_value_t = 0)]
    seed: u64,

    #[command(flatten)]
    schedule: ScheduleArgs,

    /// Folder the report is written to (results.json, summary.md).
    #[arg(long, default_value = "docs/benchmarks/quant")]
    out_dir: PathBuf,
}

/// Arguments of `tessera bench protocol`.
#[derive(Debug, clap::Args)]
struct ProtocolArgs {
    /// Zoo tasks to run, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "toy,digits")]
    tasks: Vec<String>,

    /// The model zoo folder.
    #[arg(long, default_value = "onnx-models")]
    zoo: PathBuf,

    /// Which export of each model to use: torchscript or dynamo.
    #[arg(long, default_value = "torchscript")]
    exporter: String,

    /// At most this many pairs per task [default: the whole matrix].
    #[arg(long)]
    max_pairs: Option<usize>,

    /// ε of the privacy sweep, comma-separated (`inf`: no noise).
    #[arg(long, value_delimiter = ',', default_value = "inf,64,16,8,4,1")]
    epsilons: Vec<String>,

    /// Pairs per task in the privacy sweep (the first of its matrix).
    #[arg(long, default_value_t = 2)]
    privacy_pairs: usize,

    /// How every transfer and emit enlarges its inputs (mix, none, sample-domain).
    #[arg(long, default_value = "mix")]
    augmentation: String,

    /// Skip emit → absorb with hub vectors.
    #[arg(long)]
    no_hub_vectors: bool,

    /// Folder the report is written to (results.json, privacy-price.png).
    #[arg(long, default_value = "protocol-report")]
    out_dir: PathBuf,
}

/// Arguments of `tessera bench cross-arch`.
#[derive(Debug, clap::Args)]
struct CrossArchArgs {
    /// The predecessor's quick setting: the default objective, plain output matching on the
    /// given inputs, and the ablations without the hub term and without mixing (default).
    #[arg(long, conflicts_with = "full")]
    quick: bool,

    /// Every variant, adding hub alignment alone and domain sampling.
    #[arg(long)]
    full: bool,

    /// Variants to run, comma-separated (overrides --quick/--full): full, output-only,
    /// hub-only, full-fixed, output-only-fixed, sample-domain.
    #[arg(long, value_delimiter = ',')]
    variants: Option<Vec<String>>,

    /// Zoo tasks to run, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "toy,digits")]
    tasks: Vec<String>,

    /// The model zoo folder.
    #[arg(long, default_value = "onnx-models")]
    zoo: PathBuf,

    /// Which export of each model to use: torchscript or dynamo.
    #[arg(long, default_value = "torchscript")]
    exporter: String,

    /// Folder with the predecessor's measurements (predecessor_quick_*.json).
    #[arg(long, default_value = "../shared/reference")]
    reference: PathBuf,

    /// Width of the hub space.
    #[arg(long, default_value_t = 2048)]
    hub_dim: usize,

    /// Seed of every transfer.
    #[arg(long, default_value_t = 0)]
    seed: u64,

    #[command(flatten)]
    schedule: ScheduleArgs,

    /// Folder the report is written to (results.json, report.html, PNG charts).
    #[arg(long, default_value = "cross-arch-report")]
    out_dir: PathBuf,
}

/// Arguments of `tessera bench train`.
#[derive(Debug, clap::Args)]
struct TrainArgs {
    #[command(flatten)]
    common: ComparisonArgs,

    /// Samples per step.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,

    /// Timed steps per model, after three warm-up steps.
    #[arg(long, default_value_t = 20)]
    steps: usize,
}

/// What every benchmark shares: where the zoo is, the PyTorch side, and where the report goes.
#[derive(Debug, clap::Args)]
struct ComparisonArgs {
    /// The model zoo folder.
    #[arg(long, default_value = "onnx-models")]
    zoo: PathBuf,

    /// Threads for ONNX Runtime and PyTorch (tract and the trainable graph run on their own).
    #[arg(long, default_value_t = 1)]
    threads: usize,

    /// Python interpreter with PyTorch, for the PyTorch side of the comparison.
    #[arg(long, default_value = "python3")]
    python: String,

    /// Skip the PyTorch side.
    #[arg(long)]
    no_pytorch: bool,

    /// Only zoo models whose key contains this text (e.g. `toy/`, `lstm`).
    #[arg(long)]
    models: Option<String>,

    /// Also write the report as JSON to this file.
    #[arg(long)]
    out: Option<PathBuf>,
}

impl ComparisonArgs {
    fn python(&self) -> Option<String> {
        (!self.no_pytorch).then(|| self.python.clone())
    }

    /// Writes the report to `--out` if given, then prints it as JSON or as `table`.
    fn report(
        &self,
        report: &impl serde::Serialize,
        json: bool,
        table: impl FnOnce() -> String,
    ) -> anyhow::Result<()> {
        let report_json = serde_json::to_value(report)?;
        if let Some(out) = &self.out {
            write_atomically(out, serde_json::to_string_pretty(&report_json)?.as_bytes())?;
        }
        if json {
            return print_json(&report_json);
        }
        print_text(&table())
    }
}

/// Arguments of `tessera bench capture`.
#[derive(Debug, clap::Args)]
struct CaptureArgs {
    #[command(flatten)]
    common: ComparisonArgs,

    /// Samples per batch.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,

    /// Timed passes per model, after a warm-up pass.
    #[arg(long, default_value_t = 5)]
    repeats: usize,

    /// Backends to measure, comma-separated [default: tract, and ort when built with it].
    #[arg(long, value_delimiter = ',')]
    backend: Option<Vec<Backend>>,
}

/// Runs `tessera bench`.
pub fn run(args: &Args, config: Option<&std::path::Path>, json: bool) -> anyhow::Result<()> {
    match &args.command {
        BenchCommand::Capture(args) => run_capture(args, config, json),
        BenchCommand::Train(args) => run_train(args, json),
        BenchCommand::CrossArch(args) => run_cross_arch(args, config, json),
        BenchCommand::Protocol(args) => run_protocol(args, json),
        BenchCommand::Quant(args) => run_quant(args, config, json),
    }
}

fn run_quant(
    args: &QuantBenchArgs,
    config: Option<&std::path::Path>,
    json: bool,
) -> anyhow::Result<()> {
    let registry = registry(config)?;
    let mut transfer = TransferOptions {
        seed: args.seed,
        ..TransferOptions::default()
    };
    args.schedule.apply(&mut transfer);
    transfer.hub.dim = args.hub_dim;
    transfer.hub.seed = args.seed;
    transfer.executor.backend = args.backend;
    let python = args
        .python
        .clone()
        .or_else(|| {
            std::env::var("TESSERA_PYTHON")
                .ok()
                .filter(|p| !p.is_empty())
        })
        .unwrap_or_else(|| "python3".into());
    let options = QuantBenchOptions {
        zoo_dir: args.zoo.clone(),
        tasks: args.tasks.clone(),
        precisions: args.precisions.clone(),
        exporter: args.exporter.clone(),
        max_pairs: args.max_pairs,
        teacher: args.qat_teacher,
        transfer,
        ptq: (!args.no_ptq).then_some(PtqOptions { python }),
        keep_going: args.keep_going,
    };
    let bar = spinner();
    let results = quant::run(&options, &registry, &mut |what| {
        bar.set_message(what.to_string())
    })?;
    bar.finish_and_clear();
    quant::write_report(&results, &args.out_dir)?;
    if json {
        return print_json(&serde_json::to_value(&results)?);
    }
    print_text(&quant_table(&results, &args.out_dir))
}

fn quant_table(results: &QuantResults, out_dir: &std::path::Path) -> String {
    let percent =
        |value: Option<f64>| value.map_or_else(|| "-".to_string(), |v| format!("{:.1}", 100.0 * v));
    let signed = |value: Option<f64>| value.map_or_else(|| "-".to_string(), |v| format!("{v:+.1}"));
    let ratio = |value: Option<f64>| value.map_or_else(|| "-".to_string(), |v| format!("{v:.2}x"));
    let finite = |value: f64| value.is_finite().then_some(value);
    let mut lines = vec![format!(
        "quantisation-aware transfer, executed by {}; {:.0} s, peak {:.0} MiB; report in {}",
        results.executor,
        results.total_seconds,
        results.peak_rss_mib,
        out_dir.display()
    )];
    match (&results.ptq, &results.ptq_note) {
        (Some(ptq), note) => lines.push(format!(
            "PTQ anchor: ONNX Runtime {} quantize_static ({}){}",
            ptq.onnxruntime,
            ptq.python,
            note.as_ref()
                .map_or_else(String::new, |note| format!("; {note}"))
        )),
        (None, Some(note)) => lines.push(format!("PTQ anchor not run: {note}")),
        (None, None) => {}
    }
    for task in &results.tasks {
        lines.push(format!(
            "{} ({} unlabelled inputs, {} held out); agreement and accuracy in %, deltas in points",
            task.task, task.train_inputs, task.val_inputs
        ));
        lines.push(format!(
            "  {:<42} {:<6} {:>6} {:>6} {:>7} {:>7} {:>7} {:>8} {:>7} {:>7} {:>6}",
            "pair",
            "method",
            "float",
            "agree",
            "Δ agree",
            "Δ acc",
            "w/float",
            "SQNR dB",
            "clip %",
            "size",
            "time"
        ));
        for pair in &task.pairs {
            let name = format!("{} -> {}", pair.transmitter, pair.receiver);
            for run in &pair.runs {
                lines.push(format!(
                    "  {:<42} {:<6} {:>6} {:>6} {:>7} {:>7} {:>7} {:>8.1} {:>7.3} {:>7} {:>6}",
                    name,
                    run.precision,
                    percent(finite(run.float_agreement)),
                    percent(finite(run.agreement)),
                    signed(finite(run.delta_agreement())),
                    signed(finite(run.delta_accuracy())),
                    percent(finite(run.agreement_with_float)),
                    run.logits_sqnr_db,
                    100.0 * run.mean_clipping,
                    ratio(finite(run.compression)),
                    ratio(run.inference_ratio),
                ));
            }
            if let Some(ptq) = &pair.ptq {
                lines.push(format!(
                    "  {:<42} {:<6} {:>6} {:>6} {:>7} {:>7} {:>7} {:>8} {:>7} {:>7} {:>6}",
                    name,
                    "ptq",
                    percent(finite(ptq.float_agreement)),
                    percent(finite(ptq.agreement)),
                    signed(finite(ptq.delta_agreement())),
                    signed(finite(ptq.delta_accuracy())),
                    percent(finite(ptq.agreement_with_float)),
                    "-",
                    "-",
                    ratio(finite(ptq.compression)),
                    ratio(ptq.inference.as_ref().map(|timing| timing.ratio)),
                ));
            }
            for failure in &pair.failures {
                lines.push(format!(
                    "  {:<42} {:<6} failed: {}",
                    name,
                    failure.method.trim_end_matches("-int8"),
                    failure.error
                ));
            }
        }
        lines.push(format!(
            "  {:<26} {:>5} {:>6} {:>6} {:>13} {:>13} {:>9} {:>7} {:>6}",
            "summary",
            "pairs",
            "float",
            "agree",
            "Δ agree (min)",
            "Δ acc (min)",
            "≤1 pt a/c",
            "size",
            "time"
        ));
        let rows = task
            .summaries
            .iter()
            .chain(task.ptq.as_ref().map(|ptq| &ptq.summary));
        for summary in rows {
            lines.push(format!(
                "  {:<26} {:>5} {:>6} {:>6} {:>13} {:>13} {:>9} {:>7} {:>6}{}",
                quant::method_name(&summary.method),
                summary.pairs,
                percent(summary.mean_float_agreement),
                percent(summary.mean_agreement),
                format!(
                    "{} ({})",
                    signed(summary.mean_delta_agreement),
                    signed(summary.worst_delta_agreement)
                ),
                format!(
                    "{} ({})",
                    signed(summary.mean_delta_accuracy),
                    signed(summary.worst_delta_accuracy)
                ),
                format!(
                    "{}/{}",
                    summary.within_one_point_agreement, summary.within_one_point_accuracy
                ),
                ratio(summary.mean_compression),
                ratio(summary.mean_inference_ratio),
                match summary.failed {
                    0 => String::new(),
                    failed => format!("  ({failed} failed)"),
                },
            ));
        }
        if let Some(ptq) = task.ptq.as_ref().filter(|ptq| ptq.summary.pairs > 0) {
            lines.push(if ptq.losing_pairs == 0 {
                format!(
                    "  PTQ keeps all {} pairs within 1 point of agreement",
                    ptq.summary.pairs
                )
            } else {
                format!(
                    "  PTQ loses > 1 point on {} of {} pairs; ModeAQ INT8 there: mean {} (min {}), \
                     {} within 1 point",
                    ptq.losing_pairs,
                    ptq.summary.pairs,
                    signed(ptq.modeaq_mean_delta_there),
                    signed(ptq.modeaq_worst_delta_there),
                    ptq.modeaq_within_one_point_there
                )
            });
        }
    }
    lines.join("\n")
}

fn run_protocol(args: &ProtocolArgs, json: bool) -> anyhow::Result<()> {
    let epsilons = args
        .epsilons
        .iter()
        .map(|text| {
            if text.eq_ignore_ascii_case("inf") {
                Ok(f64::INFINITY)
            } else {
                text.parse::<f64>()
                    .map_err(|_| anyhow::anyhow!("--epsilons: {text:?} is not a number or inf"))
            }
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let options = ProtocolOptions {
        zoo_dir: std::fs::canonicalize(&args.zoo)?,
        tessera: std::env::current_exe()?,
        tasks: args.tasks.clone(),
        exporter: args.exporter.clone(),
        max_pairs: args.max_pairs,
        epsilons,
        privacy_pairs: args.privacy_pairs,
        extra: vec!["--augmentation".into(), args.augmentation.clone()],
        hub_vectors: !args.no_hub_vectors,
    };
    let bar = spinner();
    let results = protocol::run_protocol(&options, &mut |what| bar.set_message(what.to_string()))?;
    bar.finish_and_clear();
    std::fs::create_dir_all(&args.out_dir)?;
    write_atomically(
        &args.out_dir.join("results.json"),
        serde_json::to_string_pretty(&results)?.as_bytes(),
    )?;
    if let Some(chart) = protocol::privacy_chart(&results)? {
        write_atomically(&args.out_dir.join(&chart.file_name), &chart.png)?;
    }
    if json {
        return print_json(&serde_json::to_value(&results)?);
    }
    print_text(&protocol_table(&results))
}

fn protocol_table(results: &ProtocolResults) -> String {
    let mut lines = vec![format!(
        "{:<8} {:<34} {:>7} {:>9} {:>9} {:>9} {:>8} {:>8} {:>7}",
        "task",
        "pair",
        "before",
        "transfer",
        "2-party",
        "2p + hub",
        "s 1-proc",
        "s 2-party",
        "ratio"
    )];
    for row in &results.parity {
        lines.push(format!(
            "{:<8} {:<34} {:>7.3} {:>9.3} {:>9.3} {:>9.3} {:>8.1} {:>8.1} {:>7.2}",
            row.task,
            format!("{} -> {}", row.transmitter, row.receiver),
            row.agreement_before,
            row.transfer,
            row.two_party,
            row.two_party_hub.unwrap_or(f64::NAN),
            row.transfer_seconds,
            row.two_party_seconds,
            row.two_party_seconds / row.transfer_seconds
        ));
    }
    lines.push(format!(
        "{:<8} {:<34} {:>7} {:>7} {:>9} {:>9} {:>9}",
        "task", "pair", "epsilon", "sigma", "agree", "with tx", "accuracy"
    ));
    for row in &results.privacy {
        lines.push(format!(
            "{:<8} {:<34} {:>7} {:>7.3} {:>9.3} {:>9.3} {:>9.3}",
            row.task,
            format!("{} -> {}", row.transmitter, row.receiver),
            row.epsilon,
            row.sigma,
            row.agreement[1],
            row.transmitter_agreement,
            row.accuracy
        ));
    }
    for row in &results.sizes {
        lines.push(format!(
            "{:<8} hub {:<8} {:<9} {:>10} bytes",
            row.task,
            row.hub_width
                .map_or_else(|| "none".into(), |w| w.to_string()),
            format!("{:?}", row.quant),
            row.bytes
        ));
    }
    lines.join("\n")
}

fn run_cross_arch(
    args: &CrossArchArgs,
    config: Option<&std::path::Path>,
    json: bool,
) -> anyhow::Result<()> {
    let registry = registry(config)?;
    let mode = if args.full { "full" } else { "quick" };
    let variants = args.variants.clone().unwrap_or_else(|| {
        let names: &[&str] = if args.full {
            &[
                "full",
                "output-only",
                "hub-only",
                "full-fixed",
                "output-only-fixed",
                "sample-domain",
            ]
        } else {
            &["full", "output-only", "full-fixed", "output-only-fixed"]
        };
        names.iter().map(|name| name.to_string()).collect()
    });
    let mut transfer = TransferOptions {
        seed: args.seed,
        ..TransferOptions::default()
    };
    args.schedule.apply(&mut transfer);
    transfer.hub.dim = args.hub_dim;
    transfer.hub.seed = args.seed;
    let options = CrossArchOptions {
        zoo_dir: args.zoo.clone(),
        tasks: args.tasks.clone(),
        variants,
        mode: mode.into(),
        exporter: args.exporter.clone(),
        transfer,
        reference_dir: args.reference.is_dir().then(|| args.reference.clone()),
    };
    let bar = spinner();
    let results = cross_arch::run(&options, &registry, &mut |what| {
        bar.set_message(what.to_string())
    })?;
    bar.finish_and_clear();
    let rendered = render(&results)?;
    std::fs::create_dir_all(&args.out_dir)?;
    write_atomically(
        &args.out_dir.join("results.json"),
        serde_json::to_string_pretty(&results)?.as_bytes(),
    )?;
    write_atomically(&args.out_dir.join("report.html"), rendered.html.as_bytes())?;
    for chart in &rendered.charts {
        write_atomically(&args.out_dir.join(&chart.file_name), &chart.png)?;
    }
    if json {
        return print_json(&serde_json::to_value(&results)?);
    }
    let mut lines = vec![format!(
        "cross-architecture transfer, hub width {}, {:.0} s, peak {:.0} MiB; report in {}",
        results.hub_dim,
        results.total_seconds,
        results.peak_rss_mib,
        args.out_dir.display()
    )];
    let number = |value: Option<f64>| value.map_or_else(|| "-".to_string(), |v| format!("{v:.3}"));
    for task in &results.tasks {
        lines.push(format!(
            "{} ({} unlabelled inputs, {} held out)\n  {:<20}{:>7}{:>17}{:>11}{:>11}{:>9}",
            task.task,
            task.train_inputs,
            task.val_inputs,
            "variant",
            "pairs",
            "agreement",
            "rx acc",
            "tx acc",
            "s/pair"
        ));
        for summary in summarise(task) {
            lines.push(format!(
                "  {:<20}{:>7}{:>8} -> {:<6}{:>11}{:>11}{:>9}",
                summary.variant,
                format!("{}/{}", summary.improved, summary.pairs),
                number(summary.mean_agreement_before),
                number(summary.mean_agreement_after),
                number(summary.mean_rx_accuracy_after),
                number(summary.mean_tx_accuracy),
                summary
                    .mean_seconds
                    .map_or_else(|| "-".into(), |s| format!("{s:.1}")),
            ));
        }
    }
    print_text(&lines.join("\n"))
}

fn run_train(args: &TrainArgs, json: bool) -> anyhow::Result<()> {
    let options = TrainBenchOptions {
        zoo_dir: args.common.zoo.clone(),
        batch_size: args.batch_size,
        steps: args.steps,
        threads: args.common.threads,
        python: args.common.python(),
        filter: args.common.models.clone(),
    };
    let bar = spinner();
    let report = train::run(&options, &mut |what| bar.set_message(what.to_string()))?;
    bar.finish_and_clear();
    args.common.report(&report, json, || train_table(&report))
}

fn train_table(report: &TrainBenchReport) -> String {
    let number = |value: Option<f64>, digits: usize| {
        value.map_or_else(|| "-".to_string(), |v| format!("{v:.digits$}"))
    };
    let mut lines = vec![
        format!(
            "training-step benchmark: batch {}, median of {} steps (forward + cross-entropy, backward, Adam)",
            report.batch_size, report.steps
        ),
        format!(
            "{:<32} {:<12} {:>9} {:>9} {:>9} {:>9} {:>11} {:>8}",
            "model", "export", "step ms", "fwd ms", "bwd ms", "adam ms", "PyTorch ms", "speedup"
        ),
    ];
    for row in &report.rows {
        lines.push(format!(
            "{:<32} {:<12} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>11} {:>8}",
            row.model_key,
            row.exporter,
            row.step_ms,
            row.forward_ms,
            row.backward_ms,
            row.update_ms,
            number(row.pytorch_step_ms, 2),
            number(row.speedup_vs_pytorch, 2),
        ));
    }
    match (&report.pytorch, &report.pytorch_note) {
        (Some(pytorch), _) => lines.push(format!(
            "PyTorch {} eager, {} thread(s)",
            pytorch.torch_version, pytorch.threads
        )),
        (None, Some(note)) => lines.push(format!("PyTorch side not measured: {note}")),
        (None, None) => {}
    }
    lines.join(
        "
",
    )
}

fn run_capture(
    args: &CaptureArgs,
    config: Option<&std::path::Path>,
    json: bool,
) -> anyhow::Result<()> {
    let default_backends = if cfg!(feature = "ort") {
        vec![Backend::Tract, Backend::Ort]
    } else {
        vec![Backend::Tract]
    };
    let options = CaptureBenchOptions {
        zoo_dir: args.common.zoo.clone(),
        batch_size: args.batch_size,
        repeats: args.repeats,
        backends: args.backend.clone().unwrap_or(default_backends),
        threads: args.common.threads,
        python: args.common.python(),
        filter: args.common.models.clone(),
    };
    let bar = spinner();
    let registry = registry(config)?;
    let report = capture::run(&options, &registry, &mut |what| {
        bar.set_message(what.to_string())
    })?;
    bar.finish_and_clear();
    args.common.report(&report, json, || capture_table(&report))
}

fn capture_table(report: &CaptureBenchReport) -> String {
    let mut lines = vec![
        format!(
            "capture benchmark: batch {}, median of {} passes, {} thread(s) for ONNX Runtime and PyTorch, {} CPUs",
            report.batch_size, report.repeats, report.threads, report.cpus
        ),
        format!(
            "{:<32} {:<12} {:<22} {:>8} {:>12} {:>12} {:>8} {:>9}",
            "model", "export", "executor", "tensors", "samples/s", "PyTorch/s", "ratio", "peak MiB"
        ),
    ];
    let number = |value: Option<f64>, digits: usize| {
        value.map_or_else(|| "-".to_string(), |v| format!("{v:.digits$}"))
    };
    for row in &report.rows {
        lines.push(format!(
            "{:<32} {:<12} {:<22} {:>8} {:>12.0} {:>12} {:>8} {:>9}",
            row.model_key,
            row.exporter,
            row.executor,
            row.tensors,
            row.samples_per_s,
            number(row.pytorch_samples_per_s, 0),
            number(row.ratio_vs_pytorch, 2),
            number(row.peak_rss_mib, 1),
        ));
    }
    match (&report.pytorch, &report.pytorch_note) {
        (Some(pytorch), _) => lines.push(format!(
            "PyTorch {} eager with forward hooks on every block, {} thread(s); its process peaked at {:.0} MiB (libraries included)",
            pytorch.torch_version, pytorch.threads, pytorch.peak_rss_mib
        )),
        (None, Some(note)) => lines.push(format!("PyTorch side not measured: {note}")),
        (None, None) => {}
    }
    lines.join("\n")
}
