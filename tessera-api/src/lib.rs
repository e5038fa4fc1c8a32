//! The stable contract between the Tessera host and its plugins.
//!
//! Architecture knowledge lives in plugins: an [`ArchitectureAdapter`] recognises a family of
//! networks from a [`GraphSummary`] of its ONNX graph and returns an [`AdapterPlan`] — where the
//! meaningful activations are ([`TapPoint`]s with their [`TapLayout`] and [`Pooling`]), the model
//! width, and which weights fine-tuning may change. A plugin may also contribute [`TokenStage`]s
//! to the chain the pipeline runs on a token before it is written.
//!
//! A plugin is a `cdylib` crate that implements [`Plugin`] and invokes [`export_plugin!`]; the
//! host finds and loads it at run time. Underneath sits a versioned C ABI ([`abi`]), so a plugin
//! and a host built separately, even with different compilers, work together as long as their
//! [`ABI_VERSION`] majors agree. Structural heuristics that adapters share (residual
//! connections, classifier widths, embedding tables) are not part of this contract: they live
//! in the `tessera-adapter-kit` crate.
//!
//! # Compatibility
//!
//! Every public item here is a promise to plugin authors. A minor version only adds: fields
//! (with defaults), constructors and builder methods, enum variants. So every struct and enum is
//! `#[non_exhaustive]`: read the fields, build values with their constructors (`new`, then
//! `with_*`), and match enums with a wildcard arm. Data crosses the ABI as JSON, read with
//! defaults for missing fields and ignoring unknown ones, so plugins and hosts of different
//! minor versions of one major work together. Only a new major version removes or changes
//! anything.
//!
//! JSON itself is part of the contract in one place: a token's [`Metadata`] and a stage's
//! parameters are open-ended, so their values are [`Value`]s (`serde_json`'s, re-exported
//! here). Node attributes are typed ([`Attributes`]).
//!
//! ```
//! use tessera_api::{AdapterPlan, ArchitectureAdapter, GraphSummary, Plugin, PluginInfo};
//! use tessera_api::{Pooling, TapLayout, TapPoint};
//!
//! struct FirstOutput;
//! impl ArchitectureAdapter for FirstOutput {
//!     fn name(&self) -> &str { "first-output" }
//!     fn analyse(&self, graph: &GraphSummary) -> Result<Option<AdapterPlan>, String> {
//!         let Some(output) = graph.outputs.first() else { return Ok(None) };
//!         let tap = TapPoint::new(output.name.clone(), TapLayout::BatchFeature, Pooling::None);
//!         Ok(Some(AdapterPlan::new("example", 0.01, 10, vec![tap])))
//!     }
//! }
//!
//! #[derive(Default)]
//! struct MyPlugin;
//! impl Plugin for MyPlugin {
//!     fn info(&self) -> PluginInfo {
//!         PluginInfo::new("mine", "0.1.0", "example")
//!     }
//!     fn adapters(&self) -> Vec<Box<dyn ArchitectureAdapter>> { vec![Box::new(FirstOutput)] }
//! }
//!
//! tessera_api::export_plugin!(MyPlugin::default());
//! ```

pub mod abi;
mod adapter;
mod attributes;
mod graph;
mod metadata;
mod plugin;
mod stage;

pub use adapter::{
    AdapterPlan, ArchitectureAdapter, Pooling, QuantisationChoices, TapLayout, TapPoint,
};
pub use attributes::{AttributeValue, Attributes};
pub use graph::{DimSummary, GraphSummary, InitializerSummary, NodeSummary, ValueSummary};
pub use metadata::Metadata;
pub use plugin::{AdapterPlugin, Plugin, PluginDescription, PluginInfo, StageDescription};
/// A JSON value: what [`Metadata`] holds (`serde_json`'s own type, so a plugin uses exactly the
/// type of the contract, whichever `serde_json` release it depends on itself).
pub use serde_json::Value;
pub use stage::{StageContext, StageKind, StageToken, TokenStage};

/// The version of the binary interface between the host and plugins.
///
/// A plugin built against major version `M` can only be loaded by a host of major version `M`;
/// minor versions add capabilities without changing what already exists. Built with
/// [`AbiVersion::new`]; its layout (two `u16`s) is fixed for every version, since the host reads
/// it before it knows the plugin's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(C)]
#[non_exhaustive]
pub struct AbiVersion {
    /// Incremented for changes that old plugins or hosts cannot understand.
    pub major: u16,
    /// Incremented for additions that old plugins or hosts may ignore.
    pub minor: u16,
}

impl AbiVersion {
    /// Version `major`.`minor`.
    pub const fn new(major: u16, minor: u16) -> Self {
        Self { major, minor }
    }

    /// Whether a peer speaking `other` can be used by a party speaking `self`.
    pub const fn is_compatible_with(self, other: AbiVersion) -> bool {
        self.major == other.major
    }
}

impl std::fmt::Display for AbiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The ABI version this crate defines.
///
/// - 1.0: the first version.
/// - 1.1: [`GraphSummary::opset_imports`], the opset of every domain the model imports.
/// - 1.2: [`TapLayout::BatchFeatureHeightWidth`], taps of 2-D convolutions; and
///   [`AdapterPlan::quantisation`](crate::AdapterPlan), which layers stay float when ModeAQ
///   quantises.
pub const ABI_VERSION: AbiVersion = AbiVersion::new(1, 2);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_major_is_compatible_regardless_of_minor() {
        let newer = AbiVersion::new(1, 7);
        assert!(ABI_VERSION.is_compatible_with(newer));
        assert!(newer.is_compatible_with(ABI_VERSION));
    }

    #[test]
    fn different_major_is_refused() {
        let next = AbiVersion::new(2, 0);
        assert!(!ABI_VERSION.is_compatible_with(next));
        assert_eq!(next.to_string(), "2.0");
    }

    #[test]
    fn a_host_of_this_minor_accepts_plugins_of_the_previous_one() {
        assert_eq!(ABI_VERSION.to_string(), "1.2");
        assert!(ABI_VERSION.is_compatible_with(AbiVersion::new(1, 0)));
        assert!(ABI_VERSION.is_compatible_with(AbiVersion::new(1, 1)));
    }

    /// JSON as a 1.0 peer writes it: no `opset_imports`, and (to stand for any field a later
    /// minor adds) no `shapes`, `trainable` or `frozen` either.
    const GRAPH_1_0: &str = r#"{
        "inputs": [{"name": "x", "dtype": "float32", "shape": ["batch", 8]}],
        "outputs": [{"name": "y", "dtype": "float32", "shape": ["batch", 3]}],
        "nodes": [{"name": "head", "op_type": "Gemm", "domain": "", "inputs": ["x", "w"],
                   "outputs": ["y"], "attributes": {"transB": 1}}],
        "initializers": [{"name": "w", "dtype": "float32", "dims": [3, 8]}],
        "opset": 17
    }"#;

    #[test]
    fn json_from_a_1_0_peer_reads_into_the_1_1_types() {
        let graph: GraphSummary = serde_json::from_str(GRAPH_1_0).unwrap();
        assert_eq!(graph.opset, Some(17));
        assert!(graph.opset_imports.is_empty() && graph.shapes.is_empty());
        assert_eq!(graph.opset_of(""), Some(17));
        assert_eq!(graph.nodes[0].int_attribute("transB"), Some(1));
        assert_eq!(graph.inputs[0].shape[1], DimSummary::Fixed(8));

        let plan: AdapterPlan = serde_json::from_str(
            r#"{"score": 0.5, "family": "f", "width": 3,
                "taps": [{"tensor": "y", "layout": "batch_feature", "pooling": "none"}]}"#,
        )
        .unwrap();
        let tap = TapPoint::new("y", TapLayout::BatchFeature, Pooling::None);
        assert_eq!(plan, AdapterPlan::new("f", 0.5, 3, vec![tap]));

        let description: PluginDescription = serde_json::from_str(
            r#"{"info": {"name": "old", "version": "0.1.0", "description": "d"},
                "api_version": "0.1.0", "adapters": ["old"],
                "stages": [{"name": "s", "kind": "transform"}]}"#,
        )
        .unwrap();
        assert_eq!(description.info, PluginInfo::new("old", "0.1.0", "d"));
        assert_eq!(
            description.stages,
            [StageDescription::new("s", StageKind::Transform)]
        );

        let request: abi::ProcessRequest =
            serde_json::from_str(r#"{"token": {"shape": [2]}, "context": {}}"#).unwrap();
        assert_eq!(request.token.shape, [2]);
        assert!(request.token.metadata.is_empty() && request.context.output.is_none());
    }

    #[test]
    fn json_with_fields_from_a_newer_minor_still_reads() {
        let mut graph: serde_json::Value = serde_json::from_str(GRAPH_1_0).unwrap();
        graph["opset_imports"] = serde_json::json!({"": 17, "com.microsoft": 1});
        graph["from_a_future_minor"] = serde_json::json!({"anything": [1, 2]});
        graph["nodes"][0]["also_new"] = true.into();
        graph["inputs"][0]["also_new"] = 3.into();
        let graph: GraphSummary = serde_json::from_value(graph).unwrap();
        assert_eq!(graph.opset_of("com.microsoft"), Some(1));
        assert_eq!(graph.nodes[0].op_type, "Gemm");

        let plan: AdapterPlan = serde_json::from_str(
            r#"{"score": 0.5, "family": "f", "width": 3, "trainable": [], "frozen": [],
                "taps": [{"tensor": "y", "layout": "batch_feature", "pooling": "none",
                          "weight": 1.0}],
                "notes": "unknown to this version"}"#,
        )
        .unwrap();
        assert_eq!(plan.taps[0].tensor, "y");
    }

    #[test]
    fn every_type_can_be_built_with_its_constructors() {
        let mut metadata = Metadata::new();
        metadata.insert("k".into(), Value::from(1));
        let token = StageToken::new(vec![1.0], vec![1], metadata.clone());
        let context = StageContext::new(metadata).with_output(Some("out.tbf".into()));
        let request = abi::ProcessRequest::new(token.clone(), context.clone());
        let json = serde_json::to_value(&request).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"token": {"shape": [1], "metadata": {"k": 1}},
                               "context": {"parameters": {"k": 1}, "output": "out.tbf"}})
        );
        let description = PluginDescription::new(
            PluginInfo::new("p", "1.0.0", "d"),
            vec!["a".into()],
            vec![StageDescription::new("s", StageKind::Export)],
        );
        assert_eq!(description.api_version, env!("CARGO_PKG_VERSION"));
        let info = plugin_info!();
        assert_eq!(info.name, "tessera-api");
    }
}
