//! The `tessera` token commands, run as a user runs them.

use assert_cmd::Command;
use tessera_host::tbf::{self, KnowledgeType, LoadOptions, QuantType, SaveOptions, Token};
mod support;

use support::tbf_fixtures;

fn tessera() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tessera"))
}

fn json_of(output: &[u8]) -> serde_json::Value {
    serde_json::from_slice(output).expect("--json output is JSON")
}

/// Runs a command expected to fail and returns its standard error, checking it is one clear
/// message rather than a panic.
fn failure(command: &mut Command) -> String {
    let output = command.output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    stderr
}

#[test]
fn inspect_reports_the_reference_info_fields() {
    for fixture in tbf_fixtures() {
        let output = tessera()
            .args(["inspect", "--json"])
            .arg(fixture.path())
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", fixture.file);
        let report = json_of(&output.stdout);
        assert_eq!(report["format"], "TBF");
        assert_eq!(report["version"], "1.1");
        assert_eq!(report["quantisation"], fixture.quant.as_str());
        assert_eq!(report["has_hmac"], fixture.hmac_key_hex.is_some());
        assert_eq!(report["is_compressed"], false);
        assert_eq!(report["vector_count"], fixture.decoded_vector.len());
        assert_eq!(report["total_file_bytes"], fixture.bytes);
        assert_eq!(report["header_crc_ok"], true);
        assert_eq!(report["metadata"], fixture.token);
        assert!(
            report.get("vector").is_none(),
            "the vector only comes with --full"
        );
    }
}

#[test]
fn inspect_full_adds_the_decoded_vector() {
    let fixture = &tbf_fixtures()[3];
    let output = tessera()
        .args(["inspect", "--full", "--json"])
        .arg(fixture.path())
        .output()
        .unwrap();
    let report = json_of(&output.stdout);
    let vector: Vec<f64> = serde_json::from_value(report["vector"].clone()).unwrap();
    assert_eq!(vector, fixture.decoded_vector);

    let text = tessera()
        .args(["inspect", "--full"])
        .arg(fixture.path())
        .output()
        .unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("knowledge type    ACTIVATION"), "{text}");
    assert!(text.lines().count() > fixture.decoded_vector.len() / 8);
}

#[test]
fn validate_checks_hmac_with_a_key_from_file_or_environment() {
    let fixtures = tbf_fixtures();
    let signed = fixtures.iter().find(|f| f.hmac_key_hex.is_some()).unwrap();
    let unsigned = fixtures.iter().find(|f| f.hmac_key_hex.is_none()).unwrap();
    let directory = tempfile::tempdir().unwrap();
    let key_file = directory.path().join("key.hex");
    std::fs::write(&key_file, signed.hmac_key_hex.as_deref().unwrap()).unwrap();

    let output = tessera()
        .args(["validate", "--json", "--hmac-key-file"])
        .arg(&key_file)
        .arg(signed.path())
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(json_of(&output.stdout)["hmac"], "verified");

    let output = tessera()
        .args(["validate", "--json", "--hmac-key-env", "TESSERA_TEST_KEY"])
        .env("TESSERA_TEST_KEY", signed.hmac_key_hex.as_deref().unwrap())
        .arg(signed.path())
        .output()
        .unwrap();
    assert_eq!(json_of(&output.stdout)["hmac"], "verified");

    let message = failure(
        tessera()
            .args(["validate", "--hmac-key-env", "TESSERA_TEST_KEY"])
            .env("TESSERA_TEST_KEY", "00112233")
            .arg(signed.path()),
    );
    assert!(message.contains("HMAC verification failed"), "{message}");

    let message = failure(
        tessera()
            .args(["validate", "--hmac-key-file"])
            .arg(&key_file)
            .arg(unsigned.path()),
    );
    assert!(message.contains("--allow-unauthenticated"), "{message}");
    tessera()
        .args(["validate", "--allow-unauthenticated", "--hmac-key-file"])
        .arg(&key_file)
        .arg(unsigned.path())
        .assert()
        .success();

    std::fs::write(&key_file, "not hex").unwrap();
    let message = failure(
        tessera()
            .args(["validate", "--hmac-key-file"])
            .arg(&key_file)
            .arg(signed.path()),
    );
    assert!(message.contains("hexadecimal"), "{message}");
}

#[test]
fn validate_reports_corruption_as_one_clear_error() {
    let fixture = &tbf_fixtures()[0];
    let directory = tempfile::tempdir().unwrap();
    let corrupted = directory.path().join("corrupted.tbf");
    let mut bytes = std::fs::read(fixture.path()).unwrap();
    bytes[100] ^= 1;
    std::fs::write(&corrupted, &bytes).unwrap();
    let message = failure(tessera().arg("validate").arg(&corrupted));
    assert!(message.contains("body checksum mismatch"), "{message}");

    let output = tessera()
        .args(["validate", "--json"])
        .arg(&corrupted)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert_eq!(json_of(&output.stdout)["valid"], false);

    let message = failure(
        tessera()
            .arg("inspect")
            .arg(directory.path().join("absent.tbf")),
    );
    assert!(message.contains("absent.tbf"), "{message}");
    let message = failure(
        tessera()
            .arg("inspect")
            .arg(fixture.path().with_file_name("manifest.json")),
    );
    assert!(message.contains("not a TBF token"), "{message}");
}

#[test]
fn convert_produces_every_quantisation_and_crc_variant() {
    let fixture = tbf_fixtures()
        .into_iter()
        .find(|f| f.quant == "FLOAT32" && f.hmac_key_hex.is_none())
        .unwrap();
    let input = tbf::load(&fixture.path(), &LoadOptions::default()).unwrap();
    let directory = tempfile::tempdir().unwrap();
    for quant in ["float32", "float16", "bfloat16", "int8"] {
        for crc in ["crc32c", "ieee"] {
            let output_path = directory.path().join(format!("{quant}-{crc}.tbf"));
            let output = tessera()
                .args(["convert", "--json", "--quant", quant, "--crc", crc])
                .arg(fixture.path())
                .arg(&output_path)
                .output()
                .unwrap();
            assert!(output.status.success(), "{quant} {crc}");
            let report = json_of(&output.stdout);
            assert_eq!(report["quantisation"], quant.to_uppercase());
            assert_eq!(report["crc_variant"], crc);
            let converted = std::fs::read(&output_path).unwrap();
            let expected = tbf::encode(
                &input.token,
                &SaveOptions {
                    quant: quant.parse().unwrap(),
                    crc: crc.parse().unwrap(),
                    hmac_key: None,
                    signing_key: None,
                },
            )
            .unwrap();
            assert!(
                converted == expected,
                "{quant} {crc}: bytes differ from the library's"
            );
            assert_eq!(report["bytes"], converted.len());
        }
    }
}

#[test]
fn convert_signs_and_refuses_to_strip_a_signature_silently() {
    let fixtures = tbf_fixtures();
    let signed = fixtures.iter().find(|f| f.hmac_key_hex.is_some()).unwrap();
    let directory = tempfile::tempdir().unwrap();
    let output_path = directory.path().join("out.tbf");
    let message = failure(
        tessera()
            .arg("convert")
            .arg(signed.path())
            .arg(&output_path),
    );
    assert!(message.contains("HMAC-signed"), "{message}");
    assert!(!output_path.exists());

    let key = signed.hmac_key_hex.as_deref().unwrap();
    tessera()
        .args([
            "convert",
            "--quant",
            "bfloat16",
            "--hmac-key-env",
            "TESSERA_TEST_KEY",
        ])
        .env("TESSERA_TEST_KEY", key)
        .arg(signed.path())
        .arg(&output_path)
        .assert()
        .success();
    let options = LoadOptions {
        hmac_key: Some(tbf::HmacKey::from_hex(key).unwrap()),
        ..LoadOptions::default()
    };
    let converted = tbf::load(&output_path, &options).unwrap();
    assert_eq!(converted.quant, QuantType::Bfloat16);
    assert_eq!(converted.hmac, tbf::HmacStatus::Verified);
}

#[test]
fn a_failed_conversion_leaves_no_output() {
    let directory = tempfile::tempdir().unwrap();
    let input = directory.path().join("nan.tbf");
    let token = Token::new(KnowledgeType::Activation, vec![1.0, f32::NAN, 2.0]);
    tbf::save(&input, &token, &SaveOptions::default()).unwrap();
    let output_path = directory.path().join("nan-int8.tbf");
    let message = failure(
        tessera()
            .args(["convert", "--quant", "int8"])
            .arg(&input)
            .arg(&output_path),
    );
    assert!(message.contains("element 1 is NaN"), "{message}");
    assert!(!output_path.exists());
    let leftovers: Vec<_> = std::fs::read_dir(directory.path()).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "only the input remains");
}

#[test]
fn help_and_version_are_available() {
    let help = tessera().arg("--help").output().unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    for command in ["inspect", "validate", "convert", "version"] {
        assert!(help.contains(command), "{help}");
    }
    let version = tessera().args(["version", "--json"]).output().unwrap();
    let version = json_of(&version.stdout);
    assert_eq!(version["tbf"], "1.1");
    assert_eq!(version["plugin_abi"], tessera_host::ABI_VERSION.to_string());
}
