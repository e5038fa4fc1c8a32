//! Summary statistics of a payload, for inspection.

/// Count, range, moments and norm of a vector, computed in float64. Non-finite elements are
/// counted and left out of the other figures.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct VectorStats {
    /// Number of elements.
    pub count: usize,
    /// Elements that are NaN or infinite.
    pub non_finite: usize,
    /// Smallest finite element.
    pub min: Option<f64>,
    /// Largest finite element.
    pub max: Option<f64>,
    /// Mean of the finite elements.
    pub mean: Option<f64>,
    /// Population standard deviation of the finite elements.
    pub std: Option<f64>,
    /// Euclidean norm of the finite elements.
    pub l2_norm: f64,
}

impl VectorStats {
    /// The statistics of `values`.
    pub fn of(values: &[f32]) -> Self {
        let finite: Vec<f64> = values
            .iter()
            .filter(|v| v.is_finite())
            .map(|&v| f64::from(v))
            .collect();
        let n = finite.len() as f64;
        let mean = (!finite.is_empty()).then(|| finite.iter().sum::<f64>() / n);
        let std =
            mean.map(|mean| (finite.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt());
        Self {
            count: values.len(),
            non_finite: values.len() - finite.len(),
            min: finite.iter().copied().reduce(f64::min),
            max: finite.iter().copied().reduce(f64::max),
            mean,
            std,
            l2_norm: finite.iter().map(|v| v * v).sum::<f64>().sqrt(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_of_a_small_vector() {
        let stats = VectorStats::of(&[3.0, -4.0, f32::NAN]);
        assert_eq!(stats.count, 3);
        assert_eq!(stats.non_finite, 1);
        assert_eq!((stats.min, stats.max), (Some(-4.0), Some(3.0)));
        assert_eq!(stats.mean, Some(-0.5));
        assert_eq!(stats.std, Some(3.5));
        assert_eq!(stats.l2_norm, 5.0);
        assert_eq!(VectorStats::of(&[]).mean, None);
    }
}
