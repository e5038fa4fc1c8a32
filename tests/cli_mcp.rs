//! `tessera mcp` as a client sees it: a process speaking JSON-RPC 2.0 over pipes lists the
//! tools, calls each (a transfer and an absorption with progress notifications among them, an
//! emitted token absorbed), is refused every
//! path outside the roots however it is spelled, and gets JSON-RPC errors for malformed
//! messages while the server keeps serving.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use serde_json::{json, Value};

use support::{plugins_dir, tbf_fixtures_dir, test_ledger, zoo, zoo_file};

/// A running server and the pipes to it.
struct Client {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
}

impl Client {
    fn start(root: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(["mcp", "--root"])
            .arg(root)
            .env("TESSERA_PLUGIN_PATH", plugins_dir())
            .env("TESSERA_PRIVACY_LEDGER", test_ledger())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Self {
            child,
            stdin,
            stdout,
            next_id: 0,
        }
    }

    fn send_line(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
    }

    fn receive(&mut self) -> Value {
        let mut line = String::new();
        assert!(
            self.stdout.read_line(&mut line).unwrap() > 0,
            "the server closed its output"
        );
        serde_json::from_str(&line).unwrap()
    }

    /// Sends a request; returns its response and the notifications that came before it.
    fn request(&mut self, method: &str, params: Value) -> (Value, Vec<Value>) {
        self.next_id += 1;
        let id = self.next_id;
        let message = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.send_line(&message.to_string());
        let mut notifications = Vec::new();
        loop {
            let message = self.receive();
            if message.get("id") == Some(&json!(id)) {
                return (message, notifications);
            }
            assert!(
                message.get("id").is_none(),
                "a response to another request: {message}"
            );
            notifications.push(message);
        }
    }

    /// Calls a tool; returns its result.
    fn call(&mut self, tool: &str, arguments: Value) -> Value {
        let (response, _) =
            self.request("tools/call", json!({"name": tool, "arguments": arguments}));
        response["result"].clone()
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn text(result: &Value) -> String {
    result["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_client_lists_and_calls_every_tool_within_the_roots() {
    let folder = tempfile::tempdir().unwrap();
    let root = folder.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let token = root.join("token.tbf");
    std::fs::copy(tbf_fixtures_dir().join("mode_a_float16.tbf"), &token).unwrap();
    let zoo = zoo();
    let transmitter = zoo.model("digits/conv_64d_2L.tx.torchscript").unwrap();
    let receiver = zoo.model("digits/mlp_64d_2L.rx.torchscript").unwrap();
    for (source, name) in [
        (&transmitter.onnx, "tx.onnx"),
        (&receiver.onnx, "rx.onnx"),
        (&transmitter.datasets.train_inputs, "inputs.npy"),
        (&transmitter.datasets.val_inputs, "val.npy"),
        (&transmitter.datasets.val_labels, "val_labels.npy"),
    ] {
        std::fs::copy(zoo_file(source), root.join(name)).unwrap();
    }
    let mut client = Client::start(&root);

    let (response, _) = client.request(
        "initialize",
        json!({"protocolVersion": "2025-11-25", "capabilities": {},
               "clientInfo": {"name": "test", "version": "0"}}),
    );
    assert_eq!(response["result"]["protocolVersion"], "2025-11-25");
    assert_eq!(response["result"]["serverInfo"]["name"], "tessera");
    client.send_line(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);

    let (response, _) = client.request("tools/list", json!({}));
    let tools = response["result"]["tools"].as_array().unwrap();
    let names: Vec<&str> = tools
        .iter()
        .map(|tool| tool["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "inspect_token",
            "validate_token",
            "inspect_model",
            "transfer",
            "emit",
            "absorb"
        ]
    );
    for tool in tools {
        assert_eq!(tool["inputSchema"]["type"], "object", "{tool}");
    }

    let inspected = client.call("inspect_token", json!({"path": "token.tbf"}));
    assert_eq!(inspected["isError"], false, "{inspected}");
    assert!(inspected["structuredContent"]["shape"].is_array());

    let valid = client.call(
        "validate_token",
        json!({"path": token.display().to_string()}),
    );
    assert_eq!(valid["structuredContent"]["valid"], true, "{valid}");
    let mut bytes = std::fs::read(&token).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(root.join("tampered.tbf"), bytes).unwrap();
    let tampered = client.call("validate_token", json!({"path": "tampered.tbf"}));
    assert_eq!(tampered["isError"], false);
    assert_eq!(tampered["structuredContent"]["valid"], false, "{tampered}");

    let model = client.call("inspect_model", json!({"path": "rx.onnx"}));
    assert_eq!(model["isError"], false, "{model}");
    assert!(model["structuredContent"]["adapter"]["plan"]["taps"].is_array());

    let (response, notifications) = client.request(
        "tools/call",
        json!({
            "name": "transfer",
            "arguments": {
                "transmitter": "tx.onnx", "receiver": "rx.onnx", "inputs": "inputs.npy",
                "val_inputs": "val.npy", "val_labels": "val_labels.npy",
                "receiver_out": "tuned.onnx", "token_out": "knowledge.tbf",
                "epochs": 2, "hub_epochs": 2, "hub_dim": 64, "seed": 3,
            },
            "_meta": {"progressToken": "t1"},
        }),
    );
    let result = &response["result"];
    assert_eq!(result["isError"], false, "{}", text(result));
    let report = &result["structuredContent"]["report"];
    assert!(report["after"]["agreement"].as_f64().unwrap() > 0.0);
    assert!(root.join("tuned.onnx").is_file() && root.join("knowledge.tbf").is_file());
    assert!(!notifications.is_empty());
    let mut previous = 0.0;
    for notification in &notifications {
        assert_eq!(notification["method"], "notifications/progress");
        assert_eq!(notification["params"]["progressToken"], "t1");
        let progress = notification["params"]["progress"].as_f64().unwrap();
        assert!(progress > previous, "progress must increase");
        previous = progress;
    }

    // Two parties: emit a token, absorb it without the transmitter.
    let emitted = client.call(
        "emit",
        json!({"transmitter": "tx.onnx", "inputs": "inputs.npy", "val_inputs": "val.npy",
               "token_out": "emitted.tbf", "epsilon": "inf", "epochs": 2, "hub_epochs": 2,
               "hub_dim": 64}),
    );
    assert_eq!(emitted["isError"], false, "{}", text(&emitted));
    assert_eq!(emitted["structuredContent"]["validation_inputs"], 450);
    let (response, notifications) = client.request(
        "tools/call",
        json!({
            "name": "absorb",
            "arguments": {
                "token": "emitted.tbf", "receiver": "rx.onnx", "inputs": "inputs.npy",
                "val_inputs": "val.npy", "val_labels": "val_labels.npy",
                "receiver_out": "absorbed.onnx", "seed": 1,
            },
            "_meta": {"progressToken": 7},
        }),
    );
    let absorbed = &response["result"];
    assert_eq!(absorbed["isError"], false, "{}", text(absorbed));
    let report = &absorbed["structuredContent"]["report"];
    assert!(
        report["after"]["accuracy"].as_f64().unwrap() > 0.0,
        "{report}"
    );
    assert!(root.join("absorbed.onnx").is_file());
    assert!(notifications
        .iter()
        .all(|notification| notification["params"]["progressToken"] == 7));
    assert!(!notifications.is_empty());
    let refused = client.call(
        "emit",
        json!({"transmitter": "tx.onnx", "inputs": "inputs.npy", "quant": "int8"}),
    );
    assert_eq!(refused["isError"], true);
    assert!(text(&refused).contains("quant"), "{}", text(&refused));
    std::fs::write(folder.path().join("keys.toml"), "[signers]\n").unwrap();
    let refused = client.call(
        "absorb",
        json!({"token": "emitted.tbf", "receiver": "rx.onnx", "inputs": "inputs.npy",
               "trust": "../keys.toml"}),
    );
    assert_eq!(refused["isError"], true);
    assert!(
        text(&refused).contains("outside the server's roots"),
        "{}",
        text(&refused)
    );

    // Paths outside the roots: `../`, absolute, and a symbolic link that escapes.
    std::fs::copy(&token, folder.path().join("outside.tbf")).unwrap();
    std::os::unix::fs::symlink(folder.path().join("outside.tbf"), root.join("link.tbf")).unwrap();
    let outside = folder.path().join("outside.tbf").display().to_string();
    for path in ["../outside.tbf", outside.as_str(), "link.tbf"] {
        let refused = client.call("inspect_token", json!({"path": path}));
        assert_eq!(refused["isError"], true, "{path}");
        assert!(
            text(&refused).contains("outside the server's roots"),
            "{}",
            text(&refused)
        );
    }
    let refused = client.call(
        "transfer",
        json!({"transmitter": "tx.onnx", "receiver": "rx.onnx", "inputs": "inputs.npy",
               "token_out": "../escaped.tbf", "epochs": 1}),
    );
    assert_eq!(refused["isError"], true);
    assert!(!folder.path().join("escaped.tbf").exists());

    // Bad arguments are the tool's error, for the client to read.
    let bad = client.call(
        "transfer",
        json!({"transmitter": "tx.onnx", "receiver": "rx.onnx",
                                             "inputs": "inputs.npy", "epoch": 3}),
    );
    assert_eq!(bad["isError"], true);
    assert!(text(&bad).contains("epoch"), "{}", text(&bad));

    // Malformed messages get JSON-RPC errors, and the server keeps serving.
    client.send_line("{not json");
    assert_eq!(client.receive()["error"]["code"], -32700);
    client.send_line("[1, 2]");
    assert_eq!(client.receive()["error"]["code"], -32600);
    let (response, _) = client.request("no/such/method", json!({}));
    assert_eq!(response["error"]["code"], -32601);
    let (response, _) = client.request("tools/call", json!({"name": "rm_rf"}));
    assert_eq!(response["error"]["code"], -32602);
    let (response, _) = client.request("ping", json!({}));
    assert_eq!(response["result"], json!({}));
}
