//! Enlarging a set of unlabelled inputs without labels or outside data: recombining the given
//! inputs ([`mix`]) or drawing from their value range ([`sample_domain`]).

use ndarray::{ArrayD, Axis, Slice};
use rand::rngs::ChaCha8Rng;
use rand::seq::SliceRandom;
use rand::RngExt;

use crate::{Error, Result};
use tessera_tensor::tensor::Tensor;

/// One new input per given input: row r keeps its values except for a random contiguous span
/// along axis 1, taken from the same span of another row (CutMix on sequences). Images
/// (`[N, C, H, W]`) exchange a random rectangle of rows and columns, every channel of it.
pub fn mix(inputs: &Tensor, rng: &mut ChaCha8Rng) -> Result<Tensor> {
    match inputs {
        Tensor::F32(array) => mix_array(array, rng).map(Tensor::F32),
        Tensor::I64(array) => mix_array(array, rng).map(Tensor::I64),
    }
}

fn mix_array<T: Copy>(array: &ArrayD<T>, rng: &mut ChaCha8Rng) -> Result<ArrayD<T>> {
    // The axes of one input (batch axis removed) a span runs along.
    let spans: &[usize] = if array.ndim() == 4 { &[1, 2] } else { &[0] };
    if array.ndim() < 2 || spans.iter().any(|&a| array.len_of(Axis(a + 1)) < 2) {
        return Err(Error::Shape(format!(
            "mixing recombines spans along the second axis (rows and columns of [N, C, H, W] \
             images), but the inputs have shape {:?}; use --augmentation none or sample-domain",
            array.shape()
        )));
    }
    let partners = mix_partners(array.len_of(Axis(0)), rng);
    let mut mixed = array.clone();
    for (row, &partner) in partners.iter().enumerate() {
        let source = array.index_axis(Axis(0), partner);
        let mut target = mixed.index_axis_mut(Axis(0), row);
        let (mut from, mut to) = (source.view(), target.view_mut());
        for &a in spans {
            let length = array.len_of(Axis(a + 1));
            let start = rng.random_range(0..length);
            let span = Slice::from(start..rng.random_range(start + 1..=length));
            from.slice_axis_inplace(Axis(a), span);
            to.slice_axis_inplace(Axis(a), span);
        }
        to.assign(&from);
    }
    Ok(mixed)
}

/// The row each row of [`mix`] takes its span from, drawn first from `rng`: a generator
/// seeded as `mix`'s was gives the partners of the inputs `mix` made with it.
pub fn mix_partners(rows: usize, rng: &mut ChaCha8Rng) -> Vec<usize> {
    let mut partners: Vec<usize> = (0..rows).collect();
    partners.shuffle(rng);
    partners
}

/// As many new inputs as `inputs` holds, each element drawn uniformly from the range of values
/// the given inputs span.
pub fn sample_domain(inputs: &Tensor, rng: &mut ChaCha8Rng) -> Result<Tensor> {
    match inputs {
        Tensor::I64(array) => {
            let (low, high) = range(array.iter().copied())?;
            Ok(Tensor::I64(array.mapv(|_| rng.random_range(low..=high))))
        }
        Tensor::F32(array) => {
            let (low, high) = range(array.iter().copied())?;
            Ok(Tensor::F32(if low < high {
                array.mapv(|_| rng.random_range(low..high))
            } else {
                array.mapv(|_| low)
            }))
        }
    }
}

fn range<T: Copy + PartialOrd>(mut values: impl Iterator<Item = T>) -> Result<(T, T)> {
    let first = values
        .next()
        .ok_or_else(|| Error::Shape("cannot sample the domain of an empty input set".into()))?;
    Ok(values.fold((first, first), |(low, high), value| {
        (
            if value < low { value } else { low },
            if value > high { value } else { high },
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, IxDyn};
    use rand::SeedableRng;

    fn tokens() -> Tensor {
        Tensor::I64(
            Array2::from_shape_fn((6, 8), |(row, column)| (row * 100 + column) as i64).into_dyn(),
        )
    }

    #[test]
    fn mixing_keeps_positions_and_only_uses_given_values() {
        let original = tokens();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let Tensor::I64(mixed) = mix(&original, &mut rng).unwrap() else {
            panic!("wrong type")
        };
        assert_eq!(mixed.shape(), [6, 8]);
        let Tensor::I64(given) = &original else {
            panic!("wrong type")
        };
        let mut changed = 0;
        for ((index, &value), &before) in mixed.indexed_iter().zip(given) {
            let column = index[1] as i64;
            assert_eq!(
                value % 100,
                column,
                "value {value} moved to another position"
            );
            changed += usize::from(value != before);
        }
        assert!(changed > 0);
        let again = mix(&original, &mut ChaCha8Rng::seed_from_u64(1)).unwrap();
        assert_eq!(again, Tensor::I64(mixed.clone()));
        // Every copied value comes from the row's partner, drawn as `mix` drew it.
        let partners = mix_partners(6, &mut ChaCha8Rng::seed_from_u64(1));
        for ((index, &value), &before) in mixed.indexed_iter().zip(given) {
            if value != before {
                assert_eq!(value / 100, partners[index[0]] as i64);
            }
        }
    }

    #[test]
    fn images_exchange_a_rectangle_of_every_channel() {
        // Value = row · 1000 + channel · 100 + y · 10 + x.
        let images = Tensor::F32(
            ndarray::Array4::from_shape_fn((5, 2, 4, 6), |(row, channel, y, x)| {
                (row * 1000 + channel * 100 + y * 10 + x) as f32
            })
            .into_dyn(),
        );
        let Tensor::F32(mixed) = mix(&images, &mut ChaCha8Rng::seed_from_u64(3)).unwrap() else {
            panic!("wrong type")
        };
        let partners = mix_partners(5, &mut ChaCha8Rng::seed_from_u64(3));
        let mut copied_rows = 0;
        for row in 0..5 {
            let from_partner = |channel: usize, y: usize, x: usize| {
                let value = mixed[[row, channel, y, x]] as usize;
                assert_eq!(value % 1000, channel * 100 + y * 10 + x, "a value moved");
                value / 1000 != row
            };
            let cells: Vec<(usize, usize)> = (0..4)
                .flat_map(|y| (0..6).map(move |x| (y, x)))
                .filter(|&(y, x)| from_partner(0, y, x))
                .collect();
            for &(y, x) in &cells {
                assert!(from_partner(1, y, x), "channels differ at ({y}, {x})");
                assert_eq!(mixed[[row, 0, y, x]] as usize / 1000, partners[row]);
            }
            // The copied cells form one rectangle.
            if let (Some(ys), Some(xs)) = (
                cells
                    .iter()
                    .map(|c| c.0)
                    .min()
                    .zip(cells.iter().map(|c| c.0).max()),
                cells
                    .iter()
                    .map(|c| c.1)
                    .min()
                    .zip(cells.iter().map(|c| c.1).max()),
            ) {
                assert_eq!(cells.len(), (ys.1 - ys.0 + 1) * (xs.1 - xs.0 + 1));
                copied_rows += 1;
            }
        }
        assert!(copied_rows > 0);
    }

    #[test]
    fn mixing_needs_a_second_axis() {
        let flat = Tensor::F32(ndarray::ArrayD::zeros(IxDyn(&[4])));
        let error = mix(&flat, &mut ChaCha8Rng::seed_from_u64(0)).unwrap_err();
        assert!(error.to_string().contains("--augmentation"), "{error}");
    }

    #[test]
    fn sampling_stays_in_range() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let Tensor::I64(drawn) = sample_domain(&tokens(), &mut rng).unwrap() else {
            panic!("wrong type")
        };
        assert!(drawn.iter().all(|&value| (0..=507).contains(&value)));
        let floats = Tensor::F32(ndarray::ArrayD::from_elem(IxDyn(&[3, 2]), 0.5));
        assert_eq!(sample_domain(&floats, &mut rng).unwrap(), floats);
    }
}
