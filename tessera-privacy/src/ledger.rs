//! A persistent privacy ledger: what has been spent on each data set, kept in a JSON file so that
//! the budget holds across runs, not just within one process.
//!
//! The file is pretty-printed JSON, versioned by a `"format": 1` field, with one entry per data
//! set id (a name the user chooses, or one a caller derives from an input fingerprint). An entry
//! holds an optional budget (ε, δ) and every release charged to it: label, ε, δ, ρ, the time it
//! was recorded (RFC 3339, UTC) and the full [`ReleaseReport`] as JSON when there is one. JSON has
//! no infinity, so ε = +∞ and ρ = +∞ are written as the string `"inf"` (a missing ρ is `null`);
//! in the stored report, as everywhere else, infinities are `null`, and the entry's own fields are
//! the ones the ledger reads back.
//!
//! The ledger is rewritten whole and atomically after each change (`tessera_fs`), so a crash
//! leaves either the old or the new file. Concurrent writers are not coordinated: two processes
//! charging the same ledger at once can each read the old file and the later write wins, losing
//! the other's record. Run releases against one ledger file one at a time.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tessera_fs::IoError;

use super::accountant::{validate_budget, validate_cost};
use super::release::ReleaseReport;
use crate::{
    CompositionSummary, Error, PrivacyAccountant, PrivacyCost, RecordedRelease, ReleaseCost, Result,
};

/// The ledger file format this version reads and writes.
const FORMAT: u32 = 1;

/// The label [`PrivacyLedger::check`] gives the release it tries, as refusals name it.
const CHECK_LABEL: &str = "planned release";

/// One data set's entry in the ledger.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LedgerDataset {
    /// The budget (ε, δ) for this data set, if one has been set.
    pub budget: Option<PrivacyCost>,
    /// Every release charged to it, oldest first.
    pub releases: Vec<LedgerRelease>,
}

/// One release as the ledger stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerRelease {
    /// What was released (free text, for the audit trail).
    pub label: String,
    /// The release's ε (+∞ is stored as `"inf"`).
    #[serde(with = "number_or_inf")]
    pub epsilon: f64,
    /// The release's δ.
    pub delta: f64,
    /// The release's zCDP ρ, if known (+∞ is stored as `"inf"`, none as `null`).
    #[serde(default, with = "optional_number_or_inf")]
    pub rho: Option<f64>,
    /// When it was recorded, RFC 3339 in UTC.
    pub recorded_at: String,
    /// The release's [`ReleaseReport`] as JSON, when it was charged with one.
    pub report: Option<serde_json::Value>,
}

/// The file as written: the format version and the entries by data set id.
#[derive(Serialize)]
struct LedgerFileOut<'a> {
    format: u32,
    datasets: &'a BTreeMap<String, LedgerDataset>,
}

/// The file as read; `format` is checked before the entries are interpreted.
#[derive(Deserialize)]
struct LedgerFileIn {
    format: Option<u32>,
    #[serde(default)]
    datasets: serde_json::Value,
}

/// Privacy spending per data set, loaded from and saved to a JSON file; see the module
/// documentation for the format and its limits (no concurrent writers).
#[derive(Debug, Clone, PartialEq)]
pub struct PrivacyLedger {
    /// The ledger file.
    path: PathBuf,
    /// The entries by data set id.
    datasets: BTreeMap<String, LedgerDataset>,
}

impl PrivacyLedger {
    /// The advanced-composition slack δ' used for the summaries the ledger returns (advanced
    /// composition is reported there, never enforced).
    pub const DELTA_SLACK: f64 = 1e-6;

    /// Loads the ledger at `path`. A missing file is an empty ledger (created on the first
    /// change); a file that is not a valid ledger is an [`Error::Ledger`] naming it, never
    /// silently replaced, since that would forget what has been spent. Errors also if the file
    /// cannot be read.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Ok(Self {
                    path,
                    datasets: BTreeMap::new(),
                })
            }
            Err(error) => return Err(IoError::of("read", &path)(error).into()),
        };
        let datasets = parse(&bytes).map_err(|problem| malformed(&path, &problem))?;
        Ok(Self { path, datasets })
    }

    /// The ledger file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The ids of the data sets with an entry, in sorted order.
    pub fn datasets(&self) -> Vec<&str> {
        self.datasets.keys().map(String::as_str).collect()
    }

    /// The entry for `dataset`, if it has one.
    pub fn dataset(&self, dataset: &str) -> Option<&LedgerDataset> {
        self.datasets.get(dataset)
    }

    /// The totals spent on `dataset` under its recorded budget (see
    /// [`PrivacyAccountant::summary`], with slack [`Self::DELTA_SLACK`]); `None` if it has no
    /// entry.
    pub fn summary(&self, dataset: &str) -> Result<Option<CompositionSummary>> {
        self.datasets
            .get(dataset)
            .map(|entry| accountant(entry, None).summary(Self::DELTA_SLACK))
            .transpose()
    }

    /// Sets the budget of `dataset` (creating its entry) and saves the ledger. A budget below
    /// what has already been spent is allowed; it refuses every further release. Errors: an
    /// empty id, ε not a finite number > 0, δ outside [0, 1), a failed save (the ledger in
    /// memory is then unchanged).
    pub fn set_budget(&mut self, dataset: &str, budget: PrivacyCost) -> Result<()> {
        validate_dataset(dataset)?;
        validate_budget(budget)?;
        let previous = self.datasets.clone();
        self.datasets.entry(dataset.to_owned()).or_default().budget = Some(budget);
        self.save().inspect_err(|_| self.datasets = previous)
    }

    /// Whether a release costing `cost` (a [`ReleaseCost`], or a `&ReleaseReport`) would fit the
    /// budget of `dataset`, without recording anything or writing the file: lets a caller refuse
    /// before doing expensive work ([`ReleaseCost::gaussian`] gives the cost of a release not yet
    /// made). `budget`, if given, is used instead of the recorded one; otherwise the recorded
    /// budget (if any) applies. Returns the summary as it would be after the release, or
    /// [`Error::BudgetExceeded`] stating the spend so far.
    pub fn check(
        &self,
        dataset: &str,
        cost: impl Into<ReleaseCost>,
        budget: Option<PrivacyCost>,
    ) -> Result<CompositionSummary> {
        validate_dataset(dataset)?;
        budget.map_or(Ok(()), validate_budget)?;
        let empty = LedgerDataset::default();
        let entry = self.datasets.get(dataset).unwrap_or(&empty);
        let mut accountant = accountant(entry, budget);
        accountant.record_cost(cost.into(), CHECK_LABEL)?;
        accountant.summary(Self::DELTA_SLACK)
    }

    /// Charges the release described by `report` to `dataset` under `label`: refuses it with
    /// [`Error::BudgetExceeded`] (stating the spend so far) if it does not fit, otherwise records
    /// it, with `budget` (if given) as the data set's budget from now on, and saves the ledger
    /// atomically before returning the new totals. Without `budget` the recorded budget (if any)
    /// applies. A refused or unsaved charge leaves the ledger, in memory and on disk, unchanged.
    pub fn charge(
        &mut self,
        dataset: &str,
        report: &ReleaseReport,
        label: impl Into<String>,
        budget: Option<PrivacyCost>,
    ) -> Result<CompositionSummary> {
        let json = serde_json::to_value(report).map_err(|error| {
            Error::Ledger(format!(
                "cannot represent the release report as JSON: {error}"
            ))
        })?;
        self.charge_entry(dataset, report.into(), Some(json), label.into(), budget)
    }

    /// As [`charge`](Self::charge), for a release known only by its cost (no report stored).
    pub fn charge_cost(
        &mut self,
        dataset: &str,
        cost: ReleaseCost,
        label: impl Into<String>,
        budget: Option<PrivacyCost>,
    ) -> Result<CompositionSummary> {
        self.charge_entry(dataset, cost, None, label.into(), budget)
    }

    /// Writes the whole ledger to its file atomically, creating its directory if needed.
    pub fn save(&self) -> Result<()> {
        let file = LedgerFileOut {
            format: FORMAT,
            datasets: &self.datasets,
        };
        let mut bytes = serde_json::to_vec_pretty(&file).map_err(|error| {
            Error::Ledger(format!(
                "cannot write the privacy ledger {}: {error}",
                self.path.display()
            ))
        })?;
        bytes.push(b'\n');
        if let Some(parent) = self.path.parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent)
                    .map_err(IoError::of("create the directory of", &self.path))?;
            }
        }
        tessera_fs::write_atomically(&self.path, &bytes)
            .map_err(IoError::of("write", &self.path))?;
        Ok(())
    }

    /// Checks, records and saves one release; see [`charge`](Self::charge).
    fn charge_entry(
        &mut self,
        dataset: &str,
        cost: ReleaseCost,
        report: Option<serde_json::Value>,
        label: String,
        budget: Option<PrivacyCost>,
    ) -> Result<CompositionSummary> {
        validate_dataset(dataset)?;
        budget.map_or(Ok(()), validate_budget)?;
        let empty = LedgerDataset::default();
        let mut accountant = accountant(self.datasets.get(dataset).unwrap_or(&empty), budget);
        accountant.record_cost(cost, label.clone())?;
        let summary = accountant.summary(Self::DELTA_SLACK)?;
        let previous = self.datasets.clone();
        let entry = self.datasets.entry(dataset.to_owned()).or_default();
        if budget.is_some() {
            entry.budget = budget;
        }
        entry.releases.push(LedgerRelease {
            label,
            epsilon: cost.epsilon,
            delta: cost.delta,
            rho: cost.rho,
            recorded_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            report,
        });
        self.save().inspect_err(|_| self.datasets = previous)?;
        Ok(summary)
    }
}

/// Where the ledger lives unless the user says otherwise: `$TESSERA_PRIVACY_LEDGER` if set,
/// else `$XDG_DATA_HOME/tessera/privacy-ledger.json`, else
/// `$HOME/.local/share/tessera/privacy-ledger.json`; `None` if none of these is set (empty
/// values, and a relative `$XDG_DATA_HOME`, count as unset, as the XDG specification says).
pub fn default_path() -> Option<PathBuf> {
    default_path_from(|name| std::env::var_os(name))
}

/// [`default_path`] with the environment looked up through `variable`.
fn default_path_from(variable: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    let set = |name: &str| variable(name).filter(|value| !value.is_empty());
    if let Some(path) = set("TESSERA_PRIVACY_LEDGER") {
        return Some(PathBuf::from(path));
    }
    let data_home = set("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|path| path.is_absolute())
        .or_else(|| set("HOME").map(|home| PathBuf::from(home).join(".local").join("share")))?;
    Some(data_home.join("tessera").join("privacy-ledger.json"))
}

/// An accountant holding `entry`'s releases under `budget`, or the entry's budget if none.
fn accountant(entry: &LedgerDataset, budget: Option<PrivacyCost>) -> PrivacyAccountant {
    let releases = entry
        .releases
        .iter()
        .map(|release| RecordedRelease {
            label: release.label.clone(),
            epsilon: release.epsilon,
            delta: release.delta,
            rho: release.rho,
        })
        .collect();
    PrivacyAccountant::from_parts(releases, budget.or(entry.budget))
}

/// The entries of a ledger file, or what is wrong with it.
fn parse(bytes: &[u8]) -> std::result::Result<BTreeMap<String, LedgerDataset>, String> {
    let file: LedgerFileIn = serde_json::from_slice(bytes)
        .map_err(|error| format!("it is not a JSON ledger object ({error})"))?;
    match file.format {
        Some(FORMAT) => {}
        Some(other) => {
            return Err(format!(
                "it has format {other}, but this version reads format {FORMAT} only (it may \
                 have been written by a newer version)"
            ))
        }
        None => return Err("it has no \"format\" field".into()),
    }
    let datasets: BTreeMap<String, LedgerDataset> = if file.datasets.is_null() {
        BTreeMap::new()
    } else {
        serde_json::from_value(file.datasets)
            .map_err(|error| format!("its \"datasets\" are not valid ({error})"))?
    };
    for (id, entry) in &datasets {
        if let Some(budget) = entry.budget {
            validate_budget(budget).map_err(|error| format!("data set {id:?}: {error}"))?;
        }
        for (index, release) in entry.releases.iter().enumerate() {
            let cost = ReleaseCost {
                epsilon: release.epsilon,
                delta: release.delta,
                rho: release.rho,
            };
            validate_cost(&cost)
                .map_err(|error| format!("data set {id:?}, release {index}: {error}"))?;
        }
    }
    Ok(datasets)
}

/// The error for a ledger file that cannot be used, saying what to do about it.
fn malformed(path: &Path, problem: &str) -> Error {
    Error::Ledger(format!(
        "the privacy ledger {} is not valid: {problem}. It records the privacy already spent, so \
         it is never replaced automatically: restore it from a backup or repair it by hand; only \
         move it aside to start a new one if you accept forgetting that spending",
        path.display()
    ))
}

/// Checks a data set id: not empty.
fn validate_dataset(dataset: &str) -> Result<()> {
    if dataset.is_empty() {
        Err(Error::InvalidParameter(
            "the data set id of a ledger entry must not be empty".into(),
        ))
    } else {
        Ok(())
    }
}

/// Serde for an f64 that may be +∞, written as the string `"inf"`.
mod number_or_inf {
    use serde::{Deserialize, Deserializer, Serializer};

    /// A JSON number, or a string standing for one.
    #[derive(Deserialize)]
    #[serde(untagged)]
    pub(super) enum Stored {
        /// A finite number.
        Number(f64),
        /// `"inf"`.
        Text(String),
    }

    impl Stored {
        /// The number it stands for.
        pub(super) fn value<E: serde::de::Error>(self) -> Result<f64, E> {
            match self {
                Self::Number(value) => Ok(value),
                Self::Text(text) if text == "inf" => Ok(f64::INFINITY),
                Self::Text(text) => Err(E::custom(format!(
                    "expected a number or \"inf\", found {text:?}"
                ))),
            }
        }
    }

    /// Writes +∞ as `"inf"`, any other value as a number.
    pub(super) fn serialize<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
        if *value == f64::INFINITY {
            serializer.serialize_str("inf")
        } else {
            serializer.serialize_f64(*value)
        }
    }

    /// Reads a number or `"inf"`.
    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
        Stored::deserialize(deserializer)?.value()
    }
}

/// Serde for an optional f64 that may be +∞: `null`, a number, or `"inf"`.
mod optional_number_or_inf {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::number_or_inf::Stored;

    /// Writes `None` as `null`, +∞ as `"inf"`, any other value as a number.
    pub(super) fn serialize<S: Serializer>(
        value: &Option<f64>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            None => serializer.serialize_none(),
            Some(value) => super::number_or_inf::serialize(value, serializer),
        }
    }

    /// Reads `null`, a number or `"inf"`.
    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<f64>, D::Error> {
        Option::<Stored>::deserialize(deserializer)?
            .map(Stored::value)
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use ndarray::Array2;

    use super::*;
    use crate::{release_rows, seeded_rng, CompositionRule, Neighbouring, ReleaseOptions};

    fn report(epsilon: f64) -> ReleaseReport {
        let records = Array2::from_shape_fn((6, 4), |(row, column)| (row + column) as f32);
        let options = ReleaseOptions {
            epsilon,
            delta: 1e-6,
            clip_norm: 1.0,
            neighbouring: Neighbouring::ReplaceOne,
        };
        release_rows(records.view(), &options, 2, &mut seeded_rng(1))
            .unwrap()
            .report
    }

    fn budget(epsilon: f64, delta: f64) -> PrivacyCost {
        PrivacyCost { epsilon, delta }
    }

    #[test]
    fn a_missing_file_is_an_empty_ledger_and_nothing_is_written_until_a_change() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("nested").join("ledger.json");
        let ledger = PrivacyLedger::open(&path).unwrap();
        assert!(ledger.datasets().is_empty());
        assert_eq!(ledger.summary("data").unwrap(), None);
        assert_eq!(ledger.path(), path);
        assert!(!path.exists());
    }

    #[test]
    fn budget_holds_across_runs() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("ledger.json");
        let release = report(0.6);
        {
            let mut first_run = PrivacyLedger::open(&path).unwrap();
            let summary = first_run
                .charge("train.tbf", &release, "logits", Some(budget(1.0, 1e-5)))
                .unwrap();
            assert_eq!(summary.releases.len(), 1);
            assert_eq!(summary.budget, Some(budget(1.0, 1e-5)));
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["format"], 1);
        assert!(text.contains("\n  \"datasets\""), "pretty-printed: {text}");
        let stored = &json["datasets"]["train.tbf"]["releases"][0];
        assert_eq!(stored["label"], "logits");
        assert_eq!(stored["report"]["released"], "rows");
        assert!(
            chrono::DateTime::parse_from_rfc3339(stored["recorded_at"].as_str().unwrap()).is_ok()
        );

        // A second run, with no budget passed: the recorded one applies.
        let mut second_run = PrivacyLedger::open(&path).unwrap();
        assert_eq!(second_run.datasets(), ["train.tbf"]);
        let error = second_run
            .charge("train.tbf", &release, "logits again", None)
            .unwrap_err();
        assert!(matches!(error, Error::BudgetExceeded(_)));
        let message = error.to_string();
        assert!(
            message.contains("\"logits again\"")
                && message.contains("already spent: epsilon 0.6, delta 0.000001")
                && message.contains("in 1 releases"),
            "{message}"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        assert_eq!(second_run.dataset("train.tbf").unwrap().releases.len(), 1);
        // Another data set has its own spending.
        second_run
            .charge("other.tbf", &release, "logits", None)
            .unwrap();
        let summary = second_run.summary("train.tbf").unwrap().unwrap();
        assert_eq!(summary.basic, budget(0.6, 1e-6));
        assert_eq!(summary.rule, CompositionRule::Basic);
    }

    #[test]
    fn check_does_not_record() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("ledger.json");
        let mut ledger = PrivacyLedger::open(&path).unwrap();
        let planned = ReleaseCost::gaussian(0.6, 1e-6).unwrap();
        let summary = ledger
            .check("data", planned, Some(budget(1.0, 1e-5)))
            .unwrap();
        assert_eq!(summary.releases.len(), 1);
        assert!(!path.exists());
        assert_eq!(ledger.dataset("data"), None);
        ledger.set_budget("data", budget(1.0, 1e-5)).unwrap();
        ledger.charge("data", &report(0.6), "first", None).unwrap();
        let before = std::fs::read_to_string(&path).unwrap();
        let error = ledger.check("data", &report(0.6), None).unwrap_err();
        assert!(
            error.to_string().contains("already spent: epsilon 0.6"),
            "{error}"
        );
        assert!(ledger
            .check("data", planned, Some(budget(2.0, 1e-5)))
            .is_ok());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
        assert_eq!(ledger.dataset("data").unwrap().releases.len(), 1);
        assert_eq!(
            ledger.dataset("data").unwrap().budget,
            Some(budget(1.0, 1e-5))
        );
    }

    #[test]
    fn infinite_releases_round_trip_and_are_refused_under_a_budget() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("ledger.json");
        let exact = report(f64::INFINITY);
        let mut ledger = PrivacyLedger::open(&path).unwrap();
        let summary = ledger.charge("data", &exact, "no noise", None).unwrap();
        assert_eq!(summary.total.epsilon, f64::INFINITY);
        ledger
            .charge_cost("data", ReleaseCost::approximate(0.5, 0.0), "bare", None)
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        let releases = &json["datasets"]["data"]["releases"];
        assert_eq!(releases[0]["epsilon"], "inf");
        assert_eq!(releases[0]["rho"], "inf");
        assert!(releases[1]["rho"].is_null() && releases[1]["report"].is_null());
        let reopened = PrivacyLedger::open(&path).unwrap();
        assert_eq!(reopened, ledger);
        let stored = &reopened.dataset("data").unwrap().releases;
        assert_eq!(stored[0].epsilon, f64::INFINITY);
        assert_eq!(stored[0].rho, Some(f64::INFINITY));
        assert_eq!(stored[1].rho, None);

        let mut fresh = PrivacyLedger::open(directory.path().join("other.json")).unwrap();
        let error = fresh
            .charge("data", &exact, "no noise", Some(budget(1e6, 0.5)))
            .unwrap_err();
        assert!(matches!(error, Error::BudgetExceeded(_)), "{error}");
        assert!(fresh.datasets().is_empty());
    }

    #[test]
    fn a_malformed_ledger_is_an_error_naming_the_file() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("ledger.json");
        let cases = [
            "{ not json",
            "[]",
            r#"{"datasets": {}}"#,
            r#"{"format": 2, "datasets": {}}"#,
            r#"{"format": 1, "datasets": {"d": {"budget": null, "releases": [{"label": "x",
                "epsilon": "lots", "delta": 0, "rho": null, "recorded_at": "", "report": null}]}}}"#,
            r#"{"format": 1, "datasets": {"d": {"budget": null, "releases": [{"label": "x",
                "epsilon": 1, "delta": 2, "rho": null, "recorded_at": "", "report": null}]}}}"#,
            r#"{"format": 1, "datasets": {"d": {"budget": {"epsilon": -1, "delta": 0},
                "releases": []}}}"#,
        ];
        for case in cases {
            std::fs::write(&path, case).unwrap();
            let error = PrivacyLedger::open(&path).unwrap_err();
            let message = error.to_string();
            assert!(matches!(error, Error::Ledger(_)), "{message}");
            assert!(
                message.contains(&path.display().to_string())
                    && message.contains("restore it from a backup"),
                "{message}"
            );
            assert_eq!(std::fs::read_to_string(&path).unwrap(), case);
        }
        std::fs::write(&path, r#"{"format": 1, "datasets": {}}"#).unwrap();
        assert!(PrivacyLedger::open(&path).unwrap().datasets().is_empty());
    }

    #[test]
    fn bad_arguments_are_refused_without_writing() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("ledger.json");
        let mut ledger = PrivacyLedger::open(&path).unwrap();
        assert!(ledger.set_budget("", budget(1.0, 1e-5)).is_err());
        assert!(ledger.set_budget("d", budget(f64::INFINITY, 1e-5)).is_err());
        assert!(ledger
            .charge("d", &report(1.0), "x", Some(budget(1.0, 1.0)))
            .is_err());
        assert!(!path.exists());
    }

    #[test]
    fn default_path_follows_the_environment() {
        let lookup = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| OsString::from(value))
            }
        };
        const ALL: [(&str, &str); 3] = [
            ("TESSERA_PRIVACY_LEDGER", "/custom/ledger.json"),
            ("XDG_DATA_HOME", "/data"),
            ("HOME", "/home/user"),
        ];
        assert_eq!(
            default_path_from(lookup(&ALL)),
            Some(PathBuf::from("/custom/ledger.json"))
        );
        assert_eq!(
            default_path_from(lookup(&ALL[1..])),
            Some(PathBuf::from("/data/tessera/privacy-ledger.json"))
        );
        const RELATIVE_XDG: [(&str, &str); 2] = [("XDG_DATA_HOME", "data"), ("HOME", "/home/user")];
        assert_eq!(
            default_path_from(lookup(&RELATIVE_XDG)),
            Some(PathBuf::from(
                "/home/user/.local/share/tessera/privacy-ledger.json"
            ))
        );
        assert_eq!(
            default_path_from(lookup(&[("TESSERA_PRIVACY_LEDGER", "")])),
            None
        );
    }
}
