//! Reading and validating tokens: strict about every byte, yet accepting every file
//! `tessera-core` 0.1.0 writes, whichever CRC variant it used.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use super::checksum::{CrcVariant, HmacKey};
use super::format::{
    padding_len, Header, DEFAULT_MAX_FILE_LEN, FLAG_HMAC, HEADER_LEN, MAGIC, MAX_METADATA_LEN,
    TRAILER_LEN, VERSION_MAJOR,
};
use super::metadata::Metadata;
use super::quant::Encoding;
use super::signature::{self, SignatureStatus};
use super::token::Token;
use super::{QuantType, TbfError};
use tessera_fs::IoError;

/// How strictly to read a token.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Verify the file's HMAC with this key. A file without an HMAC is then refused unless
    /// `allow_unauthenticated` is set, since anyone can strip an HMAC and fix the CRCs.
    pub hmac_key: Option<HmacKey>,
    /// Accept a file without an HMAC even though a key was given.
    pub allow_unauthenticated: bool,
    /// Largest file accepted, in bytes (default 256 MiB, the reference's limit).
    pub max_file_bytes: u64,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            hmac_key: None,
            allow_unauthenticated: false,
            max_file_bytes: DEFAULT_MAX_FILE_LEN,
        }
    }
}

/// What the reader established about a file's HMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HmacStatus {
    /// Present and verified with the given key.
    Verified,
    /// Present but not checked, because no key was given.
    Unverified,
    /// The file carries no HMAC.
    Absent,
}

/// A token read from a file, with how it was stored.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The token.
    pub token: Token,
    /// The payload's quantisation.
    pub quant: QuantType,
    /// The CRC variant the file uses.
    pub crc: CrcVariant,
    /// The state of the HMAC.
    pub hmac: HmacStatus,
    /// The token's Ed25519 signature, verified (a present but invalid one fails the read).
    pub signature: SignatureStatus,
    /// Format version `(major, minor)`.
    pub version: (u8, u8),
}

/// The header-level summary `tessera-core`'s `info` reports, plus the CRC variant.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Info {
    /// Always `"TBF"`.
    pub format: &'static str,
    /// `"major.minor"`.
    pub version: String,
    /// Payload quantisation.
    pub quantisation: QuantType,
    /// Whether the HMAC flag is set.
    pub has_hmac: bool,
    /// Whether the reserved compression flag is set.
    pub is_compressed: bool,
    /// Metadata length in bytes.
    pub metadata_bytes: u32,
    /// Number of payload elements.
    pub vector_count: u32,
    /// Payload length in bytes.
    pub vector_bytes: u32,
    /// Bytes per payload element.
    pub bytes_per_element: usize,
    /// Length of the file.
    pub total_file_bytes: u64,
    /// Whether the header CRC matches either variant.
    pub header_crc_ok: bool,
    /// The variant the header CRC matches, if any.
    pub header_crc_variant: Option<CrcVariant>,
}

/// A validated file, borrowed: metadata decoded, payload located but not decoded.
pub(crate) struct Parsed<'a> {
    pub header: Header,
    pub crc: CrcVariant,
    pub hmac: HmacStatus,
    pub signature: SignatureStatus,
    pub metadata: Metadata,
    pub encoding: Encoding,
    pub payload: &'a [u8],
    pub payload_offset: usize,
}

/// Reads and validates the token in `path`.
pub fn load(path: &Path, options: &LoadOptions) -> Result<Loaded, TbfError> {
    let bytes = read_limited(path, options.max_file_bytes)?;
    decode(&bytes, options)
}

/// Validates and decodes a token held in memory.
pub fn decode(bytes: &[u8], options: &LoadOptions) -> Result<Loaded, TbfError> {
    let parsed = parse(bytes, options)?;
    Ok(Loaded {
        quant: parsed.encoding.quant(),
        crc: parsed.crc,
        hmac: parsed.hmac,
        signature: parsed.signature,
        version: (parsed.header.version_major, parsed.header.version_minor),
        token: Token::from_decoded(parsed.metadata, parsed.encoding, parsed.payload),
    })
}

/// Summarises the header of the token in `path` without validating the rest of the file.
pub fn info(path: &Path) -> Result<Info, TbfError> {
    let io_error = |source| TbfError::from(IoError::of("read", path)(source));
    let mut file = File::open(path).map_err(io_error)?;
    let total_file_bytes = file.metadata().map_err(io_error)?.len();
    if total_file_bytes < (HEADER_LEN + TRAILER_LEN) as u64 {
        return Err(TbfError::TooSmall {
            len: total_file_bytes,
        });
    }
    let mut header_bytes = [0u8; HEADER_LEN];
    file.read_exact(&mut header_bytes).map_err(io_error)?;
    let header = Header::parse(&header_bytes);
    check_identity(&header)?;
    let quantisation = QuantType::from_code(header.quant_code)?;
    let header_crc_variant = CrcVariant::detect(&header_bytes[..20], header.header_crc);
    Ok(Info {
        format: "TBF",
        version: format!("{}.{}", header.version_major, header.version_minor),
        quantisation,
        has_hmac: header.has_hmac(),
        is_compressed: header.is_compressed(),
        metadata_bytes: header.metadata_len,
        vector_count: header.vector_count,
        vector_bytes: header.vector_bytes,
        bytes_per_element: quantisation.bytes_per_element(),
        total_file_bytes,
        header_crc_ok: header_crc_variant.is_some(),
        header_crc_variant,
    })
}

/// Reads a whole file, refusing it before reading if it exceeds `limit` bytes.
pub(crate) fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, TbfError> {
    let io_error = |source| TbfError::from(IoError::of("read", path)(source));
    let file = File::open(path).map_err(io_error)?;
    let len = file.metadata().map_err(io_error)?.len();
    if len > limit {
        return Err(TbfError::TooLarge { len, limit });
    }
    let mut bytes = Vec::with_capacity(len as usize);
    // The file may grow while being read; never read more than the limit allows.
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io_error)?;
    Ok(bytes)
}

fn check_identity(header: &Header) -> Result<(), TbfError> {
    if header.magic != MAGIC {
        return Err(TbfError::BadMagic {
            found: header.magic,
        });
    }
    if header.version_major != VERSION_MAJOR {
        return Err(TbfError::UnsupportedVersion {
            major: header.version_major,
            minor: header.version_minor,
        });
    }
    Ok(())
}

fn first_non_zero(bytes: &[u8]) -> Option<(usize, u8)> {
    bytes
        .iter()
        .copied()
        .enumerate()
        .find(|&(_, byte)| byte != 0)
}

/// Validates every part of a token, in the reference reader's order of checks followed by the
/// checks it omits (reserved bytes, padding, flags, exact lengths), and last the Ed25519
/// signature if the token carries one.
pub(crate) fn parse<'a>(bytes: &'a [u8], options: &LoadOptions) -> Result<Parsed<'a>, TbfError> {
    let len = bytes.len() as u64;
    if len > options.max_file_bytes {
        return Err(TbfError::TooLarge {
            len,
            limit: options.max_file_bytes,
        });
    }
    let Some(header_bytes) = bytes.first_chunk::<HEADER_LEN>() else {
        return Err(TbfError::TooSmall { len });
    };
    if bytes.len() < HEADER_LEN + TRAILER_LEN {
        return Err(TbfError::TooSmall { len });
    }
    let header = Header::parse(header_bytes);
    check_identity(&header)?;
    let quant = QuantType::from_code(header.quant_code)?;
    let crc = CrcVariant::detect(&header_bytes[..20], header.header_crc).ok_or(
        TbfError::HeaderCrcMismatch {
            stored: header.header_crc,
            crc32c: CrcVariant::Crc32c.checksum(&header_bytes[..20]),
            ieee: CrcVariant::Ieee.checksum(&header_bytes[..20]),
        },
    )?;
    if header.flags & !FLAG_HMAC != 0 {
        return Err(TbfError::UnsupportedFlags {
            flags: header.flags,
        });
    }
    if let Some((index, value)) = first_non_zero(&header.reserved) {
        return Err(TbfError::NonZeroReserved {
            region: "reserved header bytes",
            offset: 24 + index as u64,
            value,
        });
    }

    let metadata_len = header.metadata_len as usize;
    if metadata_len > MAX_METADATA_LEN {
        return Err(TbfError::MetadataTooLarge {
            len: metadata_len as u64,
            limit: MAX_METADATA_LEN as u64,
        });
    }
    let expected_payload = u64::from(header.vector_count) * quant.bytes_per_element() as u64;
    if u64::from(header.vector_bytes) != expected_payload {
        return Err(TbfError::LengthMismatch {
            what: "payload bytes for the element count and quantisation in the header",
            expected: expected_payload,
            found: u64::from(header.vector_bytes),
        });
    }
    let padding = padding_len(metadata_len);
    let payload_offset = HEADER_LEN + metadata_len + padding;
    let expected_len = (payload_offset + TRAILER_LEN) as u64 + u64::from(header.vector_bytes);
    if expected_len != len {
        return Err(TbfError::LengthMismatch {
            what:
                "file length implied by the header (the file is truncated, or has bytes appended)",
            expected: expected_len,
            found: len,
        });
    }
    let trailer_start = bytes.len() - TRAILER_LEN;
    let (body, trailer) = bytes.split_at(trailer_start);
    let (tag, stored_crc) = trailer.split_at(32);
    let stored_crc =
        u32::from_le_bytes([stored_crc[0], stored_crc[1], stored_crc[2], stored_crc[3]]);
    let computed = crc.checksum(body);
    if computed != stored_crc {
        return Err(TbfError::BodyCrcMismatch {
            stored: stored_crc,
            computed,
            variant: crc,
        });
    }
    let metadata_end = HEADER_LEN + metadata_len;
    if let Some((index, value)) = first_non_zero(&bytes[metadata_end..payload_offset]) {
        return Err(TbfError::NonZeroReserved {
            region: "payload padding",
            offset: (metadata_end + index) as u64,
            value,
        });
    }

    let hmac = if header.has_hmac() {
        match &options.hmac_key {
            Some(key) if key.verify(body, tag) => HmacStatus::Verified,
            Some(_) => return Err(TbfError::HmacMismatch),
            None => HmacStatus::Unverified,
        }
    } else {
        if let Some((index, value)) = first_non_zero(tag) {
            return Err(TbfError::NonZeroReserved {
                region: "HMAC field of an unsigned file",
                offset: (trailer_start + index) as u64,
                value,
            });
        }
        if options.hmac_key.is_some() && !options.allow_unauthenticated {
            return Err(TbfError::MissingHmac);
        }
        HmacStatus::Absent
    };

    let (metadata, encoding) = Metadata::decode(&bytes[HEADER_LEN..metadata_end], quant)?;
    metadata.checked_payload_shape(u64::from(header.vector_count))?;
    let payload = &bytes[payload_offset..trailer_start];
    let signature = signature::check_stored(
        &metadata,
        encoding,
        &bytes[HEADER_LEN..metadata_end],
        payload,
    )?;
    Ok(Parsed {
        header,
        crc,
        hmac,
        signature,
        metadata,
        encoding,
        payload,
        payload_offset,
    })
}
