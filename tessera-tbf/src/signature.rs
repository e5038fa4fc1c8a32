//! Ed25519 signatures on tokens: who wrote a token, checkable by anyone holding the public key
//! (an HMAC only proves that the writer knew a secret shared with the reader).
//!
//! The signature travels in the custom metadata map (`x`) under [`SIGNATURE_KEY`], as the
//! MessagePack map `{"alg": "ed25519", "key": <32-byte bin>, "sig": <64-byte bin>}`, so a
//! `tessera-core` 0.1.0 reader, which ignores custom metadata, still loads a signed token.
//!
//! The signed message is [`SIGNATURE_DOMAIN`] followed by the SHA-512 digest of
//!
//! ```text
//! quant code (1 byte) ‖ u64 LE metadata length ‖ metadata ‖ u64 LE payload length ‖ payload
//! ```
//!
//! where *metadata* is the metadata block exactly as the writer encodes it for that payload
//! (INT8 parameters included) but without the `signature` entry, and *payload* is the stored
//! payload bytes. Header flags, padding and the trailer are not covered, so the same token
//! re-saved with another CRC variant, or with or without an HMAC, keeps a valid signature.
//! A reader also requires the metadata block of a signed token to be byte-identical to the
//! writer's encoding of what it decodes, so that no byte of it can change unnoticed.

use std::fmt;
use std::io::Write;
use std::path::Path;

use ed25519_dalek::Signer;
use indexmap::IndexMap;
use sha2::{Digest, Sha512};
use zeroize::Zeroizing;

use super::metadata::{MetaValue, Metadata};
use super::quant::Encoding;
use super::token::Token;
use super::{QuantType, TbfError};
use tessera_fs::{write_atomically, IoError};

/// Custom-metadata key under which a token carries its Ed25519 signature, the map
/// `{"alg": "ed25519", "key": <32-byte bin>, "sig": <64-byte bin>}`.
///
/// The key signs [`SIGNATURE_DOMAIN`] followed by the SHA-512 digest of: the quantisation code
/// (1 byte), the length (u64 LE) and bytes of the metadata block as the writer encodes it
/// without this entry (INT8 parameters included), the length (u64 LE) and bytes of the stored
/// payload. Re-saving a token as it was read — same quantisation, any CRC variant, with or
/// without HMAC — keeps the signature valid in all four quantisations: float payloads decode
/// and re-encode to the same bytes, and an INT8 token keeps the codes and parameters it was
/// read from. Writing it as another quantisation, or after changing its metadata or vector,
/// needs a new signature.
pub const SIGNATURE_KEY: &str = "signature";

/// The `alg` value of a signature entry: plain Ed25519 (RFC 8032), verified strictly.
pub const SIGNATURE_ALGORITHM: &str = "ed25519";

/// Prefix of every signed message, so that a token signature can never be mistaken for a
/// signature the same key made over something else.
pub const SIGNATURE_DOMAIN: &[u8] = b"TESSERA-TBF-ED25519-v1\0";

/// An Ed25519 secret key that signs tokens. Neither `Debug` nor `Display` reveals the secret,
/// and its bytes are wiped from memory when it is dropped.
#[derive(Clone)]
pub struct SigningKey(ed25519_dalek::SigningKey);

impl SigningKey {
    /// A new key from the operating system's cryptographically secure random number generator.
    pub fn generate() -> Result<Self, TbfError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::fill(seed.as_mut()).map_err(|error| TbfError::Random(error.to_string()))?;
        Ok(Self(ed25519_dalek::SigningKey::from_bytes(&seed)))
    }

    /// The key whose 32-byte secret seed is written as 64 hexadecimal digits (surrounding
    /// whitespace ignored): the form [`to_hex`](Self::to_hex) and key files use.
    pub fn from_hex(text: &str) -> Result<Self, TbfError> {
        let seed = parse_hex32(text).map_err(TbfError::InvalidSigningKey)?;
        Ok(Self(ed25519_dalek::SigningKey::from_bytes(&seed)))
    }

    /// The 32-byte secret seed as 64 lowercase hexadecimal digits. This is the secret itself:
    /// keep it out of logs.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0.as_bytes())
    }

    /// Reads a secret key file: one line of 64 hexadecimal digits.
    pub fn load(path: &Path) -> Result<Self, TbfError> {
        let text = Zeroizing::new(read_text(path)?);
        let seed = parse_hex32(&text).map_err(|reason| {
            TbfError::InvalidSigningKey(format!("secret key file {}: {reason}", path.display()))
        })?;
        Ok(Self(ed25519_dalek::SigningKey::from_bytes(&seed)))
    }

    /// Writes the secret key file that [`load`](Self::load) reads, atomically and, on unix,
    /// readable by its owner only (mode 0600, from the moment it is created).
    pub fn save(&self, path: &Path) -> Result<(), TbfError> {
        let mut line = Zeroizing::new(self.to_hex());
        line.push('\n');
        write_private(path, line.as_bytes()).map_err(IoError::of("write", path))?;
        Ok(())
    }

    /// The public key that verifies this key's signatures.
    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey(self.0.verifying_key())
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SigningKey {{ public: {}, secret: <redacted> }}",
            self.verifying_key()
        )
    }
}

/// An Ed25519 public key: verifies a token's signature and names its signer in a
/// [`TrustStore`]. `Display` writes it as 64 hexadecimal digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct VerifyingKey(ed25519_dalek::VerifyingKey);

impl VerifyingKey {
    /// The key written as 64 hexadecimal digits (surrounding whitespace ignored). Encodings
    /// that are not a curve point, and weak (small-order) keys, are refused.
    pub fn from_hex(text: &str) -> Result<Self, TbfError> {
        parse_hex32(text)
            .and_then(|bytes| Self::from_bytes(&bytes))
            .map_err(TbfError::InvalidSigningKey)
    }

    /// The key as 64 lowercase hexadecimal digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0.as_bytes())
    }

    /// The key's 32-byte encoding, as stored in a signature entry.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// Reads a public key file: one line of 64 hexadecimal digits.
    pub fn load(path: &Path) -> Result<Self, TbfError> {
        let text = read_text(path)?;
        parse_hex32(&text)
            .and_then(|bytes| Self::from_bytes(&bytes))
            .map_err(|reason| {
                TbfError::InvalidSigningKey(format!("public key file {}: {reason}", path.display()))
            })
    }

    /// Writes the public key file that [`load`](Self::load) reads, atomically.
    pub fn save(&self, path: &Path) -> Result<(), TbfError> {
        write_atomically(path, format!("{}\n", self.to_hex()).as_bytes())
            .map_err(IoError::of("write", path))?;
        Ok(())
    }

    fn from_bytes(bytes: &[u8; 32]) -> Result<Self, String> {
        let key = ed25519_dalek::VerifyingKey::from_bytes(bytes)
            .map_err(|_| "not a valid Ed25519 public key (not a point on the curve)".to_owned())?;
        if key.is_weak() {
            return Err(
                "a weak (small-order) Ed25519 public key, which would accept forged signatures"
                    .into(),
            );
        }
        Ok(Self(key))
    }
}

impl fmt::Display for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifyingKey({self})")
    }
}

impl serde::Serialize for VerifyingKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

/// What a reader established about a token's Ed25519 signature. A signature that is present
/// but malformed or wrong is never a status: reading fails with [`TbfError::Signature`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum SignatureStatus {
    /// The token carries no signature.
    Unsigned,
    /// The token carries a signature that verifies under `signer`'s key. Whether that key is
    /// one to trust is for a [`TrustStore`] to say.
    Valid {
        /// The public key that made the signature.
        signer: VerifyingKey,
    },
}

/// Signs `token` as it will be stored with quantisation `quant`, replacing any signature it
/// carries. Save it with the same `quant` afterwards (and no change to metadata or vector), or
/// the signature no longer matches and readers refuse the file.
pub fn sign(token: &mut Token, quant: QuantType, key: &SigningKey) -> Result<(), TbfError> {
    let (payload, encoding) = token.encode_payload(quant)?;
    let signed = signed_metadata(&token.metadata, encoding, &payload, key);
    token.metadata = signed;
    Ok(())
}

/// Checks the signature of `token` as it would be stored with quantisation `quant` (for a
/// token just read, `quant` is [`Loaded::quant`](super::Loaded::quant)). Fails with
/// [`TbfError::Signature`] if a signature is present but malformed or does not match.
pub fn verify(token: &Token, quant: QuantType) -> Result<SignatureStatus, TbfError> {
    let (payload, encoding) = token.encode_payload(quant)?;
    check(&token.metadata, encoding, &payload)
}

/// A copy of `metadata` carrying `key`'s signature over it and `payload` stored as `encoding`,
/// in place of any signature it had.
pub(crate) fn signed_metadata(
    metadata: &Metadata,
    encoding: Encoding,
    payload: &[u8],
    key: &SigningKey,
) -> Metadata {
    let mut signed = metadata.clone();
    signed.custom.shift_remove(SIGNATURE_KEY);
    let signature = key.0.sign(&message(&signed, encoding, payload));
    let entry = MetaValue::Map(vec![
        (MetaValue::from("alg"), MetaValue::from(SIGNATURE_ALGORITHM)),
        (
            MetaValue::from("key"),
            MetaValue::Binary(key.verifying_key().to_bytes().to_vec()),
        ),
        (
            MetaValue::from("sig"),
            MetaValue::Binary(signature.to_bytes().to_vec()),
        ),
    ]);
    signed.custom.insert(SIGNATURE_KEY.into(), entry);
    signed
}

/// The signature status of a token read from a file whose metadata block is `stored_metadata`:
/// as [`check`], and for a signed token also requires that block to be exactly what the writer
/// encodes for the decoded metadata (otherwise bytes could change without changing the message).
pub(crate) fn check_stored(
    metadata: &Metadata,
    encoding: Encoding,
    stored_metadata: &[u8],
    payload: &[u8],
) -> Result<SignatureStatus, TbfError> {
    if !metadata.custom.contains_key(SIGNATURE_KEY) {
        return Ok(SignatureStatus::Unsigned);
    }
    if metadata.encode(encoding) != stored_metadata {
        return Err(TbfError::Signature(
            "the metadata of this signed token is not encoded the way its signer wrote it, so it \
             was altered after signing; do not use it, ask the sender for an intact copy"
                .into(),
        ));
    }
    check(metadata, encoding, payload)
}

/// The signature status of `metadata` and `payload` stored as `encoding`.
pub(crate) fn check(
    metadata: &Metadata,
    encoding: Encoding,
    payload: &[u8],
) -> Result<SignatureStatus, TbfError> {
    let Some(entry) = metadata.custom.get(SIGNATURE_KEY) else {
        return Ok(SignatureStatus::Unsigned);
    };
    let (signer, signature) = parse_entry(entry).map_err(|problem| {
        TbfError::Signature(format!(
            "the custom metadata entry {SIGNATURE_KEY:?} is malformed: {problem}; the token was \
             damaged or written by an incompatible tool, ask the sender for a freshly signed copy"
        ))
    })?;
    let mut unsigned = metadata.clone();
    unsigned.custom.shift_remove(SIGNATURE_KEY);
    signer
        .0
        .verify_strict(&message(&unsigned, encoding, payload), &signature)
        .map_err(|_| {
            TbfError::Signature(format!(
                "the Ed25519 signature does not verify under the key the token names ({signer}): \
                 the token was altered after signing or its key field was replaced; do not use \
                 it, ask the sender for an intact copy"
            ))
        })?;
    Ok(SignatureStatus::Valid { signer })
}

/// The message signed for `metadata` (without its signature entry) and `payload` stored as
/// `encoding`; see the module documentation.
fn message(unsigned: &Metadata, encoding: Encoding, payload: &[u8]) -> Vec<u8> {
    let metadata = unsigned.encode(encoding);
    let mut hasher = Sha512::new();
    hasher.update([encoding.quant().code()]);
    hasher.update((metadata.len() as u64).to_le_bytes());
    hasher.update(&metadata);
    hasher.update((payload.len() as u64).to_le_bytes());
    hasher.update(payload);
    let digest = hasher.finalize();
    let mut message = Vec::with_capacity(SIGNATURE_DOMAIN.len() + digest.len());
    message.extend_from_slice(SIGNATURE_DOMAIN);
    message.extend_from_slice(&digest);
    message
}

/// The signer and signature of a signature entry, or what is wrong with it.
fn parse_entry(entry: &MetaValue) -> Result<(VerifyingKey, ed25519_dalek::Signature), String> {
    let MetaValue::Map(fields) = entry else {
        return Err("expected a map with \"alg\", \"key\" and \"sig\"".into());
    };
    let (mut alg, mut key, mut sig) = (None, None, None);
    for (name, value) in fields {
        let slot = match name.as_str() {
            Some("alg") => &mut alg,
            Some("key") => &mut key,
            Some("sig") => &mut sig,
            _ => return Err(format!("unexpected field {name}")),
        };
        if slot.replace(value).is_some() {
            return Err(format!("field {name} appears twice"));
        }
    }
    let (Some(alg), Some(key), Some(sig)) = (alg, key, sig) else {
        return Err("it needs the fields \"alg\", \"key\" and \"sig\"".into());
    };
    if alg.as_str() != Some(SIGNATURE_ALGORITHM) {
        return Err(format!(
            "\"alg\" is {alg}, but this reader knows only {SIGNATURE_ALGORITHM:?}"
        ));
    }
    let binary = |value: &MetaValue| match value {
        MetaValue::Binary(bytes) => Some(bytes.clone()),
        _ => None,
    };
    let key: [u8; 32] = binary(key)
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or("\"key\" must be 32 bytes of binary data")?;
    let sig: [u8; 64] = binary(sig)
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or("\"sig\" must be 64 bytes of binary data")?;
    let signer = VerifyingKey::from_bytes(&key).map_err(|reason| format!("\"key\" is {reason}"))?;
    Ok((signer, ed25519_dalek::Signature::from_bytes(&sig)))
}

/// Public keys trusted to sign tokens, each under a name, read from a TOML file:
///
/// ```toml
/// [signers]
/// alice = "<64 hexadecimal digits>"
/// ```
///
/// A receiver given a trust file accepts a token only if it is signed by one of these keys.
#[derive(Debug, Clone)]
pub struct TrustStore {
    origin: String,
    signers: IndexMap<String, VerifyingKey>,
}

impl TrustStore {
    /// Reads a trust file.
    pub fn load(path: &Path) -> Result<Self, TbfError> {
        let text = read_text(path)?;
        Self::parse(&text, path.display().to_string())
    }

    /// A trust store from the text of a trust file (errors then speak of "the trust list").
    pub fn from_toml_str(text: &str) -> Result<Self, TbfError> {
        Self::parse(text, "the trust list".into())
    }

    /// The name the store gives `key`, if it lists it.
    pub fn name_of(&self, key: &VerifyingKey) -> Option<&str> {
        self.signers
            .iter()
            .find(|(_, trusted)| *trusted == key)
            .map(|(name, _)| name.as_str())
    }

    /// Every trusted signer, by name, in the file's order.
    pub fn signers(&self) -> impl Iterator<Item = (&str, &VerifyingKey)> {
        self.signers.iter().map(|(name, key)| (name.as_str(), key))
    }

    /// The name of the trusted signer of a token with signature `status`; refuses an unsigned
    /// token and one signed by a key the store does not list.
    pub fn require(&self, status: &SignatureStatus) -> Result<&str, TbfError> {
        match status {
            SignatureStatus::Unsigned => Err(TbfError::Signature(
                "the token is not signed, but a trust file was given: ask the sender to emit with \
                 --sign-key"
                    .into(),
            )),
            SignatureStatus::Valid { signer } => self.name_of(signer).ok_or_else(|| {
                TbfError::Signature(format!(
                    "signed by key {signer}, which is not in {}",
                    self.origin
                ))
            }),
        }
    }

    fn parse(text: &str, origin: String) -> Result<Self, TbfError> {
        let invalid = |message: String| TbfError::TrustFile(format!("{origin}: {message}"));
        let table: toml::Table = toml::from_str(text).map_err(|error| {
            let line = error.span().map_or(String::new(), |span| {
                let before = &text.as_bytes()[..span.start.min(text.len())];
                let line = before.iter().filter(|&&byte| byte == b'\n').count() + 1;
                format!(" (line {line})")
            });
            invalid(format!(
                "not valid TOML{line}: {}",
                error.message().trim_end()
            ))
        })?;
        let example = "[signers] followed by lines such as alice = \"<64 hexadecimal digits>\"";
        if let Some(other) = table.keys().find(|key| key.as_str() != "signers") {
            return Err(invalid(format!(
                "unknown entry {other:?}; the file holds one table: {example}"
            )));
        }
        let Some(signers) = table.get("signers") else {
            return Err(invalid(format!("no [signers] table; write {example}")));
        };
        let Some(signers) = signers.as_table() else {
            return Err(invalid(format!("\"signers\" must be a table: {example}")));
        };
        if signers.is_empty() {
            return Err(invalid(format!(
                "[signers] lists no key, so every token would be refused; write {example}"
            )));
        }
        let mut trusted = IndexMap::with_capacity(signers.len());
        for (name, value) in signers {
            let Some(hex_key) = value.as_str() else {
                return Err(invalid(format!(
                    "[signers] entry {name:?}: expected a string of 64 hexadecimal digits, found {}",
                    value.type_str()
                )));
            };
            let key = parse_hex32(hex_key)
                .and_then(|bytes| VerifyingKey::from_bytes(&bytes))
                .map_err(|reason| invalid(format!("[signers] entry {name:?}: {reason}")))?;
            if let Some((other, _)) = trusted.iter().find(|(_, known)| **known == key) {
                return Err(invalid(format!(
                    "[signers] entries {other:?} and {name:?} hold the same key; keep one"
                )));
            }
            trusted.insert(name.clone(), key);
        }
        Ok(Self {
            origin,
            signers: trusted,
        })
    }
}

/// 32 bytes written as 64 hexadecimal digits, or what is wrong with the text (which is never
/// quoted: it may be a secret).
fn parse_hex32(text: &str) -> Result<Zeroizing<[u8; 32]>, String> {
    let text = text.trim();
    if text.len() != 64 {
        return Err(format!(
            "expected 64 hexadecimal digits (32 bytes), found {} characters",
            text.chars().count()
        ));
    }
    let mut bytes = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(text, bytes.as_mut())
        .map_err(|_| "expected 64 hexadecimal digits (0-9, a-f)".to_owned())?;
    Ok(bytes)
}

fn read_text(path: &Path) -> Result<String, TbfError> {
    Ok(std::fs::read_to_string(path).map_err(IoError::of("read", path))?)
}

/// Writes `bytes` to `path` atomically through a temporary file in the same directory that is
/// created readable by its owner only, so the secret is never readable by others, not even
/// for a moment (`tessera_fs::write_atomically` makes its output world-readable).
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(".tessera-").suffix(".partial");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o600));
    }
    let mut temporary = builder.tempfile_in(directory)?;
    temporary.write_all(bytes)?;
    temporary.as_file().sync_all()?;
    temporary.persist(path).map_err(|error| error.error)?;
    Ok(())
}
