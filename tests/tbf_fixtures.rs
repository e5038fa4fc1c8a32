//! Every token `tessera-core` 0.1.0 wrote loads with exactly the values it reports, and writing
//! it again reproduces its bytes.

use tessera_host::tbf::{
    self, CrcVariant, HmacKey, HmacStatus, LoadOptions, MappedToken, QuantType, SaveOptions,
    TbfError, Token,
};
mod support;

use support::{tbf_fixtures, TbfFixture};

fn crc_of(fixture: &TbfFixture) -> CrcVariant {
    match fixture.crc.as_str() {
        "crc32c" => CrcVariant::Crc32c,
        "crc32-ieee" => CrcVariant::Ieee,
        other => panic!("unexpected CRC name {other} in manifest"),
    }
}

fn key_of(fixture: &TbfFixture) -> Option<HmacKey> {
    fixture
        .hmac_key_hex
        .as_deref()
        .map(|key| HmacKey::from_hex(key).unwrap())
}

fn options_for(fixture: &TbfFixture) -> LoadOptions {
    LoadOptions {
        hmac_key: key_of(fixture),
        ..LoadOptions::default()
    }
}

fn assert_bit_exact(actual: &[f32], expected: &[f64], what: &str) {
    assert_eq!(actual.len(), expected.len(), "{what}: length");
    for (index, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        assert_eq!(f64::from(a), e, "{what}: element {index}");
        assert_eq!(
            a.to_bits(),
            (e as f32).to_bits(),
            "{what}: bits of element {index}"
        );
    }
}

#[test]
fn manifest_lists_every_fixture() {
    let fixtures = tbf_fixtures();
    assert_eq!(fixtures.len(), 12);
    let quants: std::collections::BTreeSet<_> = fixtures.iter().map(|f| f.quant.clone()).collect();
    assert_eq!(quants.len(), 4, "all four quantisations are covered");
}

#[test]
fn every_fixture_decodes_to_the_manifest_values() {
    for fixture in tbf_fixtures() {
        let loaded = tbf::load(&fixture.path(), &options_for(&fixture))
            .unwrap_or_else(|error| panic!("{}: {error}", fixture.file));
        assert_eq!(loaded.quant.name(), fixture.quant, "{}", fixture.file);
        assert_eq!(loaded.crc, crc_of(&fixture), "{}", fixture.file);
        assert_eq!(loaded.version, (1, 1));
        let expected_hmac = if fixture.hmac_key_hex.is_some() {
            HmacStatus::Verified
        } else {
            HmacStatus::Absent
        };
        assert_eq!(loaded.hmac, expected_hmac, "{}", fixture.file);
        assert_eq!(
            loaded.token.metadata.to_json(),
            fixture.token,
            "{}",
            fixture.file
        );
        assert_bit_exact(
            loaded.token.vector(),
            &fixture.decoded_vector,
            &fixture.file,
        );
    }
}

#[test]
fn re_encoding_a_loaded_fixture_reproduces_its_bytes() {
    for fixture in tbf_fixtures() {
        let original = std::fs::read(fixture.path()).unwrap();
        assert_eq!(original.len() as u64, fixture.bytes);
        let loaded = tbf::decode(&original, &options_for(&fixture)).unwrap();
        let options = SaveOptions {
            quant: loaded.quant,
            crc: loaded.crc,
            hmac_key: key_of(&fixture),
            signing_key: None,
        };
        let again = tbf::encode(&loaded.token, &options).unwrap();
        assert!(
            again == original,
            "{}: re-encoded bytes differ",
            fixture.file
        );
    }
}

#[test]
fn writing_the_original_vector_reproduces_the_reference_writer() {
    for fixture in tbf_fixtures() {
        let original = std::fs::read(fixture.path()).unwrap();
        let loaded = tbf::decode(&original, &options_for(&fixture)).unwrap();
        let written: Vec<f32> = fixture.written_vector.iter().map(|&v| v as f32).collect();
        let fresh = Token::with_metadata(loaded.token.metadata.clone(), written);
        let options = SaveOptions {
            quant: loaded.quant,
            crc: loaded.crc,
            hmac_key: key_of(&fixture),
            signing_key: None,
        };
        let bytes = tbf::encode(&fresh, &options).unwrap();
        assert!(
            bytes == original,
            "{}: writer output differs from the reference's",
            fixture.file
        );
    }
}

#[test]
fn mapped_view_agrees_with_the_copying_reader() {
    for fixture in tbf_fixtures() {
        let mapped = MappedToken::open(&fixture.path(), &options_for(&fixture)).unwrap();
        assert_eq!(mapped.quant().name(), fixture.quant);
        assert_eq!(mapped.crc(), crc_of(&fixture));
        assert_eq!(mapped.metadata().to_json(), fixture.token);
        assert_bit_exact(&mapped.decode(), &fixture.decoded_vector, &fixture.file);
        assert_eq!(
            mapped.shape().unwrap(),
            vec![fixture.decoded_vector.len() as u64]
        );
        match mapped.quant() {
            QuantType::Float32 => {
                let view = mapped
                    .as_f32()
                    .expect("FLOAT32 payloads map without copying");
                assert_eq!(view.as_ptr() as usize % 64, 0, "payload is 64-byte aligned");
                assert_bit_exact(view, &fixture.decoded_vector, &fixture.file);
            }
            _ => assert!(mapped.as_f32().is_none()),
        }
    }
}

#[test]
fn info_reports_the_reference_fields() {
    for fixture in tbf_fixtures() {
        let info = tbf::info(&fixture.path()).unwrap();
        assert_eq!(info.format, "TBF");
        assert_eq!(info.version, "1.1");
        assert_eq!(info.quantisation.name(), fixture.quant);
        assert_eq!(info.has_hmac, fixture.hmac_key_hex.is_some());
        assert!(!info.is_compressed);
        assert_eq!(info.vector_count as usize, fixture.decoded_vector.len());
        assert_eq!(
            info.vector_bytes as usize,
            fixture.decoded_vector.len() * info.bytes_per_element
        );
        assert_eq!(info.total_file_bytes, fixture.bytes);
        assert!(info.header_crc_ok);
        assert_eq!(info.header_crc_variant, Some(crc_of(&fixture)));
    }
}

#[test]
fn hmac_is_verified_and_downgrades_are_refused() {
    let fixtures = tbf_fixtures();
    let signed = fixtures.iter().find(|f| f.hmac_key_hex.is_some()).unwrap();
    let unsigned = fixtures.iter().find(|f| f.hmac_key_hex.is_none()).unwrap();

    let no_key = tbf::load(&signed.path(), &LoadOptions::default()).unwrap();
    assert_eq!(no_key.hmac, HmacStatus::Unverified);

    let wrong_key = LoadOptions {
        hmac_key: Some(HmacKey::new(b"not the key".to_vec()).unwrap()),
        ..LoadOptions::default()
    };
    assert!(matches!(
        tbf::load(&signed.path(), &wrong_key),
        Err(TbfError::HmacMismatch)
    ));
    assert!(matches!(
        tbf::load(&unsigned.path(), &options_for(signed)),
        Err(TbfError::MissingHmac)
    ));
    let allowed = LoadOptions {
        allow_unauthenticated: true,
        ..options_for(signed)
    };
    assert_eq!(
        tbf::load(&unsigned.path(), &allowed).unwrap().hmac,
        HmacStatus::Absent
    );

    // Stripping the HMAC and recomputing both CRCs still does not get past a reader with a key.
    let loaded = tbf::load(&signed.path(), &options_for(signed)).unwrap();
    let stripped = tbf::encode(
        &loaded.token,
        &SaveOptions {
            quant: loaded.quant,
            crc: loaded.crc,
            hmac_key: None,
            signing_key: None,
        },
    )
    .unwrap();
    assert!(matches!(
        tbf::decode(&stripped, &options_for(signed)),
        Err(TbfError::MissingHmac)
    ));
}
