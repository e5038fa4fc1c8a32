//! The token's metadata: a MessagePack map whose keys, order and encodings follow
//! `tessera-core` 0.1.0, so that a token read and written again keeps its exact bytes.

use indexmap::IndexMap;
use rmpv::Value;

use super::quant::{Encoding, Int8Params};
use super::{QuantType, TbfError};

/// A free-form metadata value (lineage, projection hints, custom metadata).
pub use rmpv::Value as MetaValue;

/// Custom-metadata key under which a matrix payload records its shape (`[rows, columns]`).
pub const PAYLOAD_SHAPE_KEY: &str = "payload_shape";

/// Deepest nesting of arrays and maps the reader accepts in metadata.
pub const MAX_METADATA_DEPTH: usize = 64;

/// Keys of the metadata map in the order the reference writes them.
const KEY_ORDER: [&str; 14] = [
    "t", "m", "c", "l", "g", "proj", "pe", "pd", "d", "src", "tgt", "ts", "v", "x",
];
const INT8_SCALE_KEY: &str = "_q_scale";
const INT8_ZERO_POINT_KEY: &str = "_q_zp";

/// What kind of knowledge a token carries (metadata key `t`, stored as a string).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum KnowledgeType {
    /// Mode A: activations mapped into the hub space.
    Activation,
    /// Mode W: raw parameters.
    Weight,
    /// Mode D: training data subsets and curriculum.
    Dataset,
    /// Mode B: decision boundaries and policies.
    Behaviour,
    /// Swarm aggregation (written by newer reference versions).
    Swarm,
}

impl KnowledgeType {
    const ALL: [KnowledgeType; 5] = [
        KnowledgeType::Activation,
        KnowledgeType::Weight,
        KnowledgeType::Dataset,
        KnowledgeType::Behaviour,
        KnowledgeType::Swarm,
    ];

    /// The string stored in the file.
    pub const fn as_str(self) -> &'static str {
        match self {
            KnowledgeType::Activation => "ACTIVATION",
            KnowledgeType::Weight => "WEIGHT",
            KnowledgeType::Dataset => "DATASET",
            KnowledgeType::Behaviour => "BEHAVIOUR",
            KnowledgeType::Swarm => "SWARM",
        }
    }
}

impl std::fmt::Display for KnowledgeType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for KnowledgeType {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
            .ok_or_else(|| {
                format!("unknown knowledge type {text:?} (known: ACTIVATION, WEIGHT, DATASET, BEHAVIOUR, SWARM)")
            })
    }
}

/// Every metadata field of a token, with the reference's defaults for optional keys.
#[derive(Debug, Clone, PartialEq)]
pub struct Metadata {
    /// `t`: what the token carries.
    pub knowledge_type: KnowledgeType,
    /// `m`: weight of each knowledge basis, e.g. `{"A": 0.9, "W": 0.05, "B": 0.05}`.
    pub modality_weights: IndexMap<String, f64>,
    /// `c`: correlation of named features with the payload.
    pub correlation_map: IndexMap<String, f64>,
    /// `l`: lineage of the models involved, as a DAG description.
    pub lineage_dag: IndexMap<String, MetaValue>,
    /// `g`: how many transfers produced this token (default 1).
    pub generation: i64,
    /// `proj`: projection hints for the receiver (default empty).
    pub projection_hints: Vec<MetaValue>,
    /// `pe`: differential-privacy ε spent on the payload (default 1.0).
    pub privacy_epsilon: f64,
    /// `pd`: differential-privacy δ (default 1e-5).
    pub privacy_delta: f64,
    /// `d`: drift score (default 0.0).
    pub drift_score: f64,
    /// `src`: identifier of the source model (default "").
    pub source_model_id: String,
    /// `tgt`: identifier of the target model, if any.
    pub target_model_id: Option<String>,
    /// `ts`: ISO-8601 creation time.
    pub timestamp: String,
    /// `v`: protocol version (default "1.0").
    pub version: String,
    /// `x`: custom metadata.
    pub custom: IndexMap<String, MetaValue>,
    /// Keys this version does not know, kept in order and written back after `x`.
    pub unknown: IndexMap<String, MetaValue>,
}

impl Metadata {
    /// Metadata with the reference's defaults and the current time as timestamp.
    pub fn new(knowledge_type: KnowledgeType) -> Self {
        Self {
            knowledge_type,
            modality_weights: IndexMap::new(),
            correlation_map: IndexMap::new(),
            lineage_dag: IndexMap::new(),
            generation: 1,
            projection_hints: Vec::new(),
            privacy_epsilon: 1.0,
            privacy_delta: 1e-5,
            drift_score: 0.0,
            source_model_id: String::new(),
            target_model_id: None,
            timestamp: now_iso8601(),
            version: "1.0".into(),
            custom: IndexMap::new(),
            unknown: IndexMap::new(),
        }
    }

    /// The payload's shape if the token carries a matrix (custom key `payload_shape`).
    pub fn payload_shape(&self) -> Result<Option<Vec<u64>>, TbfError> {
        let Some(value) = self.custom.get(PAYLOAD_SHAPE_KEY) else {
            return Ok(None);
        };
        let dims = value
            .as_array()
            .filter(|dims| !dims.is_empty())
            .and_then(|dims| dims.iter().map(Value::as_u64).collect::<Option<Vec<_>>>())
            .ok_or_else(|| {
                TbfError::Metadata(format!(
                    "custom key {PAYLOAD_SHAPE_KEY:?} must be a non-empty array of non-negative integers"
                ))
            })?;
        Ok(Some(dims))
    }

    /// The payload's shape for a payload of `elements` elements: the recorded matrix shape, or
    /// `[elements]` for a plain vector. Fails if a recorded shape implies another element count.
    pub fn checked_payload_shape(&self, elements: u64) -> Result<Vec<u64>, TbfError> {
        let Some(dims) = self.payload_shape()? else {
            return Ok(vec![elements]);
        };
        let implied = dims
            .iter()
            .try_fold(1u64, |product, &dim| product.checked_mul(dim));
        if implied != Some(elements) {
            return Err(TbfError::LengthMismatch {
                what: "payload elements implied by the recorded payload_shape",
                expected: implied.unwrap_or(u64::MAX),
                found: elements,
            });
        }
        Ok(dims)
    }

    /// Decodes a metadata block of a `quant` token, returning the payload's encoding with it (the
    /// INT8 parameters live in the metadata and must be present exactly when `quant` is INT8).
    pub(crate) fn decode(bytes: &[u8], quant: QuantType) -> Result<(Self, Encoding), TbfError> {
        let mut cursor = bytes;
        let value = rmpv::decode::read_value_with_max_depth(&mut cursor, MAX_METADATA_DEPTH)
            .map_err(|error| TbfError::Metadata(format!("not valid MessagePack: {error}")))?;
        if !cursor.is_empty() {
            return Err(TbfError::Metadata(format!(
                "{} bytes follow the metadata map inside the metadata block",
                cursor.len()
            )));
        }
        check_utf8(&value)?;
        let mut map = into_string_map("metadata", value)?;

        let encoding = match (
            quant,
            map.shift_remove(INT8_SCALE_KEY),
            map.shift_remove(INT8_ZERO_POINT_KEY),
        ) {
            (QuantType::Int8, Some(scale), Some(zero_point)) => Encoding::Int8(Int8Params {
                scale: as_number(INT8_SCALE_KEY, &scale)?,
                zero_point: as_integer(INT8_ZERO_POINT_KEY, &zero_point)?,
            }),
            (QuantType::Float32, None, None) => Encoding::Float32,
            (QuantType::Float16, None, None) => Encoding::Float16,
            (QuantType::Bfloat16, None, None) => Encoding::Bfloat16,
            (QuantType::Int8, ..) => {
                return Err(TbfError::Metadata(format!(
                    "an INT8 token needs both {INT8_SCALE_KEY:?} and {INT8_ZERO_POINT_KEY:?}"
                )))
            }
            _ => {
                return Err(TbfError::Metadata(format!(
                    "INT8 parameters present in a {quant} token"
                )))
            }
        };

        let knowledge_type = as_string("t", &required(&mut map, "t")?)?
            .parse::<KnowledgeType>()
            .map_err(|message| TbfError::Metadata(format!("key \"t\": {message}")))?;
        let modality_weights = as_number_map("m", required(&mut map, "m")?)?;
        let correlation_map = as_number_map("c", required(&mut map, "c")?)?;
        let lineage_dag = into_string_map("l", required(&mut map, "l")?)?;
        let generation = optional(&mut map, "g", |v| as_integer("g", &v))?.unwrap_or(1);
        let projection_hints = optional(&mut map, "proj", |v| match v {
            Value::Array(items) => Ok(items),
            other => Err(wrong_type("proj", "an array", &other)),
        })?
        .unwrap_or_default();
        let privacy_epsilon = optional(&mut map, "pe", |v| as_number("pe", &v))?.unwrap_or(1.0);
        let privacy_delta = optional(&mut map, "pd", |v| as_number("pd", &v))?.unwrap_or(1e-5);
        let drift_score = optional(&mut map, "d", |v| as_number("d", &v))?.unwrap_or(0.0);
        let source_model_id =
            optional(&mut map, "src", |v| as_string("src", &v))?.unwrap_or_default();
        let target_model_id = optional(&mut map, "tgt", |v| match v {
            Value::Nil => Ok(None),
            other => as_string("tgt", &other).map(Some),
        })?
        .flatten();
        let timestamp = optional(&mut map, "ts", |v| as_string("ts", &v))?.unwrap_or_default();
        let version =
            optional(&mut map, "v", |v| as_string("v", &v))?.unwrap_or_else(|| "1.0".into());
        let custom = optional(&mut map, "x", |v| into_string_map("x", v))?.unwrap_or_default();

        let metadata = Self {
            knowledge_type,
            modality_weights,
            correlation_map,
            lineage_dag,
            generation,
            projection_hints,
            privacy_epsilon,
            privacy_delta,
            drift_score,
            source_model_id,
            target_model_id,
            timestamp,
            version,
            custom,
            unknown: map,
        };
        Ok((metadata, encoding))
    }

    /// Encodes the metadata block of a payload stored as `encoding`, in the reference's key
    /// order, with INT8 parameters last.
    pub(crate) fn encode(&self, encoding: Encoding) -> Vec<u8> {
        let string_map = |map: &IndexMap<String, MetaValue>| {
            Value::Map(
                map.iter()
                    .map(|(key, value)| (Value::from(key.as_str()), value.clone()))
                    .collect(),
            )
        };
        let number_map = |map: &IndexMap<String, f64>| {
            Value::Map(
                map.iter()
                    .map(|(key, value)| (Value::from(key.as_str()), Value::F64(*value)))
                    .collect(),
            )
        };
        let known = [
            Value::from(self.knowledge_type.as_str()),
            number_map(&self.modality_weights),
            number_map(&self.correlation_map),
            string_map(&self.lineage_dag),
            Value::from(self.generation),
            Value::Array(self.projection_hints.clone()),
            Value::F64(self.privacy_epsilon),
            Value::F64(self.privacy_delta),
            Value::F64(self.drift_score),
            Value::from(self.source_model_id.as_str()),
            self.target_model_id
                .as_deref()
                .map_or(Value::Nil, Value::from),
            Value::from(self.timestamp.as_str()),
            Value::from(self.version.as_str()),
            string_map(&self.custom),
        ];
        let mut entries: Vec<(Value, Value)> = KEY_ORDER
            .iter()
            .map(|key| Value::from(*key))
            .zip(known)
            .collect();
        entries.extend(
            self.unknown
                .iter()
                .map(|(key, value)| (Value::from(key.as_str()), value.clone())),
        );
        if let Encoding::Int8(params) = encoding {
            entries.push((Value::from(INT8_SCALE_KEY), Value::F64(params.scale)));
            entries.push((
                Value::from(INT8_ZERO_POINT_KEY),
                Value::from(params.zero_point),
            ));
        }
        let mut bytes = Vec::new();
        // Writing into a Vec cannot fail; the only error rmpv reports is an I/O error.
        let _ = rmpv::encode::write_value(&mut bytes, &Value::Map(entries));
        bytes
    }

    /// The metadata as JSON, with the field names `tessera-core` uses for a token.
    pub fn to_json(&self) -> serde_json::Value {
        let string_map = |map: &IndexMap<String, MetaValue>| {
            serde_json::Value::Object(
                map.iter()
                    .map(|(key, value)| (key.clone(), meta_value_to_json(value)))
                    .collect(),
            )
        };
        let number_map = |map: &IndexMap<String, f64>| {
            serde_json::Value::Object(
                map.iter()
                    .map(|(key, value)| (key.clone(), float_to_json(*value)))
                    .collect(),
            )
        };
        let mut json = serde_json::json!({
            "knowledge_type": self.knowledge_type.as_str(),
            "modality_weights": number_map(&self.modality_weights),
            "correlation_map": number_map(&self.correlation_map),
            "lineage_dag": string_map(&self.lineage_dag),
            "generation": self.generation,
            "projection_hints": self.projection_hints.iter().map(meta_value_to_json).collect::<Vec<_>>(),
            "privacy_epsilon": float_to_json(self.privacy_epsilon),
            "privacy_delta": float_to_json(self.privacy_delta),
            "drift_score": float_to_json(self.drift_score),
            "source_model_id": self.source_model_id,
            "target_model_id": self.target_model_id,
            "timestamp": self.timestamp,
            "version": self.version,
            "custom_metadata": string_map(&self.custom),
        });
        if !self.unknown.is_empty() {
            json["unknown_keys"] = string_map(&self.unknown);
        }
        json
    }
}

/// A metadata value as JSON: binary data as `{"bin": hex}`, extensions as `{"ext": type, "data": hex}`,
/// non-finite floats as strings.
pub fn meta_value_to_json(value: &MetaValue) -> serde_json::Value {
    use serde_json::Value as Json;
    match value {
        Value::Nil => Json::Null,
        Value::Boolean(flag) => Json::Bool(*flag),
        Value::Integer(integer) => integer
            .as_i64()
            .map(Json::from)
            .or_else(|| integer.as_u64().map(Json::from))
            .unwrap_or(Json::Null),
        Value::F32(float) => float_to_json(f64::from(*float)),
        Value::F64(float) => float_to_json(*float),
        Value::String(text) => Json::String(text.as_str().unwrap_or_default().to_owned()),
        Value::Binary(bytes) => serde_json::json!({ "bin": hex::encode(bytes) }),
        Value::Array(items) => Json::Array(items.iter().map(meta_value_to_json).collect()),
        Value::Map(entries) => Json::Object(
            entries
                .iter()
                .map(|(key, value)| {
                    let key = match key {
                        Value::String(text) => text.as_str().unwrap_or_default().to_owned(),
                        other => other.to_string(),
                    };
                    (key, meta_value_to_json(value))
                })
                .collect(),
        ),
        Value::Ext(kind, data) => serde_json::json!({ "ext": kind, "data": hex::encode(data) }),
    }
}

/// A JSON value as metadata: integers stay integers, other numbers become float64, objects
/// become maps with string keys.
pub fn json_to_meta_value(value: &serde_json::Value) -> MetaValue {
    use serde_json::Value as Json;
    match value {
        Json::Null => Value::Nil,
        Json::Bool(flag) => Value::Boolean(*flag),
        Json::Number(number) => number
            .as_i64()
            .map(Value::from)
            .or_else(|| number.as_u64().map(Value::from))
            .unwrap_or_else(|| Value::F64(number.as_f64().unwrap_or(f64::NAN))),
        Json::String(text) => Value::from(text.as_str()),
        Json::Array(items) => Value::Array(items.iter().map(json_to_meta_value).collect()),
        Json::Object(entries) => Value::Map(
            entries
                .iter()
                .map(|(key, value)| (Value::from(key.as_str()), json_to_meta_value(value)))
                .collect(),
        ),
    }
}

fn float_to_json(value: f64) -> serde_json::Value {
    serde_json::Number::from_f64(value)
        .map(serde_json::Value::Number)
        .unwrap_or_else(|| serde_json::Value::String(value.to_string()))
}

/// The current UTC time as Python's `datetime.now(timezone.utc).isoformat()` writes it.
fn now_iso8601() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6f+00:00")
        .to_string()
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Nil => "nil",
        Value::Boolean(_) => "a boolean",
        Value::Integer(_) => "an integer",
        Value::F32(_) | Value::F64(_) => "a float",
        Value::String(_) => "a string",
        Value::Binary(_) => "binary data",
        Value::Array(_) => "an array",
        Value::Map(_) => "a map",
        Value::Ext(..) => "an extension value",
    }
}

fn wrong_type(key: &str, expected: &str, found: &Value) -> TbfError {
    TbfError::Metadata(format!(
        "key {key:?}: expected {expected}, found {}",
        kind_of(found)
    ))
}

fn check_utf8(value: &Value) -> Result<(), TbfError> {
    match value {
        Value::String(text) if text.as_str().is_none() => Err(TbfError::Metadata(
            "a string in the metadata is not valid UTF-8".into(),
        )),
        Value::Array(items) => items.iter().try_for_each(check_utf8),
        Value::Map(entries) => entries.iter().try_for_each(|(key, value)| {
            check_utf8(key)?;
            check_utf8(value)
        }),
        _ => Ok(()),
    }
}

fn into_string_map(key: &str, value: Value) -> Result<IndexMap<String, Value>, TbfError> {
    let Value::Map(entries) = value else {
        return Err(wrong_type(key, "a map", &value));
    };
    let mut map = IndexMap::with_capacity(entries.len());
    for (entry_key, entry_value) in entries {
        let name = as_string(key, &entry_key)?;
        if map.insert(name.clone(), entry_value).is_some() {
            return Err(TbfError::Metadata(format!(
                "key {key:?}: the map holds {name:?} twice"
            )));
        }
    }
    Ok(map)
}

fn as_number_map(key: &str, value: Value) -> Result<IndexMap<String, f64>, TbfError> {
    into_string_map(key, value)?
        .into_iter()
        .map(|(name, value)| Ok((name, as_number(key, &value)?)))
        .collect()
}

fn as_string(key: &str, value: &Value) -> Result<String, TbfError> {
    match value.as_str() {
        Some(text) => Ok(text.to_owned()),
        None => Err(wrong_type(key, "a string", value)),
    }
}

fn as_number(key: &str, value: &Value) -> Result<f64, TbfError> {
    match value {
        Value::F64(float) => Ok(*float),
        Value::F32(float) => Ok(f64::from(*float)),
        Value::Integer(integer) => integer
            .as_f64()
            .ok_or_else(|| wrong_type(key, "a number", value)),
        other => Err(wrong_type(key, "a number", other)),
    }
}

fn as_integer(key: &str, value: &Value) -> Result<i64, TbfError> {
    value
        .as_i64()
        .ok_or_else(|| wrong_type(key, "an integer within 64-bit signed range", value))
}

fn required(map: &mut IndexMap<String, Value>, key: &str) -> Result<Value, TbfError> {
    map.shift_remove(key)
        .ok_or_else(|| TbfError::Metadata(format!("required key {key:?} is missing")))
}

fn optional<T>(
    map: &mut IndexMap<String, Value>,
    key: &str,
    convert: impl FnOnce(Value) -> Result<T, TbfError>,
) -> Result<Option<T>, TbfError> {
    map.shift_remove(key).map(convert).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Metadata {
        let mut metadata = Metadata::new(KnowledgeType::Activation);
        metadata.modality_weights.insert("A".into(), 0.9);
        metadata.target_model_id = Some("rx".into());
        metadata.custom.insert("hub_dim".into(), Value::from(2048));
        metadata
    }

    #[test]
    fn encode_then_decode_is_identity() {
        let metadata = sample();
        let bytes = metadata.encode(Encoding::Float32);
        let (decoded, encoding) = Metadata::decode(&bytes, QuantType::Float32).unwrap();
        assert_eq!(decoded, metadata);
        assert_eq!(encoding, Encoding::Float32);
    }

    #[test]
    fn unknown_keys_survive_a_round_trip() {
        let mut metadata = sample();
        metadata
            .unknown
            .insert("future".into(), Value::from("kept"));
        let (decoded, _) =
            Metadata::decode(&metadata.encode(Encoding::Float32), QuantType::Float32).unwrap();
        assert_eq!(decoded.unknown.get("future"), Some(&Value::from("kept")));
    }

    #[test]
    fn int8_parameters_must_match_the_quantisation() {
        let params = Int8Params {
            scale: 0.5,
            zero_point: -3,
        };
        let with_params = sample().encode(Encoding::Int8(params));
        assert_eq!(
            Metadata::decode(&with_params, QuantType::Int8).unwrap().1,
            Encoding::Int8(params)
        );
        assert!(Metadata::decode(&with_params, QuantType::Float16).is_err());
        assert!(Metadata::decode(&sample().encode(Encoding::Float32), QuantType::Int8).is_err());
    }

    #[test]
    fn schema_violations_name_the_key() {
        let mut bytes = Vec::new();
        let map = Value::Map(vec![(Value::from("t"), Value::from(3))]);
        rmpv::encode::write_value(&mut bytes, &map).unwrap();
        let message = Metadata::decode(&bytes, QuantType::Float32)
            .unwrap_err()
            .to_string();
        assert!(message.contains("\"t\""), "{message}");
    }

    #[test]
    fn trailing_bytes_and_missing_keys_are_refused() {
        let mut bytes = sample().encode(Encoding::Float32);
        bytes.push(0xc0);
        assert!(Metadata::decode(&bytes, QuantType::Float32).is_err());
        let mut only_type = Vec::new();
        rmpv::encode::write_value(
            &mut only_type,
            &Value::Map(vec![(Value::from("t"), Value::from("ACTIVATION"))]),
        )
        .unwrap();
        let message = Metadata::decode(&only_type, QuantType::Float32)
            .unwrap_err()
            .to_string();
        assert!(message.contains("\"m\""), "{message}");
    }

    #[test]
    fn payload_shape_is_validated() {
        let mut metadata = sample();
        assert_eq!(metadata.payload_shape().unwrap(), None);
        metadata.custom.insert(
            PAYLOAD_SHAPE_KEY.into(),
            Value::Array(vec![Value::from(2), Value::from(3)]),
        );
        assert_eq!(metadata.payload_shape().unwrap(), Some(vec![2, 3]));
        assert_eq!(metadata.checked_payload_shape(6).unwrap(), vec![2, 3]);
        assert!(metadata.checked_payload_shape(5).is_err());
        metadata
            .custom
            .insert(PAYLOAD_SHAPE_KEY.into(), Value::from("2x3"));
        assert!(metadata.payload_shape().is_err());
    }
}
