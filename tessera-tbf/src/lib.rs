//! TBF v1.1, the single-file token format of the Tessera protocol (`.tbf`,
//! `application/vnd.tessera.token+binary`), byte-compatible with `tessera-core` 0.1.0.
//!
//! This crate depends on no ML library: a program that only reads or writes tokens compiles
//! neither tract nor candle. `tessera-host` re-exports it as `tessera_host::tbf`.
//!
//! - [`load`] / [`decode`] read and strictly validate a token; [`save`] / [`encode`] write one
//!   (atomically, in the reference's exact byte layout); [`info`] summarises a header.
//! - [`MappedToken`] validates a memory-mapped file and exposes its payload without copying.
//! - Both CRC variants found in the wild are read ([`CrcVariant`]); HMAC-SHA256 signing and
//!   constant-time verification with downgrade protection ([`LoadOptions::hmac_key`]).
//!
//! ```
//! use tessera_tbf::{self as tbf, KnowledgeType, LoadOptions, QuantType, SaveOptions, Token};
//!
//! let token = Token::new(KnowledgeType::Activation, vec![0.25, -1.0, 3.5]);
//! let bytes = tbf::encode(&token, &SaveOptions { quant: QuantType::Float16, ..Default::default() })?;
//! let loaded = tbf::decode(&bytes, &LoadOptions::default())?;
//! assert_eq!(loaded.token.vector(), &[0.25, -1.0, 3.5]);
//! assert_eq!(loaded.quant, QuantType::Float16);
//! # Ok::<(), tbf::TbfError>(())
//! ```

mod checksum;
mod error;
mod format;
mod mapped;
mod metadata;
mod quant;
mod reader;
mod stats;
mod token;
mod writer;

pub use checksum::{CrcVariant, HmacKey};
pub use error::TbfError;
pub use format::{
    Header, QuantType, DEFAULT_MAX_FILE_LEN, FLAG_COMPRESSED, FLAG_HMAC, HEADER_LEN, MAGIC,
    MAX_METADATA_LEN, MIME_TYPE, PAYLOAD_ALIGNMENT, TRAILER_LEN, VERSION_MAJOR, VERSION_MINOR,
};
pub use mapped::MappedToken;
pub use metadata::{
    json_to_meta_value, meta_value_to_json, KnowledgeType, MetaValue, Metadata, MAX_METADATA_DEPTH,
    PAYLOAD_SHAPE_KEY,
};
pub use quant::Int8Params;
pub use reader::{decode, info, load, HmacStatus, Info, LoadOptions, Loaded};
pub use stats::VectorStats;
pub use token::Token;
pub use writer::{encode, save, SaveOptions};
