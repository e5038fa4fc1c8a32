//! Writing tokens byte-for-byte as `tessera-core` 0.1.0 does, atomically.

use std::path::Path;

use super::checksum::{CrcVariant, HmacKey};
use super::format::{
    padding_len, Header, FLAG_HMAC, HEADER_LEN, MAGIC, MAX_METADATA_LEN, TRAILER_LEN,
    VERSION_MAJOR, VERSION_MINOR,
};
use super::signature::{self, SigningKey};
use super::token::Token;
use super::{QuantType, TbfError};
use tessera_fs::{write_atomically, IoError};

/// How to store a token.
#[derive(Debug, Clone, Default)]
pub struct SaveOptions {
    /// Payload quantisation (default FLOAT32).
    pub quant: QuantType,
    /// CRC variant (default CRC-32C; IEEE for peers running a default `tessera-core` install).
    pub crc: CrcVariant,
    /// Sign the file with HMAC-SHA256 under this key.
    pub hmac_key: Option<HmacKey>,
    /// Sign the token with this Ed25519 key (custom metadata entry
    /// [`SIGNATURE_KEY`](super::SIGNATURE_KEY)), replacing any signature it carries. Without a
    /// key, a signature the token carries is written unchanged: it stays valid when the token
    /// is written as it was read (same quantisation, metadata and vector), whatever the CRC
    /// variant or HMAC, and readers refuse the file otherwise.
    pub signing_key: Option<SigningKey>,
}

/// The bytes of `token` stored as `options` say.
pub fn encode(token: &Token, options: &SaveOptions) -> Result<Vec<u8>, TbfError> {
    token.shape()?;
    let element_count = token.vector().len();
    let bytes_per_element = options.quant.bytes_per_element();
    let too_long = || TbfError::VectorTooLong {
        len: element_count,
        max: u64::from(u32::MAX) / bytes_per_element as u64,
        bytes_per_element,
    };
    let vector_count = u32::try_from(element_count).map_err(|_| too_long())?;
    let (payload, encoding) = token.encode_payload(options.quant)?;
    let vector_bytes = u32::try_from(payload.len()).map_err(|_| too_long())?;
    let metadata = match &options.signing_key {
        Some(key) => {
            signature::signed_metadata(&token.metadata, encoding, &payload, key).encode(encoding)
        }
        None => token.metadata.encode(encoding),
    };
    if metadata.len() > MAX_METADATA_LEN {
        return Err(TbfError::MetadataTooLarge {
            len: metadata.len() as u64,
            limit: MAX_METADATA_LEN as u64,
        });
    }

    let mut header = Header {
        magic: MAGIC,
        version_major: VERSION_MAJOR,
        version_minor: VERSION_MINOR,
        flags: if options.hmac_key.is_some() {
            FLAG_HMAC
        } else {
            0
        },
        quant_code: options.quant.code(),
        metadata_len: metadata.len() as u32,
        vector_count,
        vector_bytes,
        header_crc: 0,
        reserved: [0; 8],
    };
    header.header_crc = options.crc.checksum(&header.to_bytes()[..20]);

    let padding = padding_len(metadata.len());
    let mut file =
        Vec::with_capacity(HEADER_LEN + metadata.len() + padding + payload.len() + TRAILER_LEN);
    file.extend_from_slice(&header.to_bytes());
    file.extend_from_slice(&metadata);
    file.resize(file.len() + padding, 0);
    file.extend_from_slice(&payload);
    let tag = options
        .hmac_key
        .as_ref()
        .map_or([0u8; 32], |key| key.sign(&file));
    let body_crc = options.crc.checksum(&file);
    file.extend_from_slice(&tag);
    file.extend_from_slice(&body_crc.to_le_bytes());
    Ok(file)
}

/// Writes `token` to `path` atomically (no partial file on failure); returns the bytes written.
pub fn save(path: &Path, token: &Token, options: &SaveOptions) -> Result<u64, TbfError> {
    let bytes = encode(token, options)?;
    write_atomically(path, &bytes).map_err(IoError::of("write", path))?;
    Ok(bytes.len() as u64)
}
