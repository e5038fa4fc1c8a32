//! Errors raised while reading, validating or writing TBF tokens.

use super::checksum::CrcVariant;

/// Why a token could not be read or written. Messages say what was expected, what was found and,
/// where there is a choice, what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TbfError {
    /// The operating system refused a read, write or mapping of the file.
    #[error(transparent)]
    Io(#[from] tessera_fs::IoError),

    /// The file is shorter than the smallest possible token.
    #[error("file is {len} bytes, but a TBF token has at least 68 (32-byte header + 36-byte trailer); it is truncated or not a token")]
    TooSmall {
        /// Length of the file in bytes.
        len: u64,
    },

    /// The file exceeds the configured size limit.
    #[error("file is {len} bytes, over the limit of {limit} bytes; raise the limit (--max-file-mib) only for files you trust")]
    TooLarge {
        /// Length of the file in bytes.
        len: u64,
        /// The limit in force.
        limit: u64,
    },

    /// The first four bytes are not `TBF1`.
    #[error(
        "not a TBF token: the file starts with {found:02x?}, expected the magic bytes \"TBF1\""
    )]
    BadMagic {
        /// The first four bytes found.
        found: [u8; 4],
    },

    /// A major version other than 1.
    #[error("unsupported TBF version {major}.{minor}: this reader understands major version 1")]
    UnsupportedVersion {
        /// Major version in the header.
        major: u8,
        /// Minor version in the header.
        minor: u8,
    },

    /// A quantisation code outside 0..=3.
    #[error("unknown quantisation type {0} in the header (known: 0 FLOAT32, 1 FLOAT16, 2 BFLOAT16, 3 INT8)")]
    UnknownQuant(u8),

    /// The header CRC matches neither CRC variant.
    #[error("header checksum mismatch: stored {stored:#010x}, computed {crc32c:#010x} (CRC-32C) / {ieee:#010x} (CRC-32 IEEE); the header is corrupted")]
    HeaderCrcMismatch {
        /// CRC stored in the header.
        stored: u32,
        /// CRC-32C of the header bytes.
        crc32c: u32,
        /// CRC-32 (IEEE) of the header bytes.
        ieee: u32,
    },

    /// The body CRC does not match the variant the header CRC used.
    #[error("body checksum mismatch: stored {stored:#010x}, computed {computed:#010x} with {variant} (the variant the header uses); the file is corrupted")]
    BodyCrcMismatch {
        /// CRC stored in the trailer.
        stored: u32,
        /// CRC computed over the body with the header's variant.
        computed: u32,
        /// The CRC variant established by the header.
        variant: CrcVariant,
    },

    /// Flag bits that this version of the format does not define, or compression.
    #[error("unsupported header flags {flags:#04x}: only bit 0 (HMAC present) is defined; bit 1 (compressed) is reserved and never written")]
    UnsupportedFlags {
        /// The flags byte.
        flags: u8,
    },

    /// Bytes that must be zero are not.
    #[error("{region} must be zero but byte {offset} is {value:#04x}; the file is corrupted or was written by an incompatible tool")]
    NonZeroReserved {
        /// Which region ("reserved header bytes", "payload padding", "HMAC field of an unsigned file").
        region: &'static str,
        /// Offset of the first non-zero byte within the file.
        offset: u64,
        /// The byte found.
        value: u8,
    },

    /// Lengths in the header disagree with each other or with the file.
    #[error("inconsistent lengths: {what}: expected {expected}, found {found}")]
    LengthMismatch {
        /// Which length is wrong.
        what: &'static str,
        /// The value the other fields imply.
        expected: u64,
        /// The value found.
        found: u64,
    },

    /// The metadata block exceeds 1 MiB.
    #[error("metadata is {len} bytes, over the format's limit of {limit} bytes")]
    MetadataTooLarge {
        /// Metadata length from the header.
        len: u64,
        /// The limit.
        limit: u64,
    },

    /// The HMAC does not match the key.
    #[error("HMAC verification failed: the file was altered or the key is wrong")]
    HmacMismatch,

    /// A key was given but the file carries no HMAC (possible downgrade attack).
    #[error("the file carries no HMAC but a key was given; anyone can strip an HMAC, so this is refused (if unsigned tokens are expected, allow them: --allow-unauthenticated)")]
    MissingHmac,

    /// The metadata block is not valid MessagePack or does not follow the schema.
    #[error("invalid metadata: {0}")]
    Metadata(String),

    /// An INT8 payload cannot be written for this vector.
    #[error("cannot quantise to INT8: {0}")]
    Int8(String),

    /// The vector is too long for the 32-bit length fields of the header.
    #[error("vector has {len} elements; TBF v1.1 stores at most {max} elements ({bytes_per_element} bytes each) per token")]
    VectorTooLong {
        /// Elements requested.
        len: usize,
        /// Maximum for this quantisation.
        max: u64,
        /// Bytes per element of the quantisation.
        bytes_per_element: usize,
    },

    /// A key given in text is not valid hexadecimal.
    #[error("invalid HMAC key: {0}")]
    InvalidKey(String),

    /// A token's Ed25519 signature is malformed or does not verify, or a trust file refuses
    /// the token (unsigned, or signed by a key it does not list).
    #[error("signature check failed: {0}")]
    Signature(String),

    /// An Ed25519 key given as text or read from a key file is not valid.
    #[error("invalid Ed25519 key: {0}")]
    InvalidSigningKey(String),

    /// A trust file is not valid TOML or does not map signer names to public keys.
    #[error("invalid trust file {0}")]
    TrustFile(String),

    /// The operating system's random number generator failed, so no key could be generated.
    #[error("cannot generate a key: the operating system's random number generator failed ({0})")]
    Random(String),
}
