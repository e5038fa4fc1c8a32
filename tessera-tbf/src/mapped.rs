//! Zero-copy access to large payloads: the file is memory-mapped, validated in place, and the
//! 64-byte-aligned payload is handed out as a slice of the mapping.

use std::fs::File;
use std::ops::Range;
use std::path::Path;

use memmap2::Mmap;

use super::checksum::CrcVariant;
use super::metadata::Metadata;
use super::quant::{self, Encoding};
use super::reader::{parse, HmacStatus, LoadOptions};
use super::signature::SignatureStatus;
use super::{QuantType, TbfError};
use tessera_fs::IoError;

/// A validated token whose payload stays in the memory-mapped file.
pub struct MappedToken {
    map: Mmap,
    metadata: Metadata,
    encoding: Encoding,
    payload: Range<usize>,
    crc: CrcVariant,
    hmac: HmacStatus,
    signature: SignatureStatus,
}

impl MappedToken {
    /// Maps `path` and validates it exactly as [`load`](super::load) would, Ed25519 signature
    /// included.
    ///
    /// As with every memory-mapped file, the file must not be modified by another process while
    /// the mapping is alive.
    pub fn open(path: &Path, options: &LoadOptions) -> Result<Self, TbfError> {
        let io_error = |action, source| TbfError::from(IoError::of(action, path)(source));
        let file = File::open(path).map_err(|source| io_error("read", source))?;
        let len = file
            .metadata()
            .map_err(|source| io_error("read", source))?
            .len();
        if len > options.max_file_bytes {
            return Err(TbfError::TooLarge {
                len,
                limit: options.max_file_bytes,
            });
        }
        // SAFETY: the mapping is read-only and private to this value; the documented contract
        // (no concurrent modification of the file) is the one every mapped-file reader has.
        let map = unsafe { Mmap::map(&file) }.map_err(|source| io_error("map", source))?;
        let parsed = parse(&map, options)?;
        let payload = parsed.payload_offset..parsed.payload_offset + parsed.payload.len();
        let (metadata, encoding, crc, hmac, signature) = (
            parsed.metadata,
            parsed.encoding,
            parsed.crc,
            parsed.hmac,
            parsed.signature,
        );
        Ok(Self {
            map,
            metadata,
            encoding,
            payload,
            crc,
            hmac,
            signature,
        })
    }

    /// The token's metadata.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The payload's quantisation.
    pub fn quant(&self) -> QuantType {
        self.encoding.quant()
    }

    /// The CRC variant the file uses.
    pub fn crc(&self) -> CrcVariant {
        self.crc
    }

    /// The state of the file's HMAC.
    pub fn hmac(&self) -> HmacStatus {
        self.hmac
    }

    /// The token's Ed25519 signature, verified when the file was opened.
    pub fn signature(&self) -> SignatureStatus {
        self.signature
    }

    /// The raw payload bytes, straight from the mapping.
    pub fn payload_bytes(&self) -> &[u8] {
        &self.map[self.payload.clone()]
    }

    /// The payload as float32 values without copying, for FLOAT32 tokens on little-endian
    /// machines (the payload's byte order); `None` otherwise — use [`decode`](Self::decode).
    pub fn as_f32(&self) -> Option<&[f32]> {
        if self.encoding != Encoding::Float32 || cfg!(target_endian = "big") {
            return None;
        }
        bytemuck::try_cast_slice(self.payload_bytes()).ok()
    }

    /// The payload decoded into a new vector, for any quantisation.
    pub fn decode(&self) -> Vec<f32> {
        quant::decode(self.encoding, self.payload_bytes())
    }

    /// The payload's shape (see [`Metadata::checked_payload_shape`]).
    pub fn shape(&self) -> Result<Vec<u64>, TbfError> {
        self.metadata
            .checked_payload_shape((self.payload.len() / self.quant().bytes_per_element()) as u64)
    }
}
