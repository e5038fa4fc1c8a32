//! Integrity and authenticity: the two CRC-32 variants found in TBF files, and HMAC-SHA256.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::TbfError;

/// Which CRC-32 polynomial a file's two checksums use.
///
/// The format specifies CRC-32C, but `tessera-core` 0.1.0 silently writes CRC-32 (IEEE) when no
/// CRC-32C package is installed — its default install — and nothing in the file says which.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CrcVariant {
    /// CRC-32C (Castagnoli), as the format specifies. Written by default.
    #[default]
    Crc32c,
    /// CRC-32 (IEEE 802.3, zlib's `crc32`), for peers running a default `tessera-core` install.
    Ieee,
}

impl CrcVariant {
    /// Both variants, in the order a reader tries them.
    pub const ALL: [CrcVariant; 2] = [CrcVariant::Crc32c, CrcVariant::Ieee];

    /// The checksum of `data` under this variant.
    pub fn checksum(self, data: &[u8]) -> u32 {
        match self {
            CrcVariant::Crc32c => crc32c::crc32c(data),
            CrcVariant::Ieee => crc32fast::hash(data),
        }
    }

    /// The variant whose checksum of `data` equals `stored`, if any.
    pub fn detect(data: &[u8], stored: u32) -> Option<CrcVariant> {
        Self::ALL
            .into_iter()
            .find(|variant| variant.checksum(data) == stored)
    }
}

impl std::fmt::Display for CrcVariant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CrcVariant::Crc32c => "CRC-32C",
            CrcVariant::Ieee => "CRC-32 (IEEE)",
        })
    }
}

impl std::str::FromStr for CrcVariant {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.to_ascii_lowercase().as_str() {
            "crc32c" | "crc-32c" | "castagnoli" => Ok(CrcVariant::Crc32c),
            "ieee" | "crc32" | "crc-32" => Ok(CrcVariant::Ieee),
            other => Err(format!("unknown CRC variant {other:?}; use crc32c or ieee")),
        }
    }
}

/// A shared secret for HMAC-SHA256. Its bytes never appear in `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct HmacKey(Vec<u8>);

impl HmacKey {
    /// A key made of these bytes. An empty key is refused: it authenticates nothing.
    pub fn new(bytes: Vec<u8>) -> Result<Self, TbfError> {
        if bytes.is_empty() {
            return Err(TbfError::InvalidKey("the key is empty".into()));
        }
        Ok(Self(bytes))
    }

    /// A key written as hexadecimal digits (surrounding whitespace ignored), the form
    /// `tessera-core`'s command line uses.
    pub fn from_hex(text: &str) -> Result<Self, TbfError> {
        let bytes = hex::decode(text.trim()).map_err(|error| {
            TbfError::InvalidKey(format!("expected hexadecimal digits ({error})"))
        })?;
        Self::new(bytes)
    }

    /// The HMAC-SHA256 tag of `data` under this key.
    pub fn sign(&self, data: &[u8]) -> [u8; 32] {
        self.mac(data).finalize().into_bytes().into()
    }

    /// Whether `tag` is the HMAC-SHA256 of `data` under this key, compared in constant time.
    pub fn verify(&self, data: &[u8], tag: &[u8]) -> bool {
        self.mac(data).verify_slice(tag).is_ok()
    }

    fn mac(&self, data: &[u8]) -> Hmac<Sha256> {
        // HMAC is defined for keys of every length, so construction cannot fail.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        mac.update(data);
        mac
    }
}

impl std::fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HmacKey(<{} bytes redacted>)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_check_values() {
        // The standard check value of each polynomial over "123456789".
        assert_eq!(CrcVariant::Crc32c.checksum(b"123456789"), 0xE306_9283);
        assert_eq!(CrcVariant::Ieee.checksum(b"123456789"), 0xCBF4_3926);
        assert_eq!(
            CrcVariant::detect(b"123456789", 0xCBF4_3926),
            Some(CrcVariant::Ieee)
        );
        assert_eq!(CrcVariant::detect(b"123456789", 1), None);
    }

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let key = HmacKey::new(b"Jefe".to_vec()).unwrap();
        let tag = key.sign(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(tag),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(key.verify(b"what do ya want for nothing?", &tag));
        assert!(!key.verify(b"what do ya want for nothing!", &tag));
        assert!(!format!("{key:?}").contains("Jefe"));
    }

    #[test]
    fn keys_from_hex() {
        assert!(HmacKey::from_hex(" 7368617265642d736563726574\n").is_ok());
        assert!(HmacKey::from_hex("zz").is_err());
        assert!(HmacKey::from_hex("").is_err());
    }
}
