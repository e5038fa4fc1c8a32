//! Template Tessera plugin: copy this crate to start your own (see docs/writing-a-plugin.md).
//!
//! It shows both extension points:
//! - an architecture adapter, `layernorm`, that recognises any network with `LayerNormalization`
//!   nodes and taps each normalisation's output, choosing the layout from the inferred shape;
//! - a transform stage, `template-stamp`, that adds a metadata key to every token.

use tessera_api::{
    AdapterPlan, ArchitectureAdapter, DimSummary, GraphSummary, Plugin, PluginInfo, Pooling,
    StageContext, StageKind, StageToken, TapLayout, TapPoint, TokenStage,
};

/// Below the specialised adapters (transformer 0.9, mlp 0.8), above the built-in fallback
/// (0.05): it claims a model only when nothing more specific recognises it.
const SCORE: f32 = 0.5;

/// Recognises networks with `LayerNormalization` nodes.
struct LayerNormAdapter;

impl ArchitectureAdapter for LayerNormAdapter {
    fn name(&self) -> &str {
        "layernorm"
    }

    fn analyse(&self, graph: &GraphSummary) -> Result<Option<AdapterPlan>, String> {
        // 1. Recognise the family; `Ok(None)` means "not mine", which is never an error.
        let outputs: Vec<&String> = graph
            .nodes_of("LayerNormalization")
            .filter_map(|node| node.outputs.first())
            .collect();
        if outputs.is_empty() {
            return Ok(None);
        }

        // 2. One tap per normalisation whose shape the host could infer, in graph order
        //    (ONNX files list nodes in topological order, so this is depth order).
        let taps: Vec<(TapPoint, u64)> = outputs
            .into_iter()
            .filter_map(|tensor| tap_for(tensor, graph.shapes.get(tensor)?))
            .collect();

        // 3. The width is the deepest tap's; every tap must pool to it, so drop the others
        //    (e.g. a normalisation inside a wider feed-forward block).
        let Some(&(_, width)) = taps.last() else {
            // It looks like our family but we cannot handle it: say why.
            return Err(
                "no LayerNormalization output has an inferred [batch, features] or \
                 [batch, time, features] shape"
                    .into(),
            );
        };
        let taps = taps
            .into_iter()
            .filter(|(_, tap_width)| *tap_width == width)
            .map(|(tap, _)| tap)
            .collect();

        // Fine-tuning may change every floating-point initializer; add `.with_trainable(..)`
        // or `.with_frozen(..)` to choose yourself.
        Ok(Some(AdapterPlan::new("layernorm", SCORE, width, taps)))
    }
}

/// The tap for `tensor` of inferred shape `shape`, with its pooled width: `[batch, D]` needs no
/// pooling, `[batch, T, D]` is averaged over `T`. Other shapes are skipped.
fn tap_for(tensor: &str, shape: &[DimSummary]) -> Option<(TapPoint, u64)> {
    // The batch is the symbolic first dimension; every other one must be fixed.
    let (DimSummary::Symbolic(_), rest) = shape.split_first()? else {
        return None;
    };
    let dims: Vec<u64> = rest
        .iter()
        .map(DimSummary::as_fixed)
        .collect::<Option<_>>()?;
    let (layout, pooling) = match dims.len() {
        1 => (TapLayout::BatchFeature, Pooling::None),
        2 => (TapLayout::BatchTimeFeature, Pooling::Mean),
        _ => return None,
    };
    Some((TapPoint::new(tensor, layout, pooling), *dims.last()?))
}

/// A transform stage: records in the token's metadata that it passed through this plugin, with
/// an optional `note` from `tessera.toml` (`[stages.template-stamp] note = "..."`).
struct StampStage;

impl TokenStage for StampStage {
    fn name(&self) -> &str {
        "template-stamp"
    }

    fn kind(&self) -> StageKind {
        StageKind::Transform
    }

    fn process(&self, mut token: StageToken, context: &StageContext) -> Result<StageToken, String> {
        let stamp = concat!(env!("CARGO_PKG_NAME"), " ", env!("CARGO_PKG_VERSION"));
        token.metadata.insert("template_stamp".into(), stamp.into());
        if let Some(note) = context.parameters.get("note") {
            let note = note
                .as_str()
                .ok_or_else(|| format!("parameter `note` must be text, not {note}"))?;
            token.metadata.insert("template_note".into(), note.into());
        }
        Ok(token)
    }
}

/// The plugin: who it is and what it provides.
#[derive(Default)]
struct TemplatePlugin;

impl Plugin for TemplatePlugin {
    fn info(&self) -> PluginInfo {
        PluginInfo::new(
            "template",
            env!("CARGO_PKG_VERSION"),
            env!("CARGO_PKG_DESCRIPTION"),
        )
    }

    fn adapters(&self) -> Vec<Box<dyn ArchitectureAdapter>> {
        vec![Box::new(LayerNormAdapter)]
    }

    fn stages(&self) -> Vec<Box<dyn TokenStage>> {
        vec![Box::new(StampStage)]
    }
}

// The entry point the host looks up (`tessera_plugin_entry`).
tessera_api::export_plugin!(TemplatePlugin);

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_api::Metadata;

    #[test]
    fn the_stamp_stage_adds_its_metadata() {
        let token = StageToken::new(vec![1.0, 2.0], vec![2], Metadata::new());
        let mut parameters = Metadata::new();
        parameters.insert("note".into(), "hello".into());
        let token = StampStage
            .process(token, &StageContext::new(parameters))
            .unwrap();
        assert_eq!(token.vector, [1.0, 2.0]);
        assert_eq!(token.metadata.get("template_note").unwrap(), "hello");
        assert!(token
            .metadata
            .get("template_stamp")
            .unwrap()
            .as_str()
            .unwrap()
            .starts_with("tessera-plugin-template "));

        let mut parameters = Metadata::new();
        parameters.insert("note".into(), 3.into());
        assert!(StampStage
            .process(token, &StageContext::new(parameters))
            .is_err());
    }

    #[test]
    fn taps_follow_the_inferred_shape() {
        let batch = || DimSummary::Symbolic("batch".into());
        let (tap, width) = tap_for(
            "x",
            &[batch(), DimSummary::Fixed(16), DimSummary::Fixed(64)],
        )
        .unwrap();
        assert_eq!(
            (tap.layout, tap.pooling, width),
            (TapLayout::BatchTimeFeature, Pooling::Mean, 64)
        );
        let (tap, width) = tap_for("y", &[batch(), DimSummary::Fixed(128)]).unwrap();
        assert_eq!(
            (tap.layout, tap.pooling, width),
            (TapLayout::BatchFeature, Pooling::None, 128)
        );
        assert!(tap_for("z", &[DimSummary::Fixed(1), DimSummary::Fixed(128)]).is_none());
    }
}
