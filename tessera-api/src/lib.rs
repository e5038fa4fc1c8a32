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
//! [`ABI_VERSION`] majors agree. Every public item here is a promise to plugin authors and
//! changes only with a new major version of this crate.
//!
//! ```
//! use tessera_api::{AdapterPlan, ArchitectureAdapter, GraphSummary, Plugin, PluginInfo};
//!
//! struct Always;
//! impl ArchitectureAdapter for Always {
//!     fn name(&self) -> &str { "always" }
//!     fn analyse(&self, _graph: &GraphSummary) -> Result<Option<AdapterPlan>, String> {
//!         Ok(None)
//!     }
//! }
//!
//! #[derive(Default)]
//! struct MyPlugin;
//! impl Plugin for MyPlugin {
//!     fn info(&self) -> PluginInfo {
//!         PluginInfo { name: "mine".into(), version: "0.1.0".into(), description: "example".into() }
//!     }
//!     fn adapters(&self) -> Vec<Box<dyn ArchitectureAdapter>> { vec![Box::new(Always)] }
//! }
//!
//! tessera_api::export_plugin!(MyPlugin::default());
//! ```

pub mod abi;
mod adapter;
mod graph;
mod plugin;
mod stage;

pub use adapter::{AdapterPlan, ArchitectureAdapter, Pooling, TapLayout, TapPoint};
pub use graph::{DimSummary, GraphSummary, InitializerSummary, NodeSummary, ValueSummary};
pub use plugin::{AdapterPlugin, Plugin, PluginDescription, PluginInfo, StageDescription};
pub use stage::{StageContext, StageKind, StageToken, TokenStage};

/// The version of the binary interface between the host and plugins.
///
/// A plugin built against major version `M` can only be loaded by a host of major version `M`;
/// minor versions add capabilities without changing what already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(C)]
pub struct AbiVersion {
    /// Incremented for changes that old plugins or hosts cannot understand.
    pub major: u16,
    /// Incremented for additions that old plugins or hosts may ignore.
    pub minor: u16,
}

impl AbiVersion {
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
pub const ABI_VERSION: AbiVersion = AbiVersion { major: 1, minor: 0 };

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_major_is_compatible_regardless_of_minor() {
        let newer = AbiVersion { major: 1, minor: 7 };
        assert!(ABI_VERSION.is_compatible_with(newer));
        assert!(newer.is_compatible_with(ABI_VERSION));
    }

    #[test]
    fn different_major_is_refused() {
        let next = AbiVersion { major: 2, minor: 0 };
        assert!(!ABI_VERSION.is_compatible_with(next));
        assert_eq!(next.to_string(), "2.0");
    }
}
