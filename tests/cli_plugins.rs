//! Plugins as a user meets them: the bundled adapters claim every zoo model with the expected
//! tap points, and deliberately broken plugins are reported while the host keeps running.

mod support;

use std::path::Path;

use assert_cmd::Command;
use tessera_host::config::Config;
use tessera_host::onnx::OnnxModel;
use tessera_host::plugin::{summarise, PluginRegistry};
use tessera_host::zoo::ZooModel;

use support::{plugin_library, plugins_dir, zoo_file, zoo_models};

fn tessera() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tessera"));
    command.env("TESSERA_PLUGIN_PATH", plugins_dir());
    command
}

fn json(command: &mut Command) -> serde_json::Value {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn failure(command: &mut Command) -> String {
    let output = command.output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.lines().last().unwrap_or("").starts_with("error: "),
        "{stderr}"
    );
    stderr
}

fn misbehaving() -> std::path::PathBuf {
    plugin_library("tessera_testplugin_misbehaving")
}

fn zoo(id: &str) -> ZooModel {
    zoo_models()
        .into_iter()
        .find(|model| model.id == id)
        .unwrap()
}

#[test]
fn plugins_list_shows_the_four_bundled_plugins() {
    let report = json(tessera().args(["plugins", "list", "--json"]));
    let plugins = report["plugins"].as_array().unwrap();
    let names: Vec<&str> = plugins
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for name in ["builtin", "transformer", "mlp", "conv1d", "lstm"] {
        assert!(names.contains(&name), "{names:?}");
    }
    for plugin in plugins.iter().filter(|p| p["name"] != "builtin") {
        assert_eq!(plugin["abi"], tessera_api::ABI_VERSION.to_string());
        assert_eq!(plugin["adapters"][0], plugin["name"]);
        let path = plugin["path"].as_str().unwrap();
        assert!(Path::new(path).starts_with(plugins_dir()), "{path}");
    }
    assert_eq!(report["failures"], serde_json::json!([]));
}

#[test]
fn every_zoo_model_is_claimed_by_its_family_plugin() {
    let config = Config {
        plugins: tessera_host::config::PluginSettings {
            paths: vec![plugins_dir()],
        },
        ..Config::default()
    };
    let registry = PluginRegistry::discover(&config, Vec::new());
    assert!(registry.failures.is_empty(), "{:?}", registry.failures);
    for model in zoo_models() {
        let onnx = OnnxModel::load(&zoo_file(&model.onnx)).unwrap();
        let graph = summarise(&onnx);
        let choice = registry
            .choose_for_summary(&graph, &model.id, None)
            .unwrap_or_else(|error| panic!("{}: {error}", model.id));
        let expected = match model.family.as_str() {
            "conv" => "conv1d",
            family => family,
        };
        assert_eq!(choice.adapter, expected, "{}", model.id);
        assert_eq!(choice.plan.width, model.d as u64, "{}", model.id);
        assert_eq!(
            choice.plan.taps.len(),
            model.layers,
            "{}: one tap per block",
            model.id
        );
        // Block outputs in depth order: each tap's producer comes later in the graph.
        let position = |tensor: &str| {
            graph
                .nodes
                .iter()
                .position(|node| node.outputs.iter().any(|output| output == tensor))
                .unwrap()
        };
        let positions: Vec<usize> = choice
            .plan
            .taps
            .iter()
            .map(|tap| position(&tap.tensor))
            .collect();
        assert!(
            positions.windows(2).all(|pair| pair[0] < pair[1]),
            "{}",
            model.id
        );
        assert!(
            choice.plan.trainable.is_empty() && choice.plan.frozen.is_empty(),
            "{}: every initializer, the embedding included, may learn",
            model.id
        );
    }
}

#[test]
fn broken_libraries_are_refused_with_the_reason() {
    let check = |path: &Path, mode: &str| {
        failure(
            tessera()
                .env("TESSERA_TEST_MISBEHAVE", mode)
                .args(["plugins", "check"])
                .arg(path),
        )
    };
    let message = check(&misbehaving(), "wrong-abi");
    assert!(
        message.contains("ABI 99.0")
            && message.contains(&format!("ABI {}", tessera_api::ABI_VERSION)),
        "{message}"
    );
    let message = check(&misbehaving(), "constructor-panic");
    assert!(message.contains("failed to start"), "{message}");
    let message = check(&plugin_library("tessera_testplugin_no_entry"), "");
    assert!(
        message.contains("exports no `tessera_plugin_entry`"),
        "{message}"
    );

    let directory = tempfile::tempdir().unwrap();
    let fake = directory.path().join("libtessera_plugin_fake.so");
    std::fs::write(&fake, "not a library").unwrap();
    let message = check(&fake, "");
    assert!(
        message.contains("cannot be loaded as a shared library"),
        "{message}"
    );

    // Found on a search path, a broken library is listed and the rest still load.
    let report = json(
        tessera()
            .env(
                "TESSERA_PLUGIN_PATH",
                format!("{}:{}", plugins_dir().display(), directory.path().display()),
            )
            .args(["plugins", "list", "--json"]),
    );
    assert_eq!(report["failures"].as_array().unwrap().len(), 1, "{report}");
    assert!(report["plugins"].as_array().unwrap().len() >= 5);
}

#[test]
fn misbehaving_adapters_are_reported_and_the_host_keeps_running() {
    let model = zoo_file(&zoo("toy/transformer_64d_2L.tx.torchscript").onnx);
    let search = format!("{}:{}", misbehaving().display(), plugins_dir().display());
    let inspect = |mode: &str| {
        let mut command = tessera();
        command
            .env("TESSERA_PLUGIN_PATH", &search)
            .env("TESSERA_TEST_MISBEHAVE", mode)
            .args(["inspect-model", "--json"])
            .arg(&model);
        command
    };
    for (mode, expected) in [
        ("analyse-panic", "panicked: deliberate panic inside analyse"),
        ("analyse-error", "deliberate failure inside analyse"),
        ("missing-tap", "\"no/such/tensor\" is not a tensor"),
        ("wrong-layout", "disagrees with its declared layout"),
        (
            "wrong-width",
            "pools to width 64, but the plan declares width 65",
        ),
    ] {
        let report = json(&mut inspect(mode));
        assert_eq!(report["adapter"]["adapter"], "transformer", "{mode}");
        let verdict = report["adapter"]["verdicts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|verdict| verdict["adapter"] == "misbehaving")
            .unwrap()
            .clone();
        let error = verdict["error"].as_str().unwrap_or_default();
        assert!(error.contains(expected), "{mode}: {error}");

        // Asked for by name, the broken adapter is an error naming it and the problem.
        let message = failure(inspect(mode).args(["--adapter", "misbehaving"]));
        assert!(
            message.contains("misbehaving") && message.contains(expected),
            "{mode}: {message}"
        );
    }
    // A well-behaved plan at score 1 beats the family plugin.
    let report = json(&mut inspect(""));
    assert_eq!(report["adapter"]["adapter"], "misbehaving");
}

#[test]
fn adapter_choice_errors_are_clear() {
    let model = zoo_file(&zoo("toy/transformer_64d_2L.tx.torchscript").onnx);
    let message = failure(
        tessera()
            .args(["inspect-model", "--adapter", "lstm"])
            .arg(&model),
    );
    assert!(
        message.contains("lstm") && message.contains("not recognised"),
        "{message}"
    );
    let message = failure(
        tessera()
            .args(["inspect-model", "--adapter", "nope"])
            .arg(&model),
    );
    assert!(message.contains("no adapter has this name"), "{message}");
    // With no plugin at all, the built-in fallback still finds the blocks.
    let report = json(
        Command::new(env!("CARGO_BIN_EXE_tessera"))
            .env("TESSERA_PLUGIN_PATH", "")
            .current_dir(tempfile::tempdir().unwrap().path())
            .args(["inspect-model", "--json", "--adapter", "fallback"])
            .arg(&model),
    );
    assert_eq!(report["adapter"]["plan"]["width"], 64);
}
