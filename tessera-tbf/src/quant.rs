//! Conversions between float32 vectors and the four payload encodings, reproducing
//! `tessera-core` 0.1.0's arithmetic exactly so that both produce identical bytes.

use half::f16;

use super::{QuantType, TbfError};

/// The affine parameters of an INT8 payload: `value = (q - zero_point) * scale`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Int8Params {
    /// Step between adjacent codes, stored as float64 under `_q_scale`.
    pub scale: f64,
    /// The code that represents zero, stored under `_q_zp`. It can lie far outside -128..=127.
    pub zero_point: i64,
}

/// A payload encoding together with everything needed to decode it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Encoding {
    /// IEEE binary32.
    Float32,
    /// IEEE binary16.
    Float16,
    /// Truncated binary32.
    Bfloat16,
    /// Affine 8-bit codes with their parameters.
    Int8(Int8Params),
}

impl Encoding {
    /// The quantisation this encoding belongs to.
    pub const fn quant(&self) -> QuantType {
        match self {
            Encoding::Float32 => QuantType::Float32,
            Encoding::Float16 => QuantType::Float16,
            Encoding::Bfloat16 => QuantType::Bfloat16,
            Encoding::Int8(_) => QuantType::Int8,
        }
    }
}

/// Encodes `values` as a payload of quantisation `quant`, returning the bytes and the encoding
/// (for INT8, with the parameters that must accompany the bytes).
pub fn encode(quant: QuantType, values: &[f32]) -> Result<(Vec<u8>, Encoding), TbfError> {
    Ok(match quant {
        QuantType::Float32 => (
            values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            Encoding::Float32,
        ),
        QuantType::Float16 => (
            values
                .iter()
                .flat_map(|&v| f16::from_f32(v).to_bits().to_le_bytes())
                .collect(),
            Encoding::Float16,
        ),
        QuantType::Bfloat16 => (
            values
                .iter()
                .flat_map(|v| bfloat16_bits(*v).to_le_bytes())
                .collect(),
            Encoding::Bfloat16,
        ),
        QuantType::Int8 => {
            let (codes, params) = quantise_int8(values)?;
            (
                codes.iter().map(|&q| q as u8).collect(),
                Encoding::Int8(params),
            )
        }
    })
}

/// Decodes a payload; a trailing partial element, which a validated payload never has, is ignored.
pub fn decode(encoding: Encoding, payload: &[u8]) -> Vec<f32> {
    match encoding {
        Encoding::Float32 => payload
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        Encoding::Float16 => payload
            .chunks_exact(2)
            .map(|b| f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32())
            .collect(),
        Encoding::Bfloat16 => payload
            .chunks_exact(2)
            .map(|b| f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16))
            .collect(),
        Encoding::Int8(params) => payload
            .iter()
            .map(|&byte| dequantise_int8(byte as i8, params))
            .collect(),
    }
}

/// The bfloat16 code of `value`: its upper 16 bits (truncation, as the reference does).
pub fn bfloat16_bits(value: f32) -> u16 {
    (value.to_bits() >> 16) as u16
}

/// One INT8 code back to float32, in float32 arithmetic.
pub fn dequantise_int8(code: i8, params: Int8Params) -> f32 {
    (f32::from(code) - params.zero_point as f32) * params.scale as f32
}

/// Affine INT8 quantisation as `tessera-core` 0.1.0 performs it: range in float64, codes in
/// float32 arithmetic with round-half-to-even.
///
/// A constant vector is stored as all-zero codes with `zero_point = -1` and `scale` equal to the
/// constant. The reference writes `scale = 1.0` for an all-zero vector, which decodes to ones;
/// this writer stores `scale = 0.0` instead, which both readers decode to zeros.
pub fn quantise_int8(values: &[f32]) -> Result<(Vec<i8>, Int8Params), TbfError> {
    if let Some(index) = values.iter().position(|v| !v.is_finite()) {
        return Err(TbfError::Int8(format!(
            "element {index} is {}; INT8 can only hold finite values",
            values[index]
        )));
    }
    let (Some(min), Some(max)) = (
        values.iter().copied().reduce(f32::min),
        values.iter().copied().reduce(f32::max),
    ) else {
        return Err(TbfError::Int8(
            "the vector is empty; store an empty vector as FLOAT32".into(),
        ));
    };
    let (vmin, vmax) = (f64::from(min), f64::from(max));
    if vmin == vmax {
        let params = Int8Params {
            scale: vmin,
            zero_point: -1,
        };
        return Ok((vec![0; values.len()], params));
    }
    let scale = (vmax - vmin) / 255.0;
    let scale_f32 = scale as f32;
    if scale_f32 == 0.0 || !scale_f32.is_finite() {
        return Err(TbfError::Int8(format!(
            "the value range [{vmin:e}, {vmax:e}] is too narrow for a float32 scale; store it as FLOAT32"
        )));
    }
    let zero_point = (-vmin / scale).round_ties_even() as i64 - 128;
    let zero_point_f32 = zero_point as f32;
    let codes = values
        .iter()
        .map(|&v| ((v / scale_f32).round_ties_even() + zero_point_f32).clamp(-128.0, 127.0) as i8)
        .collect();
    Ok((codes, Int8Params { scale, zero_point }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_encodings_round_trip_representable_values() {
        let values = [0.0f32, -1.5, 2.0, 65504.0, -0.000_061_035_156];
        for quant in [QuantType::Float32, QuantType::Float16, QuantType::Bfloat16] {
            let (bytes, encoding) = encode(quant, &values).unwrap();
            assert_eq!(bytes.len(), values.len() * quant.bytes_per_element());
            assert_eq!(encoding.quant(), quant);
            let decoded = decode(encoding, &bytes);
            if quant != QuantType::Bfloat16 {
                assert_eq!(decoded, values);
            }
        }
    }

    #[test]
    fn bfloat16_truncates_instead_of_rounding() {
        // 1.0 + 2^-8 + 2^-9 rounds up to 1.0078125 in bfloat16, but truncation keeps 1.0.
        let value = 1.0f32 + 2f32.powi(-8) + 2f32.powi(-9);
        assert_eq!(bfloat16_bits(value), 0x3f80);
    }

    #[test]
    fn float16_rounds_half_to_even() {
        // 2049 lies halfway between the float16 neighbours 2048 and 2050: ties go to 2048.
        assert_eq!(f16::from_f32(2049.0).to_f32(), 2048.0);
        assert_eq!(f16::from_f32(2051.0).to_f32(), 2052.0);
    }

    #[test]
    fn int8_matches_reference_arithmetic() {
        let values = [-1.0f32, 0.0, 0.5, 1.0];
        let (codes, params) = quantise_int8(&values).unwrap();
        // scale = 2/255, zp = round(127.5) - 128 = 128 - 128 = 0 (half to even).
        assert_eq!(params.zero_point, 0);
        assert_eq!(params.scale, 2.0 / 255.0);
        // In float32, ±1 / f32(2/255) is ±127.49999, so the ends round to ±127, as numpy does.
        assert_eq!(codes, vec![-127, 0, 64, 127]);
        let decoded: Vec<f32> = codes.iter().map(|&q| dequantise_int8(q, params)).collect();
        for (original, back) in values.iter().zip(&decoded) {
            assert!((original - back).abs() <= params.scale as f32);
        }
    }

    #[test]
    fn int8_constant_vectors_decode_to_the_constant() {
        for constant in [3.25f32, 0.0, -7.0] {
            let (codes, params) = quantise_int8(&[constant; 5]).unwrap();
            assert!(codes.iter().all(|&q| q == 0));
            assert_eq!(params.zero_point, -1);
            assert_eq!(dequantise_int8(0, params), constant);
        }
    }

    #[test]
    fn int8_refuses_non_finite_and_empty() {
        assert!(quantise_int8(&[1.0, f32::NAN]).is_err());
        assert!(quantise_int8(&[f32::INFINITY]).is_err());
        assert!(quantise_int8(&[]).is_err());
    }
}
