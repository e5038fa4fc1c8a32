//! The plugin template (`plugins/template`) builds outside this workspace, as a newcomer's copy
//! would, and the `tessera` binary loads the result: `plugins check`, `plugins list` through
//! `TESSERA_PLUGIN_PATH`, and `inspect-model --adapter` on a bundled model it recognises.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tessera_host::plugin::{is_plugin_file_name, PLUGIN_PATH_VARIABLE};

const REPOSITORY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
/// What the template's `src/lib.rs` declares.
const PLUGIN: &str = "template";
const ADAPTER: &str = "layernorm";
const STAGE: &str = "template-stamp";
/// A bundled model with four `LayerNormalization` nodes of output shape `[batch, 16, 64]`.
const MODEL: &str = "onnx-models/toy/transformer_64d_2L.tx.torchscript.onnx";

fn repository() -> PathBuf {
    Path::new(REPOSITORY)
        .canonicalize()
        .expect("the repository root exists")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn describe(output: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        text(&output.stdout),
        text(&output.stderr)
    )
}

/// Copies the template crate, leaving out build outputs a local build may have left in it.
fn copy_crate(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "target" || name == "Cargo.lock" {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type().unwrap().is_dir() {
            copy_crate(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Points the copy's `tessera-api` dependency at this repository's, and makes the copy a
/// workspace of its own wherever the temporary folder is.
fn rewrite_manifest(manifest: &Path, api: &Path) {
    let original = std::fs::read_to_string(manifest).unwrap();
    let mut table: toml::Table = original.parse().expect("the template's Cargo.toml parses");
    assert!(
        !table.contains_key("workspace"),
        "the template must not declare a workspace"
    );
    let package = table["package"].as_table().expect("a [package] table");
    for (key, value) in package {
        assert!(
            !value
                .as_table()
                .is_some_and(|t| t.contains_key("workspace")),
            "package.{key} inherits from a workspace, which a copy outside this repository lacks"
        );
    }
    let crate_types = table["lib"]["crate-type"]
        .as_array()
        .expect("[lib] crate-type");
    assert!(
        crate_types
            .iter()
            .any(|kind| kind.as_str() == Some("cdylib")),
        "the template must be a cdylib"
    );
    let api_dependency = table["dependencies"]["tessera-api"]
        .as_table_mut()
        .expect("tessera-api = { path = ... }");
    assert!(
        !api_dependency.contains_key("workspace"),
        "the template's tessera-api dependency must not use `workspace = true`"
    );
    assert!(
        api_dependency.contains_key("path"),
        "the template depends on tessera-api by path"
    );
    api_dependency.insert("path".into(), api.display().to_string().into());
    table.insert("workspace".into(), toml::Table::new().into());
    std::fs::write(manifest, table.to_string()).unwrap();
}

/// Builds the crate in `crate_dir` into `target_dir` and returns the plugin library.
fn build_plugin(crate_dir: &Path, target_dir: &Path) -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(&cargo)
        .args([
            "build",
            "--message-format=json-render-diagnostics",
            "--manifest-path",
        ])
        .arg(crate_dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir)
        .current_dir(crate_dir)
        .output()
        .unwrap_or_else(|error| panic!("cannot run {cargo:?}: {error}"));
    assert!(
        output.status.success(),
        "`cargo build` of the plugin template failed:\n{}",
        describe(&output)
    );
    let artifacts: Vec<PathBuf> = text(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| {
            message["reason"] == "compiler-artifact"
                && message["target"]["name"] == "tessera_plugin_template"
        })
        .flat_map(|message| {
            message["filenames"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|name| name.as_str().map(PathBuf::from))
                .collect::<Vec<_>>()
        })
        .collect();
    artifacts
        .iter()
        .find(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(is_plugin_file_name)
        })
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "the build produced no library named like a plugin (libtessera_plugin_*): {artifacts:?}\n{}",
                describe(&output)
            )
        })
}

/// Runs `tessera` in `directory` (so no `tessera.toml` of the caller's is read), with
/// `TESSERA_PLUGIN_PATH` set to `plugin_path` or removed, and returns its standard output.
fn tessera(directory: &Path, plugin_path: Option<&Path>, args: &[&str]) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tessera"));
    command.args(args).current_dir(directory);
    match plugin_path {
        Some(path) => command.env(PLUGIN_PATH_VARIABLE, path),
        None => command.env_remove(PLUGIN_PATH_VARIABLE),
    };
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "`tessera {}` failed:\n{}",
        args.join(" "),
        describe(&output)
    );
    text(&output.stdout)
}

fn json(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout).unwrap_or_else(|error| panic!("{error}: {stdout}"))
}

#[test]
fn the_template_builds_out_of_tree_and_the_host_loads_it() {
    let repository = repository();
    let scratch = tempfile::tempdir().unwrap();
    let crate_dir = scratch.path().join("my-plugin");
    copy_crate(&repository.join("plugins/template"), &crate_dir);
    rewrite_manifest(
        &crate_dir.join("Cargo.toml"),
        &repository.join("tessera-api"),
    );
    // The workspace's lock file pins the dependencies to versions the workspace build has
    // already fetched, so the build needs no registry access; cargo drops the unused entries.
    std::fs::copy(repository.join("Cargo.lock"), crate_dir.join("Cargo.lock")).unwrap();

    let library = build_plugin(&crate_dir, &scratch.path().join("target"));
    let library_text = library.display().to_string();
    let folder = library.parent().unwrap();

    // `plugins check` loads the one library and lists what it provides.
    let checked = tessera(scratch.path(), None, &["plugins", "check", &library_text]);
    assert!(checked.starts_with("ok: "), "{checked}");
    for expected in [PLUGIN, ADAPTER, &format!("{STAGE} (transform)")] {
        assert!(checked.contains(expected), "no {expected:?} in:\n{checked}");
    }

    // `plugins list` finds it through TESSERA_PLUGIN_PATH.
    let listed = json(&tessera(
        scratch.path(),
        Some(folder),
        &["plugins", "list", "--json"],
    ));
    let plugins = listed["plugins"].as_array().unwrap();
    let plugin = plugins
        .iter()
        .find(|plugin| plugin["name"] == PLUGIN)
        .unwrap_or_else(|| panic!("plugin {PLUGIN:?} is not listed: {listed:#}"));
    assert_eq!(plugin["path"], library_text.as_str(), "{plugin:#}");
    assert_eq!(
        plugin["adapters"],
        serde_json::json!([ADAPTER]),
        "{plugin:#}"
    );
    assert_eq!(
        plugin["stages"],
        serde_json::json!([{ "name": STAGE, "kind": "transform" }]),
        "{plugin:#}"
    );
    assert_eq!(plugin["abi"], tessera_api::ABI_VERSION.to_string());
    let failures = listed["failures"].as_array().unwrap();
    assert!(
        failures.iter().all(|failure| !failure["path"]
            .as_str()
            .unwrap_or("")
            .starts_with(&*folder.to_string_lossy())),
        "{failures:#?}"
    );

    // `inspect-model --adapter` uses the template's adapter on a model it recognises.
    let model = repository.join(MODEL).display().to_string();
    let report = json(&tessera(
        scratch.path(),
        Some(folder),
        &["inspect-model", &model, "--adapter", ADAPTER, "--json"],
    ));
    let adapter = &report["adapter"];
    assert_eq!(adapter["adapter"], ADAPTER, "{adapter:#}");
    assert_eq!(adapter["plugin"], PLUGIN, "{adapter:#}");
    assert_eq!(adapter["plan"]["family"], "layernorm", "{adapter:#}");
    assert_eq!(adapter["plan"]["width"], 64, "{adapter:#}");
    let taps = adapter["plan"]["taps"].as_array().unwrap();
    assert_eq!(taps.len(), 4, "one tap per LayerNormalization: {adapter:#}");
    for tap in taps {
        assert_eq!(tap["layout"], "batch_time_feature", "{tap}");
        assert_eq!(tap["pooling"], "mean", "{tap}");
        assert_eq!(tap["shape"], serde_json::json!(["batch", 16, 64]), "{tap}");
    }
}
