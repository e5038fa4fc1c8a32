//! `tessera mcp --root DIR`: a Model Context Protocol server over standard input and output
//! (JSON-RPC 2.0, one message per line) whose tools inspect and validate tokens, inspect
//! models and run transfers — on files under the given roots only.

mod roots;
mod tools;

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use roots::Roots;

/// The protocol revisions this server speaks, newest first; a client asking for another gets
/// the newest.
const PROTOCOL_VERSIONS: [&str; 3] = ["2025-11-25", "2025-06-18", "2025-03-26"];

/// JSON-RPC error codes.
const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;
const METHOD_NOT_FOUND: i64 = -32601;
const INVALID_PARAMS: i64 = -32602;

/// Arguments of `tessera mcp`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A folder the tools may read and write under (repeat for more); every path argument is
    /// resolved, symbolic links included, and refused outside them. Relative paths are taken
    /// from the first root.
    #[arg(long = "root", value_name = "DIR", required = true)]
    roots: Vec<PathBuf>,
}

/// Where messages to the client go: standard output, one JSON message per line.
pub struct Channel<W: Write> {
    out: W,
}

impl<W: Write> Channel<W> {
    /// Sends one message; fails when the client has gone.
    pub fn send(&mut self, message: &Value) -> std::io::Result<()> {
        writeln!(self.out, "{message}")?;
        self.out.flush()
    }
}

/// The server's state: its roots and the plugins found at start.
pub struct Server {
    roots: Roots,
    registry: tessera_host::plugin::PluginRegistry,
}

/// A JSON-RPC error response to `id`.
fn error_response(id: Value, code: i64, message: impl Into<String>) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message.into()}})
}

impl Server {
    /// Answers one line from the client, sending the response (and any notifications) on
    /// `channel`.
    pub fn handle<W: Write>(&self, line: &str, channel: &mut Channel<W>) -> std::io::Result<()> {
        let message: Value = match serde_json::from_str(line) {
            Ok(message) => message,
            Err(error) => {
                return channel.send(&error_response(
                    Value::Null,
                    PARSE_ERROR,
                    format!("not JSON: {error}"),
                ))
            }
        };
        let Some(object) = message.as_object() else {
            return channel.send(&error_response(
                Value::Null,
                INVALID_REQUEST,
                "expected one JSON-RPC 2.0 request object (batches are not part of MCP)",
            ));
        };
        let Some(method) = object.get("method").and_then(Value::as_str) else {
            // Responses (a result or an error) need no answer; anything else with an id does.
            let response = object.contains_key("result") || object.contains_key("error");
            return match object.get("id") {
                Some(id) if !response => channel.send(&error_response(
                    id.clone(),
                    INVALID_REQUEST,
                    "a request needs a method",
                )),
                _ => Ok(()),
            };
        };
        let Some(id) = object.get("id").cloned() else {
            return Ok(()); // a notification
        };
        if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
            return channel.send(&error_response(
                id,
                INVALID_REQUEST,
                "not a JSON-RPC 2.0 message (\"jsonrpc\": \"2.0\" is missing)",
            ));
        }
        let params = object.get("params").cloned().unwrap_or(Value::Null);
        let result = match method {
            "initialize" => Ok(initialize(&params)),
            "ping" => Ok(json!({})),
            "tools/list" => Ok(json!({"tools": tools::definitions()})),
            "tools/call" => self.call(&params, channel),
            other => Err((METHOD_NOT_FOUND, format!("no method {other:?}"))),
        };
        channel.send(&match result {
            Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
            Err((code, message)) => error_response(id, code, message),
        })
    }

    /// `tools/call`: runs a tool; what fails inside it is the tool's result (`isError`), so
    /// the client can read why.
    fn call<W: Write>(
        &self,
        params: &Value,
        channel: &mut Channel<W>,
    ) -> Result<Value, (i64, String)> {
        let name = params
            .get("name")
            .and_then(Value::as_str)
            .ok_or((INVALID_PARAMS, "tools/call needs a tool name".to_string()))?;
        if !tools::NAMES.contains(&name) {
            return Err((
                INVALID_PARAMS,
                format!(
                    "no tool {name:?}; the tools are {}",
                    tools::NAMES.join(", ")
                ),
            ));
        }
        let arguments = params.get("arguments").cloned().unwrap_or(json!({}));
        let progress_token = params
            .get("_meta")
            .and_then(|meta| meta.get("progressToken"))
            .cloned();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            tools::call(self, name, &arguments, progress_token, channel)
        }))
        .unwrap_or_else(|_| Err(anyhow::anyhow!("internal error in tool {name}")));
        Ok(match outcome {
            Ok(report) => json!({
                "content": [{"type": "text", "text": serde_json::to_string_pretty(&report)
                    .unwrap_or_default()}],
                "structuredContent": report,
                "isError": false,
            }),
            Err(error) => json!({
                "content": [{"type": "text", "text": format!("{error:#}")}],
                "isError": true,
            }),
        })
    }
}

/// The answer to `initialize`: the revision agreed, what the server offers.
fn initialize(params: &Value) -> Value {
    let asked = params.get("protocolVersion").and_then(Value::as_str);
    let version = asked
        .filter(|asked| PROTOCOL_VERSIONS.contains(asked))
        .unwrap_or(PROTOCOL_VERSIONS[0]);
    json!({
        "protocolVersion": version,
        "capabilities": {"tools": {"listChanged": false}},
        "serverInfo": {"name": "tessera", "version": env!("CARGO_PKG_VERSION")},
        "instructions": "Tessera transfers what one trained ONNX model knows into another of a \
            different architecture, and reads the TBF knowledge tokens that carry it. Paths are \
            files under the server's roots; relative paths start at the first root.",
    })
}

/// Runs `tessera mcp` until the client closes standard input.
pub fn run(args: &Args, config: Option<&Path>) -> anyhow::Result<()> {
    let server = Server {
        roots: Roots::new(&args.roots)?,
        registry: super::registry(config)?,
    };
    let mut channel = Channel {
        out: std::io::stdout().lock(),
    };
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        if let Err(error) = server.handle(&line, &mut channel) {
            if error.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(());
            }
            return Err(error.into());
        }
    }
    Ok(())
}
