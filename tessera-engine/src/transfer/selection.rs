//! Choosing the state a fine-tuning ends with. A slice of the training inputs is set aside
//! (never trained on, and apart from the held-out inputs the report measures on); after each
//! epoch the receiver is scored on it against the transmitter's soft targets, and the best
//! state is kept — the start included, so a fine-tuning that cannot help returns the receiver
//! as it came.

use candle_core::Tensor as GraphTensor;
use rand::rngs::ChaCha8Rng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::Serialize;

use crate::Result;
use tessera_train::{FakeQuantisation, TrainableGraph};

/// Mixed into the seed that chooses the rows set aside.
const SELECTION_SEED: u64 = 0x5e1e_c7ed;

/// Fewest inputs a selection slice holds: fewer say too little to choose on.
pub const MIN_SELECTION_INPUTS: usize = 16;

/// The training rows split into those trained on and those set aside for selection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RowSplit {
    /// Rows the receiver trains on, in their original order.
    pub train: Vec<usize>,
    /// Rows it is scored on (empty when selection is off).
    pub selection: Vec<usize>,
}

/// Sets aside `share` of `rows` training rows (at least [`MIN_SELECTION_INPUTS`], and never
/// more than half), chosen by `seed`; none when `share` is 0 or too few rows are given.
pub(super) fn set_aside(rows: usize, share: f64, seed: u64) -> RowSplit {
    let wanted = ((share * rows as f64).round() as usize).max(MIN_SELECTION_INPUTS);
    if share <= 0.0 || wanted > rows / 2 {
        return RowSplit {
            train: (0..rows).collect(),
            selection: Vec::new(),
        };
    }
    let mut order: Vec<usize> = (0..rows).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ SELECTION_SEED));
    let mut selection = order[..wanted].to_vec();
    let mut train = order[wanted..].to_vec();
    selection.sort_unstable();
    train.sort_unstable();
    RowSplit { train, selection }
}

/// How a receiver state scores on the selection slice.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SelectionScore {
    /// Top-1 agreement with the transmitter (when the output spaces agree).
    pub agreement: Option<f64>,
    /// The fine-tuning objective's loss.
    pub loss: f64,
}

impl SelectionScore {
    /// Whether this state follows the transmitter more closely than `start` does: no less
    /// agreement and a lower loss (a lower loss alone where agreement is not defined).
    fn improves_on(&self, start: &SelectionScore) -> bool {
        let agreement_kept = match (self.agreement, start.agreement) {
            (Some(now), Some(then)) => now >= then,
            _ => true,
        };
        agreement_kept && self.loss < start.loss
    }

    /// Whether this state is better than `other`: more agreement, then a lower loss.
    fn beats(&self, other: &SelectionScore) -> bool {
        match (self.agreement, other.agreement) {
            (Some(a), Some(b)) if a != b => a > b,
            _ => self.loss < other.loss,
        }
    }
}

/// A state fine-tuning can end with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Candidate {
    /// The receiver as it came.
    Start,
    /// The weights after this many epochs.
    Epoch(usize),
    /// The running average of the weights the schedule ends with.
    Average,
}

/// Whether the fine-tuning improved on the start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SelectionOutcome {
    /// A trained state follows the transmitter more closely than the start.
    #[serde(rename = "improved")]
    Improved,
    /// No trained state did: the receiver is returned unchanged.
    #[serde(rename = "no improvement")]
    NoImprovement,
}

/// What the selection saw and chose.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SelectionReport {
    /// Training inputs set aside to choose on.
    pub inputs: usize,
    /// Whether anything beat the start.
    pub outcome: SelectionOutcome,
    /// The state kept.
    pub chosen: Candidate,
    /// Its score.
    pub chosen_score: SelectionScore,
    /// The start's score.
    pub start: SelectionScore,
    /// The score after each epoch trained.
    pub epochs: Vec<SelectionScore>,
    /// The running average's score, when the schedule averaged.
    pub average: Option<SelectionScore>,
    /// Epochs the schedule asked for; fewer ran when it stopped early.
    pub epochs_planned: usize,
    /// Whether it stopped early: no better state for `patience` epochs.
    pub stopped_early: bool,
    /// The epochs after which the receiver had collapsed (see [`MAX_BACK_OFFS`]): the best
    /// state was put back and the learning rate halved.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub backed_off_after: Vec<usize>,
}

/// Times at most that a fine-tuning backs off: when an epoch ends with agreement on the
/// selection inputs more than [`COLLAPSE_ERRORS`] standard errors below the best state's and a
/// higher loss (without agreement: a loss above the untrained receiver's), the training has
/// collapsed — a normalised network trained from scratch at a rate it cannot take falls to one
/// constant answer and may stay there — so the best state is put back and the rate halved, the
/// epochs left continuing from there.
pub const MAX_BACK_OFFS: usize = 3;

/// Standard errors of agreement an epoch must lose against the best state to count as a
/// collapse. A collapse loses many (a DistilBERT student fell from 0.55 to 0.34 on 200 inputs,
/// six); the ups and downs of a noisy but healthy fine-tuning on the toy task's 40 set-aside
/// inputs reach three.
pub const COLLAPSE_ERRORS: f64 = 4.0;

/// The receiver's trainable values and running statistics (and what it rounds onto grids)
/// at one moment.
pub(super) struct Snapshot {
    values: Vec<GraphTensor>,
    quantisation: FakeQuantisation,
}

impl Snapshot {
    /// The current state of `graph`.
    pub(super) fn take(graph: &TrainableGraph) -> Result<Self> {
        let values = graph
            .variables()
            .iter()
            .chain(graph.statistics())
            .map(|(_, var)| var.as_tensor().copy())
            .collect::<candle_core::Result<_>>()
            .map_err(crate::Error::compute(super::FINE_TUNING))?;
        Ok(Self {
            values,
            quantisation: graph.fake_quantisation().clone(),
        })
    }

    /// Puts this state back into `graph`.
    pub(super) fn restore(&self, graph: &mut TrainableGraph) -> Result<()> {
        let state = graph.variables().iter().chain(graph.statistics());
        for ((_, var), value) in state.zip(&self.values) {
            var.set(value)
                .map_err(crate::Error::compute(super::FINE_TUNING))?;
        }
        graph.set_fake_quantisation(self.quantisation.clone())?;
        Ok(())
    }
}

/// Follows the scores of a fine-tuning and says which state to keep and when to stop.
///
/// The state the schedule ends with (its weight average, or its last epoch) is kept when it
/// improves on the start and its agreement is within one standard error of the best state's:
/// on a few dozen inputs a single input more is noise, and the end state, trained longest and
/// averaged, generalises better than an epoch picked for a lucky draw. Otherwise the best
/// state is kept, or the start when nothing improved on it.
pub(super) struct Selector {
    inputs: usize,
    start: SelectionScore,
    best: Option<(Candidate, SelectionScore)>,
    last: Option<(Candidate, SelectionScore)>,
    epochs: Vec<SelectionScore>,
    average: Option<SelectionScore>,
    since_best: usize,
    patience: usize,
    back_offs: usize,
    backed_off_after: Vec<usize>,
}

impl Selector {
    /// A selector scoring on `inputs` set-aside inputs, starting from the receiver's own
    /// score; `patience` epochs without a better state stop the fine-tuning (0: never stop
    /// early).
    pub(super) fn new(inputs: usize, start: SelectionScore, patience: usize) -> Self {
        Self {
            inputs,
            start,
            best: None,
            last: None,
            epochs: Vec::new(),
            average: None,
            since_best: 0,
            patience,
            back_offs: MAX_BACK_OFFS,
            backed_off_after: Vec::new(),
        }
    }

    /// Backs off at most `limit` times instead of [`MAX_BACK_OFFS`] (0: never).
    pub(super) fn with_back_offs(mut self, limit: usize) -> Self {
        self.back_offs = limit;
        self
    }

    /// Records the score of `candidate`, offered in the order the schedule reaches them (the
    /// average last); true when it is the best state so far (the caller keeps a snapshot of
    /// it).
    pub(super) fn offer(&mut self, candidate: Candidate, score: SelectionScore) -> bool {
        match candidate {
            Candidate::Average => self.average = Some(score),
            _ => self.epochs.push(score),
        }
        self.last = Some((candidate, score));
        let best = score.improves_on(&self.start)
            && self
                .best
                .is_none_or(|(_, incumbent)| score.beats(&incumbent));
        if best {
            self.best = Some((candidate, score));
            self.since_best = 0;
        } else {
            self.since_best += 1;
        }
        best
    }

    /// Whether the fine-tuning should back off after the last epoch: it collapsed (see
    /// [`MAX_BACK_OFFS`]) from the best state, and fewer back-offs than the limit were made. True means the caller puts the best state back and lowers the rate; the back-off
    /// is recorded.
    pub(super) fn back_off(&mut self) -> bool {
        let lost =
            |score: &SelectionScore, best: &SelectionScore| match (score.agreement, best.agreement)
            {
                (Some(agreement), Some(best_agreement)) => {
                    let error = standard_error(best_agreement, self.inputs);
                    agreement < best_agreement - COLLAPSE_ERRORS * error && score.loss > best.loss
                }
                _ => score.loss > self.start.loss,
            };
        let collapsed = self.backed_off_after.len() < self.back_offs
            && matches!((self.last, self.best), (Some((_, last)), Some((_, best))) if lost(&last, &best));
        if collapsed {
            self.backed_off_after.push(self.epochs.len());
        }
        collapsed
    }

    /// Whether `patience` epochs have passed without a better state.
    pub(super) fn should_stop(&self) -> bool {
        self.patience > 0 && self.since_best >= self.patience
    }

    /// The state to keep, with its score.
    fn kept(&self) -> (Candidate, SelectionScore) {
        let Some((best, best_score)) = self.best else {
            return (Candidate::Start, self.start);
        };
        match self.last {
            Some((last, last_score))
                if last_score.improves_on(&self.start)
                    && within_noise(last_score, best_score, self.inputs) =>
            {
                (last, last_score)
            }
            _ => (best, best_score),
        }
    }

    /// The state to keep.
    pub(super) fn chosen(&self) -> Candidate {
        self.kept().0
    }

    /// Whether the state to keep is the last one offered (the one the schedule ended in).
    pub(super) fn keeps_end(&self) -> bool {
        self.last.is_some_and(|(last, _)| last == self.chosen())
    }

    /// The report, for a schedule of `epochs_planned` epochs.
    pub(super) fn report(self, epochs_planned: usize) -> SelectionReport {
        let (chosen, chosen_score) = self.kept();
        SelectionReport {
            inputs: self.inputs,
            outcome: if chosen == Candidate::Start {
                SelectionOutcome::NoImprovement
            } else {
                SelectionOutcome::Improved
            },
            chosen,
            chosen_score,
            start: self.start,
            stopped_early: self.epochs.len() < epochs_planned,
            epochs: self.epochs,
            average: self.average,
            epochs_planned,
            backed_off_after: self.backed_off_after,
        }
    }
}

/// Whether `score`'s agreement is within one standard error of `best`'s on `inputs` inputs (a
/// lower loss decides where agreement is not defined).
fn within_noise(score: SelectionScore, best: SelectionScore, inputs: usize) -> bool {
    match (score.agreement, best.agreement) {
        (Some(agreement), Some(best)) => agreement >= best - standard_error(best, inputs),
        _ => score.loss <= best.loss,
    }
}

/// The standard error of an agreement of `agreement` measured on `inputs` inputs (at least one
/// input's worth).
fn standard_error(agreement: f64, inputs: usize) -> f64 {
    let inputs = inputs.max(1) as f64;
    (agreement * (1.0 - agreement) / inputs)
        .sqrt()
        .max(1.0 / inputs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(agreement: f64, loss: f64) -> SelectionScore {
        SelectionScore {
            agreement: Some(agreement),
            loss,
        }
    }

    #[test]
    fn the_slice_is_a_seeded_share_apart_from_the_training_rows() {
        let split = set_aside(400, 0.1, 3);
        assert_eq!((split.train.len(), split.selection.len()), (360, 40));
        assert!(split.selection.iter().all(|row| !split.train.contains(row)));
        assert_eq!(split, set_aside(400, 0.1, 3));
        assert_ne!(split.selection, set_aside(400, 0.1, 4).selection);
        // At least the minimum; none when that would take over half, or when off.
        assert_eq!(set_aside(100, 0.1, 0).selection.len(), MIN_SELECTION_INPUTS);
        assert!(set_aside(30, 0.1, 0).selection.is_empty());
        assert_eq!(set_aside(400, 0.0, 0).train.len(), 400);
    }

    #[test]
    fn the_best_state_that_improves_on_the_start_is_kept() {
        let mut selector = Selector::new(40, score(0.6, 1.0), 0);
        assert!(selector.offer(Candidate::Epoch(1), score(0.7, 0.8)));
        // Less agreement than the best so far, however low the loss.
        assert!(!selector.offer(Candidate::Epoch(2), score(0.65, 0.5)));
        // Equal agreement and a lower loss wins.
        assert!(selector.offer(Candidate::Epoch(3), score(0.7, 0.7)));
        // The end state more than a standard error (0.072 on 40 inputs) below the best.
        assert!(!selector.offer(Candidate::Average, score(0.625, 0.75)));
        let report = selector.report(3);
        assert_eq!(report.chosen, Candidate::Epoch(3));
        assert_eq!(report.outcome, SelectionOutcome::Improved);
        assert_eq!((report.epochs.len(), report.stopped_early), (3, false));
    }

    #[test]
    fn the_end_state_is_kept_when_the_best_is_not_clearly_better() {
        let mut selector = Selector::new(40, score(0.5, 1.0), 0);
        assert!(selector.offer(Candidate::Epoch(1), score(0.95, 0.78)));
        assert!(!selector.offer(Candidate::Epoch(2), score(0.875, 1.1)));
        // One input fewer than the best: noise on 40 inputs.
        assert!(!selector.offer(Candidate::Average, score(0.925, 0.8)));
        assert_eq!(selector.chosen(), Candidate::Average);
        // Not when it does not improve on the start.
        let mut selector = Selector::new(40, score(0.5, 1.0), 0);
        assert!(selector.offer(Candidate::Epoch(1), score(0.55, 0.9)));
        assert!(!selector.offer(Candidate::Epoch(2), score(0.525, 1.2)));
        assert_eq!(selector.chosen(), Candidate::Epoch(1));
    }

    #[test]
    fn a_collapse_backs_off_and_noise_does_not() {
        // 200 inputs: the standard error at 0.55 is 0.035, four of them 0.14.
        let mut selector = Selector::new(200, score(0.26, 5.06), 0);
        assert!(!selector.back_off(), "nothing learned yet");
        assert!(selector.offer(Candidate::Epoch(1), score(0.55, 4.26)));
        assert!(!selector.back_off());
        // Down by 0.1 with a higher loss: noise.
        assert!(!selector.offer(Candidate::Epoch(2), score(0.45, 4.6)));
        assert!(!selector.back_off());
        // Down by 0.21: collapsed.
        assert!(!selector.offer(Candidate::Epoch(3), score(0.34, 5.02)));
        assert!(selector.back_off());
        // Not when the loss fell, whatever the agreement.
        assert!(!selector.offer(Candidate::Epoch(4), score(0.3, 4.0)));
        assert!(!selector.back_off());
        for epoch in 5..=7 {
            assert!(!selector.offer(Candidate::Epoch(epoch), score(0.3, 5.0)));
            assert_eq!(
                selector.back_off(),
                epoch < 7,
                "at most {MAX_BACK_OFFS} times"
            );
        }
        let report = selector.report(7);
        assert_eq!(report.backed_off_after, [3, 5, 6]);
        // Never, with no back-offs allowed.
        let mut selector = Selector::new(200, score(0.26, 5.06), 0).with_back_offs(0);
        assert!(selector.offer(Candidate::Epoch(1), score(0.55, 4.26)));
        assert!(!selector.offer(Candidate::Epoch(2), score(0.3, 5.0)));
        assert!(!selector.back_off());
        assert_eq!(report.chosen, Candidate::Epoch(1));
        // Without agreement, a loss above the start's.
        let unscored = |loss| SelectionScore {
            agreement: None,
            loss,
        };
        let mut selector = Selector::new(40, unscored(1.0), 0);
        assert!(selector.offer(Candidate::Epoch(1), unscored(0.5)));
        assert!(!selector.offer(Candidate::Epoch(2), unscored(0.9)));
        assert!(!selector.back_off());
        assert!(!selector.offer(Candidate::Epoch(3), unscored(1.1)));
        assert!(selector.back_off());
    }

    #[test]
    fn nothing_better_than_the_start_keeps_the_start() {
        let mut selector = Selector::new(40, score(0.6, 1.0), 2);
        // More agreement but a higher loss, and a lower loss but less agreement: neither is
        // closer to the transmitter on both counts.
        assert!(!selector.offer(Candidate::Epoch(1), score(0.62, 1.1)));
        assert!(!selector.should_stop());
        assert!(!selector.offer(Candidate::Epoch(2), score(0.55, 0.9)));
        assert!(selector.should_stop());
        let report = selector.report(20);
        assert_eq!(report.chosen, Candidate::Start);
        assert_eq!(report.outcome, SelectionOutcome::NoImprovement);
        assert_eq!(report.chosen_score, score(0.6, 1.0));
        assert!(report.stopped_early);
        assert_eq!(
            serde_json::to_value(&report).unwrap()["outcome"],
            "no improvement"
        );
    }

    #[test]
    fn without_agreement_the_loss_decides() {
        let start = SelectionScore {
            agreement: None,
            loss: 2.0,
        };
        let mut selector = Selector::new(40, start, 0);
        let lower = SelectionScore {
            agreement: None,
            loss: 1.5,
        };
        assert!(selector.offer(Candidate::Epoch(1), lower));
        assert_eq!(selector.chosen(), Candidate::Epoch(1));
    }
}
