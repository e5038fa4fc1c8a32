//! Privacy accounting: every release spends part of a privacy budget, and the spending adds up.
//!
//! The accountant records each release's (ε, δ) and reports the total under two composition
//! theorems, keeping whichever gives the smaller ε: basic sequential composition (Σε, Σδ), and the
//! advanced composition of Dwork, Rothblum & Vadhan (FOCS 2010; Dwork & Roth 2014, Theorem 3.20):
//! k releases each (ε, δ)-DP are together (ε', kδ + δ')-DP with
//! ε' = √(2k ln(1/δ'))·ε + kε(e^ε − 1), for a chosen slack δ' > 0. A budget, if set, is enforced
//! under the basic rule.

use serde::Serialize;

use super::mechanism::validate_epsilon;
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
}

/// An (ε, δ) privacy guarantee or budget.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PrivacyCost {
    /// ε (+∞ serialises as `null`).
    pub epsilon: f64,
    /// δ.
    pub delta: f64,
}

/// Which composition theorem a total comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CompositionRule {
    /// Basic sequential composition: (Σε, Σδ).
    Basic,
    /// Advanced composition (Dwork, Rothblum & Vadhan 2010).
    Advanced,
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
    /// The total with the smaller ε (basic on a tie).
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
    /// The (ε, δ) that basic composition may not exceed, if any.
    budget: Option<PrivacyCost>,
}

impl PrivacyAccountant {
    /// An accountant without a budget: it records everything and only reports totals.
    pub fn new() -> Self {
        Self::default()
    }

    /// An accountant that refuses any release that would take the basic-composition total above
    /// (`epsilon`, `delta`). Errors: ε not a finite number > 0, δ outside [0, 1).
    pub fn with_budget(epsilon: f64, delta: f64) -> Result<Self> {
        if !(epsilon > 0.0 && epsilon.is_finite()) {
            return Err(Error::InvalidParameter(format!(
                "the epsilon budget must be a finite number > 0, got {epsilon}"
            )));
        }
        validate_recorded_delta("the delta budget", delta)?;
        Ok(Self {
            releases: Vec::new(),
            budget: Some(PrivacyCost { epsilon, delta }),
        })
    }

    /// Records a release of (`epsilon`, `delta`) under `label`. With a budget, a release that
    /// would exceed it under basic composition is refused with an error and not recorded.
    /// Errors also for ε not > 0 (+∞ is allowed) or δ outside [0, 1).
    pub fn record(&mut self, epsilon: f64, delta: f64, label: impl Into<String>) -> Result<()> {
        validate_epsilon(epsilon)?;
        validate_recorded_delta("delta", delta)?;
        let label = label.into();
        if let Some(budget) = self.budget {
            let spent = self.basic_total();
            let epsilon_after = spent.epsilon + epsilon;
            let delta_after = spent.delta + delta;
            if epsilon_after > budget.epsilon * (1.0 + BUDGET_TOLERANCE)
                || delta_after > budget.delta * (1.0 + BUDGET_TOLERANCE)
            {
                return Err(Error::BudgetExceeded(format!(
                    "release {label:?} (epsilon {epsilon}, delta {delta}) refused: it would bring \
                     the total to epsilon {epsilon_after}, delta {delta_after}, over the budget of \
                     epsilon {}, delta {} (already spent: epsilon {}, delta {})",
                    budget.epsilon, budget.delta, spent.epsilon, spent.delta
                )));
            }
        }
        self.releases.push(RecordedRelease {
            label,
            epsilon,
            delta,
        });
        Ok(())
    }

    /// Records a release made by [`release_mean`](super::release_mean), with its ε and δ; see
    /// [`record`](Self::record).
    pub fn record_release(
        &mut self,
        report: &ReleaseReport,
        label: impl Into<String>,
    ) -> Result<()> {
        self.record(report.epsilon, report.delta, label)
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

    /// Both totals, the smaller-ε one with the rule that gave it (basic on a tie, since its δ is
    /// never larger), the releases and the budget. Errors: δ' outside (0, 1).
    pub fn summary(&self, delta_slack: f64) -> Result<CompositionSummary> {
        let basic = self.basic_total();
        let advanced = self.advanced_total(delta_slack)?;
        let (total, rule) = if advanced.epsilon < basic.epsilon {
            (advanced, CompositionRule::Advanced)
        } else {
            (basic, CompositionRule::Basic)
        };
        Ok(CompositionSummary {
            releases: self.releases.clone(),
            basic,
            advanced,
            delta_slack,
            total,
            rule,
            budget: self.budget,
        })
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
}
