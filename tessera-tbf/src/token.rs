//! A token in memory: metadata plus the decoded float32 vector.

use std::borrow::Cow;

use super::metadata::{KnowledgeType, MetaValue, Metadata, PAYLOAD_SHAPE_KEY};
use super::quant::{self, Encoding, Int8Params};
use super::{QuantType, TbfError};

/// A Tessera token: what was transferred (the vector payload) and everything said about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    /// Every metadata field.
    pub metadata: Metadata,
    vector: Vec<f32>,
    /// The INT8 codes and parameters this token was read from, kept while the vector is
    /// unchanged: writing it as INT8 again then reproduces the original bytes instead of
    /// quantising the already-quantised values a second time.
    int8_source: Option<(Vec<u8>, Int8Params)>,
}

impl Token {
    /// A token of `knowledge_type` carrying `vector`, with default metadata stamped now.
    pub fn new(knowledge_type: KnowledgeType, vector: Vec<f32>) -> Self {
        Self::with_metadata(Metadata::new(knowledge_type), vector)
    }

    /// A token with the given metadata and vector.
    pub fn with_metadata(metadata: Metadata, vector: Vec<f32>) -> Self {
        Self {
            metadata,
            vector,
            int8_source: None,
        }
    }

    /// A token carrying a row-major `rows × columns` matrix; the shape is recorded in the custom
    /// metadata (`payload_shape`), so any v1.1 reader still loads it as a flat vector.
    pub fn matrix(
        knowledge_type: KnowledgeType,
        rows: usize,
        columns: usize,
        values: Vec<f32>,
    ) -> Result<Self, TbfError> {
        if rows.checked_mul(columns) != Some(values.len()) {
            return Err(TbfError::LengthMismatch {
                what: "matrix elements for the given rows × columns",
                expected: (rows as u64).saturating_mul(columns as u64),
                found: values.len() as u64,
            });
        }
        let mut token = Self::new(knowledge_type, values);
        token.metadata.custom.insert(
            PAYLOAD_SHAPE_KEY.into(),
            MetaValue::Array(vec![MetaValue::from(rows), MetaValue::from(columns)]),
        );
        Ok(token)
    }

    pub(crate) fn from_decoded(metadata: Metadata, encoding: Encoding, payload: &[u8]) -> Self {
        let vector = quant::decode(encoding, payload);
        let int8_source = match encoding {
            Encoding::Int8(params) => Some((payload.to_vec(), params)),
            _ => None,
        };
        Self {
            metadata,
            vector,
            int8_source,
        }
    }

    /// The decoded payload.
    pub fn vector(&self) -> &[f32] {
        &self.vector
    }

    /// Replaces the payload.
    pub fn set_vector(&mut self, vector: Vec<f32>) {
        self.vector = vector;
        self.int8_source = None;
    }

    /// Takes the payload out of the token.
    pub fn into_vector(self) -> Vec<f32> {
        self.vector
    }

    /// The payload's shape: the recorded matrix shape, or `[len]` for a plain vector. Fails if
    /// a recorded shape does not match the number of elements.
    pub fn shape(&self) -> Result<Vec<u64>, TbfError> {
        self.metadata
            .checked_payload_shape(self.vector.len() as u64)
    }

    /// The payload encoded as `quant`, reusing the bytes it was read from when they are INT8 and
    /// unchanged.
    pub(crate) fn encode_payload(
        &self,
        quant: QuantType,
    ) -> Result<(Cow<'_, [u8]>, Encoding), TbfError> {
        match &self.int8_source {
            Some((codes, params)) if quant == QuantType::Int8 => {
                Ok((Cow::Borrowed(codes), Encoding::Int8(*params)))
            }
            _ => quant::encode(quant, &self.vector)
                .map(|(bytes, encoding)| (Cow::Owned(bytes), encoding)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_records_its_shape() {
        let token = Token::matrix(KnowledgeType::Activation, 2, 3, vec![0.0; 6]).unwrap();
        assert_eq!(token.shape().unwrap(), vec![2, 3]);
        assert!(Token::matrix(KnowledgeType::Activation, 2, 3, vec![0.0; 5]).is_err());
    }

    #[test]
    fn changing_the_vector_drops_the_int8_source() {
        let values = [0.1f32, 0.7, -0.3];
        let (payload, encoding) = quant::encode(QuantType::Int8, &values).unwrap();
        let mut token =
            Token::from_decoded(Metadata::new(KnowledgeType::Activation), encoding, &payload);
        let (reused, _) = token.encode_payload(QuantType::Int8).unwrap();
        assert!(matches!(reused, Cow::Borrowed(_)));
        token.set_vector(vec![1.0, 2.0, 3.0]);
        let (fresh, _) = token.encode_payload(QuantType::Int8).unwrap();
        assert!(matches!(fresh, Cow::Owned(_)));
    }
}
