//! External data: exporters write large weights to files beside the `.onnx` and leave a
//! reference (`location`, `offset`, `length`) in the tensor. These are read in here.

use std::collections::HashMap;
use std::path::{Component, Path};

use crate::proto::{tensor_proto::DataLocation, ModelProto, TensorProto};

/// Whether any tensor of the model refers to external data.
pub fn has_external(proto: &ModelProto) -> bool {
    proto
        .graph
        .iter()
        .flat_map(|graph| &graph.initializer)
        .any(is_external)
}

fn is_external(tensor: &TensorProto) -> bool {
    tensor.data_location == Some(DataLocation::External as i32)
}

/// Replaces every external reference of the graph's initializers with the bytes it points to,
/// read from files in `folder`, and returns the names of the initializers that were external.
/// Files may only be named relative to the model's folder.
pub fn inline(proto: &mut ModelProto, folder: &Path) -> Result<Vec<String>, String> {
    let mut inlined = Vec::new();
    let Some(graph) = proto.graph.as_mut() else {
        return Ok(inlined);
    };
    let mut files: HashMap<String, Vec<u8>> = HashMap::new();
    for tensor in graph
        .initializer
        .iter_mut()
        .filter(|tensor| is_external(tensor))
    {
        let entry = |key: &str| {
            tensor
                .external_data
                .iter()
                .find(|entry| entry.key == key)
                .map(|entry| entry.value.clone())
        };
        let location = entry("location").ok_or_else(|| {
            format!(
                "initializer {:?} is external but names no location",
                tensor.name
            )
        })?;
        let parse = |key: &str| -> Result<Option<usize>, String> {
            entry(key)
                .map(|text| {
                    text.parse::<usize>().map_err(|_| {
                        format!(
                            "initializer {:?}: external {key} {text:?} is not a number",
                            tensor.name
                        )
                    })
                })
                .transpose()
        };
        let offset = parse("offset")?.unwrap_or(0);
        let length = parse("length")?;
        let relative = Path::new(&location);
        if relative
            .components()
            .any(|part| !matches!(part, Component::Normal(_) | Component::CurDir))
        {
            return Err(format!(
                "initializer {:?} points outside the model's folder ({location:?}); external data must sit beside the model",
                tensor.name
            ));
        }
        if !files.contains_key(&location) {
            let path = folder.join(relative);
            let bytes = std::fs::read(&path).map_err(|error| {
                format!(
                    "cannot read external data file {} for initializer {:?}: {error}; keep the data file beside the .onnx",
                    path.display(),
                    tensor.name
                )
            })?;
            files.insert(location.clone(), bytes);
        }
        let bytes = &files[&location];
        let end = match length {
            Some(length) => offset.checked_add(length),
            None => Some(bytes.len()),
        };
        let data = end
            .filter(|&end| end <= bytes.len() && offset <= end)
            .map(|end| &bytes[offset..end])
            .ok_or_else(|| {
                format!(
                    "initializer {:?}: bytes {offset}..{} lie beyond the end of {location} ({} bytes)",
                    tensor.name,
                    end.map_or_else(|| "overflow".to_string(), |end| end.to_string()),
                    bytes.len()
                )
            })?;
        tensor.raw_data = data.to_vec();
        tensor.external_data.clear();
        tensor.data_location = Some(DataLocation::Default as i32);
        inlined.push(tensor.name.clone());
    }
    Ok(inlined)
}
