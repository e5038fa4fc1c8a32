//! A plugin exactly as one built against `tessera-api` 1.0 is, frozen here so that the host's
//! tests can prove a newer host still loads it: the entry point and a `#[repr(C)]` table of
//! ABI 1.0 written out by hand (no `export_plugin!`), and JSON in the shape 1.0 wrote.
//!
//! Its adapter, `abi-1-0`, claims any graph with a `Gemm` or `MatMul` node at score 0.01 (below
//! the host's fallback, so it is never chosen unless asked for by name), with one tap on the
//! first graph output: `[batch, D]` unpooled, or `[batch, T, D]` mean-pooled. Like any 1.0
//! plugin it reads only the fields of the graph summary that 1.0 defined and ignores the rest.
//! It has no stages.

use std::panic::{catch_unwind, AssertUnwindSafe};

use serde_json::{json, Value};

/// The ABI version as 1.0 lays it out.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct AbiVersion {
    /// Major version.
    pub major: u16,
    /// Minor version.
    pub minor: u16,
}

/// The outcome of a call, as 1.0 defines it.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Success.
    Ok = 0,
    /// Failure; the output holds the message.
    Error = 1,
    /// A panic; the output holds the message.
    Panic = 2,
}

/// Bytes borrowed for a call.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ByteView {
    /// First byte.
    pub ptr: *const u8,
    /// Number of bytes.
    pub len: usize,
}

/// Floats borrowed for a call.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct FloatView {
    /// First element.
    pub ptr: *const f32,
    /// Number of elements.
    pub len: usize,
}

/// Bytes this plugin allocated, handed to the host until it releases them.
#[repr(C)]
#[derive(Debug)]
pub struct OwnedBytes {
    /// First byte.
    pub ptr: *mut u8,
    /// Number of bytes.
    pub len: usize,
    /// Allocated capacity.
    pub capacity: usize,
}

/// Floats this plugin allocated, handed to the host until it releases them.
#[repr(C)]
#[derive(Debug)]
pub struct OwnedFloats {
    /// First element.
    pub ptr: *mut f32,
    /// Number of elements.
    pub len: usize,
    /// Allocated capacity.
    pub capacity: usize,
}

/// The function table of ABI 1.0, field for field.
#[repr(C)]
pub struct PluginVTable {
    /// Always 1.0.
    pub abi: AbiVersion,
    /// `size_of::<PluginVTable>()` of this 1.0 layout.
    pub table_size: u32,
    /// Writes the plugin description as JSON.
    pub describe: unsafe extern "C" fn(out: *mut OwnedBytes) -> Status,
    /// Runs an adapter on a graph summary (JSON); writes an optional plan as JSON.
    pub analyse:
        unsafe extern "C" fn(adapter: u32, graph: ByteView, out: *mut OwnedBytes) -> Status,
    /// Runs a stage on a token.
    pub process: unsafe extern "C" fn(
        stage: u32,
        request: ByteView,
        vector: FloatView,
        out_json: *mut OwnedBytes,
        out_vector: *mut OwnedFloats,
    ) -> Status,
    /// Frees bytes this plugin returned.
    pub release_bytes: unsafe extern "C" fn(bytes: OwnedBytes),
    /// Frees floats this plugin returned.
    pub release_floats: unsafe extern "C" fn(floats: OwnedFloats),
}

/// The plugin's name, and its adapter's.
const NAME: &str = "abi-1-0";

static TABLE: PluginVTable = PluginVTable {
    abi: AbiVersion { major: 1, minor: 0 },
    table_size: std::mem::size_of::<PluginVTable>() as u32,
    describe,
    analyse,
    process,
    release_bytes,
    release_floats,
};

/// The entry point the host looks up.
#[no_mangle]
pub extern "C" fn tessera_plugin_entry() -> *const PluginVTable {
    &TABLE
}

/// The description as `tessera-api` 1.0 serialised its `PluginDescription`.
fn description() -> Value {
    json!({
        "info": {
            "name": NAME,
            "version": env!("CARGO_PKG_VERSION"),
            "description": env!("CARGO_PKG_DESCRIPTION"),
        },
        "api_version": "0.1.0",
        "adapters": [NAME],
        "stages": [],
    })
}

/// The adapter: the plan (as 1.0 serialised an `AdapterPlan`) for a graph summary with a
/// `Gemm` or `MatMul`, `null` for any other, or why it cannot tap the first output.
fn plan(graph: &Value) -> Result<Value, String> {
    let nodes = graph["nodes"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let claimed = nodes
        .iter()
        .any(|node| matches!(node["op_type"].as_str(), Some("Gemm" | "MatMul")));
    if !claimed {
        return Ok(Value::Null);
    }
    let output = graph["outputs"][0]["name"]
        .as_str()
        .ok_or("the graph declares no output")?;
    let shape = graph["shapes"][output]
        .as_array()
        .ok_or_else(|| format!("the shape of output {output:?} was not inferred"))?;
    let fixed: Vec<Option<u64>> = shape.iter().map(Value::as_u64).collect();
    let (layout, pooling, width) = match fixed.as_slice() {
        [None, Some(width)] => ("batch_feature", "none", *width),
        [None, Some(_), Some(width)] => ("batch_time_feature", "mean", *width),
        _ => {
            return Err(format!(
                "output {output:?} has shape {shape:?}, not [batch, D] or [batch, T, D]"
            ))
        }
    };
    Ok(json!({
        "score": 0.01,
        "family": NAME,
        "width": width,
        "taps": [{"tensor": output, "layout": layout, "pooling": pooling}],
        "trainable": [],
        "frozen": [],
    }))
}

fn into_owned_bytes(bytes: Vec<u8>) -> OwnedBytes {
    let mut bytes = std::mem::ManuallyDrop::new(bytes);
    OwnedBytes {
        ptr: bytes.as_mut_ptr(),
        len: bytes.len(),
        capacity: bytes.capacity(),
    }
}

/// Runs `call`, writing its bytes or its error (or panic) message into `out`.
///
/// # Safety
/// `out` must be valid for writes.
unsafe fn guarded(out: *mut OwnedBytes, call: impl FnOnce() -> Result<Vec<u8>, String>) -> Status {
    let (status, bytes) = match catch_unwind(AssertUnwindSafe(call)) {
        Ok(Ok(bytes)) => (Status::Ok, bytes),
        Ok(Err(message)) => (Status::Error, message.into_bytes()),
        Err(_) => (Status::Panic, b"a panic".to_vec()),
    };
    // SAFETY: the caller guarantees `out` is writable.
    unsafe { out.write(into_owned_bytes(bytes)) };
    status
}

unsafe extern "C" fn describe(out: *mut OwnedBytes) -> Status {
    // SAFETY: the host passes a writable `out`.
    unsafe { guarded(out, || Ok(description().to_string().into_bytes())) }
}

unsafe extern "C" fn analyse(adapter: u32, graph: ByteView, out: *mut OwnedBytes) -> Status {
    let bytes: &[u8] = if graph.ptr.is_null() || graph.len == 0 {
        &[]
    } else {
        // SAFETY: the host passes `len` readable bytes.
        unsafe { std::slice::from_raw_parts(graph.ptr, graph.len) }
    };
    // SAFETY: the host passes a writable `out`.
    unsafe {
        guarded(out, || {
            if adapter != 0 {
                return Err(format!("no adapter number {adapter}"));
            }
            let graph: Value = serde_json::from_slice(bytes)
                .map_err(|error| format!("unreadable graph summary: {error}"))?;
            Ok(plan(&graph)?.to_string().into_bytes())
        })
    }
}

unsafe extern "C" fn process(
    stage: u32,
    _request: ByteView,
    _vector: FloatView,
    out_json: *mut OwnedBytes,
    out_vector: *mut OwnedFloats,
) -> Status {
    // SAFETY: the host passes writable outputs.
    unsafe {
        out_vector.write(OwnedFloats {
            ptr: std::ptr::null_mut(),
            len: 0,
            capacity: 0,
        });
        guarded(out_json, || Err(format!("no stage number {stage}")))
    }
}

unsafe extern "C" fn release_bytes(bytes: OwnedBytes) {
    if !bytes.ptr.is_null() {
        // SAFETY: the pointer, length and capacity came from `into_owned_bytes`.
        drop(unsafe { Vec::from_raw_parts(bytes.ptr, bytes.len, bytes.capacity) });
    }
}

unsafe extern "C" fn release_floats(floats: OwnedFloats) {
    if !floats.ptr.is_null() {
        // SAFETY: only ever handed out empty (null), so never reached; kept as 1.0 defines it.
        drop(unsafe { Vec::from_raw_parts(floats.ptr, floats.len, floats.capacity) });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call_analyse(graph: &str) -> (Status, String) {
        let table = tessera_plugin_entry();
        // SAFETY: the entry point returns the static table.
        let table = unsafe { &*table };
        let mut out = OwnedBytes {
            ptr: std::ptr::null_mut(),
            len: 0,
            capacity: 0,
        };
        let view = ByteView {
            ptr: graph.as_ptr(),
            len: graph.len(),
        };
        // SAFETY: `view` borrows `graph` for the call; `out` is a valid slot.
        let status = unsafe { (table.analyse)(0, view, &mut out) };
        // SAFETY: the plugin filled `out`; it is released once.
        let text = unsafe { String::from_raw_parts(out.ptr, out.len, out.capacity) };
        (status, text)
    }

    #[test]
    fn the_table_is_the_1_0_layout() {
        // SAFETY: the entry point returns the static table.
        let table = unsafe { &*tessera_plugin_entry() };
        assert_eq!((table.abi.major, table.abi.minor), (1, 0));
        let pointer = std::mem::size_of::<usize>();
        assert_eq!(table.table_size as usize, 8 + 5 * pointer);
        let description = description();
        assert_eq!(description["adapters"], json!([NAME]));
    }

    #[test]
    fn graphs_with_a_matrix_product_are_claimed_and_unknown_fields_ignored() {
        let graph = json!({
            "inputs": [{"name": "x", "dtype": "float32", "shape": ["batch", 8]}],
            "outputs": [{"name": "logits", "dtype": "float32", "shape": ["batch", 3]}],
            "nodes": [{"name": "head", "op_type": "Gemm", "domain": "", "inputs": ["x", "w"],
                       "outputs": ["logits"], "attributes": {"transB": 1}}],
            "initializers": [{"name": "w", "dtype": "float32", "dims": [3, 8]}],
            "opset": 17,
            "opset_imports": {"": 17},
            "shapes": {"logits": ["batch", 3]},
            "a_field_from_the_future": [1, 2, 3],
        });
        let (status, text) = call_analyse(&graph.to_string());
        assert_eq!(status, Status::Ok, "{text}");
        let plan: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(plan["width"], 3);
        assert_eq!(plan["taps"][0]["tensor"], "logits");
        assert_eq!(plan["taps"][0]["layout"], "batch_feature");

        let (status, text) = call_analyse(r#"{"nodes": [{"op_type": "Relu"}]}"#);
        assert_eq!((status, text.as_str()), (Status::Ok, "null"));
        let (status, text) = call_analyse(r#"{"nodes": [{"op_type": "MatMul"}]}"#);
        assert_eq!(status, Status::Error);
        assert!(text.contains("no output"), "{text}");
    }
}
