//! The fixed parts of the TBF v1.1 layout: constants, quantisation codes and the 32-byte header.
//!
//! ```text
//! 0         header, 32 bytes
//! 32        metadata: one MessagePack map, M bytes
//! 32+M      zero padding to a 64-byte boundary
//! 32+M+P    vector payload, V bytes
//! end-36    trailer: 32-byte HMAC-SHA256 (zeros when unused) + u32 CRC of everything before it
//! ```

use super::TbfError;

/// The magic bytes every token starts with.
pub const MAGIC: [u8; 4] = *b"TBF1";
/// Major version written and understood.
pub const VERSION_MAJOR: u8 = 1;
/// Minor version written.
pub const VERSION_MINOR: u8 = 1;
/// Length of the fixed header.
pub const HEADER_LEN: usize = 32;
/// Length of the trailer (HMAC tag + body CRC).
pub const TRAILER_LEN: usize = 36;
/// Alignment of the vector payload within the file.
pub const PAYLOAD_ALIGNMENT: usize = 64;
/// Largest metadata block the format allows (1 MiB).
pub const MAX_METADATA_LEN: usize = 1 << 20;
/// Default largest file a reader accepts (256 MiB).
pub const DEFAULT_MAX_FILE_LEN: u64 = 256 << 20;
/// MIME type of TBF tokens.
pub const MIME_TYPE: &str = "application/vnd.tessera.token+binary";

/// Header flag: the trailer carries an HMAC-SHA256 tag.
pub const FLAG_HMAC: u8 = 0x01;
/// Header flag: compressed payload (reserved by the format, never written).
pub const FLAG_COMPRESSED: u8 = 0x02;

/// How the vector payload is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum QuantType {
    /// IEEE binary32, 4 bytes per element.
    #[default]
    Float32,
    /// IEEE binary16 (round to nearest even), 2 bytes per element.
    Float16,
    /// The upper 16 bits of the binary32 pattern (truncation), 2 bytes per element.
    Bfloat16,
    /// Affine 8-bit quantisation with scale and zero point in the metadata, 1 byte per element.
    Int8,
}

impl QuantType {
    /// Every quantisation, in code order.
    pub const ALL: [QuantType; 4] = [
        QuantType::Float32,
        QuantType::Float16,
        QuantType::Bfloat16,
        QuantType::Int8,
    ];

    /// The code stored in header byte 7.
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// The quantisation with header code `code`.
    pub fn from_code(code: u8) -> Result<Self, TbfError> {
        Self::ALL
            .get(usize::from(code))
            .copied()
            .ok_or(TbfError::UnknownQuant(code))
    }

    /// Bytes each element takes in the payload.
    pub const fn bytes_per_element(self) -> usize {
        match self {
            QuantType::Float32 => 4,
            QuantType::Float16 | QuantType::Bfloat16 => 2,
            QuantType::Int8 => 1,
        }
    }

    /// The name `tessera-core` uses (`FLOAT32`, `FLOAT16`, `BFLOAT16`, `INT8`).
    pub const fn name(self) -> &'static str {
        match self {
            QuantType::Float32 => "FLOAT32",
            QuantType::Float16 => "FLOAT16",
            QuantType::Bfloat16 => "BFLOAT16",
            QuantType::Int8 => "INT8",
        }
    }
}

impl std::fmt::Display for QuantType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for QuantType {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|quant| quant.name().eq_ignore_ascii_case(text))
            .ok_or_else(|| {
                format!("unknown quantisation {text:?}; use float32, float16, bfloat16 or int8")
            })
    }
}

/// The 32-byte header, field by field, as stored (nothing here is validated).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Bytes 0..4, `TBF1` in a valid file.
    pub magic: [u8; 4],
    /// Format major version.
    pub version_major: u8,
    /// Format minor version.
    pub version_minor: u8,
    /// Flag bits ([`FLAG_HMAC`], [`FLAG_COMPRESSED`]).
    pub flags: u8,
    /// Quantisation code (see [`QuantType::from_code`]).
    pub quant_code: u8,
    /// Metadata length M in bytes.
    pub metadata_len: u32,
    /// Number of vector elements.
    pub vector_count: u32,
    /// Payload length V in bytes.
    pub vector_bytes: u32,
    /// CRC of bytes 0..20.
    pub header_crc: u32,
    /// Bytes 24..32, zero in a valid file.
    pub reserved: [u8; 8],
}

impl Header {
    /// Splits the first 32 bytes of a file into fields.
    pub fn parse(bytes: &[u8; HEADER_LEN]) -> Self {
        let u32_at = |offset: usize| {
            u32::from_le_bytes([
                bytes[offset],
                bytes[offset + 1],
                bytes[offset + 2],
                bytes[offset + 3],
            ])
        };
        let mut magic = [0; 4];
        magic.copy_from_slice(&bytes[0..4]);
        let mut reserved = [0; 8];
        reserved.copy_from_slice(&bytes[24..32]);
        Self {
            magic,
            version_major: bytes[4],
            version_minor: bytes[5],
            flags: bytes[6],
            quant_code: bytes[7],
            metadata_len: u32_at(8),
            vector_count: u32_at(12),
            vector_bytes: u32_at(16),
            header_crc: u32_at(20),
            reserved,
        }
    }

    /// The 32 stored bytes of this header.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut bytes = [0u8; HEADER_LEN];
        bytes[0..4].copy_from_slice(&self.magic);
        bytes[4] = self.version_major;
        bytes[5] = self.version_minor;
        bytes[6] = self.flags;
        bytes[7] = self.quant_code;
        bytes[8..12].copy_from_slice(&self.metadata_len.to_le_bytes());
        bytes[12..16].copy_from_slice(&self.vector_count.to_le_bytes());
        bytes[16..20].copy_from_slice(&self.vector_bytes.to_le_bytes());
        bytes[20..24].copy_from_slice(&self.header_crc.to_le_bytes());
        bytes[24..32].copy_from_slice(&self.reserved);
        bytes
    }

    /// Whether the HMAC flag is set.
    pub const fn has_hmac(&self) -> bool {
        self.flags & FLAG_HMAC != 0
    }

    /// Whether the (reserved) compression flag is set.
    pub const fn is_compressed(&self) -> bool {
        self.flags & FLAG_COMPRESSED != 0
    }
}

/// Zero bytes between the end of the metadata and the 64-byte-aligned payload.
pub const fn padding_len(metadata_len: usize) -> usize {
    (PAYLOAD_ALIGNMENT - (HEADER_LEN + metadata_len) % PAYLOAD_ALIGNMENT) % PAYLOAD_ALIGNMENT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_through_bytes() {
        let header = Header {
            magic: MAGIC,
            version_major: 1,
            version_minor: 1,
            flags: FLAG_HMAC,
            quant_code: 3,
            metadata_len: 0x0102_0304,
            vector_count: 7,
            vector_bytes: 7,
            header_crc: 0xdead_beef,
            reserved: [0; 8],
        };
        assert_eq!(Header::parse(&header.to_bytes()), header);
    }

    #[test]
    fn padding_aligns_payload() {
        for metadata_len in 0..200 {
            assert_eq!(
                (HEADER_LEN + metadata_len + padding_len(metadata_len)) % 64,
                0
            );
            assert!(padding_len(metadata_len) < 64);
        }
    }

    #[test]
    fn quant_names_and_codes() {
        for quant in QuantType::ALL {
            assert_eq!(QuantType::from_code(quant.code()).unwrap(), quant);
            assert_eq!(quant.name().parse::<QuantType>().unwrap(), quant);
        }
        assert!(QuantType::from_code(4).is_err());
        assert_eq!(
            "bfloat16".parse::<QuantType>().unwrap(),
            QuantType::Bfloat16
        );
    }
}
