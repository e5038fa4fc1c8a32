//! Privacy accounting: every release spends part of a privacy budget, and the spending adds up.
//!
//! The accountant records each release's (ε, δ) and, for Gaussian releases, its zCDP cost ρ, and
//! reports the total under three composition theorems, keeping whichever gives the smallest ε:
//!
//! - basic sequential composition: (Σε, Σδ);
//! - zero-concentrated DP (Bun & Steinke, TCC 2016): Gaussian releases compose by adding ρ, and a
//!   ρ-zCDP total is (ρ + 2√(ρ ln(1/δ)), δ)-DP for every δ > 0 (their Proposition 1.3). It
//!   applies only when every release has a ρ, and is far tighter than basic composition for many
//!   small Gaussian releases;
//! - the advanced composition of Dwork, Rothblum & Vadhan (FOCS 2010; Dwork & Roth 2014,
//!   Theorem 3.20): k releases each (ε, δ)-DP are together (ε', kδ + δ')-DP with
//!   ε' = √(2k ln(1/δ'))·ε + kε(e^ε − 1), for a chosen slack δ' > 0.
//!
//! A budget (ε_B, δ_B), if set, is enforced under the tightest rule that applies: a release is
//! refused only if, after it, neither the basic total (both Σε ≤ ε_B and Σδ ≤ δ_B) nor the zCDP
//! total converted at δ_B fits. Advanced composition is reported but not enforced: its δ depends
//! on a slack chosen after the fact, and the theorem as stated assumes the releases' parameters
//! were fixed in advance. Totals are valid for a sequence of releases whose parameters do not
//! depend on earlier outputs.

use serde::{Deserialize, Serialize};

use super::mechanism::{analytic_gaussian_sigma, validate_epsilon};
use super::release::ReleaseReport;
use crate::{Error, Result};

/// Relative slack when comparing spending with a budget, so that rounding in sums such as
/// 0.1 + 0.2 does not refuse a release that exactly fills the budget. Negligible for privacy.
const BUDGET_TOLERANCE: f64 = 1e-9;

/// One release as the accountant recorded it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordedRelease {
    /// What was released (free text, for the audit trail).
    pub label: String,
    /// The release's ε.
    pub epsilon: f64,
    /// The release's δ.
    pub delta: f64,
    /// The release's zCDP ρ: `Some` for Gaussian releases (recorded from a [`ReleaseReport`] or a
    /// [`ReleaseCost`] with ρ), `None` for releases recorded by bare (ε, δ).
    pub rho: Option<f64>,
}

/// An (ε, δ) privacy guarantee or budget.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PrivacyCost {
    /// ε (+∞ serialises as `null`).
    pub epsilon: f64,
    /// δ.
    pub delta: f64,
}

/// What one release spends, as the accountant composes it: its (ε, δ) and, for a Gaussian
/// release, its zCDP ρ. Lets a caller check a release against a budget before making it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ReleaseCost {
    /// ε > 0, or +∞ for a release without noise.
    pub epsilon: f64,
    /// δ in [0, 1).
    pub delta: f64,
    /// ρ ≥ 0 (+∞ allowed) for a Gaussian release, `None` if only (ε, δ) is known.
    pub rho: Option<f64>,
}

impl ReleaseCost {
    /// A release known only by its (ε, δ) guarantee; zCDP composition will not apply to it.
    pub fn approximate(epsilon: f64, delta: f64) -> Self {
        Self {
            epsilon,
            delta,
            rho: None,
        }
    }

    /// The cost of an analytic-Gaussian release at (ε, δ), as [`release_mean`](crate::release_mean)
    /// or [`release_rows`](crate::release_rows) will report it: ρ = Δ²/(2σ²) depends only on ε
    /// and δ (σ is proportional to Δ), so this is known before the release is made (up to
    /// rounding). ε = +∞ gives ρ = +∞. Errors: as [`analytic_gaussian_sigma`].
    pub fn gaussian(epsilon: f64, delta: f64) -> Result<Self> {
        let unit_sigma = analytic_gaussian_sigma(epsilon, delta, 1.0)?;
        let rho = if unit_sigma == 0.0 {
            f64::INFINITY
        } else {
            1.0 / (2.0 * unit_sigma * unit_sigma)
        };
        Ok(Self {
            epsilon,
            delta,
            rho: Some(rho),
        })
    }
}

impl From<&ReleaseReport> for ReleaseCost {
    fn from(report: &ReleaseReport) -> Self {
        Self {
            epsilon: report.epsilon,
            delta: report.delta,
            rho: Some(report.rho),
        }
    }
}

/// Which composition theorem a total comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CompositionRule {
    /// Basic sequential composition: (Σε, Σδ).
    Basic,
    /// Advanced composition (Dwork, Rothblum & Vadhan 2010).
    Advanced,
    /// zCDP composition (Bun & Steinke 2016): Σρ, converted to (ε, δ).
    Zcdp,
}

impl CompositionRule {
    /// How error messages name the rule, e.g. "basic composition".
    fn description(self) -> &'static str {
        match self {
            Self::Basic => "basic composition",
            Self::Advanced => "advanced composition",
            Self::Zcdp => "zCDP composition",
        }
    }
}

/// The accountant's state and totals, for logs and reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompositionSummary {
    /// Every recorded release, in order.
    pub releases: Vec<RecordedRelease>,
    /// The total under basic composition.
    pub basic: PrivacyCost,
    /// The total under advanced composition with slack `delta_slack`.
    pub advanced: PrivacyCost,
    /// The δ' the advanced total was computed with.
    pub delta_slack: f64,
    /// Σρ, when every release has a ρ (0 before any release); otherwise `None`.
    pub rho: Option<f64>,
    /// The zCDP total Σρ converted to (ε, δ) at δ = the budget's δ when there is a budget (the δ
    /// it is enforced at), else at the basic total's Σδ (so that it compares with basic
    /// composition at the same δ). `None` when some release has no ρ.
    pub zcdp: Option<PrivacyCost>,
    /// The total with the smallest ε among the rules that apply (basic, then zCDP, then
    /// advanced on a tie). With a budget: only the enforced rules (basic, zCDP), preferring those
    /// whose δ is within the budget's δ.
    pub total: PrivacyCost,
    /// Which rule gave `total`.
    pub rule: CompositionRule,
    /// The budget enforced on recording, if any.
    pub budget: Option<PrivacyCost>,
}

/// Keeps track of the privacy spent by a sequence of releases over the same data, optionally
/// refusing releases beyond a budget.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PrivacyAccountant {
    /// Releases recorded so far, in order.
    releases: Vec<RecordedRelease>,
    /// The (ε, δ) that the tightest enforced rule may not exceed, if any.
    budget: Option<PrivacyCost>,
}

impl PrivacyAccountant {
    /// An accountant without a budget: it records everything and only reports totals.
    pub fn new() -> Self {
        Self::default()
    }

    /// An accountant that refuses any release after which no enforced rule (basic composition,
    /// or zCDP converted at `delta`) keeps the total within (`epsilon`, `delta`); see the module
    /// documentation. Errors: ε not a finite number > 0, δ outside [0, 1).
    pub fn with_budget(epsilon: f64, delta: f64) -> Result<Self> {
        validate_budget(PrivacyCost { epsilon, delta })?;
        Ok(Self {
            releases: Vec::new(),
            budget: Some(PrivacyCost { epsilon, delta }),
        })
    }

    /// An accountant holding `releases` (already validated) under `budget`, without checking
    /// them against it: how a ledger entry is turned back into an accountant.
    pub(crate) fn from_parts(releases: Vec<RecordedRelease>, budget: Option<PrivacyCost>) -> Self {
        Self { releases, budget }
    }

    /// Records a release of (`epsilon`, `delta`) under `label`, without a ρ (zCDP composition
    /// then no longer applies); see [`record_cost`](Self::record_cost).
    pub fn record(&mut self, epsilon: f64, delta: f64, label: impl Into<String>) -> Result<()> {
        self.record_cost(ReleaseCost::approximate(epsilon, delta), label)
    }

    /// Records a release made by [`release_mean`](crate::release_mean) or
    /// [`release_rows`](crate::release_rows), with its ε, δ and ρ; see
    /// [`record_cost`](Self::record_cost).
    pub fn record_release(
        &mut self,
        report: &ReleaseReport,
        label: impl Into<String>,
    ) -> Result<()> {
        self.record_cost(ReleaseCost::from(report), label)
    }

    /// Records a release costing `cost` under `label`. With a budget, a release after which no
    /// enforced rule stays within it is refused with [`Error::BudgetExceeded`] (stating the total
    /// it would reach, the budget and the spend so far) and not recorded. Errors also for ε not
    /// > 0 (+∞ is allowed), δ outside [0, 1), ρ negative or NaN.
    pub fn record_cost(&mut self, cost: ReleaseCost, label: impl Into<String>) -> Result<()> {
        validate_cost(&cost)?;
        let label = label.into();
        if let Some(budget) = self.budget {
            let spent = self.basic_total();
            let basic_after = PrivacyCost {
                epsilon: spent.epsilon + cost.epsilon,
                delta: spent.delta + cost.delta,
            };
            let rho_after = self.rho_total().zip(cost.rho).map(|(a, b)| a + b);
            let after = enforced_totals(basic_after, rho_after, budget);
            if !after.iter().any(|(total, _)| within(*total, budget)) {
                let (total_after, rule_after) = tightest(&after, Some(budget));
                let now = enforced_totals(spent, self.rho_total(), budget);
                let (total_now, rule_now) = tightest(&now, Some(budget));
                return Err(Error::BudgetExceeded(format!(
                    "release {label:?} (epsilon {}, delta {}) refused: it would bring the total \
                     to epsilon {}, delta {} under {}, over the budget of epsilon {}, delta {} \
                     (already spent: epsilon {}, delta {} under {}, in {} releases)",
                    cost.epsilon,
                    cost.delta,
                    total_after.epsilon,
                    total_after.delta,
                    rule_after.description(),
                    budget.epsilon,
                    budget.delta,
                    total_now.epsilon,
                    total_now.delta,
                    rule_now.description(),
                    self.releases.len(),
                )));
            }
        }
        self.releases.push(RecordedRelease {
            label,
            epsilon: cost.epsilon,
            delta: cost.delta,
            rho: cost.rho,
        });
        Ok(())
    }

    /// The releases recorded so far, in order.
    pub fn releases(&self) -> &[RecordedRelease] {
        &self.releases
    }

    /// The budget, if one was set.
    pub fn budget(&self) -> Option<PrivacyCost> {
        self.budget
    }

    /// The total under basic sequential composition: (Σε, Σδ). (0, 0) before any release.
    pub fn basic_total(&self) -> PrivacyCost {
        PrivacyCost {
            epsilon: self.releases.iter().map(|release| release.epsilon).sum(),
            delta: self.releases.iter().map(|release| release.delta).sum(),
        }
    }

    /// Σρ over the releases, if every one has a ρ (0 before any release); `None` otherwise.
    pub fn rho_total(&self) -> Option<f64> {
        self.releases.iter().map(|release| release.rho).sum()
    }

    /// The zCDP total converted to (ε, `delta`)-DP: (Σρ + 2√(Σρ ln(1/δ)), δ). `None` if some
    /// release has no ρ. Errors: δ outside (0, 1).
    pub fn zcdp_total(&self, delta: f64) -> Result<Option<PrivacyCost>> {
        validate_conversion_delta(delta)?;
        Ok(self.rho_total().map(|rho| PrivacyCost {
            epsilon: zcdp_epsilon(rho, delta),
            delta,
        }))
    }

    /// The total under advanced composition with slack δ' = `delta_slack`:
    /// (√(2k ln(1/δ'))·ε + kε(e^ε − 1), kδ + δ') for k releases. Releases with different
    /// parameters are each also (ε_max, δ_max)-DP, so the largest ε and δ recorded are used;
    /// with equal parameters this is exactly the theorem. Errors: δ' outside (0, 1).
    pub fn advanced_total(&self, delta_slack: f64) -> Result<PrivacyCost> {
        if !(delta_slack > 0.0 && delta_slack < 1.0) {
            return Err(Error::InvalidParameter(format!(
                "the advanced-composition slack delta' must satisfy 0 < delta' < 1, got \
                 {delta_slack}"
            )));
        }
        let count = self.releases.len() as f64;
        let largest_epsilon = self
            .releases
            .iter()
            .map(|release| release.epsilon)
            .fold(0.0, f64::max);
        let largest_delta = self
            .releases
            .iter()
            .map(|release| release.delta)
            .fold(0.0, f64::max);
        let epsilon = (2.0 * count * (1.0 / delta_slack).ln()).sqrt() * largest_epsilon
            + count * largest_epsilon * largest_epsilon.exp_m1();
        Ok(PrivacyCost {
            epsilon,
            delta: count * largest_delta + delta_slack,
        })
    }

    /// Every total, the tightest one with the rule that gave it (see
    /// [`CompositionSummary::total`]), the releases and the budget. Errors: δ' outside (0, 1).
    pub fn summary(&self, delta_slack: f64) -> Result<CompositionSummary> {
        let basic = self.basic_total();
        let advanced = self.advanced_total(delta_slack)?;
        let rho = self.rho_total();
        let (zcdp, candidates) = match self.budget {
            Some(budget) => {
                let candidates = enforced_totals(basic, rho, budget);
                let zcdp = candidates
                    .iter()
                    .find(|(_, rule)| *rule == CompositionRule::Zcdp)
                    .map(|(total, _)| *total);
                (zcdp, candidates)
            }
            None => {
                let zcdp = rho.map(|rho| PrivacyCost {
                    epsilon: zcdp_epsilon(rho, basic.delta),
                    delta: basic.delta,
                });
                let mut candidates = vec![(basic, CompositionRule::Basic)];
                candidates.extend(zcdp.map(|total| (total, CompositionRule::Zcdp)));
                candidates.push((advanced, CompositionRule::Advanced));
                (zcdp, candidates)
            }
        };
        let (total, rule) = tightest(&candidates, self.budget);
        Ok(CompositionSummary {
            releases: self.releases.clone(),
            basic,
            advanced,
            delta_slack,
            rho,
            zcdp,
            total,
            rule,
            budget: self.budget,
        })
    }
}

/// The ε of a ρ-zCDP guarantee as (ε, δ)-DP: ρ + 2√(ρ ln(1/δ)) (Bun & Steinke 2016,
/// Proposition 1.3), for converting a report's or a summary's ρ. Errors: ρ negative or NaN
/// (+∞ gives +∞), δ outside (0, 1).
pub fn zcdp_to_dp(rho: f64, delta: f64) -> Result<f64> {
    validate_rho(rho)?;
    validate_conversion_delta(delta)?;
    Ok(zcdp_epsilon(rho, delta))
}

/// ρ + 2√(ρ ln(1/δ)) for validated ρ ≥ 0, with ρ = 0 giving 0 and ρ = +∞ giving +∞ at any δ,
/// δ = 0 giving +∞ for ρ > 0, and δ ≥ 1 (a vacuous guarantee, e.g. a Σδ that reached 1) giving ρ.
fn zcdp_epsilon(rho: f64, delta: f64) -> f64 {
    if rho == 0.0 || rho == f64::INFINITY {
        return rho;
    }
    rho + 2.0 * (rho * (1.0 / delta).ln().max(0.0)).sqrt()
}

/// The totals a budget is enforced under: basic, and zCDP converted at the budget's δ when
/// every release has a ρ.
fn enforced_totals(
    basic: PrivacyCost,
    rho: Option<f64>,
    budget: PrivacyCost,
) -> Vec<(PrivacyCost, CompositionRule)> {
    let mut totals = vec![(basic, CompositionRule::Basic)];
    totals.extend(rho.map(|rho| {
        let zcdp = PrivacyCost {
            epsilon: zcdp_epsilon(rho, budget.delta),
            delta: budget.delta,
        };
        (zcdp, CompositionRule::Zcdp)
    }));
    totals
}

/// Whether `total` is within `budget` in both ε and δ, up to [`BUDGET_TOLERANCE`].
fn within(total: PrivacyCost, budget: PrivacyCost) -> bool {
    total.epsilon <= budget.epsilon * (1.0 + BUDGET_TOLERANCE)
        && total.delta <= budget.delta * (1.0 + BUDGET_TOLERANCE)
}

/// The candidate with the smallest ε (the first on a tie), among those whose δ is within the
/// budget's δ if there is a budget and any is; `candidates` is never empty.
fn tightest(
    candidates: &[(PrivacyCost, CompositionRule)],
    budget: Option<PrivacyCost>,
) -> (PrivacyCost, CompositionRule) {
    let delta_fits = |total: &PrivacyCost| {
        budget.is_none_or(|budget| total.delta <= budget.delta * (1.0 + BUDGET_TOLERANCE))
    };
    let smallest = |only_fitting: bool| {
        candidates
            .iter()
            .filter(|(total, _)| !only_fitting || delta_fits(total))
            .fold(
                None,
                |best: Option<(PrivacyCost, CompositionRule)>, &(total, rule)| match best {
                    Some((kept, _)) if kept.epsilon <= total.epsilon => best,
                    _ => Some((total, rule)),
                },
            )
    };
    smallest(true)
        .or_else(|| smallest(false))
        .expect("there is always a basic total")
}

/// Checks a budget: ε a finite number > 0, δ in [0, 1).
pub(crate) fn validate_budget(budget: PrivacyCost) -> Result<()> {
    if !(budget.epsilon > 0.0 && budget.epsilon.is_finite()) {
        return Err(Error::InvalidParameter(format!(
            "the epsilon budget must be a finite number > 0, got {}",
            budget.epsilon
        )));
    }
    validate_recorded_delta("the delta budget", budget.delta)
}

/// Checks a release's cost: ε > 0 (or +∞), δ in [0, 1), ρ (if any) ≥ 0 (or +∞).
pub(crate) fn validate_cost(cost: &ReleaseCost) -> Result<()> {
    validate_epsilon(cost.epsilon)?;
    validate_recorded_delta("delta", cost.delta)?;
    cost.rho.map_or(Ok(()), validate_rho)
}

/// Checks a ρ: a number ≥ 0, or +∞ for a release without noise.
fn validate_rho(rho: f64) -> Result<()> {
    if rho >= 0.0 {
        Ok(())
    } else {
        Err(Error::InvalidParameter(format!(
            "rho must be >= 0 (or +inf for no noise), got {rho}"
        )))
    }
}

/// Checks a δ to convert a zCDP total at: strictly between 0 and 1.
fn validate_conversion_delta(delta: f64) -> Result<()> {
    if delta > 0.0 && delta < 1.0 {
        Ok(())
    } else {
        Err(Error::InvalidParameter(format!(
            "the delta to convert a zCDP total at must satisfy 0 < delta < 1, got {delta}"
        )))
    }
}

/// Checks a recorded δ or δ budget: in [0, 1) (pure ε-DP releases have δ = 0).
fn validate_recorded_delta(name: &str, delta: f64) -> Result<()> {
    if (0.0..1.0).contains(&delta) {
        Ok(())
    } else {
        Err(Error::InvalidParameter(format!(
            "{name} must satisfy 0 <= delta < 1, got {delta}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{release_mean, seeded_rng, Neighbouring, ReleaseOptions};

    #[test]
    fn basic_composition_adds_up() {
        let mut accountant = PrivacyAccountant::new();
        accountant.record(0.5, 1e-6, "hub mean").unwrap();
        accountant.record(1.25, 2e-6, "receiver mean").unwrap();
        let total = accountant.basic_total();
        assert_eq!(total.epsilon, 1.75);
        assert!((total.delta - 3e-6).abs() < 1e-20);
        assert_eq!(accountant.releases()[1].label, "receiver mean");
    }

    #[test]
    fn advanced_composition_wins_for_many_small_releases() {
        let mut accountant = PrivacyAccountant::new();
        for index in 0..100 {
            accountant
                .record(0.1, 1e-7, format!("step {index}"))
                .unwrap();
        }
        let summary = accountant.summary(1e-6).unwrap();
        let expected = (200.0 * 1e6_f64.ln()).sqrt() * 0.1 + 100.0 * 0.1 * 0.1_f64.exp_m1();
        assert!((summary.advanced.epsilon - expected).abs() < 1e-12);
        assert!((summary.advanced.delta - (100.0 * 1e-7 + 1e-6)).abs() < 1e-18);
        assert!((summary.basic.epsilon - 10.0).abs() < 1e-9);
        assert_eq!(summary.rule, CompositionRule::Advanced);
        assert_eq!(summary.total, summary.advanced);
        let json = serde_json::to_value(&summary).unwrap();
        assert_eq!(json["rule"], "advanced");
        assert_eq!(json["releases"].as_array().unwrap().len(), 100);
    }

    #[test]
    fn basic_composition_wins_for_few_large_releases() {
        let mut accountant = PrivacyAccountant::new();
        accountant.record(1.0, 1e-6, "a").unwrap();
        accountant.record(1.0, 1e-6, "b").unwrap();
        let summary = accountant.summary(1e-6).unwrap();
        assert_eq!(summary.rule, CompositionRule::Basic);
        assert_eq!(
            summary.total,
            PrivacyCost {
                epsilon: 2.0,
                delta: 2e-6
            }
        );
        assert!(summary.advanced.epsilon > 2.0);
    }

    #[test]
    fn advanced_composition_uses_the_largest_parameters() {
        let mut accountant = PrivacyAccountant::new();
        accountant.record(0.2, 1e-8, "small").unwrap();
        accountant.record(0.4, 1e-7, "large").unwrap();
        let advanced = accountant.advanced_total(1e-5).unwrap();
        let expected = (4.0 * 1e5_f64.ln()).sqrt() * 0.4 + 2.0 * 0.4 * 0.4_f64.exp_m1();
        assert!((advanced.epsilon - expected).abs() < 1e-12);
        assert!((advanced.delta - (2e-7 + 1e-5)).abs() < 1e-18);
        assert!(accountant.advanced_total(0.0).is_err());
        assert!(accountant.advanced_total(f64::NAN).is_err());
    }

    #[test]
    fn budget_refuses_without_recording() {
        let mut accountant = PrivacyAccountant::with_budget(1.0, 1e-5).unwrap();
        accountant.record(0.6, 4e-6, "first").unwrap();
        let error = accountant
            .record(0.5, 1e-6, "second")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("refused") && error.contains("second"),
            "{error}"
        );
        assert_eq!(accountant.releases().len(), 1);
        assert!(accountant.record(0.1, 7e-6, "too much delta").is_err());
        assert_eq!(accountant.releases().len(), 1);
        accountant.record(0.3, 1e-6, "fits").unwrap();
        accountant.record(0.1, 5e-6, "fills it exactly").unwrap();
        assert_eq!(accountant.releases().len(), 3);
        assert!(accountant.record(f64::INFINITY, 0.0, "no noise").is_err());
    }

    #[test]
    fn invalid_values_are_refused() {
        assert!(PrivacyAccountant::with_budget(0.0, 1e-5).is_err());
        assert!(PrivacyAccountant::with_budget(f64::INFINITY, 1e-5).is_err());
        assert!(PrivacyAccountant::with_budget(1.0, 1.0).is_err());
        let mut accountant = PrivacyAccountant::new();
        assert!(accountant
            .record(f64::NAN, 0.0, "x")
            .unwrap_err()
            .to_string()
            .contains("epsilon"));
        assert!(accountant
            .record(1.0, -1e-9, "x")
            .unwrap_err()
            .to_string()
            .contains("delta"));
        assert!(accountant.releases().is_empty());
    }

    #[test]
    fn records_a_release_report() {
        let records = ndarray::Array2::<f32>::ones((4, 3));
        let options = ReleaseOptions {
            epsilon: 0.5,
            delta: 1e-6,
            clip_norm: 1.0,
            neighbouring: Neighbouring::ReplaceOne,
        };
        let release = release_mean(records.view(), &options, &mut seeded_rng(5)).unwrap();
        let mut accountant = PrivacyAccountant::with_budget(1.0, 1e-5).unwrap();
        accountant
            .record_release(&release.report, "hub mean")
            .unwrap();
        assert_eq!(
            accountant.basic_total(),
            PrivacyCost {
                epsilon: 0.5,
                delta: 1e-6
            }
        );
        assert_eq!(
            accountant.budget(),
            Some(PrivacyCost {
                epsilon: 1.0,
                delta: 1e-5
            })
        );
    }

    #[test]
    fn zcdp_beats_basic_and_advanced_for_many_small_gaussian_releases() {
        let cost = ReleaseCost::gaussian(0.1, 1e-7).unwrap();
        let rho = cost.rho.unwrap();
        let mut accountant = PrivacyAccountant::new();
        for index in 0..100 {
            accountant
                .record_cost(cost, format!("step {index}"))
                .unwrap();
        }
        let summary = accountant.summary(1e-6).unwrap();
        let summed_delta = summary.basic.delta;
        let expected = 100.0 * rho + 2.0 * (100.0 * rho * (1.0 / summed_delta).ln()).sqrt();
        let zcdp = summary.zcdp.unwrap();
        assert!((zcdp.epsilon - expected).abs() < 1e-12, "{zcdp:?}");
        assert_eq!(zcdp.delta, summed_delta);
        assert!((summary.rho.unwrap() - 100.0 * rho).abs() < 1e-15);
        assert!(zcdp.epsilon < summary.basic.epsilon / 4.0);
        assert!(zcdp.epsilon < summary.advanced.epsilon);
        assert_eq!(summary.rule, CompositionRule::Zcdp);
        assert_eq!(summary.total, zcdp);
        let json = serde_json::to_value(&summary).unwrap();
        assert_eq!(json["rule"], "zcdp");
        assert_eq!(json["releases"][0]["rho"], rho);
    }

    #[test]
    fn one_gaussian_release_is_tightest_under_basic() {
        let cost = ReleaseCost::gaussian(1.0, 1e-5).unwrap();
        let mut accountant = PrivacyAccountant::new();
        accountant.record_cost(cost, "once").unwrap();
        let summary = accountant.summary(1e-6).unwrap();
        assert_eq!(summary.rule, CompositionRule::Basic);
        assert!(summary.zcdp.unwrap().epsilon > 1.0);
    }

    #[test]
    fn a_release_without_rho_turns_zcdp_off() {
        let mut accountant = PrivacyAccountant::new();
        accountant
            .record_cost(ReleaseCost::gaussian(0.5, 1e-6).unwrap(), "gaussian")
            .unwrap();
        assert!(accountant.rho_total().is_some());
        accountant.record(0.5, 1e-6, "bare").unwrap();
        assert_eq!(accountant.rho_total(), None);
        let summary = accountant.summary(1e-6).unwrap();
        assert_eq!((summary.rho, summary.zcdp), (None, None));
        assert_eq!(accountant.zcdp_total(1e-5).unwrap(), None);
    }

    #[test]
    fn gaussian_cost_matches_the_release_report() {
        let records = ndarray::Array2::<f32>::ones((10, 3));
        let options = ReleaseOptions {
            epsilon: 0.7,
            delta: 1e-6,
            clip_norm: 2.0,
            neighbouring: Neighbouring::ReplaceOne,
        };
        let report = release_mean(records.view(), &options, &mut seeded_rng(1))
            .unwrap()
            .report;
        let planned = ReleaseCost::gaussian(0.7, 1e-6).unwrap();
        let reported = ReleaseCost::from(&report);
        assert_eq!((planned.epsilon, planned.delta), (0.7, 1e-6));
        assert!((planned.rho.unwrap() / reported.rho.unwrap() - 1.0).abs() < 1e-12);
        let infinite = ReleaseCost::gaussian(f64::INFINITY, 1e-6).unwrap();
        assert_eq!(infinite.rho, Some(f64::INFINITY));
    }

    #[test]
    fn budget_is_enforced_under_the_tightest_rule() {
        // Basic composition would refuse the 21st release (Σε = 2.1 > 2); zCDP at δ = 1e-5
        // keeps all 100 within the budget although Σδ = 1e-5 and Σε = 10.
        let cost = ReleaseCost::gaussian(0.1, 1e-7).unwrap();
        let mut accountant = PrivacyAccountant::with_budget(2.0, 1e-5).unwrap();
        for index in 0..100 {
            accountant
                .record_cost(cost, format!("step {index}"))
                .unwrap();
        }
        let summary = accountant.summary(1e-6).unwrap();
        assert!(summary.basic.epsilon > 9.9);
        assert_eq!(summary.rule, CompositionRule::Zcdp);
        assert!(summary.total.epsilon <= 2.0 && summary.total.delta == 1e-5);
        // Bare releases lose the zCDP route: this one must fit under basic, and cannot.
        let error = accountant
            .record(0.01, 0.0, "bare")
            .unwrap_err()
            .to_string();
        assert!(error.contains("basic composition"), "{error}");
        // Larger Gaussian releases eventually exceed the budget under zCDP too.
        let large = ReleaseCost::gaussian(1.0, 1e-7).unwrap();
        let mut refused = None;
        for index in 0..100 {
            if let Err(error) = accountant.record_cost(large, format!("large {index}")) {
                refused = Some(error.to_string());
                break;
            }
        }
        let error = refused.expect("the budget must run out");
        assert!(
            error.contains("refused")
                && error.contains("under zCDP composition")
                && error.contains("already spent: epsilon"),
            "{error}"
        );
        let last = accountant.summary(1e-6).unwrap();
        assert!(last.total.epsilon <= 2.0 * (1.0 + 1e-9));
    }

    #[test]
    fn zero_delta_budget_leaves_only_basic_composition() {
        let mut accountant = PrivacyAccountant::with_budget(1.0, 0.0).unwrap();
        assert!(accountant
            .record_cost(ReleaseCost::gaussian(0.1, 1e-9).unwrap(), "gaussian")
            .is_err());
        accountant.record(0.5, 0.0, "pure").unwrap();
        assert_eq!(accountant.releases().len(), 1);
    }

    #[test]
    fn zcdp_conversion() {
        let expected = 0.5 + 2.0 * (0.5 * 1e5_f64.ln()).sqrt();
        assert_eq!(zcdp_to_dp(0.5, 1e-5).unwrap(), expected);
        assert_eq!(zcdp_to_dp(0.0, 1e-5).unwrap(), 0.0);
        assert_eq!(zcdp_to_dp(f64::INFINITY, 1e-5).unwrap(), f64::INFINITY);
        assert!(zcdp_to_dp(-1.0, 1e-5).is_err());
        assert!(zcdp_to_dp(f64::NAN, 1e-5).is_err());
        assert!(zcdp_to_dp(1.0, 0.0).is_err());
        assert!(zcdp_to_dp(1.0, 1.0).is_err());
        let mut accountant = PrivacyAccountant::new();
        assert!(accountant
            .record_cost(
                ReleaseCost {
                    epsilon: 1.0,
                    delta: 1e-5,
                    rho: Some(-0.1)
                },
                "x"
            )
            .unwrap_err()
            .to_string()
            .contains("rho"));
    }
}
