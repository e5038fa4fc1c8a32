//! A C program (`tests/c/tessera_c_api.c`), compiled with the system's C compiler against
//! `include/tessera.h` and the shared library, runs a small transfer and loads its token back,
//! then emits and absorbs a token as two parties.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The folder holding this build's shared library: beside the test (`<target>/<profile>/deps`,
/// where Cargo leaves a library built for tests).
fn library_dir() -> PathBuf {
    let test = std::env::current_exe().unwrap();
    test.parent()
        .expect("a test runs from a folder")
        .to_path_buf()
}

#[test]
fn a_c_program_transfers_and_reads_the_token() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let repo = crate_dir.parent().unwrap();
    let libraries = library_dir();
    let library = libraries.join(format!(
        "{}tessera{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    assert!(library.is_file(), "{} was not built", library.display());
    let folder = tempfile::tempdir().unwrap();
    let program = folder.path().join("tessera_c_api");
    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let compiled = Command::new(&compiler)
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-I"])
        .arg(crate_dir.join("include"))
        .arg(repo.join("tests/c/tessera_c_api.c"))
        .arg("-L")
        .arg(&libraries)
        .arg("-ltessera")
        .arg(format!("-Wl,-rpath,{}", libraries.display()))
        .arg("-o")
        .arg(&program)
        .output()
        .unwrap_or_else(|error| panic!("cannot run the C compiler {compiler}: {error}"));
    assert!(
        compiled.status.success(),
        "{}",
        String::from_utf8_lossy(&compiled.stderr)
    );
    let zoo = repo.join("onnx-models/digits");
    let output = Command::new(&program)
        .arg(zoo.join("conv_64d_2L.tx.torchscript.onnx"))
        .arg(zoo.join("mlp_64d_2L.rx.torchscript.onnx"))
        .arg(zoo.join("train_inputs.npy"))
        .arg(zoo.join("val_inputs.npy"))
        .arg(zoo.join("val_labels.npy"))
        .arg(folder.path())
        .env("TESSERA_PLUGIN_PATH", "")
        .env("TESSERA_PRIVACY_LEDGER", folder.path().join("ledger.json"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
