//! Ed25519 token signatures: round trips through every quantisation, re-saving, tampering,
//! forged keys, trust files and key files.

use std::path::{Path, PathBuf};

use tessera_tbf::{
    self as tbf, CrcVariant, HmacKey, KnowledgeType, LoadOptions, MappedToken, MetaValue,
    QuantType, SaveOptions, SignatureStatus, SigningKey, TbfError, Token, TrustStore, VerifyingKey,
    HEADER_LEN, SIGNATURE_KEY, TRAILER_LEN,
};

const ALICE: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const BOB: &str = "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb";

fn alice() -> SigningKey {
    SigningKey::from_hex(ALICE).unwrap()
}

fn bob() -> SigningKey {
    SigningKey::from_hex(BOB).unwrap()
}

fn sample_token() -> Token {
    let values = (0..97)
        .map(|i| ((i as f32) * 0.37).sin() * 3.0 - 0.5)
        .collect();
    let mut token = Token::new(KnowledgeType::Activation, values);
    token.metadata.source_model_id = "model_a".into();
    token.metadata.target_model_id = Some("model_b".into());
    token.metadata.modality_weights.insert("A".into(), 0.9);
    token
        .metadata
        .custom
        .insert("hub_dim".into(), MetaValue::from(97));
    token
        .metadata
        .custom
        .insert("note".into(), MetaValue::from("kept in order"));
    token
}

fn signed_options(quant: QuantType, key: &SigningKey) -> SaveOptions {
    SaveOptions {
        quant,
        signing_key: Some(key.clone()),
        ..SaveOptions::default()
    }
}

fn signer_of(status: SignatureStatus) -> VerifyingKey {
    match status {
        SignatureStatus::Valid { signer } => signer,
        SignatureStatus::Unsigned => panic!("the token is not signed"),
    }
}

fn signature_error(result: Result<tbf::Loaded, TbfError>) -> String {
    match result {
        Err(error @ TbfError::Signature(_)) => error.to_string(),
        Err(other) => panic!("expected a signature error, got {other}"),
        Ok(_) => panic!("expected a signature error, but the token loaded"),
    }
}

/// The metadata and payload regions of an encoded token.
fn regions(bytes: &[u8]) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
    let metadata_len = u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
    let vector_bytes = u32::from_le_bytes(bytes[16..20].try_into().unwrap()) as usize;
    let payload_end = bytes.len() - TRAILER_LEN;
    (
        HEADER_LEN..HEADER_LEN + metadata_len,
        payload_end - vector_bytes..payload_end,
    )
}

/// Recomputes the body CRC (the header is unchanged), so that only the signature can tell.
fn repair_body_crc(bytes: &mut [u8], crc: CrcVariant) {
    let trailer = bytes.len() - TRAILER_LEN;
    let sum = crc.checksum(&bytes[..trailer]);
    let end = bytes.len();
    bytes[end - 4..].copy_from_slice(&sum.to_le_bytes());
}

#[test]
fn sign_save_load_verify_in_every_quantisation() {
    let directory = tempfile::tempdir().unwrap();
    for quant in QuantType::ALL {
        let path = directory.path().join(format!("{quant}.tbf"));
        tbf::save(&path, &sample_token(), &signed_options(quant, &alice())).unwrap();
        let loaded = tbf::load(&path, &LoadOptions::default()).unwrap();
        assert_eq!(loaded.quant, quant);
        assert_eq!(signer_of(loaded.signature), alice().verifying_key());
        assert_eq!(
            tbf::verify(&loaded.token, loaded.quant).unwrap(),
            loaded.signature,
            "{quant}: in-memory verification agrees with the reader"
        );
        let mapped = MappedToken::open(&path, &LoadOptions::default()).unwrap();
        assert_eq!(mapped.signature(), loaded.signature, "{quant}: mapped view");
        // The other custom keys keep their order, the signature comes last.
        let keys: Vec<_> = loaded.token.metadata.custom.keys().cloned().collect();
        assert_eq!(keys, ["hub_dim", "note", SIGNATURE_KEY], "{quant}");
    }
}

#[test]
fn sign_in_memory_then_save_without_a_key() {
    for quant in QuantType::ALL {
        let mut token = sample_token();
        assert_eq!(
            tbf::verify(&token, quant).unwrap(),
            SignatureStatus::Unsigned
        );
        tbf::sign(&mut token, quant, &bob()).unwrap();
        assert_eq!(
            signer_of(tbf::verify(&token, quant).unwrap()),
            bob().verifying_key()
        );
        let bytes = tbf::encode(
            &token,
            &SaveOptions {
                quant,
                ..SaveOptions::default()
            },
        )
        .unwrap();
        let loaded = tbf::decode(&bytes, &LoadOptions::default()).unwrap();
        assert_eq!(
            signer_of(loaded.signature),
            bob().verifying_key(),
            "{quant}"
        );
        // The same bytes as when the writer signs.
        assert_eq!(
            bytes,
            tbf::encode(&sample_token_like(&token), &signed_options(quant, &bob())).unwrap(),
            "{quant}"
        );
    }
}

/// `token` without its signature.
fn sample_token_like(token: &Token) -> Token {
    let mut copy = token.clone();
    copy.metadata.custom.shift_remove(SIGNATURE_KEY);
    copy
}

#[test]
fn a_re_saved_token_keeps_a_valid_signature() {
    let hmac = HmacKey::from_hex("7368617265642d736563726574").unwrap();
    for quant in QuantType::ALL {
        let original = tbf::encode(&sample_token(), &signed_options(quant, &alice())).unwrap();
        let loaded = tbf::decode(&original, &LoadOptions::default()).unwrap();
        for crc in CrcVariant::ALL {
            for hmac_key in [None, Some(hmac.clone())] {
                let again = tbf::encode(
                    &loaded.token,
                    &SaveOptions {
                        quant,
                        crc,
                        hmac_key: hmac_key.clone(),
                        signing_key: None,
                    },
                )
                .unwrap();
                let options = LoadOptions {
                    hmac_key: hmac_key.clone(),
                    ..LoadOptions::default()
                };
                let reloaded = tbf::decode(&again, &options).unwrap();
                let what = format!("{quant}, {crc}, HMAC {}", hmac_key.is_some());
                assert_eq!(
                    signer_of(reloaded.signature),
                    alice().verifying_key(),
                    "{what}"
                );
                assert_eq!(reloaded.token.vector(), loaded.token.vector(), "{what}");
                // Metadata and payload are reproduced byte for byte.
                let (metadata, payload) = regions(&original);
                assert_eq!(again[metadata.clone()], original[metadata], "{what}");
                assert_eq!(again[payload.clone()], original[payload], "{what}");
                // And once more, from the re-saved file.
                let third = tbf::encode(
                    &reloaded.token,
                    &SaveOptions {
                        quant,
                        ..SaveOptions::default()
                    },
                )
                .unwrap();
                let third = tbf::decode(&third, &LoadOptions::default()).unwrap();
                assert_eq!(
                    signer_of(third.signature),
                    alice().verifying_key(),
                    "{what}"
                );
            }
        }
    }
}

#[test]
fn another_quantisation_needs_a_new_signature() {
    let original = tbf::encode(
        &sample_token(),
        &signed_options(QuantType::Float32, &alice()),
    )
    .unwrap();
    let loaded = tbf::decode(&original, &LoadOptions::default()).unwrap();
    for quant in [QuantType::Float16, QuantType::Bfloat16, QuantType::Int8] {
        assert!(matches!(
            tbf::verify(&loaded.token, quant),
            Err(TbfError::Signature(_))
        ));
        let stale = tbf::encode(
            &loaded.token,
            &SaveOptions {
                quant,
                ..SaveOptions::default()
            },
        )
        .unwrap();
        let message = signature_error(tbf::decode(&stale, &LoadOptions::default()));
        assert!(message.contains("does not verify"), "{message}");
        let resigned = tbf::encode(&loaded.token, &signed_options(quant, &bob())).unwrap();
        let resigned = tbf::decode(&resigned, &LoadOptions::default()).unwrap();
        assert_eq!(signer_of(resigned.signature), bob().verifying_key());
        assert_eq!(
            resigned.token.metadata.custom.len(),
            3,
            "one signature entry"
        );
    }
}

#[test]
fn changing_a_signed_token_invalidates_it() {
    let bytes = tbf::encode(&sample_token(), &signed_options(QuantType::Int8, &alice())).unwrap();
    let loaded = tbf::decode(&bytes, &LoadOptions::default()).unwrap();
    let mut changed = loaded.token.clone();
    changed.metadata.generation += 1;
    assert!(tbf::verify(&changed, QuantType::Int8).is_err());
    let mut changed = loaded.token.clone();
    let mut vector = changed.vector().to_vec();
    vector[3] += 0.5;
    changed.set_vector(vector);
    assert!(tbf::verify(&changed, QuantType::Int8).is_err());
}

#[test]
fn every_single_byte_change_of_metadata_or_payload_is_caught() {
    let trust = TrustStore::from_toml_str(&format!(
        "[signers]\nalice = \"{}\"\n",
        alice().verifying_key()
    ))
    .unwrap();
    for quant in QuantType::ALL {
        for crc in CrcVariant::ALL {
            let options = SaveOptions {
                crc,
                ..signed_options(quant, &alice())
            };
            let bytes = tbf::encode(&sample_token(), &options).unwrap();
            let (metadata, payload) = regions(&bytes);
            for offset in metadata.clone().chain(payload.clone()) {
                for mask in [0x01u8, 0x80, 0xff] {
                    let mut tampered = bytes.clone();
                    tampered[offset] ^= mask;
                    let what = format!("{quant}, {crc}, byte {offset} ^ {mask:#04x}");
                    assert!(
                        tbf::decode(&tampered, &LoadOptions::default()).is_err(),
                        "{what}: the CRC catches it"
                    );
                    repair_body_crc(&mut tampered, crc);
                    let result = tbf::decode(&tampered, &LoadOptions::default());
                    if payload.contains(&offset) {
                        let message = signature_error(result);
                        assert!(message.contains("does not verify"), "{what}: {message}");
                        continue;
                    }
                    match result {
                        Err(_) => {}
                        // Renaming the signature entry leaves an unsigned token, which a
                        // trust file refuses.
                        Ok(loaded) => {
                            assert_eq!(loaded.signature, SignatureStatus::Unsigned, "{what}");
                            assert!(trust.require(&loaded.signature).is_err(), "{what}");
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn a_re_encoded_but_equal_metadata_block_is_refused() {
    // `d` = 0.0 is stored as float64 (0xcb + 8 zero bytes); as uint64 0 (0xcf) it decodes to the
    // same metadata, so the signed message is unchanged: only the encoding check can tell.
    let bytes = tbf::encode(
        &sample_token(),
        &signed_options(QuantType::Float32, &alice()),
    )
    .unwrap();
    let (metadata, _) = regions(&bytes);
    let pattern = [0xa1, b'd', 0xcb, 0, 0, 0, 0, 0, 0, 0, 0];
    let at = bytes[metadata]
        .windows(pattern.len())
        .position(|window| window == pattern)
        .expect("the drift score is stored as float64 zero")
        + HEADER_LEN;
    let mut tampered = bytes.clone();
    tampered[at + 2] = 0xcf;
    repair_body_crc(&mut tampered, CrcVariant::Crc32c);
    let message = signature_error(tbf::decode(&tampered, &LoadOptions::default()));
    assert!(message.contains("not encoded the way"), "{message}");
    // The same change in an unsigned token is accepted, as the reference reader accepts it.
    let mut unsigned = tbf::encode(&sample_token(), &SaveOptions::default()).unwrap();
    let (metadata, _) = regions(&unsigned);
    let at = unsigned[metadata]
        .windows(pattern.len())
        .position(|window| window == pattern)
        .unwrap()
        + HEADER_LEN;
    unsigned[at + 2] = 0xcf;
    repair_body_crc(&mut unsigned, CrcVariant::Crc32c);
    assert!(tbf::decode(&unsigned, &LoadOptions::default()).is_ok());
}

#[test]
fn a_replaced_key_field_is_refused() {
    let mut token = sample_token();
    tbf::sign(&mut token, QuantType::Float16, &alice()).unwrap();
    let Some(MetaValue::Map(fields)) = token.metadata.custom.get_mut(SIGNATURE_KEY) else {
        panic!("no signature entry");
    };
    for (name, value) in fields.iter_mut() {
        if name.as_str() == Some("key") {
            *value = MetaValue::Binary(bob().verifying_key().to_bytes().to_vec());
        }
    }
    let message = tbf::verify(&token, QuantType::Float16)
        .unwrap_err()
        .to_string();
    assert!(message.contains("does not verify"), "{message}");
    assert!(
        message.contains(&bob().verifying_key().to_hex()),
        "{message}"
    );
    let bytes = tbf::encode(
        &token,
        &SaveOptions {
            quant: QuantType::Float16,
            ..SaveOptions::default()
        },
    )
    .unwrap();
    signature_error(tbf::decode(&bytes, &LoadOptions::default()));
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("forged.tbf");
    std::fs::write(&path, &bytes).unwrap();
    assert!(matches!(
        MappedToken::open(&path, &LoadOptions::default()),
        Err(TbfError::Signature(_))
    ));
}

#[test]
fn malformed_signature_entries_are_refused() {
    let mut signed = sample_token();
    tbf::sign(&mut signed, QuantType::Float32, &alice()).unwrap();
    let MetaValue::Map(good) = signed.metadata.custom[SIGNATURE_KEY].clone() else {
        panic!("no signature entry");
    };
    let with = |name: &str, value: MetaValue| {
        let mut fields = good.clone();
        for (field, slot) in fields.iter_mut() {
            if field.as_str() == Some(name) {
                *slot = value.clone();
            }
        }
        MetaValue::Map(fields)
    };
    let key = alice().verifying_key().to_bytes();
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let cases = [
        ("not a map", MetaValue::from("ed25519")),
        ("other algorithm", with("alg", MetaValue::from("rsa"))),
        (
            "short key",
            with("key", MetaValue::Binary(key[..31].to_vec())),
        ),
        (
            "weak key",
            with("key", MetaValue::Binary(identity.to_vec())),
        ),
        (
            "key as a string",
            with("key", MetaValue::from(hex::encode(key).as_str())),
        ),
        (
            "short signature",
            with("sig", MetaValue::Binary(vec![0; 63])),
        ),
        ("missing field", MetaValue::Map(good[..2].to_vec())),
        ("extra field", {
            let mut fields = good.clone();
            fields.push((MetaValue::from("note"), MetaValue::from(1)));
            MetaValue::Map(fields)
        }),
    ];
    for (what, entry) in cases {
        let mut token = signed.clone();
        token.metadata.custom.insert(SIGNATURE_KEY.into(), entry);
        let bytes = tbf::encode(&token, &SaveOptions::default()).unwrap();
        let message = signature_error(tbf::decode(&bytes, &LoadOptions::default()));
        assert!(message.contains("malformed"), "{what}: {message}");
    }
}

#[test]
fn the_writer_replaces_an_existing_signature() {
    let mut token = sample_token();
    tbf::sign(&mut token, QuantType::Float32, &alice()).unwrap();
    let bytes = tbf::encode(&token, &signed_options(QuantType::Bfloat16, &bob())).unwrap();
    let loaded = tbf::decode(&bytes, &LoadOptions::default()).unwrap();
    assert_eq!(signer_of(loaded.signature), bob().verifying_key());
    assert_eq!(loaded.token.metadata.custom.len(), 3);
}

#[test]
fn unsigned_tokens_are_unchanged() {
    let token = sample_token();
    let bytes = tbf::encode(&token, &SaveOptions::default()).unwrap();
    let loaded = tbf::decode(&bytes, &LoadOptions::default()).unwrap();
    assert_eq!(loaded.signature, SignatureStatus::Unsigned);
    assert!(!loaded.token.metadata.custom.contains_key(SIGNATURE_KEY));
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tbf")
}

struct Fixture {
    path: PathBuf,
    crc: CrcVariant,
    hmac_key: Option<HmacKey>,
}

fn fixtures() -> Vec<Fixture> {
    let manifest = std::fs::read_to_string(fixtures_dir().join("manifest.json")).unwrap();
    let manifest: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    let entries = manifest.as_array().unwrap();
    assert_eq!(entries.len(), 12);
    entries
        .iter()
        .map(|entry| Fixture {
            path: fixtures_dir().join(entry["file"].as_str().unwrap()),
            crc: match entry["crc"].as_str().unwrap() {
                "crc32c" => CrcVariant::Crc32c,
                "crc32-ieee" => CrcVariant::Ieee,
                other => panic!("unknown CRC {other}"),
            },
            hmac_key: entry["hmac_key_hex"]
                .as_str()
                .map(|key| HmacKey::from_hex(key).unwrap()),
        })
        .collect()
}

#[test]
fn reference_fixtures_are_unsigned_and_rewritten_byte_for_byte() {
    for fixture in fixtures() {
        let bytes = std::fs::read(&fixture.path).unwrap();
        let options = LoadOptions {
            hmac_key: fixture.hmac_key.clone(),
            ..LoadOptions::default()
        };
        let loaded = tbf::decode(&bytes, &options).unwrap();
        assert_eq!(loaded.crc, fixture.crc);
        assert_eq!(loaded.signature, SignatureStatus::Unsigned);
        let again = tbf::encode(
            &loaded.token,
            &SaveOptions {
                quant: loaded.quant,
                crc: loaded.crc,
                hmac_key: fixture.hmac_key.clone(),
                signing_key: None,
            },
        )
        .unwrap();
        assert!(again == bytes, "{}", fixture.path.display());
    }
}

#[test]
fn reference_fixtures_can_be_signed_and_re_saved() {
    for fixture in fixtures() {
        let options = LoadOptions {
            hmac_key: fixture.hmac_key.clone(),
            ..LoadOptions::default()
        };
        let loaded = tbf::load(&fixture.path, &options).unwrap();
        let save = SaveOptions {
            quant: loaded.quant,
            crc: loaded.crc,
            hmac_key: fixture.hmac_key.clone(),
            signing_key: Some(alice()),
        };
        let signed = tbf::decode(&tbf::encode(&loaded.token, &save).unwrap(), &options).unwrap();
        assert_eq!(signer_of(signed.signature), alice().verifying_key());
        assert_eq!(signed.token.vector(), loaded.token.vector());
        let resave = SaveOptions {
            signing_key: None,
            ..save
        };
        let again = tbf::decode(&tbf::encode(&signed.token, &resave).unwrap(), &options).unwrap();
        assert_eq!(
            signer_of(again.signature),
            alice().verifying_key(),
            "{}",
            fixture.path.display()
        );
    }
}

#[test]
fn a_trust_store_names_trusted_signers_and_refuses_the_rest() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("trust.toml");
    std::fs::write(
        &path,
        format!(
            "# who may send tokens\n[signers]\nalice = \"{}\"\n",
            alice().verifying_key()
        ),
    )
    .unwrap();
    let trust = TrustStore::load(&path).unwrap();
    assert_eq!(trust.name_of(&alice().verifying_key()), Some("alice"));
    assert_eq!(trust.name_of(&bob().verifying_key()), None);
    assert_eq!(trust.signers().count(), 1);

    let by_alice = SignatureStatus::Valid {
        signer: alice().verifying_key(),
    };
    assert_eq!(trust.require(&by_alice).unwrap(), "alice");

    let by_bob = SignatureStatus::Valid {
        signer: bob().verifying_key(),
    };
    let message = trust.require(&by_bob).unwrap_err().to_string();
    assert!(message.contains("not in"), "{message}");
    assert!(
        message.contains(&bob().verifying_key().to_hex()),
        "{message}"
    );
    assert!(message.contains(&path.display().to_string()), "{message}");

    let message = trust
        .require(&SignatureStatus::Unsigned)
        .unwrap_err()
        .to_string();
    assert!(message.contains("not signed"), "{message}");
    assert!(message.contains("--sign-key"), "{message}");

    // End to end: a token signed by bob, read with alice's trust file.
    let token = tbf::encode(&sample_token(), &signed_options(QuantType::Int8, &bob())).unwrap();
    let loaded = tbf::decode(&token, &LoadOptions::default()).unwrap();
    assert!(matches!(
        trust.require(&loaded.signature),
        Err(TbfError::Signature(_))
    ));
}

#[test]
fn bad_trust_files_name_the_file_and_the_entry() {
    let good = alice().verifying_key().to_hex();
    let cases = [
        ("[signers\nalice = 1", "not valid TOML (line 1)"),
        ("[signers]\nalice = 3", "\"alice\""),
        ("[signers]\ncarol = \"abcd\"", "\"carol\""),
        (
            "[signers]\ndave = \"zz00000000000000000000000000000000000000000000000000000000000000\"",
            "\"dave\"",
        ),
        ("[signer]\nalice = \"x\"", "\"signer\""),
        ("", "no [signers]"),
        ("[signers]\n", "lists no key"),
        ("signers = 3", "must be a table"),
    ];
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("trust.toml");
    for (text, expected) in cases {
        std::fs::write(&path, text).unwrap();
        let message = TrustStore::load(&path).unwrap_err().to_string();
        assert!(message.contains(expected), "{text:?}: {message}");
        assert!(
            message.contains(&path.display().to_string()),
            "{text:?}: {message}"
        );
        assert!(TrustStore::from_toml_str(text).is_err());
    }
    let duplicate = format!("[signers]\na = \"{good}\"\nb = \"{good}\"\n");
    let message = TrustStore::from_toml_str(&duplicate)
        .unwrap_err()
        .to_string();
    assert!(message.contains("same key"), "{message}");
    let missing = TrustStore::load(&directory.path().join("absent.toml")).unwrap_err();
    assert!(matches!(missing, TbfError::Io(_)), "{missing}");
}

#[test]
fn key_files_round_trip() {
    let directory = tempfile::tempdir().unwrap();
    let key = SigningKey::generate().unwrap();
    assert_ne!(
        key.to_hex(),
        SigningKey::generate().unwrap().to_hex(),
        "fresh randomness"
    );
    let secret = directory.path().join("me.key");
    let public = directory.path().join("me.pub");
    key.save(&secret).unwrap();
    key.verifying_key().save(&public).unwrap();
    assert_eq!(
        std::fs::read_to_string(&secret).unwrap(),
        format!("{}\n", key.to_hex())
    );
    assert_eq!(
        std::fs::read_to_string(&public).unwrap(),
        format!("{}\n", key.verifying_key())
    );
    let reloaded = SigningKey::load(&secret).unwrap();
    assert_eq!(reloaded.to_hex(), key.to_hex());
    assert_eq!(reloaded.verifying_key(), key.verifying_key());
    assert_eq!(VerifyingKey::load(&public).unwrap(), key.verifying_key());
    assert_eq!(
        VerifyingKey::from_hex(&key.verifying_key().to_hex()).unwrap(),
        key.verifying_key()
    );
    // Saving again replaces the file and leaves no temporary behind.
    key.save(&secret).unwrap();
    assert_eq!(std::fs::read_dir(directory.path()).unwrap().count(), 2);

    // A token signed with the generated key verifies under the saved public key.
    let bytes = tbf::encode(&sample_token(), &signed_options(QuantType::Float32, &key)).unwrap();
    let loaded = tbf::decode(&bytes, &LoadOptions::default()).unwrap();
    assert_eq!(
        signer_of(loaded.signature),
        VerifyingKey::load(&public).unwrap()
    );
}

#[cfg(unix)]
#[test]
fn secret_key_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let directory = tempfile::tempdir().unwrap();
    let secret = directory.path().join("me.key");
    alice().save(&secret).unwrap();
    let mode = std::fs::metadata(&secret).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    // Also when the file existed with wider permissions.
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    bob().save(&secret).unwrap();
    let mode = std::fs::metadata(&secret).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
}

#[test]
fn bad_key_text_and_files_are_refused() {
    assert!(SigningKey::from_hex("abcd").is_err());
    assert!(SigningKey::from_hex(&"g".repeat(64)).is_err());
    assert!(SigningKey::from_hex(&format!("  {ALICE}\n")).is_ok());
    assert!(
        VerifyingKey::from_hex(&format!("01{}", "00".repeat(31))).is_err(),
        "weak key"
    );
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("bad.key");
    std::fs::write(&path, "not a key\n").unwrap();
    let message = SigningKey::load(&path).unwrap_err().to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    let message = VerifyingKey::load(&path).unwrap_err().to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    let missing = directory.path().join("absent.key");
    let message = SigningKey::load(&missing).unwrap_err().to_string();
    assert!(message.contains("absent.key"), "{message}");
}

#[test]
fn debug_output_never_shows_the_secret() {
    let key = alice();
    let debug = format!("{key:?}");
    assert!(!debug.contains(ALICE), "{debug}");
    assert!(debug.contains(&key.verifying_key().to_hex()), "{debug}");
    let options = format!("{:?}", signed_options(QuantType::Float32, &key));
    assert!(!options.contains(ALICE), "{options}");
    assert_eq!(
        key.verifying_key().to_string(),
        key.verifying_key().to_hex()
    );
}

#[test]
fn signature_status_serialises_with_the_signer_in_hex() {
    let status = SignatureStatus::Valid {
        signer: alice().verifying_key(),
    };
    assert_eq!(
        serde_json::to_value(status).unwrap(),
        serde_json::json!({"status": "valid", "signer": alice().verifying_key().to_hex()})
    );
    assert_eq!(
        serde_json::to_value(SignatureStatus::Unsigned).unwrap(),
        serde_json::json!({"status": "unsigned"})
    );
}
