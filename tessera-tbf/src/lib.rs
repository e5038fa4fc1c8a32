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
//! - Ed25519 signatures say who wrote a token: [`SaveOptions::signing_key`] signs, every read
//!   verifies a signature present ([`Loaded::signature`]) and a [`TrustStore`] decides whether
//!   the signer is one to accept. The signature lives in the custom metadata, so `tessera-core`
//!   0.1.0 still loads a signed token; see [`SIGNATURE_KEY`] for what is signed.
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
//!
//! Signing, and accepting only known signers:
//!
//! ```
//! use tessera_tbf::{self as tbf, KnowledgeType, LoadOptions, QuantType, SaveOptions};
//! use tessera_tbf::{SigningKey, Token, TrustStore};
//!
//! let key = SigningKey::generate()?;
//! let token = Token::new(KnowledgeType::Activation, vec![0.25, -1.0, 3.5]);
//! let options = SaveOptions { quant: QuantType::Int8, signing_key: Some(key.clone()), ..Default::default() };
//! let loaded = tbf::decode(&tbf::encode(&token, &options)?, &LoadOptions::default())?;
//! let trust = TrustStore::from_toml_str(&format!("[signers]\nalice = \"{}\"", key.verifying_key()))?;
//! assert_eq!(trust.require(&loaded.signature)?, "alice");
//! # Ok::<(), tbf::TbfError>(())
//! ```

mod checksum;
mod error;
mod format;
mod mapped;
mod metadata;
mod quant;
mod reader;
mod signature;
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
pub use signature::{
    sign, verify, SignatureStatus, SigningKey, TrustStore, VerifyingKey, SIGNATURE_ALGORITHM,
    SIGNATURE_DOMAIN, SIGNATURE_KEY,
};
pub use stats::VectorStats;
pub use token::Token;
pub use writer::{encode, save, SaveOptions};
