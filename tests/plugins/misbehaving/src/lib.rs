//! A plugin that misbehaves in the way `TESSERA_TEST_MISBEHAVE` names, for the host's tests:
//!
//! - `wrong-abi`: its table claims ABI major 99;
//! - `constructor-panic`: panics while starting;
//! - `analyse-panic`: panics inside `analyse`;
//! - `analyse-error`: returns an error from `analyse`;
//! - `missing-tap`: plans a tap tensor the graph does not have;
//! - `wrong-layout`: declares a recurrent layout for a tap that is not;
//! - `wrong-width`: declares a width the taps do not pool to;
//! - anything else: claims every graph with a valid plan at score 1 (its first residual sum).
//!
//! Its stages: `double` (a transform that doubles the payload) and `explode` (panics).

use tessera_adapter_kit::GraphHeuristics;
use tessera_api::abi::PluginVTable;
use tessera_api::{
    AbiVersion, AdapterPlan, ArchitectureAdapter, GraphSummary, Plugin, PluginInfo, Pooling,
    StageContext, StageKind, StageToken, TapLayout, TapPoint, TokenStage,
};

fn mode() -> String {
    std::env::var("TESSERA_TEST_MISBEHAVE").unwrap_or_default()
}

struct Misbehaving;

impl ArchitectureAdapter for Misbehaving {
    fn name(&self) -> &str {
        "misbehaving"
    }

    fn analyse(&self, graph: &GraphSummary) -> Result<Option<AdapterPlan>, String> {
        let first_sum = graph
            .residual_adds()
            .first()
            .and_then(|add| add.outputs.first().cloned())
            .ok_or("the graph has no residual sum")?;
        let width = graph.classifier_input_width().ok_or("no classifier head")?;
        let layout = if graph.count("Conv") > 0 {
            TapLayout::BatchFeatureTime
        } else {
            TapLayout::BatchTimeFeature
        };
        let tap = TapPoint::new(first_sum, layout, Pooling::Mean);
        let mut plan = AdapterPlan::new("test", 1.0, width, vec![tap]);
        match mode().as_str() {
            "analyse-panic" => panic!("deliberate panic inside analyse"),
            "analyse-error" => return Err("deliberate failure inside analyse".into()),
            "missing-tap" => plan.taps[0].tensor = "no/such/tensor".into(),
            "wrong-layout" => plan.taps[0].layout = TapLayout::OnnxRecurrent,
            "wrong-width" => plan.width += 1,
            _ => {}
        }
        Ok(Some(plan))
    }
}

struct Double;

impl TokenStage for Double {
    fn name(&self) -> &str {
        "double"
    }

    fn kind(&self) -> StageKind {
        StageKind::Transform
    }

    fn process(
        &self,
        mut token: StageToken,
        _context: &StageContext,
    ) -> Result<StageToken, String> {
        token.vector.iter_mut().for_each(|value| *value *= 2.0);
        token.metadata.insert("doubled".into(), true.into());
        Ok(token)
    }
}

struct Explode;

impl TokenStage for Explode {
    fn name(&self) -> &str {
        "explode"
    }

    fn kind(&self) -> StageKind {
        StageKind::Transform
    }

    fn process(&self, _token: StageToken, _context: &StageContext) -> Result<StageToken, String> {
        panic!("deliberate panic inside a stage")
    }
}

struct MisbehavingPlugin;

impl MisbehavingPlugin {
    fn new() -> Self {
        if mode() == "constructor-panic" {
            panic!("deliberate panic while starting");
        }
        Self
    }
}

impl Plugin for MisbehavingPlugin {
    fn info(&self) -> PluginInfo {
        PluginInfo::new(
            "misbehaving",
            env!("CARGO_PKG_VERSION"),
            env!("CARGO_PKG_DESCRIPTION"),
        )
    }

    fn adapters(&self) -> Vec<Box<dyn ArchitectureAdapter>> {
        vec![Box::new(Misbehaving)]
    }

    fn stages(&self) -> Vec<Box<dyn TokenStage>> {
        vec![Box::new(Double), Box::new(Explode)]
    }
}

fn construct() -> Box<dyn Plugin> {
    Box::new(MisbehavingPlugin::new())
}

/// A table that claims an ABI from the future; its functions are never meant to be called.
struct FutureTable(PluginVTable);

// SAFETY: the table holds only function pointers and integers.
unsafe impl Sync for FutureTable {}

/// The entry point, written out by hand (instead of `export_plugin!`) to lie about the ABI.
#[no_mangle]
pub extern "C" fn tessera_plugin_entry() -> *const PluginVTable {
    let table = tessera_api::abi::install(construct);
    if mode() != "wrong-abi" || table.is_null() {
        return table;
    }
    static FUTURE: std::sync::OnceLock<FutureTable> = std::sync::OnceLock::new();
    // SAFETY: `install` returned a valid, never-freed table.
    let real = unsafe { &*table };
    let future = FUTURE.get_or_init(|| {
        let mut table = *real;
        table.abi = AbiVersion::new(99, 0);
        FutureTable(table)
    });
    &future.0
}
