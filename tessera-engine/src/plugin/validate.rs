//! Checking an adapter's plan against the model before anything relies on it: tap tensors
//! exist, their shapes fit the declared layouts, and every tap pools to the declared width.

use tessera_api::{AdapterPlan, DimSummary, GraphSummary, Pooling, TapLayout};

/// Why `plan` cannot be used for the graph `graph` describes, if it cannot.
pub fn check_plan(graph: &GraphSummary, plan: &AdapterPlan) -> Result<(), String> {
    if !plan.score.is_finite() || !(0.0..=1.0).contains(&plan.score) {
        return Err(format!("score {} is outside 0..=1", plan.score));
    }
    if plan.taps.is_empty() {
        return Err("the plan names no tap points".into());
    }
    if plan.width == 0 {
        return Err("the plan declares a width of 0".into());
    }
    for tap in &plan.taps {
        if graph.producer(&tap.tensor).is_none() {
            return Err(format!(
                "tap {:?} is not a tensor any node of the graph computes",
                tap.tensor
            ));
        }
        let Some(shape) = graph.shapes.get(&tap.tensor) else {
            return Err(format!(
                "the shape of tap {:?} could not be inferred, so its layout cannot be checked",
                tap.tensor
            ));
        };
        check_layout(&tap.tensor, shape, tap.layout, plan.width)?;
        let sequence = !matches!(tap.layout, TapLayout::BatchFeature);
        if sequence == (tap.pooling == Pooling::None) {
            return Err(format!(
                "tap {:?} has layout {:?} with pooling {:?}: a sequence layout needs a pooling, \
                 and only BatchFeature takes none",
                tap.tensor, tap.layout, tap.pooling
            ));
        }
    }
    for name in plan.trainable.iter().chain(&plan.frozen) {
        if !graph.is_initializer(name) {
            return Err(format!(
                "{name:?} is listed as trainable or frozen but is not an initializer"
            ));
        }
    }
    Ok(())
}

fn shape_text(shape: &[DimSummary]) -> String {
    let dims: Vec<String> = shape
        .iter()
        .map(|dim| match dim {
            DimSummary::Fixed(len) => len.to_string(),
            DimSummary::Symbolic(name) => name.clone(),
            _ => "?".into(),
        })
        .collect();
    format!("[{}]", dims.join(", "))
}

fn check_layout(
    tensor: &str,
    shape: &[DimSummary],
    layout: TapLayout,
    width: u64,
) -> Result<(), String> {
    let mismatch = |why: &str| {
        Err(format!(
            "tap {tensor:?} has shape {} which disagrees with its declared layout {layout:?}: {why}",
            shape_text(shape)
        ))
    };
    if shape.len() != layout.rank() {
        return mismatch(&format!("expected rank {}", layout.rank()));
    }
    if !matches!(shape[layout.batch_axis()], DimSummary::Symbolic(_)) {
        return mismatch(&format!(
            "the batch should be dimension {}",
            layout.batch_axis()
        ));
    }
    let mut dims = Vec::with_capacity(shape.len());
    for (axis, dim) in shape.iter().enumerate() {
        match dim {
            DimSummary::Fixed(len) => dims.push(*len),
            DimSummary::Symbolic(_) if axis == layout.batch_axis() => dims.push(1),
            _ => {
                return mismatch(&format!("dimension {axis} is not fixed"));
            }
        }
    }
    match layout.feature_width(&dims) {
        Some(pooled) if pooled == width => Ok(()),
        Some(pooled) => mismatch(&format!(
            "it pools to width {pooled}, but the plan declares width {width}"
        )),
        None => mismatch("its feature width cannot be read"),
    }
}
