//! The MCP server's tools: their input schemas, and each one's call on the library's jobs.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};
use tessera_host::dataset::Dataset;
use tessera_host::jobs::{
    inspect_token, invalid_token_verdict, tuned_receiver_path, validate_token, AbsorbSettings,
    JobFiles, ModelInspection, TransferSettings, ABSORB_SETTINGS, EMITTED_TOKEN, SETTINGS,
    TRANSFER_TOKEN,
};
use tessera_host::tbf::{HmacKey, LoadOptions};
use tessera_host::transfer::{Phase, Progress};
use tessera_host::Error;

use super::{Channel, Server};

/// The tools, by name.
pub const NAMES: [&str; 6] = [
    "inspect_token",
    "validate_token",
    "inspect_model",
    "transfer",
    "emit",
    "absorb",
];

/// A job tool's file argument: key, whether required, what it is.
type FileArgument = (&'static str, bool, &'static str);

const TRANSMITTER: FileArgument = (
    "transmitter",
    true,
    "the trained model whose behaviour is transferred (ONNX)",
);
const RECEIVER: FileArgument = ("receiver", true, "the model that learns it (ONNX)");
const VAL_LABELS: FileArgument = (
    "val_labels",
    false,
    "labels of the held-out inputs, for accuracy only (.npy)",
);
const RECEIVER_OUT: FileArgument = (
    "receiver_out",
    false,
    "where the tuned receiver is written [<receiver>.tuned.onnx]",
);

/// The transfer tool's file arguments.
const TRANSFER_FILES: [FileArgument; 7] = [
    TRANSMITTER,
    RECEIVER,
    (
        "inputs",
        true,
        "unlabelled inputs, one sample per row (.npy)",
    ),
    (
        "val_inputs",
        false,
        "held-out inputs to measure on (.npy) [a share of inputs]",
    ),
    VAL_LABELS,
    RECEIVER_OUT,
    (
        "token_out",
        false,
        "where the knowledge token is written [transfer.tbf]",
    ),
];

/// The emit tool's file arguments.
const EMIT_FILES: [FileArgument; 4] = [
    TRANSMITTER,
    (
        "inputs",
        true,
        "the reference inputs both sides hold, one sample per row (.npy)",
    ),
    (
        "val_inputs",
        false,
        "separate held-out inputs the receiver will measure on (.npy) [a share of inputs]",
    ),
    (
        "token_out",
        false,
        "where the knowledge token is written [knowledge.tbf]",
    ),
];

/// The absorb tool's file arguments.
const ABSORB_FILES: [FileArgument; 6] = [
    ("token", true, "the knowledge token (from emit)"),
    RECEIVER,
    (
        "inputs",
        true,
        "the reference inputs the knowledge was emitted for (.npy)",
    ),
    (
        "val_inputs",
        false,
        "the separate held-out inputs, when the knowledge was emitted with them (.npy)",
    ),
    VAL_LABELS,
    RECEIVER_OUT,
];

/// Setting keys that name files, confined to the roots like every other path: key, whether
/// it must exist.
const SETTING_FILES: [(&str, bool); 3] = [("ledger", false), ("sign_key", true), ("trust", true)];

/// Settings of a transfer that are the receiver's choice, so not the emit tool's.
const RECEIVER_SETTINGS: [&str; 2] = ["receiver_adapter", "quant"];

fn string(description: &str) -> Value {
    json!({"type": "string", "description": description})
}

fn token_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "path": string("the token (.tbf), under a root"),
            "hmac_key_hex": string("verify the token's HMAC-SHA256 with this key (hex)"),
            "full": {"type": "boolean", "description": "also return every vector element"},
        },
        "required": ["path"],
        "additionalProperties": false,
    })
}

/// The input schema of a job tool taking `files` and the `settings` (key, JSON type, what it
/// does) not in `skip`.
fn job_schema(files: &[FileArgument], settings: &[(&str, &str, &str)], skip: &[&str]) -> Value {
    let mut properties = Map::new();
    for (key, _, description) in files {
        properties.insert(key.to_string(), string(description));
    }
    for (key, kind, description) in settings {
        if skip.contains(key) {
            continue;
        }
        let kind: Value = match *kind {
            "number|string" => json!(["number", "string"]),
            other => other.into(),
        };
        properties.insert(
            key.to_string(),
            json!({"type": kind, "description": description}),
        );
    }
    let required: Vec<&str> = files
        .iter()
        .filter(|(_, required, _)| *required)
        .map(|(key, _, _)| *key)
        .collect();
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

/// Every tool with its description and JSON input schema (`tools/list`).
pub fn definitions() -> Value {
    let mut validate = token_schema();
    validate["properties"]
        .as_object_mut()
        .map(|properties| properties.remove("full"));
    json!([
        {
            "name": "inspect_token",
            "description": "A TBF knowledge token's header, metadata and vector statistics.",
            "inputSchema": token_schema(),
        },
        {
            "name": "validate_token",
            "description": "Checks a token's structure, checksums and (with a key) its HMAC; \
                returns the verdict, valid or not.",
            "inputSchema": validate,
        },
        {
            "name": "inspect_model",
            "description": "An ONNX model's inputs, outputs, operators and parameters, and the \
                architecture adapter that claims it with its tap points.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "path": string("the model (.onnx), under a root"),
                    "adapter": string("use this adapter instead of the best-scoring one"),
                },
                "required": ["path"],
                "additionalProperties": false,
            },
        },
        {
            "name": "transfer",
            "description": "Mode A: transfers the transmitter's behaviour into the receiver \
                without labels; writes the tuned receiver and the knowledge token and returns \
                the report (as `tessera transfer --json`). Sends progress notifications when \
                the call carries a progress token.",
            "inputSchema": job_schema(&TRANSFER_FILES, SETTINGS, &[]),
        },
        {
            "name": "emit",
            "description": "The transmitter's half of two-party transfer: runs only the \
                transmitter on the reference inputs and writes what a receiver needs to learn \
                from it as a knowledge token, released with differential privacy (as `tessera \
                emit --json`).",
            "inputSchema": job_schema(&EMIT_FILES, SETTINGS, &RECEIVER_SETTINGS),
        },
        {
            "name": "absorb",
            "description": "The receiver's half of two-party transfer: fine-tunes the receiver \
                on the reference inputs from a knowledge token alone (no transmitter), writes \
                the tuned receiver and returns the report (as `tessera absorb --json`). Sends \
                progress notifications when the call carries a progress token.",
            "inputSchema": job_schema(&ABSORB_FILES, ABSORB_SETTINGS, &[]),
        },
    ])
}

/// The arguments of a call, as an object.
struct Arguments<'a> {
    object: &'a Map<String, Value>,
    server: &'a Server,
}

impl Arguments<'_> {
    fn text(&self, key: &str) -> anyhow::Result<Option<&str>> {
        match self.object.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(other) => anyhow::bail!("{key} must be a string, got {other}"),
        }
    }

    /// The path argument `key` resolved under the roots; `existing`: it must exist.
    fn path(&self, key: &str, existing: bool) -> anyhow::Result<Option<PathBuf>> {
        self.text(key)?
            .map(|path| {
                self.server
                    .roots
                    .resolve(path, existing)
                    .map_err(|message| anyhow::anyhow!("{key}: {message}"))
            })
            .transpose()
    }

    /// The output path argument `key` resolved under the roots, or `default` (relative to the
    /// first root) when it is not given.
    fn output(&self, key: &str, default: &str) -> anyhow::Result<PathBuf> {
        match self.path(key, false)? {
            Some(path) => Ok(path),
            None => self
                .server
                .roots
                .resolve(default, false)
                .map_err(|message| anyhow::anyhow!("{key}: {message}")),
        }
    }

    fn required_path(&self, key: &str) -> anyhow::Result<PathBuf> {
        self.path(key, true)?
            .ok_or_else(|| anyhow::anyhow!("the argument {key} is required"))
    }

    fn load_options(&self) -> anyhow::Result<LoadOptions> {
        Ok(LoadOptions {
            hmac_key: self
                .text("hmac_key_hex")?
                .map(HmacKey::from_hex)
                .transpose()?,
            ..LoadOptions::default()
        })
    }

    fn refuse_unknown(&self, known: &[&str]) -> anyhow::Result<()> {
        match self
            .object
            .keys()
            .find(|key| !known.contains(&key.as_str()))
        {
            Some(key) => anyhow::bail!(
                "unknown argument {key:?}; the arguments are {}",
                known.join(", ")
            ),
            None => Ok(()),
        }
    }
}

/// Runs tool `name` with `arguments`; `progress_token`, when given, tags the progress
/// notifications sent on `channel`.
pub fn call<W: Write>(
    server: &Server,
    name: &str,
    arguments: &Value,
    progress_token: Option<Value>,
    channel: &mut Channel<W>,
) -> anyhow::Result<Value> {
    let empty = Map::new();
    let arguments = Arguments {
        object: match arguments {
            Value::Object(object) => object,
            Value::Null => &empty,
            other => anyhow::bail!("the arguments must be an object, got {other}"),
        },
        server,
    };
    match name {
        "inspect_token" => {
            arguments.refuse_unknown(&["path", "hmac_key_hex", "full"])?;
            let full = arguments.object.get("full").and_then(Value::as_bool) == Some(true);
            let path = arguments.required_path("path")?;
            Ok(inspect_token(&path, &arguments.load_options()?, full)?)
        }
        "validate_token" => {
            arguments.refuse_unknown(&["path", "hmac_key_hex"])?;
            let path = arguments.required_path("path")?;
            Ok(match validate_token(&path, &arguments.load_options()?) {
                Ok((verdict, _)) => verdict,
                Err(error) => invalid_token_verdict(&path, &error),
            })
        }
        "inspect_model" => {
            arguments.refuse_unknown(&["path", "adapter"])?;
            let path = arguments.required_path("path")?;
            let inspection =
                ModelInspection::of(&path, &server.registry, arguments.text("adapter")?)?;
            Ok(inspection.to_json(&path)?)
        }
        "transfer" => transfer(&arguments, progress_token, channel),
        "emit" => emit(&arguments),
        "absorb" => absorb(&arguments, progress_token, channel),
        other => anyhow::bail!("no tool {other:?}"),
    }
}

impl Arguments<'_> {
    /// Every argument that is not one of `files`, as a settings object; the setting keys that
    /// name files resolved under the roots.
    fn settings(&self, files: &[FileArgument]) -> anyhow::Result<Value> {
        let mut settings = Map::new();
        for (key, value) in self.object {
            if !files.iter().any(|(file, _, _)| file == key) {
                settings.insert(key.clone(), value.clone());
            }
        }
        for (key, existing) in SETTING_FILES {
            if let Some(path) = self.path(key, existing)? {
                settings.insert(key.into(), path.display().to_string().into());
            }
        }
        Ok(settings.into())
    }

    /// The held-out inputs `val_inputs` with the labels `val_labels`, if given.
    fn validation(&self) -> anyhow::Result<Option<Dataset>> {
        let labels = self.path("val_labels", true)?;
        Ok(match self.path("val_inputs", true)? {
            Some(path) => Some(Dataset::load(&path, labels.as_deref())?),
            None if labels.is_some() => anyhow::bail!("val_labels needs val_inputs"),
            None => None,
        })
    }

    /// Where the tuned receiver of `receiver` is written.
    fn receiver_out(&self, receiver: &Path) -> anyhow::Result<PathBuf> {
        self.output(
            "receiver_out",
            &tuned_receiver_path(receiver).display().to_string(),
        )
    }
}

/// Sends the progress of a job as `notifications/progress` tagged `progress_token` (none
/// without a token): one per phase change and per twentieth of a phase. A client that can no
/// longer be told cancels the job.
fn notify_progress<'a, W: Write>(
    progress_token: Option<Value>,
    channel: &'a mut Channel<W>,
) -> impl FnMut(Progress) -> tessera_host::Result<()> + 'a {
    let mut notifications = 0u64;
    let mut last: Option<(Phase, usize)> = None;
    move |progress: Progress| {
        let Some(token) = &progress_token else {
            return Ok(());
        };
        let step = progress.done * 20 / progress.total.max(1);
        if last == Some((progress.phase, step)) {
            return Ok(());
        }
        last = Some((progress.phase, step));
        notifications += 1;
        channel
            .send(&json!({
                "jsonrpc": "2.0",
                "method": "notifications/progress",
                "params": {
                    "progressToken": token,
                    "progress": notifications,
                    "message": format!(
                        "{} {}/{}", progress.phase.label(), progress.done, progress.total
                    ),
                },
            }))
            .map_err(|error| {
                Error::Cancelled(format!(
                    "the client can no longer be told progress ({error})"
                ))
            })
    }
}

/// A job's `report` with its `outcome`: whether the receiver written is the one given.
fn with_outcome(mut report: Value, no_improvement: bool) -> Value {
    report["outcome"] = if no_improvement {
        "no improvement: the receiver is written unchanged"
    } else {
        "improved"
    }
    .into();
    report
}

fn transfer<W: Write>(
    arguments: &Arguments,
    progress_token: Option<Value>,
    channel: &mut Channel<W>,
) -> anyhow::Result<Value> {
    let settings = TransferSettings::from_json(arguments.settings(&TRANSFER_FILES)?)?;
    let receiver = arguments.required_path("receiver")?;
    let files = JobFiles {
        transmitter: arguments.required_path("transmitter")?,
        receiver_out: arguments.receiver_out(&receiver)?,
        token_out: arguments.output("token_out", TRANSFER_TOKEN)?,
        receiver,
    };
    let train = Dataset::load(&arguments.required_path("inputs")?, None)?;
    let job = settings.job(files, train, arguments.validation()?)?;
    let done = job.run(
        &arguments.server.registry,
        &mut notify_progress(progress_token, channel),
    )?;
    Ok(with_outcome(
        job.report_json(&done),
        done.report.no_improvement(),
    ))
}

fn emit(arguments: &Arguments) -> anyhow::Result<Value> {
    let settings = TransferSettings::from_json(arguments.settings(&EMIT_FILES)?)?;
    let job = settings.emit_job(
        arguments.required_path("transmitter")?,
        arguments.output("token_out", EMITTED_TOKEN)?,
        Dataset::load(&arguments.required_path("inputs")?, None)?,
        arguments
            .path("val_inputs", true)?
            .map(|path| Dataset::load(&path, None))
            .transpose()?,
    )?;
    let done = job.run(&arguments.server.registry)?;
    Ok(job.report_json(&done))
}

fn absorb<W: Write>(
    arguments: &Arguments,
    progress_token: Option<Value>,
    channel: &mut Channel<W>,
) -> anyhow::Result<Value> {
    let settings = AbsorbSettings::from_json(arguments.settings(&ABSORB_FILES)?)?;
    let receiver = arguments.required_path("receiver")?;
    let job = settings.job(
        arguments.required_path("token")?,
        receiver.clone(),
        arguments.receiver_out(&receiver)?,
        Dataset::load(&arguments.required_path("inputs")?, None)?,
        arguments.validation()?,
    )?;
    let done = job.run(
        &arguments.server.registry,
        &mut notify_progress(progress_token, channel),
    )?;
    Ok(with_outcome(
        job.report_json(&done),
        done.report.no_improvement(),
    ))
}
