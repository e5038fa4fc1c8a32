//! The stable contract between the Tessera host and architecture-adapter plugins.
//!
//! Every public item here is a promise to plugin authors: it changes only with a new major
//! version of this crate. Plugins and the host agree on an [`AbiVersion`] before the host calls
//! anything else in a plugin; a different major version is refused.

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
