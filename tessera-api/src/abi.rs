//! The binary interface under the safe traits. Plugin authors never touch it: they implement
//! [`Plugin`] and invoke [`export_plugin!`](crate::export_plugin); the host uses it
//! through its loader.
//!
//! Rules that make it sound across separately compiled libraries:
//! - one `extern "C"` entry point, [`ENTRY_SYMBOL`], returns a `#[repr(C)]` table whose first
//!   fields are the ABI version and the table's size, checked before anything else is called;
//! - structured data crosses as JSON bytes, payload vectors as borrowed float views;
//! - memory is freed by the side that allocated it (the table's `release_*` functions);
//! - every function catches panics and reports them as errors;
//! - the host never unloads a plugin library.
//!
//! Within a major version the layouts here stay as they are. A minor version may append
//! functions to the end of [`PluginVTable`] (a host calls one only when the plugin's
//! `table_size` covers it, so a table from an older minor, down to [`MIN_TABLE_SIZE`], still
//! loads) and add fields to the JSON documents, which every reader fills with defaults when
//! missing and ignores when unknown.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;

use crate::adapter::ArchitectureAdapter;
use crate::graph::GraphSummary;
use crate::plugin::{Plugin, PluginDescription};
use crate::stage::{StageContext, StageToken, TokenStage};
use crate::{AbiVersion, ABI_VERSION};

/// Name of the function every plugin library exports.
pub const ENTRY_SYMBOL: &[u8] = b"tessera_plugin_entry";

/// Signature of the entry point: returns the plugin's table, or null if it failed to start.
pub type EntryPoint = unsafe extern "C" fn() -> *const PluginVTable;

/// Outcome of a call across the boundary.
///
/// Its values are part of the ABI's major version: a minor version never adds one, since an
/// older peer could not represent it. Outside this crate, match with a wildcard arm anyway.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Status {
    /// Success; outputs are filled.
    Ok = 0,
    /// The call failed; the message output holds UTF-8 text.
    Error = 1,
    /// The plugin panicked; the message output holds UTF-8 text.
    Panic = 2,
}

/// Bytes borrowed for the duration of a call. Built with [`ByteView::new`].
#[repr(C)]
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct ByteView {
    /// First byte.
    pub ptr: *const u8,
    /// Number of bytes.
    pub len: usize,
}

impl ByteView {
    /// A view of `bytes`; it must not be used after `bytes` is dropped or moved.
    pub fn new(bytes: &[u8]) -> Self {
        Self {
            ptr: bytes.as_ptr(),
            len: bytes.len(),
        }
    }
}

/// Floats borrowed for the duration of a call. Built with [`FloatView::new`].
#[repr(C)]
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct FloatView {
    /// First element.
    pub ptr: *const f32,
    /// Number of elements.
    pub len: usize,
}

impl FloatView {
    /// A view of `floats`; it must not be used after `floats` is dropped or moved.
    pub fn new(floats: &[f32]) -> Self {
        Self {
            ptr: floats.as_ptr(),
            len: floats.len(),
        }
    }
}

/// Bytes allocated by the plugin, handed to the host, returned with `release_bytes`. The
/// caller passes an [`OwnedBytes::empty`] slot for the plugin to fill.
#[repr(C)]
#[derive(Debug)]
#[non_exhaustive]
pub struct OwnedBytes {
    /// First byte.
    pub ptr: *mut u8,
    /// Number of bytes.
    pub len: usize,
    /// Allocated capacity.
    pub capacity: usize,
}

impl OwnedBytes {
    /// An empty output slot (a null pointer, nothing to release).
    pub const fn empty() -> Self {
        Self {
            ptr: std::ptr::null_mut(),
            len: 0,
            capacity: 0,
        }
    }
}

/// Floats allocated by the plugin, handed to the host, returned with `release_floats`. The
/// caller passes an [`OwnedFloats::empty`] slot for the plugin to fill.
#[repr(C)]
#[derive(Debug)]
#[non_exhaustive]
pub struct OwnedFloats {
    /// First element.
    pub ptr: *mut f32,
    /// Number of elements.
    pub len: usize,
    /// Allocated capacity.
    pub capacity: usize,
}

impl OwnedFloats {
    /// An empty output slot (a null pointer, nothing to release).
    pub const fn empty() -> Self {
        Self {
            ptr: std::ptr::null_mut(),
            len: 0,
            capacity: 0,
        }
    }
}

/// The table a plugin hands to the host. Only [`export_plugin!`](crate::export_plugin) builds
/// one; a minor version may append functions at its end (see [`MIN_TABLE_SIZE`]).
#[repr(C)]
#[derive(Clone, Copy)]
#[non_exhaustive]
pub struct PluginVTable {
    /// The ABI version the plugin was built with; checked first.
    pub abi: AbiVersion,
    /// `size_of::<PluginVTable>()` in the plugin's build.
    pub table_size: u32,
    /// Writes the plugin's [`PluginDescription`] as JSON into `out`.
    pub describe: unsafe extern "C" fn(out: *mut OwnedBytes) -> Status,
    /// Runs adapter number `adapter` on a [`GraphSummary`] (JSON); writes an
    /// `Option<AdapterPlan>` as JSON, or an error message, into `out`.
    pub analyse:
        unsafe extern "C" fn(adapter: u32, graph: ByteView, out: *mut OwnedBytes) -> Status,
    /// Runs stage number `stage` on a token (its shape and metadata as JSON, with the
    /// [`StageContext`]: `{"token": ..., "context": ...}`) and its payload; writes the resulting
    /// token's JSON into `out_json` (or an error message) and its payload into `out_vector`.
    pub process: unsafe extern "C" fn(
        stage: u32,
        request: ByteView,
        vector: FloatView,
        out_json: *mut OwnedBytes,
        out_vector: *mut OwnedFloats,
    ) -> Status,
    /// Frees bytes the plugin returned.
    pub release_bytes: unsafe extern "C" fn(bytes: OwnedBytes),
    /// Frees floats the plugin returned.
    pub release_floats: unsafe extern "C" fn(floats: OwnedFloats),
}

/// The size of the ABI 1.0 table, up to and including `release_floats`: the smallest
/// `table_size` a host of major version 1 accepts. Functions a later minor version appends lie
/// beyond it; a host calls one only when the plugin's `table_size` covers it.
pub const MIN_TABLE_SIZE: u32 = (std::mem::offset_of!(PluginVTable, release_floats)
    + std::mem::size_of::<unsafe extern "C" fn(OwnedFloats)>())
    as u32;

/// The request `process` receives as JSON. Built with [`ProcessRequest::new`].
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct ProcessRequest {
    /// The token's shape and metadata (the payload travels separately).
    pub token: StageToken,
    /// The stage's context.
    pub context: StageContext,
}

impl ProcessRequest {
    /// The request to run a stage on `token` with `context`.
    pub fn new(token: StageToken, context: StageContext) -> Self {
        Self { token, context }
    }
}

struct Instance {
    description: PluginDescription,
    adapters: Vec<Box<dyn ArchitectureAdapter>>,
    stages: Vec<Box<dyn TokenStage>>,
}

static INSTANCE: OnceLock<Option<Instance>> = OnceLock::new();

static VTABLE: PluginVTable = PluginVTable {
    abi: ABI_VERSION,
    table_size: std::mem::size_of::<PluginVTable>() as u32,
    describe,
    analyse,
    process,
    release_bytes,
    release_floats,
};

/// Builds the plugin once and returns its table (null if the constructor panicked). Called by
/// the code [`export_plugin!`](crate::export_plugin) generates.
#[doc(hidden)]
pub fn install(constructor: fn() -> Box<dyn Plugin>) -> *const PluginVTable {
    let instance = INSTANCE.get_or_init(|| {
        // Panics in this library come back to the host as errors, which it reports; the
        // default hook would also print them (with a backtrace) to standard error.
        std::panic::set_hook(Box::new(|_| {}));
        catch_unwind(|| {
            let plugin = constructor();
            let adapters = plugin.adapters();
            let stages = plugin.stages();
            let description = PluginDescription::of(plugin.info(), &adapters, &stages);
            Instance {
                description,
                adapters,
                stages,
            }
        })
        .ok()
    });
    match instance {
        Some(_) => &VTABLE,
        None => std::ptr::null(),
    }
}

fn instance() -> Result<&'static Instance, String> {
    INSTANCE
        .get()
        .and_then(Option::as_ref)
        .ok_or_else(|| "the plugin was not installed".to_string())
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|text| (*text).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

fn into_owned_bytes(bytes: Vec<u8>) -> OwnedBytes {
    let mut bytes = std::mem::ManuallyDrop::new(bytes);
    OwnedBytes {
        ptr: bytes.as_mut_ptr(),
        len: bytes.len(),
        capacity: bytes.capacity(),
    }
}

fn into_owned_floats(floats: Vec<f32>) -> OwnedFloats {
    let mut floats = std::mem::ManuallyDrop::new(floats);
    OwnedFloats {
        ptr: floats.as_mut_ptr(),
        len: floats.len(),
        capacity: floats.capacity(),
    }
}

/// Runs `call`, turning an error or a panic into a status and a message in `out`.
///
/// # Safety
/// `out` must be valid for writes.
unsafe fn guarded(out: *mut OwnedBytes, call: impl FnOnce() -> Result<Vec<u8>, String>) -> Status {
    let (status, bytes) = match catch_unwind(AssertUnwindSafe(call)) {
        Ok(Ok(bytes)) => (Status::Ok, bytes),
        Ok(Err(message)) => (Status::Error, message.into_bytes()),
        Err(payload) => (Status::Panic, panic_message(payload.as_ref()).into_bytes()),
    };
    // SAFETY: the caller guarantees `out` is writable.
    unsafe { out.write(into_owned_bytes(bytes)) };
    status
}

/// # Safety
/// `view` must describe `len` readable bytes (or be empty).
unsafe fn borrow_bytes<'a>(view: ByteView) -> &'a [u8] {
    if view.len == 0 || view.ptr.is_null() {
        return &[];
    }
    // SAFETY: guaranteed by the caller.
    unsafe { std::slice::from_raw_parts(view.ptr, view.len) }
}

unsafe extern "C" fn describe(out: *mut OwnedBytes) -> Status {
    // SAFETY: the host passes a writable `out`.
    unsafe {
        guarded(out, || {
            serde_json::to_vec(&instance()?.description).map_err(|error| error.to_string())
        })
    }
}

unsafe extern "C" fn analyse(adapter: u32, graph: ByteView, out: *mut OwnedBytes) -> Status {
    // SAFETY: the host passes a readable `graph` and a writable `out`.
    unsafe {
        let graph = borrow_bytes(graph);
        guarded(out, || {
            let adapter = instance()?
                .adapters
                .get(adapter as usize)
                .ok_or_else(|| format!("no adapter number {adapter}"))?;
            let graph: GraphSummary = serde_json::from_slice(graph)
                .map_err(|error| format!("unreadable graph summary: {error}"))?;
            let plan = adapter.analyse(&graph)?;
            serde_json::to_vec(&plan).map_err(|error| error.to_string())
        })
    }
}

unsafe extern "C" fn process(
    stage: u32,
    request: ByteView,
    vector: FloatView,
    out_json: *mut OwnedBytes,
    out_vector: *mut OwnedFloats,
) -> Status {
    // SAFETY: the host passes readable views and writable outputs.
    unsafe {
        let request = borrow_bytes(request);
        let input: &[f32] = if vector.len == 0 || vector.ptr.is_null() {
            &[]
        } else {
            std::slice::from_raw_parts(vector.ptr, vector.len)
        };
        let mut produced = Vec::new();
        let status = guarded(out_json, || {
            let stage = instance()?
                .stages
                .get(stage as usize)
                .ok_or_else(|| format!("no stage number {stage}"))?;
            let request: ProcessRequest = serde_json::from_slice(request)
                .map_err(|error| format!("unreadable stage request: {error}"))?;
            let mut token = request.token;
            token.vector = input.to_vec();
            let mut result = stage.process(token, &request.context)?;
            produced = std::mem::take(&mut result.vector);
            serde_json::to_vec(&result).map_err(|error| error.to_string())
        });
        out_vector.write(into_owned_floats(produced));
        status
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
        // SAFETY: the pointer, length and capacity came from `into_owned_floats`.
        drop(unsafe { Vec::from_raw_parts(floats.ptr, floats.len, floats.capacity) });
    }
}

/// Exports a plugin: `tessera_api::export_plugin!(MyPlugin::default());` in the plugin crate's
/// `lib.rs` (a `cdylib`). The expression is evaluated once, when the host first loads the library.
#[macro_export]
macro_rules! export_plugin {
    ($constructor:expr) => {
        /// The entry point the Tessera host looks up.
        #[no_mangle]
        pub extern "C" fn tessera_plugin_entry() -> *const $crate::abi::PluginVTable {
            fn construct() -> ::std::boxed::Box<dyn $crate::Plugin> {
                ::std::boxed::Box::new($constructor)
            }
            $crate::abi::install(construct)
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AdapterPlan, Metadata, PluginInfo, Pooling, StageKind, TapLayout, TapPoint};

    /// Claims a graph by tapping its first output, and reports the opsets it was told about.
    struct FirstOutput;

    impl ArchitectureAdapter for FirstOutput {
        fn name(&self) -> &str {
            "first-output"
        }

        fn analyse(&self, graph: &GraphSummary) -> Result<Option<AdapterPlan>, String> {
            let Some(output) = graph.outputs.first() else {
                return Ok(None);
            };
            let family = format!("imports {}", graph.opset_imports.len());
            let tap = TapPoint::new(output.name.clone(), TapLayout::BatchFeature, Pooling::None);
            Ok(Some(AdapterPlan::new(family, 0.5, 3, vec![tap])))
        }
    }

    struct Negate;

    impl TokenStage for Negate {
        fn name(&self) -> &str {
            "negate"
        }

        fn kind(&self) -> StageKind {
            StageKind::Transform
        }

        fn process(
            &self,
            mut token: StageToken,
            context: &StageContext,
        ) -> Result<StageToken, String> {
            token.vector.iter_mut().for_each(|value| *value = -*value);
            let note = context.parameters.get("note").cloned().unwrap_or_default();
            token.metadata.insert("note".into(), note);
            Ok(token)
        }
    }

    struct TestPlugin;

    impl Plugin for TestPlugin {
        fn info(&self) -> PluginInfo {
            PluginInfo::new("test", "0.0.0", "the table's own test")
        }

        fn adapters(&self) -> Vec<Box<dyn ArchitectureAdapter>> {
            vec![Box::new(FirstOutput)]
        }

        fn stages(&self) -> Vec<Box<dyn TokenStage>> {
            vec![Box::new(Negate)]
        }
    }

    fn construct() -> Box<dyn Plugin> {
        Box::new(TestPlugin)
    }

    fn take(table: &PluginVTable, out: OwnedBytes) -> Vec<u8> {
        // SAFETY: the plugin filled `out` with `len` bytes it owns until released.
        let bytes = unsafe { std::slice::from_raw_parts(out.ptr, out.len) }.to_vec();
        // SAFETY: returning the plugin's allocation, once.
        unsafe { (table.release_bytes)(out) };
        bytes
    }

    #[test]
    fn the_table_reads_json_of_older_and_newer_minors() {
        // SAFETY: `install` returns a valid, never-freed table.
        let table = unsafe { &*install(construct) };
        assert_eq!(table.abi, ABI_VERSION);
        assert_eq!(
            table.table_size as usize,
            std::mem::size_of::<PluginVTable>()
        );
        assert!(MIN_TABLE_SIZE as usize <= std::mem::size_of::<PluginVTable>());

        let mut out = OwnedBytes::empty();
        // SAFETY: `out` is a valid output slot.
        assert_eq!(unsafe { (table.describe)(&mut out) }, Status::Ok);
        let description: PluginDescription = serde_json::from_slice(&take(table, out)).unwrap();
        assert_eq!(description.adapters, ["first-output"]);

        let analyse = |graph: &str| {
            let mut out = OwnedBytes::empty();
            // SAFETY: the view borrows `graph` for the call; `out` is a valid output slot.
            let status = unsafe { (table.analyse)(0, ByteView::new(graph.as_bytes()), &mut out) };
            (status, take(table, out))
        };
        // A 1.0 host sends no `opset_imports`; a newer one may send fields unknown here.
        let (status, plan) = analyse(
            r#"{"inputs": [], "outputs": [{"name": "y", "dtype": "float32", "shape": []}],
                "nodes": [], "initializers": [], "opset": 17}"#,
        );
        assert_eq!(status, Status::Ok);
        let plan: Option<AdapterPlan> = serde_json::from_slice(&plan).unwrap();
        assert_eq!(plan.unwrap().family, "imports 0");
        let (status, plan) = analyse(
            r#"{"outputs": [{"name": "y"}], "opset_imports": {"": 17, "com.microsoft": 1},
                "a_later_field": [1, 2, 3]}"#,
        );
        assert_eq!(status, Status::Ok, "{}", String::from_utf8_lossy(&plan));
        let plan: Option<AdapterPlan> = serde_json::from_slice(&plan).unwrap();
        assert_eq!(plan.unwrap().family, "imports 2");
        let (status, message) = analyse("not json");
        assert_eq!(status, Status::Error);
        assert!(String::from_utf8_lossy(&message).starts_with("unreadable graph summary"));

        let mut parameters = Metadata::new();
        parameters.insert("note".into(), "hi".into());
        let request = serde_json::to_vec(&ProcessRequest::new(
            StageToken::new(Vec::new(), vec![2], Metadata::new()),
            StageContext::new(parameters),
        ))
        .unwrap();
        let payload = [1.0f32, -2.0];
        let (mut out, mut floats) = (OwnedBytes::empty(), OwnedFloats::empty());
        // SAFETY: the views borrow `request` and `payload` for the call; the outputs are valid.
        let status = unsafe {
            (table.process)(
                0,
                ByteView::new(&request),
                FloatView::new(&payload),
                &mut out,
                &mut floats,
            )
        };
        assert_eq!(status, Status::Ok);
        let token: StageToken = serde_json::from_slice(&take(table, out)).unwrap();
        assert_eq!(token.metadata.get("note").unwrap(), "hi");
        // SAFETY: the plugin filled `floats` with `len` floats it owns until released.
        let produced = unsafe { std::slice::from_raw_parts(floats.ptr, floats.len) }.to_vec();
        // SAFETY: returning the plugin's allocation, once.
        unsafe { (table.release_floats)(floats) };
        assert_eq!(produced, [-1.0, 2.0]);
    }
}
