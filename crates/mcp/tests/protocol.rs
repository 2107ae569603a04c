//! In-process protocol tests: raw JSON-RPC lines against `serve_io` over a duplex pipe.

use std::time::Duration;

use alc_core::EngineConfig;
use alc_engine::{Engine, HostServices};
use alc_mcp::{serve_io, AlcServer, ServeOptions, VERSION};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

struct Client {
    write: tokio::io::WriteHalf<tokio::io::DuplexStream>,
    lines: tokio::io::Lines<BufReader<tokio::io::ReadHalf<tokio::io::DuplexStream>>>,
    next_id: i64,
    _engine: Engine,
}

impl Client {
    async fn start(version: &str) -> (Client, Value) {
        let engine = Engine::start_blocking(
            EngineConfig {
                workers: 2,
                ..EngineConfig::default()
            },
            HostServices::default(),
        )
        .unwrap();
        let (ours, theirs) = tokio::io::duplex(1 << 20);
        let (r, w) = tokio::io::split(theirs);
        let home = std::env::temp_dir().join(format!(
            "alc-protocol-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let options = ServeOptions {
            pkg_env: Some(alc_pkg::PkgEnv::new(home)),
            ..ServeOptions::default()
        };
        let server = AlcServer::new(engine.clone(), options);
        tokio::spawn(async move {
            let _ = serve_io(server, r, w).await;
        });
        let (r, w) = tokio::io::split(ours);
        let mut c = Client {
            write: w,
            lines: BufReader::new(r).lines(),
            next_id: 1,
            _engine: engine,
        };
        let init = c
            .request(
                "initialize",
                json!({"protocolVersion": version, "capabilities": {},
                       "clientInfo": {"name": "t", "version": "0"}}),
            )
            .await;
        c.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        (c, init)
    }

    async fn send(&mut self, v: Value) {
        let mut line = v.to_string();
        line.push('\n');
        self.write.write_all(line.as_bytes()).await.unwrap();
    }

    async fn recv(&mut self) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(10), self.lines.next_line())
            .await
            .expect("a message within 10 s")
            .unwrap()
            .expect("an open stream");
        serde_json::from_str(&line).unwrap()
    }

    /// Sends a request and returns its response, collecting notifications seen before it.
    async fn request_with(&mut self, method: &str, params: Value) -> (Value, Vec<Value>) {
        let id = self.next_id;
        self.next_id += 1;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        let mut notes = Vec::new();
        loop {
            let m = self.recv().await;
            if m.get("id") == Some(&json!(id)) && m.get("method").is_none() {
                return (m, notes);
            }
            notes.push(m);
        }
    }

    async fn request(&mut self, method: &str, params: Value) -> Value {
        self.request_with(method, params).await.0
    }

    async fn tool(&mut self, name: &str, args: Value) -> Value {
        let r = self
            .request("tools/call", json!({"name": name, "arguments": args}))
            .await;
        r["result"].clone()
    }
}

fn body(result: &Value) -> Value {
    let text = result["content"][0]["text"].as_str().unwrap();
    serde_json::from_str(text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initialize_reports_identity_and_negotiates() {
    let (_c, init) = Client::start("2025-11-25").await;
    let r = &init["result"];
    assert_eq!(r["serverInfo"]["name"], "algocline");
    assert_eq!(r["serverInfo"]["version"], VERSION);
    assert_eq!(r["protocolVersion"], "2025-11-25");
    assert_eq!(r["capabilities"]["tools"]["listChanged"], false);
    assert!(r["instructions"].as_str().unwrap().len() <= 1500);
    let (_c, init) = Client::start("2025-06-18").await;
    assert_eq!(init["result"]["protocolVersion"], "2025-06-18");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_have_schemas_and_results_mirror_text() {
    let (mut c, _) = Client::start("2025-11-25").await;
    let list = c.request("tools/list", json!({})).await;
    let tools = list["result"]["tools"].as_array().unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "alc_run",
            "alc_advice",
            "alc_continue",
            "alc_status",
            "alc_cancel",
            "alc_sessions",
            "alc_info",
            "alc_log_view",
            "alc_stats",
            "alc_note",
            "alc_pkg_list",
            "alc_pkg_install",
            "alc_pkg_remove",
            "alc_pkg_link",
            "alc_pkg_unlink",
            "alc_init",
            "alc_eval",
            "alc_eval_history",
            "alc_eval_detail",
            "alc_eval_compare",
            "alc_scenario_list",
            "alc_scenario_show",
            "alc_scenario_install"
        ]
    );
    for t in tools {
        assert_eq!(t["inputSchema"]["type"], "object");
        assert_eq!(t["outputSchema"]["type"], "object");
    }
    let r = c.tool("alc_run", json!({"code": "return 40 + 2"})).await;
    assert_eq!(body(&r), r["structuredContent"]);
    assert_eq!(r["structuredContent"]["result"], 42);
    assert_ne!(r["isError"], json!(true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_continue_and_errors() {
    let (mut c, _) = Client::start("2025-11-25").await;
    let p = body(
        &c.tool("alc_run", json!({"code": "return alc.llm('hi')"}))
            .await,
    );
    assert_eq!(p["status"], "needs_response");
    let sid = p["session_id"].as_str().unwrap().to_string();
    let e = c
        .tool(
            "alc_continue",
            json!({"session_id": sid, "response": "x", "round": 9}),
        )
        .await;
    assert_eq!(e["isError"], true);
    assert_eq!(body(&e)["code"], "stale_round");
    let done = body(
        &c.tool("alc_continue", json!({"session_id": sid, "response": "yo"}))
            .await,
    );
    assert_eq!(done["status"], "completed");
    assert_eq!(done["result"], "yo");
    let unknown = c
        .request("tools/call", json!({"name": "alc_v2_run", "arguments": {}}))
        .await;
    assert_eq!(unknown["error"]["code"], -32602);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_2025_03_26_has_no_structured_content() {
    let (mut c, init) = Client::start("2025-03-26").await;
    assert_eq!(init["result"]["protocolVersion"], "2025-03-26");
    let list = c.request("tools/list", json!({})).await;
    assert!(list["result"]["tools"][0].get("outputSchema").is_none());
    let r = c.tool("alc_run", json!({"code": "return 1"})).await;
    assert!(r.get("structuredContent").is_none());
    assert_eq!(body(&r)["status"], "completed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_arrives_before_the_response() {
    let (mut c, _) = Client::start("2025-11-25").await;
    let (resp, notes) = c
        .request_with(
            "tools/call",
            json!({"name": "alc_run", "_meta": {"progressToken": "tok"},
                   "arguments": {"code": "alc.progress(1, 3, 'a') return 5"}}),
        )
        .await;
    let b = body(&resp["result"]);
    assert_eq!(b["result"], 5);
    let msgs: Vec<&str> = notes
        .iter()
        .filter(|n| n["method"] == "notifications/progress")
        .map(|n| n["params"]["message"].as_str().unwrap())
        .collect();
    let sid = b["session_id"].as_str().unwrap();
    assert_eq!(
        msgs,
        [format!("session {sid} started").as_str(), "step 1/3: a"]
    );
    // Nothing more arrives afterwards: the next response is the next message.
    let r = c.request("ping", json!({})).await;
    assert!(r.get("result").is_some());
}
