//! `tessera bench cross-arch`: Mode A over a matrix of ordered zoo pairs (every transmitter
//! config into every other config's untrained receiver), under the default objective and its
//! ablations, with the predecessor's published and re-measured numbers beside ours.

pub mod render;
pub mod results;

use std::path::{Path, PathBuf};
use std::time::Instant;

use tessera_api::AdapterPlan;

use crate::PeakMemory;
use crate::{Error, Result};
use tessera_engine::plugin::PluginRegistry;
use tessera_engine::transfer::{
    Augmentation, ModeATransfer, Objective, Participant, TransferOptions,
};
use tessera_engine::zoo::{Zoo, ZooModel};
use tessera_onnx::OnnxModel;
use tessera_tensor::dataset::Dataset;

use results::{CrossArchResults, PairResult, PredecessorPair, TaskResults, VariantInfo};

/// One objective variant of the benchmark.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// Short name, e.g. `full`.
    pub name: &'static str,
    /// What it is, in words.
    pub description: &'static str,
    /// The objective.
    pub objective: Objective,
    /// How inputs are enlarged.
    pub augmentation: Augmentation,
    /// How the run's fine-tuning schedule is changed.
    pub schedule: VariantSchedule,
}

/// How a variant changes the run's fine-tuning schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VariantSchedule {
    /// The run's schedule as given.
    AsGiven,
    /// Three times the epochs at twice the batch size, the learning rate decaying along a
    /// cosine. With fresh inputs every epoch there is no fixed set to over-fit, so more passes
    /// keep helping; the larger batches and the decay keep the deep Transformer receiver steady.
    LongerDecayed,
}

impl Variant {
    /// The options of one transfer under this variant, from the run's `options`.
    pub fn options(&self, options: TransferOptions) -> TransferOptions {
        let options = TransferOptions {
            objective: self.objective,
            augmentation: self.augmentation,
            ..options
        };
        match self.schedule {
            VariantSchedule::AsGiven => options,
            VariantSchedule::LongerDecayed => TransferOptions {
                epochs: 3 * options.epochs,
                batch_size: 2 * options.batch_size,
                cosine_decay: true,
                ..options
            },
        }
    }
}

/// Every variant the benchmark knows, the default first.
pub fn variants() -> Vec<Variant> {
    vec![
        Variant {
            name: "full",
            description: "the default: output matching + hub alignment, inputs enlarged by mixing",
            objective: Objective::FULL,
            augmentation: Augmentation::Mix,
            schedule: VariantSchedule::AsGiven,
        },
        Variant {
            name: "output-only",
            description: "ablation: output matching alone (no hub term), inputs enlarged by mixing",
            objective: Objective::OUTPUT_ONLY,
            augmentation: Augmentation::Mix,
            schedule: VariantSchedule::AsGiven,
        },
        Variant {
            name: "hub-only",
            description:
                "ablation: hub alignment alone (no output term), inputs enlarged by mixing",
            objective: Objective::HUB_ONLY,
            augmentation: Augmentation::Mix,
            schedule: VariantSchedule::AsGiven,
        },
        Variant {
            name: "full-fixed",
            description: "ablation: the full objective on the given inputs only (no mixing)",
            objective: Objective::FULL,
            augmentation: Augmentation::None,
            schedule: VariantSchedule::AsGiven,
        },
        Variant {
            name: "output-only-fixed",
            description: "plain output matching on the given inputs only (Hinton KD, T=2)",
            objective: Objective::OUTPUT_ONLY,
            augmentation: Augmentation::None,
            schedule: VariantSchedule::AsGiven,
        },
        Variant {
            name: "sample-domain",
            description: "the full objective with fresh inputs sampled from the input domain, \
                          for three times the epochs at twice the batch size with cosine decay",
            objective: Objective::FULL,
            augmentation: Augmentation::SampleDomain,
            schedule: VariantSchedule::LongerDecayed,
        },
    ]
}

/// What to benchmark.
#[derive(Debug, Clone)]
pub struct CrossArchOptions {
    /// The zoo folder.
    pub zoo_dir: PathBuf,
    /// Tasks to run (`toy`, `digits`).
    pub tasks: Vec<String>,
    /// Names of the variants to run (see [`variants`]).
    pub variants: Vec<String>,
    /// `quick` or `full`: recorded in the results.
    pub mode: String,
    /// Which export of each model to use.
    pub exporter: String,
    /// Transfer settings shared by every pair (objective and augmentation come from the variant).
    pub transfer: TransferOptions,
    /// Folder with the predecessor's measurements (`predecessor_quick_*.json`), if available.
    pub reference_dir: Option<PathBuf>,
}

/// A zoo model loaded once for the whole matrix, with the plan of the adapter chosen for it.
pub(crate) struct Loaded<'z> {
    pub(crate) entry: &'z ZooModel,
    pub(crate) model: OnnxModel,
    pub(crate) plan: AdapterPlan,
}

impl Loaded<'_> {
    pub(crate) fn participant(&self) -> Result<Participant<'_>> {
        Ok(Participant::new(&self.model, self.plan.clone())?)
    }
}

/// The zoo's models of `task` in `role` and `exporter`, loaded and analysed.
fn load<'z>(
    zoo: &'z Zoo,
    registry: &PluginRegistry,
    task: &str,
    role: &str,
    exporter: &str,
) -> Result<Vec<Loaded<'z>>> {
    zoo.models
        .iter()
        .filter(|model| model.task == task && model.role == role && model.exporter == exporter)
        .map(|entry| {
            let model = OnnxModel::load(&zoo.path(&entry.onnx))?;
            let plan = registry.choose_adapter(&model, None)?.plan;
            Ok(Loaded { entry, model, plan })
        })
        .collect()
}

/// One task's matrix: its transmitters and receivers loaded and analysed, and its datasets.
pub(crate) struct TaskMatrix<'z> {
    pub(crate) transmitters: Vec<Loaded<'z>>,
    pub(crate) receivers: Vec<Loaded<'z>>,
    /// Where the task's training inputs are.
    pub(crate) train_path: PathBuf,
    pub(crate) train: Dataset,
    pub(crate) validation: Dataset,
}

impl<'z> TaskMatrix<'z> {
    /// The `exporter` models of `task` and the datasets of its first transmitter.
    pub(crate) fn load(
        zoo: &'z Zoo,
        registry: &PluginRegistry,
        task: &str,
        exporter: &str,
    ) -> Result<Self> {
        let transmitters = load(zoo, registry, task, "transmitter", exporter)?;
        let receivers = load(zoo, registry, task, "receiver", exporter)?;
        let Some(first) = transmitters.first().map(|loaded| loaded.entry) else {
            return Err(Error::InvalidOption(format!(
                "the zoo has no {exporter} transmitters of task {task:?}"
            )));
        };
        let datasets = &first.datasets;
        let train_path = zoo.path(&datasets.train_inputs);
        let train = Dataset::load(&train_path, None)?;
        let validation = Dataset::load(
            &zoo.path(&datasets.val_inputs),
            Some(&zoo.path(&datasets.val_labels)),
        )?;
        Ok(Self {
            transmitters,
            receivers,
            train_path,
            train,
            validation,
        })
    }

    /// The ordered pairs of `task`'s matrix. The toy matrix is the predecessor's quick set:
    /// pairs of different configs. Other tasks run every ordered pair, including a receiver of
    /// the transmitter's own architecture (a fresh initialisation).
    pub(crate) fn pairs(&self, task: &str) -> Vec<(&Loaded<'z>, &Loaded<'z>)> {
        self.transmitters
            .iter()
            .flat_map(|tx| {
                self.receivers
                    .iter()
                    .filter(move |rx| task != "toy" || rx.entry.config != tx.entry.config)
                    .map(move |rx| (tx, rx))
            })
            .collect()
    }
}

fn read_json(path: &Path) -> Option<serde_json::Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// The predecessor's published and re-measured figures for the toy quick set, from
/// `reference_dir` (missing files give an empty list).
pub fn predecessor_pairs(reference_dir: &Path) -> Vec<PredecessorPair> {
    let agreement = read_json(&reference_dir.join("predecessor_quick_agreement.json"));
    let published = read_json(&reference_dir.join("predecessor_quick_benchmark.json"));
    let Some(rows) = agreement.as_ref().and_then(|value| value.as_array()) else {
        return Vec::new();
    };
    let published_rows = published
        .as_ref()
        .and_then(|value| value.get("results"))
        .and_then(|value| value.as_array());
    rows.iter()
        .filter_map(|row| {
            let pair = row.get("pair")?.as_str()?;
            let (transmitter, receiver) = pair.split_once("->")?;
            let number = |key: &str| row.get(key).and_then(|value| value.as_f64());
            let published_accuracy_change = published_rows.and_then(|rows| {
                rows.iter()
                    .find(|entry| {
                        entry.get("pair_id").and_then(|id| id.as_str())
                            == Some(&format!("{transmitter}\u{2192}{receiver}"))
                    })
                    .and_then(|entry| entry.get("accuracy_delta"))
                    .and_then(|value| value.as_f64())
            });
            Some(PredecessorPair {
                transmitter: transmitter.to_string(),
                receiver: receiver.to_string(),
                published_accuracy_change,
                agreement_after: number("agree_after"),
                rx_accuracy_after: number("rx_after"),
                tx_accuracy: number("tx_acc"),
                seconds: number("transfer_s"),
            })
        })
        .collect()
}

/// Runs the benchmark. `progress` is told which transfer is running.
pub fn run(
    options: &CrossArchOptions,
    registry: &PluginRegistry,
    progress: &mut dyn FnMut(&str),
) -> Result<CrossArchResults> {
    let started = Instant::now();
    let memory = PeakMemory::start();
    let started_at = chrono::Local::now().to_rfc3339();
    let zoo = Zoo::load(&options.zoo_dir)?;
    let all_variants = variants();
    let chosen: Vec<&Variant> = options
        .variants
        .iter()
        .map(|name| {
            all_variants
                .iter()
                .find(|variant| variant.name == name)
                .ok_or_else(|| {
                    let known: Vec<&str> = all_variants.iter().map(|v| v.name).collect();
                    Error::InvalidOption(format!(
                        "unknown variant {name:?}; known variants: {}",
                        known.join(", ")
                    ))
                })
        })
        .collect::<Result<_>>()?;
    let mut tasks = Vec::new();
    for task in &options.tasks {
        let matrix = TaskMatrix::load(&zoo, registry, task, &options.exporter)?;
        let (train, validation) = (&matrix.train, &matrix.validation);
        let mut rows = Vec::new();
        for variant in &chosen {
            for (transmitter, receiver) in matrix.pairs(task) {
                let tx_entry = transmitter.entry;
                let rx_entry = receiver.entry;
                progress(&format!(
                    "{task} {}: {} -> {}",
                    variant.name, tx_entry.config, rx_entry.config
                ));
                let outcome =
                    ModeATransfer::with_plans(transmitter.participant()?, receiver.participant()?)
                        .options(variant.options(options.transfer))
                        .execute(train, validation)?;
                let report = &outcome.report;
                let figure = |value: Option<f64>| value.unwrap_or(f64::NAN);
                rows.push(PairResult {
                    variant: variant.name.to_string(),
                    transmitter: tx_entry.config.clone(),
                    receiver: rx_entry.config.clone(),
                    tx_accuracy: figure(report.transmitter_accuracy),
                    rx_accuracy_before: figure(report.before.accuracy),
                    rx_accuracy_after: figure(report.after.accuracy),
                    agreement_before: figure(report.before.agreement),
                    agreement_after: figure(report.after.agreement),
                    kl_before: figure(report.before.output_kl),
                    kl_after: figure(report.after.output_kl),
                    cka_after: report.after.cka.last().map_or(f64::NAN, |depth| depth.cka),
                    hub_retrieval: figure(report.hub_retrieval_before_fine_tuning),
                    round_trip_error: figure(report.hub_round_trip_error),
                    drift: report.after.predecessor_drift,
                    seconds: report.timings.total,
                });
            }
        }
        let predecessor = match (&options.reference_dir, task.as_str()) {
            (Some(dir), "toy") => predecessor_pairs(dir),
            _ => Vec::new(),
        };
        tasks.push(TaskResults {
            task: task.clone(),
            train_inputs: train.len(),
            val_inputs: validation.len(),
            variants: chosen
                .iter()
                .map(|variant| VariantInfo {
                    name: variant.name.to_string(),
                    description: variant.description.to_string(),
                })
                .collect(),
            rows,
            predecessor,
        });
    }
    Ok(CrossArchResults {
        started: started_at,
        machine: format!(
            "{} logical CPUs, {}",
            std::thread::available_parallelism().map_or(1, usize::from),
            std::env::consts::ARCH
        ),
        mode: options.mode.clone(),
        hub_dim: options.transfer.hub.dim,
        peak_rss_mib: memory.peak_mib().unwrap_or(f64::NAN),
        total_seconds: started.elapsed().as_secs_f64(),
        tasks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_predecessors_measurements() {
        let folder = tempfile::tempdir().unwrap();
        std::fs::write(
            folder.path().join("predecessor_quick_agreement.json"),
            r#"[{"pair": "conv_64d_2L->lstm_64d_2L", "tx_acc": 0.7, "rx_before": 0.5,
                 "rx_after": 0.52, "agree_before": 0.48, "agree_after": 0.5, "transfer_s": 8.1}]"#,
        )
        .unwrap();
        std::fs::write(
            folder.path().join("predecessor_quick_benchmark.json"),
            r#"{"results": [{"pair_id": "conv_64d_2L\u2192lstm_64d_2L", "accuracy_delta": 6.0}]}"#,
        )
        .unwrap();
        let pairs = predecessor_pairs(folder.path());
        assert_eq!(
            pairs,
            [PredecessorPair {
                transmitter: "conv_64d_2L".into(),
                receiver: "lstm_64d_2L".into(),
                published_accuracy_change: Some(6.0),
                agreement_after: Some(0.5),
                rx_accuracy_after: Some(0.52),
                tx_accuracy: Some(0.7),
                seconds: Some(8.1),
            }]
        );
        assert!(predecessor_pairs(&folder.path().join("missing")).is_empty());
    }

    #[test]
    fn every_variant_has_a_distinct_name_and_the_default_comes_first() {
        let all = variants();
        assert_eq!(all[0].name, "full");
        assert_eq!(all[0].objective, Objective::FULL);
        let mut names: Vec<&str> = all.iter().map(|variant| variant.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len());
    }

    #[test]
    fn variants_set_their_objective_and_only_domain_sampling_changes_the_schedule() {
        let run = TransferOptions {
            epochs: 7,
            batch_size: 16,
            ..TransferOptions::default()
        };
        for variant in variants() {
            let options = variant.options(run);
            assert_eq!(options.objective, variant.objective, "{}", variant.name);
            assert_eq!(
                options.augmentation, variant.augmentation,
                "{}",
                variant.name
            );
            let schedule = (options.epochs, options.batch_size, options.cosine_decay);
            if variant.augmentation == Augmentation::SampleDomain {
                assert_eq!(schedule, (21, 32, true));
            } else {
                assert_eq!(schedule, (7, 16, false), "{}", variant.name);
            }
        }
    }
}
