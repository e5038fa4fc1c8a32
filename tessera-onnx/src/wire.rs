//! Editing a serialized ONNX model at the protobuf wire level, so that writing trained weights
//! back changes only the initializers: every other byte — including fields this version's
//! schema does not know (node metadata, newer additions) — is copied as it was.

/// One field of a protobuf message as stored.
struct Field<'a> {
    number: u64,
    wire_type: u8,
    /// The whole field: key and value.
    raw: &'a [u8],
    /// The value; for length-delimited fields, without the length prefix.
    payload: &'a [u8],
}

fn varint(bytes: &[u8], position: &mut usize) -> Result<u64, String> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *bytes
            .get(*position)
            .ok_or("truncated varint in the model file")?;
        *position += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("varint longer than 64 bits in the model file".into())
}

fn fields(message: &[u8]) -> Result<Vec<Field<'_>>, String> {
    let mut position = 0;
    let mut result = Vec::new();
    while position < message.len() {
        let start = position;
        let key = varint(message, &mut position)?;
        let (number, wire_type) = (key >> 3, (key & 7) as u8);
        let payload_start;
        match wire_type {
            0 => {
                payload_start = position;
                varint(message, &mut position)?;
            }
            1 | 5 => {
                payload_start = position;
                position += if wire_type == 1 { 8 } else { 4 };
            }
            2 => {
                let len = varint(message, &mut position)? as usize;
                payload_start = position;
                position = position
                    .checked_add(len)
                    .ok_or("field length overflows in the model file")?;
            }
            other => {
                return Err(format!(
                    "unsupported protobuf wire type {other} in the model file"
                ))
            }
        }
        if position > message.len() {
            return Err("truncated field in the model file".into());
        }
        result.push(Field {
            number,
            wire_type,
            raw: &message[start..position],
            payload: &message[payload_start..position],
        });
    }
    Ok(result)
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_bytes(out: &mut Vec<u8>, number: u64, bytes: &[u8]) {
    put_varint(out, number << 3 | 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Where a rewritten initializer's values go.
pub enum Placement<'a> {
    /// Inline, as `raw_data`.
    Inline(&'a [u8]),
    /// In an external data file, at `offset`, `length` bytes.
    External {
        /// File name relative to the model.
        location: &'a str,
        /// Byte offset in the file.
        offset: usize,
        /// Byte length.
        length: usize,
    },
}

const MODEL_GRAPH: u64 = 7;
const GRAPH_INITIALIZER: u64 = 5;
const TENSOR_FLOAT_DATA: u64 = 4;
const TENSOR_NAME: u64 = 8;
const TENSOR_RAW_DATA: u64 = 9;
const TENSOR_EXTERNAL_DATA: u64 = 13;
const TENSOR_DATA_LOCATION: u64 = 14;

/// `model` with the data of the initializers `place` names replaced; everything else,
/// including the rest of each rewritten initializer, is copied unchanged.
pub fn rewrite_initializers<'p>(
    model: &[u8],
    place: &dyn Fn(&str) -> Option<Placement<'p>>,
) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(model.len());
    for field in fields(model)? {
        if field.number != MODEL_GRAPH || field.wire_type != 2 {
            out.extend_from_slice(field.raw);
            continue;
        }
        let mut graph = Vec::with_capacity(field.payload.len());
        for graph_field in fields(field.payload)? {
            if graph_field.number != GRAPH_INITIALIZER || graph_field.wire_type != 2 {
                graph.extend_from_slice(graph_field.raw);
                continue;
            }
            let tensor_fields = fields(graph_field.payload)?;
            let name = tensor_fields
                .iter()
                .find(|f| f.number == TENSOR_NAME && f.wire_type == 2)
                .map(|f| String::from_utf8_lossy(f.payload).into_owned())
                .unwrap_or_default();
            let Some(placement) = place(&name) else {
                graph.extend_from_slice(graph_field.raw);
                continue;
            };
            let mut tensor = Vec::with_capacity(graph_field.payload.len());
            for tensor_field in &tensor_fields {
                let data = [
                    TENSOR_FLOAT_DATA,
                    TENSOR_RAW_DATA,
                    TENSOR_EXTERNAL_DATA,
                    TENSOR_DATA_LOCATION,
                ];
                if !data.contains(&tensor_field.number) {
                    tensor.extend_from_slice(tensor_field.raw);
                }
            }
            match placement {
                Placement::Inline(bytes) => put_bytes(&mut tensor, TENSOR_RAW_DATA, bytes),
                Placement::External {
                    location,
                    offset,
                    length,
                } => {
                    for (key, value) in [
                        ("location", location.to_string()),
                        ("offset", offset.to_string()),
                        ("length", length.to_string()),
                    ] {
                        let mut entry = Vec::new();
                        put_bytes(&mut entry, 1, key.as_bytes());
                        put_bytes(&mut entry, 2, value.as_bytes());
                        put_bytes(&mut tensor, TENSOR_EXTERNAL_DATA, &entry);
                    }
                    put_varint(&mut tensor, TENSOR_DATA_LOCATION << 3);
                    put_varint(&mut tensor, 1);
                }
            }
            put_bytes(&mut graph, GRAPH_INITIALIZER, &tensor);
        }
        put_bytes(&mut out, MODEL_GRAPH, &graph);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{GraphProto, ModelProto, TensorProto};
    use prost::Message;

    #[test]
    fn only_the_named_initializer_changes_and_unknown_fields_survive() {
        let tensor = |name: &str, value: f32| TensorProto {
            name: name.into(),
            dims: vec![1],
            data_type: 1,
            raw_data: value.to_le_bytes().to_vec(),
            ..TensorProto::default()
        };
        let model = ModelProto {
            ir_version: 8,
            graph: Some(GraphProto {
                name: "g".into(),
                initializer: vec![tensor("a", 1.0), tensor("b", 2.0)],
                ..GraphProto::default()
            }),
            ..ModelProto::default()
        };
        let mut bytes = model.encode_to_vec();
        // A field number no schema here knows (e.g. a newer ONNX addition).
        put_bytes(&mut bytes, 99, b"kept");
        let new_value = 5.0f32.to_le_bytes();
        let rewritten = rewrite_initializers(&bytes, &|name| {
            (name == "b").then_some(Placement::Inline(&new_value))
        })
        .unwrap();
        assert!(rewritten.windows(4).any(|w| w == b"kept"));
        let decoded = ModelProto::decode(rewritten.as_slice()).unwrap();
        let initializers = decoded.graph.unwrap().initializer;
        assert_eq!(initializers[0].raw_data, 1.0f32.to_le_bytes());
        assert_eq!(initializers[1].raw_data, new_value);
        assert_eq!(rewrite_initializers(&bytes, &|_| None).unwrap(), bytes);
    }

    #[test]
    fn malformed_input_is_an_error() {
        assert!(rewrite_initializers(&[0x3a, 0xff], &|_| None).is_err());
        assert!(rewrite_initializers(&[0x0b], &|_| None).is_err());
    }
}
