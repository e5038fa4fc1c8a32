//! A valid shared library that is not a Tessera plugin: it exports a function, but not
//! `tessera_plugin_entry`.

/// Some unrelated exported function.
#[no_mangle]
pub extern "C" fn unrelated_function() -> u32 {
    7
}
