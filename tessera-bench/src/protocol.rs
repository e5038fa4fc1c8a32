//! The two-party protocol benchmark: for every pair of a task's matrix, a one-process
//! `tessera transfer` beside `tessera emit` then `tessera absorb` run as separate processes in
//! separate folders (each with its own copy of the inputs; the token is all that travels), with
//! and without hub vectors; then the price of privacy (agreement against ε) on representative
//! pairs, and the token's size for each payload quantisation.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde::Serialize;
use tessera_engine::capture::{CaptureOptions, Capturer};
use tessera_engine::transfer::Knowledge;
use tessera_engine::zoo::{Zoo, ZooModel};
use tessera_onnx::OnnxModel;
use tessera_tbf::{self as tbf, LoadOptions, QuantType, SaveOptions};
use tessera_tensor::dataset::Dataset;

use crate::cross_arch::render::{line_chart, Chart};
use crate::{Error, Result};

/// What to run.
#[derive(Debug, Clone)]
pub struct ProtocolOptions {
    /// The zoo folder.
    pub zoo_dir: PathBuf,
    /// The `tessera` program the parties run as.
    pub tessera: PathBuf,
    /// Tasks whose matrices run (`toy`: ordered pairs of different configs, others: every
    /// ordered pair).
    pub tasks: Vec<String>,
    /// Exporter of the models.
    pub exporter: String,
    /// At most this many pairs per task (all when `None`).
    pub max_pairs: Option<usize>,
    /// ε of the privacy sweep (+∞ first).
    pub epsilons: Vec<f64>,
    /// Pairs per task in the privacy sweep (the first of the matrix).
    pub privacy_pairs: usize,
    /// Options passed to every `transfer` and `emit` (e.g. `--augmentation none`).
    pub extra: Vec<String>,
    /// Also run emit → absorb with hub vectors for every pair.
    pub hub_vectors: bool,
}

/// One pair, one-process beside two-party.
#[derive(Debug, Clone, Serialize)]
pub struct ParityRow {
    /// Task.
    pub task: String,
    /// Transmitter config.
    pub transmitter: String,
    /// Receiver config.
    pub receiver: String,
    /// Agreement before, held out.
    pub agreement_before: f64,
    /// Agreement after the one-process transfer.
    pub transfer: f64,
    /// Agreement after emit → absorb, soft targets only.
    pub two_party: f64,
    /// Agreement after emit → absorb with hub vectors (when measured).
    pub two_party_hub: Option<f64>,
    /// Wall seconds of `tessera transfer`.
    pub transfer_seconds: f64,
    /// Wall seconds of `tessera emit` plus `tessera absorb`.
    pub two_party_seconds: f64,
    /// Token bytes without hub vectors (FLOAT16).
    pub token_bytes: u64,
    /// Token bytes with hub vectors (FLOAT16, when measured).
    pub token_bytes_hub: Option<u64>,
}

/// One point of the privacy sweep.
#[derive(Debug, Clone, Serialize)]
pub struct PrivacyRow {
    /// Task.
    pub task: String,
    /// Transmitter config.
    pub transmitter: String,
    /// Receiver config.
    pub receiver: String,
    /// ε (`null`: +∞).
    pub epsilon: f64,
    /// σ of the soft targets' noise.
    pub sigma: f64,
    /// Agreement with the released (noised) held-out soft targets, before and after
    /// absorbing: what `tessera absorb` reports.
    pub agreement: [f64; 2],
    /// Agreement of the tuned receiver with the transmitter itself on the held-out inputs
    /// (measured here, with both models run by tract).
    pub transmitter_agreement: f64,
    /// Receiver accuracy after absorbing.
    pub accuracy: f64,
}

/// Token size per payload quantisation.
#[derive(Debug, Clone, Serialize)]
pub struct SizeRow {
    /// Task.
    pub task: String,
    /// Whether the token carries hub vectors, and their width.
    pub hub_width: Option<usize>,
    /// The quantisation.
    pub quant: QuantType,
    /// Bytes of the token.
    pub bytes: u64,
}

/// Everything measured.
#[derive(Debug, Clone, Serialize)]
pub struct ProtocolResults {
    /// When the run started.
    pub started: String,
    /// The machine.
    pub machine: String,
    /// Extra options every command got.
    pub extra: Vec<String>,
    /// Pair by pair.
    pub parity: Vec<ParityRow>,
    /// The privacy sweep.
    pub privacy: Vec<PrivacyRow>,
    /// Token sizes.
    pub sizes: Vec<SizeRow>,
}

/// One party's run: its JSON answer and wall seconds.
struct Ran {
    json: serde_json::Value,
    seconds: f64,
}

/// Runs `tessera` with `args` in `folder`; the ledger of the run is a file there.
fn run(options: &ProtocolOptions, folder: &Path, args: &[String]) -> Result<Ran> {
    let started = Instant::now();
    let output = Command::new(&options.tessera)
        .args(args)
        .current_dir(folder)
        .env("TESSERA_PRIVACY_LEDGER", folder.join("ledger.json"))
        .output()
        .map_err(|error| {
            Error::Party(format!("cannot run {}: {error}", options.tessera.display()))
        })?;
    let seconds = started.elapsed().as_secs_f64();
    if !output.status.success() {
        return Err(Error::Party(format!(
            "`tessera {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    let json = serde_json::from_slice(&output.stdout)
        .map_err(|error| Error::Party(format!("`tessera {}` printed no JSON: {error}", args[0])))?;
    Ok(Ran { json, seconds })
}

fn number(value: &serde_json::Value) -> f64 {
    value.as_f64().unwrap_or(f64::NAN)
}

/// A party's folder with its own copies of the pair's datasets.
struct Party {
    folder: tempfile::TempDir,
}

impl Party {
    fn new(zoo: &Zoo, model: &ZooModel) -> Result<Self> {
        let folder = tempfile::tempdir()
            .map_err(|error| Error::Party(format!("cannot create a temporary folder: {error}")))?;
        let datasets = &model.datasets;
        for (source, name) in [
            (&datasets.train_inputs, "R.npy"),
            (&datasets.val_inputs, "V.npy"),
            (&datasets.val_labels, "L.npy"),
        ] {
            std::fs::copy(zoo.path(source), folder.path().join(name))
                .map_err(|error| Error::Party(format!("cannot copy {source}: {error}")))?;
        }
        Ok(Self { folder })
    }

    fn path(&self, name: &str) -> String {
        self.folder.path().join(name).display().to_string()
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| item.to_string()).collect()
}

/// Emit (optionally with hub vectors, at `epsilon`) and absorb for one pair.
fn two_party(
    options: &ProtocolOptions,
    zoo: &Zoo,
    transmitter: &ZooModel,
    receiver: &ZooModel,
    hub_vectors: bool,
    epsilon: &str,
) -> Result<(Ran, Ran, PathBuf, tempfile::TempDir)> {
    let sender = Party::new(zoo, transmitter)?;
    let mut emit = strings(&["emit", "--json", "--transmitter"]);
    emit.push(zoo.path(&transmitter.onnx).display().to_string());
    emit.extend(strings(&["--inputs", &sender.path("R.npy")]));
    emit.extend(strings(&["--val-inputs", &sender.path("V.npy")]));
    emit.extend(strings(&["--out", &sender.path("knowledge.tbf")]));
    emit.extend(strings(&["--epsilon", epsilon]));
    if hub_vectors {
        emit.push("--hub-vectors".into());
    }
    emit.extend(options.extra.iter().cloned());
    let emitted = run(options, sender.folder.path(), &emit)?;

    let absorber = Party::new(zoo, transmitter)?;
    let token = absorber.folder.path().join("knowledge.tbf");
    std::fs::copy(sender.folder.path().join("knowledge.tbf"), &token)
        .map_err(|error| Error::Party(format!("cannot copy the token: {error}")))?;
    let mut absorb = strings(&[
        "absorb",
        "--json",
        "--token",
        &absorber.path("knowledge.tbf"),
    ]);
    absorb.extend(strings(&[
        "--receiver",
        &zoo.path(&receiver.onnx).display().to_string(),
    ]));
    absorb.extend(strings(&["--inputs", &absorber.path("R.npy")]));
    absorb.extend(strings(&["--val-inputs", &absorber.path("V.npy")]));
    absorb.extend(strings(&["--val-labels", &absorber.path("L.npy")]));
    absorb.extend(strings(&["--receiver-out", &absorber.path("tuned.onnx")]));
    let absorbed = run(options, absorber.folder.path(), &absorb)?;
    Ok((emitted, absorbed, token, absorber.folder))
}

/// The logits of the model at `path` on `inputs`, run by tract.
fn logits(path: &Path, inputs: &Dataset) -> Result<ndarray::Array2<f32>> {
    let model = OnnxModel::load(path)?;
    let output = model
        .outputs()
        .first()
        .map(|spec| spec.name.clone())
        .ok_or_else(|| Error::Party(format!("{} declares no output", path.display())))?;
    let captured =
        Capturer::new(&model, &[output], &CaptureOptions::default())?.run(inputs, &mut |_| {})?;
    captured.tensors[0]
        .as_f32()
        .and_then(|values| values.clone().into_dimensionality().ok())
        .ok_or_else(|| {
            Error::Party(format!(
                "{} does not output [batch, classes]",
                path.display()
            ))
        })
}

/// The ordered pairs of `task`'s matrix.
fn pairs<'z>(zoo: &'z Zoo, task: &str, exporter: &str) -> Vec<(&'z ZooModel, &'z ZooModel)> {
    let of_role = |role: &str| -> Vec<&ZooModel> {
        zoo.models
            .iter()
            .filter(|m| m.task == task && m.role == role && m.exporter == exporter)
            .collect()
    };
    let receivers = of_role("receiver");
    of_role("transmitter")
        .into_iter()
        .flat_map(|tx| {
            receivers
                .iter()
                .filter(move |rx| task != "toy" || rx.config != tx.config)
                .map(move |rx| (tx, *rx))
        })
        .collect()
}

/// Runs the benchmark; `progress` is told what runs.
pub fn run_protocol(
    options: &ProtocolOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<ProtocolResults> {
    let started = chrono::Local::now().to_rfc3339();
    let zoo = Zoo::load(&options.zoo_dir)?;
    let mut parity = Vec::new();
    let mut privacy = Vec::new();
    let mut sizes = Vec::new();
    for task in &options.tasks {
        let mut matrix = pairs(&zoo, task, &options.exporter);
        if matrix.is_empty() {
            return Err(Error::InvalidOption(format!(
                "the zoo has no {} pairs of task {task:?}",
                options.exporter
            )));
        }
        let sweep: Vec<_> = matrix.iter().take(options.privacy_pairs).copied().collect();
        if let Some(limit) = options.max_pairs {
            matrix.truncate(limit);
        }
        for (index, (transmitter, receiver)) in matrix.iter().enumerate() {
            progress(&format!(
                "{task}: {} -> {} (one process)",
                transmitter.config, receiver.config
            ));
            let party = Party::new(&zoo, transmitter)?;
            let mut transfer = strings(&["transfer", "--json", "--transmitter"]);
            transfer.push(zoo.path(&transmitter.onnx).display().to_string());
            transfer.extend(strings(&[
                "--receiver",
                &zoo.path(&receiver.onnx).display().to_string(),
            ]));
            transfer.extend(strings(&["--inputs", &party.path("R.npy")]));
            transfer.extend(strings(&["--val-inputs", &party.path("V.npy")]));
            transfer.extend(strings(&["--val-labels", &party.path("L.npy")]));
            transfer.extend(strings(&["--out", &party.path("t.tbf")]));
            transfer.extend(strings(&["--receiver-out", &party.path("t.onnx")]));
            transfer.extend(strings(&["--epsilon", "inf"]));
            transfer.extend(options.extra.iter().cloned());
            let one = run(options, party.folder.path(), &transfer)?;
            progress(&format!(
                "{task}: {} -> {} (emit, absorb)",
                transmitter.config, receiver.config
            ));
            let (emitted, absorbed, token, _plain) =
                two_party(options, &zoo, transmitter, receiver, false, "inf")?;
            let with_hub = options
                .hub_vectors
                .then(|| two_party(options, &zoo, transmitter, receiver, true, "inf"))
                .transpose()?;
            if index == 0 {
                let mut tokens = vec![(token.clone(), false)];
                tokens.extend(
                    with_hub
                        .as_ref()
                        .map(|(_, _, path, _)| (path.clone(), true)),
                );
                for (path, hub) in &tokens {
                    let knowledge = Knowledge::load(path, &LoadOptions::default())?;
                    let hub_width = hub.then_some(knowledge.header.recipe.hub.dim);
                    let as_token = knowledge.to_token()?;
                    for quant in [
                        QuantType::Float32,
                        QuantType::Float16,
                        QuantType::Bfloat16,
                        QuantType::Int8,
                    ] {
                        let bytes = tbf::encode(
                            &as_token,
                            &SaveOptions {
                                quant,
                                ..SaveOptions::default()
                            },
                        )?;
                        sizes.push(SizeRow {
                            task: task.clone(),
                            hub_width,
                            quant,
                            bytes: bytes.len() as u64,
                        });
                    }
                }
            }
            let after = |ran: &Ran| number(&ran.json["report"]["after"]["agreement"]);
            parity.push(ParityRow {
                task: task.clone(),
                transmitter: transmitter.config.clone(),
                receiver: receiver.config.clone(),
                agreement_before: number(&one.json["report"]["before"]["agreement"]),
                transfer: after(&one),
                two_party: after(&absorbed),
                two_party_hub: with_hub.as_ref().map(|(_, absorbed, _, _)| after(absorbed)),
                transfer_seconds: one.seconds,
                two_party_seconds: emitted.seconds + absorbed.seconds,
                token_bytes: emitted.json["written"]["bytes"].as_u64().unwrap_or(0),
                token_bytes_hub: with_hub
                    .as_ref()
                    .and_then(|(emitted, _, _, _)| emitted.json["written"]["bytes"].as_u64()),
            });
        }
        for (transmitter, receiver) in sweep {
            let held_out = Dataset::load(&zoo.path(&transmitter.datasets.val_inputs), None)?;
            let teacher = logits(&zoo.path(&transmitter.onnx), &held_out)?;
            for &epsilon in &options.epsilons {
                let label = if epsilon.is_finite() {
                    epsilon.to_string()
                } else {
                    "inf".to_string()
                };
                progress(&format!(
                    "{task}: {} -> {} at epsilon {label}",
                    transmitter.config, receiver.config
                ));
                let (emitted, absorbed, _, folder) =
                    two_party(options, &zoo, transmitter, receiver, false, &label)?;
                let report = &absorbed.json["report"];
                let tuned = logits(&folder.path().join("tuned.onnx"), &held_out)?;
                let transmitter_agreement =
                    tessera_metrics::top1_agreement(teacher.view(), tuned.view())
                        .map_err(|error| Error::Party(error.to_string()))?;
                privacy.push(PrivacyRow {
                    task: task.clone(),
                    transmitter: transmitter.config.clone(),
                    receiver: receiver.config.clone(),
                    epsilon,
                    sigma: number(&emitted.json["written"]["privacy"][0]["sigma"]),
                    agreement: [
                        number(&report["before"]["agreement"]),
                        number(&report["after"]["agreement"]),
                    ],
                    accuracy: number(&report["after"]["accuracy"]),
                    transmitter_agreement,
                });
            }
        }
    }
    Ok(ProtocolResults {
        started,
        machine: format!(
            "{} logical CPUs, {}",
            std::thread::available_parallelism().map_or(1, usize::from),
            std::env::consts::ARCH
        ),
        extra: options.extra.clone(),
        parity,
        privacy,
        sizes,
    })
}

/// The privacy-price chart: agreement after absorbing against ε, one line per pair.
pub fn privacy_chart(results: &ProtocolResults) -> Result<Option<Chart>> {
    if results.privacy.is_empty() {
        return Ok(None);
    }
    let mut epsilons: Vec<f64> = Vec::new();
    for row in &results.privacy {
        if !epsilons.contains(&row.epsilon) {
            epsilons.push(row.epsilon);
        }
    }
    let categories: Vec<String> = epsilons
        .iter()
        .map(|e| {
            if e.is_finite() {
                format!("ε = {e}")
            } else {
                "ε = ∞".into()
            }
        })
        .collect();
    let mut lines: Vec<(String, Vec<Option<f64>>)> = Vec::new();
    for row in &results.privacy {
        let name = format!(
            "{}: {}→{}",
            row.task,
            short(&row.transmitter),
            short(&row.receiver)
        );
        let position = epsilons.iter().position(|e| *e == row.epsilon).unwrap_or(0);
        match lines.iter_mut().find(|(line, _)| *line == name) {
            Some((_, values)) => values[position] = Some(row.transmitter_agreement),
            None => {
                let mut values = vec![None; epsilons.len()];
                values[position] = Some(row.transmitter_agreement);
                lines.push((name, values));
            }
        }
    }
    Ok(Some(line_chart(
        "privacy-price.png",
        "Agreement with the transmitter after absorbing, against the privacy budget ε",
        "top-1 agreement (held out)",
        &categories,
        lines,
    )?))
}

/// A config name without its size suffix, the transformer abbreviated (`conv_64d_2L` →
/// `conv`, `transformer_128d_4L` → `tf`), so that a legend of several pairs fits.
fn short(config: &str) -> &str {
    match config.split('_').next().unwrap_or(config) {
        "transformer" => "tf",
        family => family,
    }
}
