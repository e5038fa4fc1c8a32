//! Free-form settings and facts: a token's metadata and a stage's parameters.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Keys with JSON values: a token's custom metadata ([`StageToken::metadata`]) and a stage's
/// settings ([`StageContext::parameters`]).
///
/// This is the one place where JSON is part of the contract: what a stage records or is
/// configured with is open-ended, so values are [`Value`]s (re-exported at the crate's root as
/// `tessera_api::Value`; build nested ones with `serde_json::json!`). Serialised as the plain
/// JSON object.
///
/// [`StageToken::metadata`]: crate::StageToken::metadata
/// [`StageContext::parameters`]: crate::StageContext::parameters
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Metadata {
    entries: Map<String, Value>,
}

impl Metadata {
    /// No entries.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to `value`, returning the value it replaces.
    pub fn insert(&mut self, key: String, value: Value) -> Option<Value> {
        self.entries.insert(key, value)
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries.get(key)
    }

    /// The value of `key`, to change in place.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.entries.get_mut(key)
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.entries.remove(key)
    }

    /// Whether `key` has a value.
    pub fn contains_key(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    /// Every entry.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.entries.iter()
    }

    /// How many entries there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries as a JSON object's map.
    pub fn into_map(self) -> Map<String, Value> {
        self.entries
    }
}

impl From<Map<String, Value>> for Metadata {
    fn from(entries: Map<String, Value>) -> Self {
        Self { entries }
    }
}

impl From<Metadata> for Value {
    fn from(metadata: Metadata) -> Self {
        Value::Object(metadata.entries)
    }
}

impl FromIterator<(String, Value)> for Metadata {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> Self {
        Self {
            entries: iter.into_iter().collect(),
        }
    }
}

impl Extend<(String, Value)> for Metadata {
    fn extend<I: IntoIterator<Item = (String, Value)>>(&mut self, iter: I) {
        self.entries.extend(iter);
    }
}

impl<'a> IntoIterator for &'a Metadata {
    type Item = (&'a String, &'a Value);
    type IntoIter = serde_json::map::Iter<'a>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter()
    }
}

impl IntoIterator for Metadata {
    type Item = (String, Value);
    type IntoIter = serde_json::map::IntoIter;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_a_plain_json_object() {
        let mut metadata = Metadata::new();
        assert!(metadata.insert("doubled".into(), true.into()).is_none());
        metadata.insert("privacy".into(), serde_json::json!({"epsilon": 1.0}));
        assert_eq!(
            serde_json::to_value(&metadata).unwrap(),
            serde_json::json!({"doubled": true, "privacy": {"epsilon": 1.0}})
        );
        assert!(metadata.contains_key("doubled"));
        assert_eq!(metadata.get("privacy").unwrap()["epsilon"], 1.0);
        assert_eq!((&metadata).into_iter().count(), 2);
        assert_eq!(metadata.remove("doubled"), Some(Value::Bool(true)));
        assert_eq!(metadata.len(), 1);
        let map = metadata.clone().into_map();
        assert_eq!(Metadata::from(map), metadata);
        let parsed: Metadata = serde_json::from_str(r#"{"note": "hi"}"#).unwrap();
        assert_eq!(parsed.iter().next().unwrap().1, "hi");
        assert!(Metadata::new().is_empty());
    }
}
