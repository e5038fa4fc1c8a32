//! No input makes the TBF reader panic, hang or allocate without bound: every fixture mutated
//! byte by byte and truncated at every length, random mutations with and without repaired
//! checksums (so they reach the metadata decoder), and hand-built hostile headers and metadata.

use proptest::prelude::*;
use tessera_host::tbf::{
    self, CrcVariant, HmacKey, KnowledgeType, LoadOptions, QuantType, SaveOptions, TbfError, Token,
    HEADER_LEN, TRAILER_LEN,
};
mod support;

use support::tbf_fixtures;

fn fixture_bytes() -> Vec<Vec<u8>> {
    tbf_fixtures()
        .iter()
        .map(|fixture| std::fs::read(fixture.path()).unwrap())
        .collect()
}

/// Recomputes both CRCs so that a mutated file passes the integrity checks and exercises the
/// checks behind them.
fn repair_checksums(bytes: &mut [u8], variant: CrcVariant) {
    if bytes.len() < HEADER_LEN + TRAILER_LEN {
        return;
    }
    let header_crc = variant.checksum(&bytes[..20]);
    bytes[20..24].copy_from_slice(&header_crc.to_le_bytes());
    let body_end = bytes.len() - 4;
    let body_crc = variant.checksum(&bytes[..body_end - 32]);
    bytes[body_end..].copy_from_slice(&body_crc.to_le_bytes());
}

fn lenient() -> LoadOptions {
    LoadOptions::default()
}

#[test]
fn every_single_byte_change_is_detected_without_panicking() {
    for fixture in tbf_fixtures() {
        let original = std::fs::read(fixture.path()).unwrap();
        // The HMAC tag can only be checked with the key.
        let options = LoadOptions {
            hmac_key: fixture
                .hmac_key_hex
                .as_deref()
                .map(|key| HmacKey::from_hex(key).unwrap()),
            ..LoadOptions::default()
        };
        for position in 0..original.len() {
            let mut bytes = original.clone();
            bytes[position] ^= 0xff;
            assert!(
                tbf::decode(&bytes, &options).is_err(),
                "{}: flipping byte {position} went unnoticed",
                fixture.file
            );
            // With repaired checksums, the mutation reaches the deeper checks; it may then be
            // valid (e.g. a changed float in the payload) but must never panic.
            repair_checksums(&mut bytes, CrcVariant::Crc32c);
            let _ = tbf::decode(&bytes, &lenient());
        }
    }
}

#[test]
fn every_truncation_is_refused() {
    for original in fixture_bytes() {
        for len in 0..original.len() {
            assert!(
                tbf::decode(&original[..len], &lenient()).is_err(),
                "length {len}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_mutations_never_panic(
        fixture in 0usize..12,
        mutations in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16),
        repair in any::<bool>(),
        truncate in prop::option::of(any::<prop::sample::Index>()),
    ) {
        let mut bytes = fixture_bytes().swap_remove(fixture);
        for (index, value) in mutations {
            let position = index.index(bytes.len());
            bytes[position] = value;
        }
        if let Some(index) = truncate {
            bytes.truncate(index.index(bytes.len() + 1));
        }
        if repair {
            repair_checksums(&mut bytes, CrcVariant::Ieee);
        }
        let _ = tbf::decode(&bytes, &lenient());
    }

    #[test]
    fn random_tokens_round_trip(
        values in prop::collection::vec(-1.0e6f32..1.0e6, 1..300),
        quant in prop::sample::select(QuantType::ALL.to_vec()),
        crc in prop::sample::select(CrcVariant::ALL.to_vec()),
        signed in any::<bool>(),
    ) {
        let key = signed.then(|| HmacKey::new(b"proptest key".to_vec()).unwrap());
        let options = SaveOptions { quant, crc, hmac_key: key.clone(), signing_key: None };
        let token = Token::new(KnowledgeType::Behaviour, values.clone());
        let bytes = tbf::encode(&token, &options).unwrap();
        let loaded = tbf::decode(&bytes, &LoadOptions { hmac_key: key, allow_unauthenticated: true, ..LoadOptions::default() }).unwrap();
        prop_assert_eq!(loaded.quant, quant);
        prop_assert_eq!(loaded.crc, crc);
        prop_assert_eq!(&loaded.token.metadata, &token.metadata);
        if quant == QuantType::Float32 {
            prop_assert_eq!(loaded.token.vector(), &values[..]);
        }
        // Writing what was read reproduces the file: decoding is a fixed point.
        prop_assert_eq!(tbf::encode(&loaded.token, &options).unwrap(), bytes);
    }
}

/// A syntactically valid file around arbitrary header numbers and metadata bytes.
fn craft(metadata: &[u8], vector_count: u32, vector_bytes: u32, payload: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(b"TBF1");
    bytes.extend_from_slice(&[1, 1, 0, 0]);
    bytes.extend_from_slice(&(metadata.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&vector_count.to_le_bytes());
    bytes.extend_from_slice(&vector_bytes.to_le_bytes());
    bytes.extend_from_slice(&[0; 12]);
    bytes.extend_from_slice(metadata);
    bytes.resize(bytes.len() + (64 - bytes.len() % 64) % 64, 0);
    bytes.extend_from_slice(payload);
    bytes.extend_from_slice(&[0; TRAILER_LEN]);
    repair_checksums(&mut bytes, CrcVariant::Crc32c);
    bytes
}

fn set_u32(bytes: &mut [u8], offset: usize, value: u32) {
    bytes[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
    repair_checksums(bytes, CrcVariant::Crc32c);
}

fn valid_metadata() -> Vec<u8> {
    let token = Token::new(KnowledgeType::Activation, vec![1.0]);
    let file = tbf::encode(&token, &SaveOptions::default()).unwrap();
    let len = u32::from_le_bytes(file[8..12].try_into().unwrap()) as usize;
    file[HEADER_LEN..HEADER_LEN + len].to_vec()
}

#[test]
fn the_crafting_helper_builds_valid_files() {
    let file = craft(&valid_metadata(), 1, 4, &1.5f32.to_le_bytes());
    assert_eq!(
        tbf::decode(&file, &lenient()).unwrap().token.vector(),
        &[1.5]
    );
}

#[test]
fn huge_and_overflowing_lengths_are_refused() {
    let base = craft(&valid_metadata(), 1, 4, &1.5f32.to_le_bytes());
    for (offset, value) in [
        (8, u32::MAX),
        (12, u32::MAX),
        (16, u32::MAX),
        (8, 1 << 20),
        (16, 0),
    ] {
        let mut bytes = base.clone();
        set_u32(&mut bytes, offset, value);
        let error = tbf::decode(&bytes, &lenient()).unwrap_err();
        assert!(
            matches!(
                error,
                TbfError::LengthMismatch { .. } | TbfError::MetadataTooLarge { .. }
            ),
            "offset {offset}: {error}"
        );
    }
    // Count × bytes-per-element overflowing 32 bits must not wrap around into a match.
    let mut bytes = base.clone();
    bytes[7] = QuantType::Float32.code();
    set_u32(&mut bytes, 12, 0x4000_0001);
    set_u32(&mut bytes, 16, 4);
    assert!(tbf::decode(&bytes, &lenient()).is_err());
}

#[test]
fn file_size_limit_is_enforced() {
    let file = craft(&valid_metadata(), 1, 4, &1.5f32.to_le_bytes());
    let strict = LoadOptions {
        max_file_bytes: 100,
        ..LoadOptions::default()
    };
    assert!(matches!(
        tbf::decode(&file, &strict),
        Err(TbfError::TooLarge { .. })
    ));
}

#[test]
fn hostile_metadata_is_refused_cleanly() {
    let mut deeply_nested = vec![0x81, 0xa1, b't'];
    deeply_nested.extend(std::iter::repeat_n(0x91, 100_000));
    deeply_nested.push(0xc0);

    let mut claims_four_billion_entries = vec![0xdd];
    claims_four_billion_entries.extend_from_slice(&u32::MAX.to_be_bytes());

    let mut claims_huge_binary = vec![0x81, 0xa1, b'x', 0xc6];
    claims_huge_binary.extend_from_slice(&u32::MAX.to_be_bytes());

    let mut bad_utf8 = valid_metadata();
    let position = bad_utf8
        .windows(10)
        .position(|window| window == b"ACTIVATION")
        .unwrap();
    bad_utf8[position] = 0xff;

    let cases: [(&str, Vec<u8>); 6] = [
        ("deep nesting", deeply_nested),
        ("array32 of 4 billion", claims_four_billion_entries),
        ("bin32 of 4 GiB", claims_huge_binary),
        ("invalid UTF-8", bad_utf8),
        ("not a map", vec![0x93, 1, 2, 3]),
        ("empty", Vec::new()),
    ];
    for (name, metadata) in cases {
        let file = craft(&metadata, 0, 0, &[]);
        match tbf::decode(&file, &lenient()) {
            Err(TbfError::Metadata(message)) => assert!(!message.is_empty(), "{name}"),
            other => panic!("{name}: expected a metadata error, got {other:?}"),
        }
    }
}

#[test]
fn reserved_bits_padding_and_flags_are_checked() {
    let base = craft(&valid_metadata(), 1, 4, &1.5f32.to_le_bytes());
    let mutate = |offset: usize, value: u8| {
        let mut bytes = base.clone();
        bytes[offset] = value;
        repair_checksums(&mut bytes, CrcVariant::Crc32c);
        tbf::decode(&bytes, &lenient()).unwrap_err()
    };
    assert!(matches!(mutate(6, 0x02), TbfError::UnsupportedFlags { .. }));
    assert!(matches!(mutate(6, 0x80), TbfError::UnsupportedFlags { .. }));
    assert!(matches!(mutate(30, 1), TbfError::NonZeroReserved { .. }));
    assert!(matches!(mutate(4, 2), TbfError::UnsupportedVersion { .. }));
    assert!(matches!(mutate(7, 9), TbfError::UnknownQuant(9)));
    let padding_offset = base.len() - TRAILER_LEN - 4 - 1;
    assert!(matches!(
        mutate(padding_offset, 1),
        TbfError::NonZeroReserved { .. }
    ));
    // Stray bytes in the HMAC field of an unsigned file.
    assert!(matches!(
        mutate(base.len() - 10, 1),
        TbfError::NonZeroReserved { .. }
    ));
}
