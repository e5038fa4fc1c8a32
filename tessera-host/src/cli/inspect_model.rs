//! `tessera inspect-model MODEL.onnx`: inputs, outputs, opsets, operators, parameters and the
//! candidate tap points with their shapes.

use std::path::PathBuf;

use tessera_host::backend::tract::analyse_shapes;
use tessera_host::onnx::{candidate_taps, ModelSummary, OnnxModel, TapCandidate};
use tessera_host::tensor::TensorSpec;

use super::output::{field, print_json, print_text};

/// Arguments of `tessera inspect-model`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The model to inspect (.onnx; external data files are read from beside it).
    model: PathBuf,
}

/// Runs `tessera inspect-model`.
pub fn run(args: &Args, json: bool) -> anyhow::Result<()> {
    let model = OnnxModel::load(&args.model)?;
    let summary = ModelSummary::of(&model);
    let candidates = candidate_taps(&model);
    let names: Vec<String> = candidates.iter().map(|tap| tap.tensor.clone()).collect();
    let shapes = analyse_shapes(&model, &names);
    if json {
        let mut report = serde_json::to_value(&summary)?;
        report["model"] = args.model.display().to_string().into();
        report["op_histogram"] = summary
            .op_histogram
            .iter()
            .map(|(op, count)| (op.clone(), serde_json::Value::from(*count)))
            .collect::<serde_json::Map<_, _>>()
            .into();
        report["tap_candidates"] = match &shapes {
            Ok(specs) => taps_json(&candidates, specs),
            Err(_) => serde_json::to_value(&candidates)?,
        };
        if let Err(error) = &shapes {
            report["tap_shape_error"] = error.to_string().into();
        }
        return print_json(&report);
    }
    let spec_line =
        |spec: &TensorSpec| format!("{} {} {}", spec.name, spec.dtype, spec.shape_text());
    let mut lines = vec![
        args.model.display().to_string(),
        field("producer", display_or_dash(&summary.producer)),
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
    lines.push(format!(
        "  tap point candidates ({}, in depth order):",
        candidates.len()
    ));
    for (index, tap) in candidates.iter().enumerate() {
        let shape = match &shapes {
            Ok(specs) => format!("{} {}", specs[index].dtype, specs[index].shape_text()),
            Err(_) => "shape unknown".into(),
        };
        lines.push(format!(
            "  {:>4}  {:<14} {:<20} {}  {}",
            index + 1,
            tap.kind,
            tap.op_type,
            shape,
            tap.tensor
        ));
    }
    if let Err(error) = &shapes {
        lines.push(format!("  (shapes could not be inferred: {error})"));
    }
    print_text(&lines.join("\n"))
}

fn taps_json(candidates: &[TapCandidate], specs: &[TensorSpec]) -> serde_json::Value {
    candidates
        .iter()
        .zip(specs)
        .map(|(tap, spec)| {
            serde_json::json!({
                "tensor": tap.tensor,
                "op_type": tap.op_type,
                "node": tap.node,
                "kind": tap.kind,
                "dtype": spec.dtype,
                "shape": spec.shape,
            })
        })
        .collect()
}

fn display_or_dash(text: &str) -> &str {
    if text.is_empty() {
        "-"
    } else {
        text
    }
}
