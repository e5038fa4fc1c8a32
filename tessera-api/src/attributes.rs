//! The attributes of a graph node: typed ONNX scalars and lists.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

/// The value of one node attribute.
///
/// On the wire it is the plain JSON value (`32`, `1e-5`, `"bidirectional"`, `[1, 1]`), read
/// back as the first kind it fits, in the order below: a whole number is an [`Int`](Self::Int),
/// any other number a [`Float`](Self::Float), and an empty list an [`Ints`](Self::Ints) — which
/// is why [`as_floats`](Self::as_floats) and [`as_strings`](Self::as_strings) also accept an empty
/// `Ints`. Non-finite floats have no JSON form and do not cross the ABI.
///
/// New kinds (e.g. tensors) may be added in a minor version: match with a wildcard arm, or use
/// the `as_*` accessors. An attribute of a kind this version does not know is left out of
/// [`Attributes`] when it is read, as tensor and graph attributes are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum AttributeValue {
    /// An integer (`INT`).
    Int(i64),
    /// A floating-point number (`FLOAT`).
    Float(f64),
    /// Text (`STRING`).
    String(String),
    /// A list of integers (`INTS`).
    Ints(Vec<i64>),
    /// A list of floating-point numbers (`FLOATS`).
    Floats(Vec<f64>),
    /// A list of texts (`STRINGS`).
    Strings(Vec<String>),
}

impl AttributeValue {
    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            AttributeValue::Int(value) => Some(*value),
            _ => None,
        }
    }

    /// The number, if this is one: a float, or an integer converted to one.
    pub fn as_float(&self) -> Option<f64> {
        match self {
            AttributeValue::Float(value) => Some(*value),
            AttributeValue::Int(value) => Some(*value as f64),
            _ => None,
        }
    }

    /// The text, if this is text.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            AttributeValue::String(value) => Some(value),
            _ => None,
        }
    }

    /// The integers, if this is a list of integers.
    pub fn as_ints(&self) -> Option<&[i64]> {
        match self {
            AttributeValue::Ints(values) => Some(values),
            _ => None,
        }
    }

    /// The floats, if this is a list of floats (or an empty list).
    pub fn as_floats(&self) -> Option<&[f64]> {
        match self {
            AttributeValue::Floats(values) => Some(values),
            AttributeValue::Ints(values) if values.is_empty() => Some(&[]),
            _ => None,
        }
    }

    /// The texts, if this is a list of texts (or an empty list).
    pub fn as_strings(&self) -> Option<&[String]> {
        match self {
            AttributeValue::Strings(values) => Some(values),
            AttributeValue::Ints(values) if values.is_empty() => Some(&[]),
            _ => None,
        }
    }
}

impl From<i64> for AttributeValue {
    fn from(value: i64) -> Self {
        AttributeValue::Int(value)
    }
}

impl From<i32> for AttributeValue {
    fn from(value: i32) -> Self {
        AttributeValue::Int(value.into())
    }
}

impl From<f64> for AttributeValue {
    fn from(value: f64) -> Self {
        AttributeValue::Float(value)
    }
}

impl From<f32> for AttributeValue {
    fn from(value: f32) -> Self {
        AttributeValue::Float(value.into())
    }
}

impl From<String> for AttributeValue {
    fn from(value: String) -> Self {
        AttributeValue::String(value)
    }
}

impl From<&str> for AttributeValue {
    fn from(value: &str) -> Self {
        AttributeValue::String(value.to_string())
    }
}

impl From<Vec<i64>> for AttributeValue {
    fn from(values: Vec<i64>) -> Self {
        AttributeValue::Ints(values)
    }
}

impl From<Vec<f64>> for AttributeValue {
    fn from(values: Vec<f64>) -> Self {
        AttributeValue::Floats(values)
    }
}

impl From<Vec<f32>> for AttributeValue {
    fn from(values: Vec<f32>) -> Self {
        AttributeValue::Floats(values.into_iter().map(f64::from).collect())
    }
}

impl From<Vec<String>> for AttributeValue {
    fn from(values: Vec<String>) -> Self {
        AttributeValue::Strings(values)
    }
}

impl From<Vec<&str>> for AttributeValue {
    fn from(values: Vec<&str>) -> Self {
        AttributeValue::Strings(values.into_iter().map(str::to_string).collect())
    }
}

/// A node's attributes by name, in name order.
///
/// Serialised as a JSON object of plain values (`{"direction": "bidirectional",
/// "hidden_size": 32}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Attributes {
    values: BTreeMap<String, AttributeValue>,
}

impl Attributes {
    /// No attributes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets attribute `name` to `value`, returning the value it replaces.
    pub fn insert(
        &mut self,
        name: impl Into<String>,
        value: impl Into<AttributeValue>,
    ) -> Option<AttributeValue> {
        self.values.insert(name.into(), value.into())
    }

    /// The attribute named `name`.
    pub fn get(&self, name: &str) -> Option<&AttributeValue> {
        self.values.get(name)
    }

    /// Every attribute, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &AttributeValue)> {
        self.values
            .iter()
            .map(|(name, value)| (name.as_str(), value))
    }

    /// How many attributes there are.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

impl<K: Into<String>, V: Into<AttributeValue>> FromIterator<(K, V)> for Attributes {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut attributes = Self::new();
        attributes.extend(iter);
        attributes
    }
}

impl<K: Into<String>, V: Into<AttributeValue>> Extend<(K, V)> for Attributes {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        for (name, value) in iter {
            self.insert(name, value);
        }
    }
}

impl<'de> Deserialize<'de> for Attributes {
    /// Reads a JSON object of attributes, leaving out values of a kind this version does not
    /// know (so a newer host's attribute kinds do not make the graph unreadable).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Entry {
            Known(AttributeValue),
            Unknown(serde::de::IgnoredAny),
        }
        let entries = BTreeMap::<String, Entry>::deserialize(deserializer)?;
        Ok(Self {
            values: entries
                .into_iter()
                .filter_map(|(name, entry)| match entry {
                    Entry::Known(value) => Some((name, value)),
                    Entry::Unknown(_) => None,
                })
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_through_json_as_plain_values() {
        let mut attributes = Attributes::new();
        attributes.insert("hidden_size", 32);
        attributes.insert("epsilon", 1e-5);
        attributes.insert("alpha", 2.0);
        attributes.insert("direction", "bidirectional");
        attributes.insert("kernel_shape", vec![3i64, 3]);
        attributes.insert("scales", vec![0.5f64, 2.0]);
        attributes.insert("activations", vec!["Sigmoid", "Tanh"]);
        let json = serde_json::to_value(&attributes).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "activations": ["Sigmoid", "Tanh"],
                "alpha": 2.0,
                "direction": "bidirectional",
                "epsilon": 1e-5,
                "hidden_size": 32,
                "kernel_shape": [3, 3],
                "scales": [0.5, 2.0],
            })
        );
        let back: Attributes = serde_json::from_value(json).unwrap();
        assert_eq!(back, attributes);
        assert_eq!(back.len(), 7);
        assert_eq!(back.get("alpha"), Some(&AttributeValue::Float(2.0)));
        assert_eq!(back.get("hidden_size").unwrap().as_float(), Some(32.0));
        assert_eq!(
            back.get("kernel_shape").unwrap().as_ints(),
            Some(&[3, 3][..])
        );
        assert_eq!(
            back.get("scales").unwrap().as_floats(),
            Some(&[0.5, 2.0][..])
        );
        assert_eq!(
            back.get("activations").unwrap().as_strings().unwrap(),
            ["Sigmoid", "Tanh"]
        );
        let names: Vec<&str> = back.iter().map(|(name, _)| name).collect();
        assert_eq!(names[0], "activations");
    }

    #[test]
    fn empty_lists_and_unknown_kinds() {
        let attributes: Attributes = serde_json::from_str(
            r#"{"pads": [], "flag": true, "tensor": {"dims": [2]}, "missing": null, "axis": -1}"#,
        )
        .unwrap();
        assert_eq!(attributes.len(), 2, "{attributes:?}");
        let pads = attributes.get("pads").unwrap();
        assert_eq!(pads.as_ints(), Some(&[][..]));
        assert_eq!(pads.as_floats(), Some(&[][..]));
        assert_eq!(pads.as_strings(), Some(&[][..]));
        assert_eq!(attributes.get("axis").unwrap().as_int(), Some(-1));
        assert!(attributes.get("flag").is_none() && !attributes.is_empty());
    }

    #[test]
    fn collected_from_pairs() {
        let attributes: Attributes = [("transB", 1), ("transA", 0)].into_iter().collect();
        assert_eq!(
            attributes.get("transB").and_then(AttributeValue::as_int),
            Some(1)
        );
        assert_eq!(attributes.get("transA").unwrap().as_str(), None);
    }
}
