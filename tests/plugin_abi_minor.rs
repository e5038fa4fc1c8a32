//! A plugin built against an older minor version of the plugin ABI loads in this host and
//! works: `tests/plugins/abi-1-0` is a plugin exactly as one built against `tessera-api` 1.0 is
//! (a hand-written ABI 1.0 table, JSON in the 1.0 shape), and this host speaks a later minor.
//! `support::plugins_dir` builds it with the other test plugins.

mod support;

use tessera_api::{AbiVersion, Pooling, TapLayout, ABI_VERSION};
use tessera_host::onnx::OnnxModel;
use tessera_host::plugin::{check_plan, summarise, PluginRegistry};

use support::{plugin_library, zoo_file, zoo_models};

/// The test plugin's library and the name of its plugin and adapter.
const LIBRARY: &str = "tessera_test_plugin_abi_1_0";
const NAME: &str = "abi-1-0";
/// A zoo model with `MatMul`s and `Gemm`s, whose first output is `logits` of shape
/// `[batch, classes]`.
const MODEL: &str = "toy/transformer_64d_2L.tx.torchscript";

#[test]
fn a_plugin_built_against_abi_1_0_loads_and_its_plans_are_accepted() {
    let library = plugin_library(LIBRARY);
    let mut registry = PluginRegistry::default();
    registry.add_library(library.clone());
    assert!(registry.failures.is_empty(), "{:?}", registry.failures);

    // It loads and reports the ABI it was built for.
    let plugin = registry
        .plugins
        .iter()
        .find(|plugin| plugin.name() == NAME)
        .unwrap_or_else(|| panic!("plugin {NAME} was not loaded from {}", library.display()));
    assert_eq!(plugin.abi, AbiVersion::new(1, 0));
    assert_eq!(plugin.abi.to_string(), "1.0");
    assert!(ABI_VERSION.is_compatible_with(plugin.abi));
    assert!(
        plugin.abi < ABI_VERSION,
        "this test is about a host newer than ABI 1.0, not {ABI_VERSION}"
    );
    assert_eq!(plugin.path.as_deref(), Some(library.as_path()));
    assert_eq!(plugin.description.api_version, "0.1.0");
    assert_eq!(plugin.description.adapters, [NAME]);
    assert!(plugin.description.stages.is_empty() && plugin.stages.is_empty());

    // Its adapter reads a graph summary of this host's ABI — with fields 1.0 did not have —
    // and returns a plan the host accepts.
    let model = zoo_models()
        .into_iter()
        .find(|model| model.id == MODEL)
        .unwrap_or_else(|| panic!("{MODEL} is in the zoo manifest"));
    let onnx = OnnxModel::load(&zoo_file(&model.onnx)).unwrap();
    let graph = summarise(&onnx);
    let wire = serde_json::to_value(&graph).unwrap();
    assert!(
        wire.get("opset_imports").is_some(),
        "the summary carries the 1.1 field the plugin does not know"
    );

    let plan = plugin.adapters[0]
        .analyse(&graph)
        .unwrap_or_else(|error| panic!("{MODEL}: {error}"))
        .unwrap_or_else(|| panic!("{MODEL} has MatMul and Gemm nodes, so it is claimed"));
    check_plan(&graph, &plan).unwrap_or_else(|error| panic!("{MODEL}: {error}"));
    let output = &graph.outputs[0].name;
    assert_eq!(plan.family, NAME);
    assert_eq!(plan.score, 0.01);
    assert_eq!(plan.width, model.classes as u64);
    assert_eq!(plan.taps.len(), 1);
    assert_eq!(&plan.taps[0].tensor, output);
    assert_eq!(plan.taps[0].layout, TapLayout::BatchFeature);
    assert_eq!(plan.taps[0].pooling, Pooling::None);
    assert!(plan.trainable.is_empty() && plan.frozen.is_empty());

    // Chosen by name, it goes through the host's own checks like any adapter.
    let choice = registry
        .choose_for_summary(&graph, &model.id, Some(NAME))
        .unwrap_or_else(|error| panic!("{MODEL}: {error}"));
    assert_eq!(
        (choice.adapter.as_str(), choice.plugin.as_str()),
        (NAME, NAME)
    );
    assert_eq!(choice.plan, plan);
}
