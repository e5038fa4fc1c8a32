//! Loading plugin libraries and calling them through the C ABI of [`tessera_api::abi`].
//!
//! Libraries are never unloaded: a plugin's thread-local destructors would make that unsound,
//! so each loaded library lives for the rest of the process.

use std::path::{Path, PathBuf};

use tessera_api::abi::{
    ByteView, EntryPoint, FloatView, OwnedBytes, OwnedFloats, PluginVTable, ProcessRequest, Status,
    ENTRY_SYMBOL,
};
use tessera_api::{
    AbiVersion, AdapterPlan, ArchitectureAdapter, GraphSummary, PluginDescription, StageContext,
    StageKind, StageToken, TokenStage, ABI_VERSION,
};

use super::LoadedPlugin;
use crate::{Error, Result};

/// The table of a loaded plugin, valid for the rest of the process.
#[derive(Clone, Copy)]
struct Table(&'static PluginVTable);

// SAFETY: the table only holds function pointers and plain integers; the plugin's functions
// are required (by `Plugin: Send + Sync`) to be callable from any thread.
unsafe impl Send for Table {}
// SAFETY: as above.
unsafe impl Sync for Table {}

/// Loads the plugin library at `path`, checks its ABI version before anything else, and asks
/// it what it provides.
pub fn load(path: &Path) -> Result<LoadedPlugin> {
    let failure = |message: String| Error::Plugin {
        subject: format!("plugin {}", path.display()),
        message,
    };
    // SAFETY: loading a library runs its initialisers; plugins are trusted code the user chose
    // to install, as with any native extension.
    let library = unsafe { libloading::Library::new(path) }.map_err(|error| {
        failure(format!(
            "cannot be loaded as a shared library ({error}); plugins are cdylib crates built for this platform"
        ))
    })?;
    // SAFETY: the symbol's type is fixed by the ABI; a library exporting this name with another
    // type is not a Tessera plugin and breaks that contract.
    let entry: EntryPoint = match unsafe { library.get::<EntryPoint>(ENTRY_SYMBOL) } {
        Ok(symbol) => *symbol,
        Err(_) => {
            return Err(failure(format!(
                "exports no `{}` function; a Tessera plugin calls `tessera_api::export_plugin!`",
                String::from_utf8_lossy(ENTRY_SYMBOL)
            )))
        }
    };
    // Never unloaded (see the module documentation).
    std::mem::forget(library);
    // SAFETY: `entry` has the ABI's signature; the library stays loaded.
    let table = unsafe { entry() };
    if table.is_null() {
        return Err(failure("failed to start: its constructor panicked".into()));
    }
    // SAFETY: every ABI version starts the table with the version, then the table size; only
    // these two fields are read before the version is known to match.
    let (abi, table_size) = unsafe {
        (
            std::ptr::read(table.cast::<AbiVersion>()),
            std::ptr::read(table.cast::<u8>().add(4).cast::<u32>()),
        )
    };
    if !ABI_VERSION.is_compatible_with(abi) {
        return Err(failure(format!(
            "was built for plugin ABI {abi}, but this host speaks ABI {ABI_VERSION}; rebuild it \
             against tessera-api {}",
            env!("CARGO_PKG_VERSION")
        )));
    }
    // A table from an older minor version is shorter once later minors append functions; the
    // functions of ABI 1.0 must all be there.
    if table_size < tessera_api::abi::MIN_TABLE_SIZE {
        return Err(failure(format!(
            "its function table is {table_size} bytes, smaller than ABI {abi} requires"
        )));
    }
    // SAFETY: version and size checked; the library is never unloaded.
    let table = Table(unsafe { &*table });
    let description: PluginDescription = serde_json::from_slice(
        &call(table, |out| {
            // SAFETY: `out` is a valid output slot.
            unsafe { (table.0.describe)(out) }
        })
        .map_err(failure)?,
    )
    .map_err(|error| failure(format!("returned an unreadable description: {error}")))?;
    let name = description.info.name.clone();
    let adapters = description
        .adapters
        .iter()
        .enumerate()
        .map(|(index, adapter)| {
            Box::new(DynamicAdapter {
                table,
                index: index as u32,
                name: adapter.clone(),
                plugin: name.clone(),
            }) as Box<dyn ArchitectureAdapter>
        })
        .collect();
    let stages = description
        .stages
        .iter()
        .enumerate()
        .map(|(index, stage)| {
            Box::new(DynamicStage {
                table,
                index: index as u32,
                name: stage.name.clone(),
                kind: stage.kind,
                plugin: name.clone(),
            }) as Box<dyn TokenStage>
        })
        .collect();
    Ok(LoadedPlugin {
        description,
        path: Some(PathBuf::from(path)),
        abi,
        adapters,
        stages,
    })
}

/// Calls a function that fills one byte output; returns the bytes, or the error or panic
/// message the plugin reported.
fn call(table: Table, function: impl FnOnce(*mut OwnedBytes) -> Status) -> Result<Vec<u8>, String> {
    let mut out = OwnedBytes::empty();
    let status = function(&mut out);
    let bytes = take_bytes(table, out);
    match status {
        Status::Ok => Ok(bytes),
        Status::Error => Err(String::from_utf8_lossy(&bytes).into_owned()),
        Status::Panic => Err(format!("panicked: {}", String::from_utf8_lossy(&bytes))),
        other => Err(format!(
            "returned status {other:?}, which this host does not know: {}",
            String::from_utf8_lossy(&bytes)
        )),
    }
}

fn take_bytes(table: Table, out: OwnedBytes) -> Vec<u8> {
    let bytes = if out.ptr.is_null() {
        Vec::new()
    } else {
        // SAFETY: the plugin filled `out` with `len` initialised bytes it owns until released.
        unsafe { std::slice::from_raw_parts(out.ptr, out.len) }.to_vec()
    };
    // SAFETY: returning the plugin's own allocation to it, once.
    unsafe { (table.0.release_bytes)(out) };
    bytes
}

fn take_floats(table: Table, out: OwnedFloats) -> Vec<f32> {
    let floats = if out.ptr.is_null() {
        Vec::new()
    } else {
        // SAFETY: the plugin filled `out` with `len` initialised floats it owns until released.
        unsafe { std::slice::from_raw_parts(out.ptr, out.len) }.to_vec()
    };
    // SAFETY: returning the plugin's own allocation to it, once.
    unsafe { (table.0.release_floats)(out) };
    floats
}

/// An adapter that lives in a plugin library.
struct DynamicAdapter {
    table: Table,
    index: u32,
    name: String,
    plugin: String,
}

impl ArchitectureAdapter for DynamicAdapter {
    fn name(&self) -> &str {
        &self.name
    }

    fn analyse(&self, graph: &GraphSummary) -> Result<Option<AdapterPlan>, String> {
        let request = serde_json::to_vec(graph).map_err(|error| error.to_string())?;
        let view = ByteView::new(&request);
        let reply = call(self.table, |out| {
            // SAFETY: `view` borrows `request` for the call; `out` is a valid output slot.
            unsafe { (self.table.0.analyse)(self.index, view, out) }
        })?;
        serde_json::from_slice(&reply).map_err(|error| {
            format!(
                "plugin {} returned an unreadable plan: {error}",
                self.plugin
            )
        })
    }
}

/// A chain stage that lives in a plugin library.
struct DynamicStage {
    table: Table,
    index: u32,
    name: String,
    kind: StageKind,
    plugin: String,
}

impl TokenStage for DynamicStage {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> StageKind {
        self.kind
    }

    fn process(&self, token: StageToken, context: &StageContext) -> Result<StageToken, String> {
        let vector = FloatView::new(&token.vector);
        let request = serde_json::to_vec(&ProcessRequest::new(token.clone(), context.clone()))
            .map_err(|error| error.to_string())?;
        let view = ByteView::new(&request);
        let mut out_vector = OwnedFloats::empty();
        let reply = call(self.table, |out| {
            // SAFETY: the views borrow `request` and the token's vector for the call; the
            // outputs are valid slots.
            unsafe { (self.table.0.process)(self.index, view, vector, out, &mut out_vector) }
        });
        let produced = take_floats(self.table, out_vector);
        let mut result: StageToken = serde_json::from_slice(&reply?).map_err(|error| {
            format!(
                "plugin {} returned an unreadable token: {error}",
                self.plugin
            )
        })?;
        result.vector = produced;
        Ok(result)
    }
}
