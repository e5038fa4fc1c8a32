//! `tessera inspect-model MODEL.onnx`: inputs, outputs, opsets, operators, parameters, and the
//! adapter that claims the model with its tap plan.

use std::path::{Path, PathBuf};

use tessera_host::jobs::ModelInspection;
use tessera_host::onnx::OnnxModel;
use tessera_host::plugin::{summarise, AdapterChoice};
use tessera_host::tensor::TensorSpec;

use super::output::{field, print_json, print_text};
use super::registry;

/// Arguments of `tessera inspect-model`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The model to inspect (.onnx; external data files are read from beside it).
    model: PathBuf,

    /// Use this architecture adapter instead of the best-scoring one.
    #[arg(long)]
    adapter: Option<String>,

    /// Print the graph summary adapters receive (JSON), for writing and debugging adapters.
    #[arg(long)]
    graph_summary: bool,
}

/// Runs `tessera inspect-model`.
pub fn run(args: &Args, config: Option<&Path>, json: bool) -> anyhow::Result<()> {
    if args.graph_summary {
        let model = OnnxModel::load(&args.model)?;
        return print_json(&serde_json::to_value(summarise(&model))?);
    }
    let inspection = ModelInspection::of(&args.model, &registry(config)?, args.adapter.as_deref())?;
    if json {
        return print_json(&inspection.to_json(&args.model)?);
    }
    let ModelInspection {
        summary, choice, ..
    } = &inspection;
    let spec_line =
        |spec: &TensorSpec| format!("{} {} {}", spec.name, spec.dtype, spec.shape_text());
    let mut lines = vec![
        args.model.display().to_string(),
        field("producer", or_dash(&summary.producer)),
        field(
            "opsets",
            summary
                .opsets
                .iter()
                .map(|opset| format!("{} {}", opset.domain, opset.version))
                .collect::<Vec<_>>()
                .join(", "),
        ),
        field(
            "parameters",
            format!(
                "{} in {} initializers",
                summary.parameter_count, summary.initializer_count
            ),
        ),
        field("nodes", summary.node_count),
    ];
    lines.extend(
        summary
            .inputs
            .iter()
            .map(|spec| field("input", spec_line(spec))),
    );
    lines.extend(
        summary
            .outputs
            .iter()
            .map(|spec| field("output", spec_line(spec))),
    );
    lines.push(field(
        "operators",
        summary
            .op_histogram
            .iter()
            .map(|(op, count)| format!("{op}×{count}"))
            .collect::<Vec<_>>()
            .join(" "),
    ));
    lines.extend(adapter_lines(choice, |tensor| {
        inspection.shape_of(tensor).to_string()
    }));
    print_text(&lines.join("\n"))
}

fn adapter_lines(choice: &AdapterChoice, shape_of: impl Fn(&str) -> String) -> Vec<String> {
    let plan = &choice.plan;
    let mut lines = vec![
        field(
            "adapter",
            format!(
                "{} (plugin {}, score {}): {} family, width {}",
                choice.adapter, choice.plugin, plan.score, plan.family, plan.width
            ),
        ),
        format!("  tap points ({}, in depth order):", plan.taps.len()),
    ];
    for (index, tap) in plan.taps.iter().enumerate() {
        lines.push(format!(
            "  {:>4}  {:<20} {:<6} {:<22} {}",
            index + 1,
            format!("{:?}", tap.layout),
            format!("{:?}", tap.pooling).to_lowercase(),
            shape_of(&tap.tensor),
            tap.tensor
        ));
    }
    if !plan.frozen.is_empty() {
        lines.push(field("kept frozen", plan.frozen.join(", ")));
    }
    let others: Vec<String> = choice
        .verdicts
        .iter()
        .filter(|verdict| verdict.adapter != choice.adapter)
        .map(|verdict| match (&verdict.score, &verdict.error) {
            (Some(score), _) => format!("{} {score}", verdict.adapter),
            (None, Some(error)) => format!("{} failed: {error}", verdict.adapter),
            (None, None) => format!("{} no match", verdict.adapter),
        })
        .collect();
    if !others.is_empty() {
        lines.push(field("other adapters", others.join("; ")));
    }
    lines
}

fn or_dash(text: &str) -> &str {
    if text.is_empty() {
        "-"
    } else {
        text
    }
}
