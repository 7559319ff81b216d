//! The JSON Schemas of docs/schema/ themselves: each compiles, accepts
//! real documents and every example the docs show, and rejects documents
//! that break it: the negative controls showing that the validation the
//! other tests run (`common::assert_schema`) can fail.

mod common;

use common::*;
use serde_json::{Value, json};

/// A way to break a document, and what it breaks.
type Breakage = (&'static str, fn(&mut Value));

/// Asserts that `schema` rejects `doc`, which breaks it by `why`.
fn rejects(schema: &str, doc: &Value, why: &str) {
    let errors = schema_errors(doc, schema);
    assert!(
        !errors.is_empty(),
        "{schema} accepted a document with {why}: {doc}"
    );
}

/// A copy of `doc` changed by `f`.
fn with(doc: &Value, f: impl FnOnce(&mut Value)) -> Value {
    let mut d = doc.clone();
    f(&mut d);
    d
}

fn remove(doc: &Value, key: &str) -> Value {
    with(doc, |d| {
        d.as_object_mut().unwrap().remove(key);
    })
}

#[test]
fn every_schema_compiles_as_draft_2020_12() {
    let names = schema_files();
    for want in [
        "control.json",
        "findings.json",
        "run-log.json",
        "run.json",
        "status.json",
        "supervisor-state.json",
    ] {
        assert!(names.iter().any(|n| n == want), "no {want} in {names:?}");
    }
    for name in &names {
        let text = std::fs::read_to_string(schema_dir().join(name)).unwrap();
        let schema: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{name}"
        );
        // Compiles (a schema that does not panics here), and is strict
        // enough to refuse something that is not a document at all.
        rejects(name, &json!("not a document"), "a string for an object");
    }
}

#[test]
fn run_schema_accepts_real_documents_and_rejects_broken_ones() {
    let s = Scratch::new("schema-run");
    // `json()` checks each against run.json.
    let ran = sexton_run(
        &s,
        "auto",
        &[
            "--json",
            "--",
            "sh",
            "-c",
            "echo out; printf 'a\\377' >&2; exit 3",
        ],
    )
    .json();
    assert!(ran.get("stderr_base64").is_some(), "{ran}");
    let killed = sexton_run(&s, "auto", &["--json", "--", "sh", "-c", "kill -USR1 $$"]).json();
    assert_eq!(killed["signal"], "USR1", "{killed}");
    let failed = sexton_run(&s, "auto", &["--json", "--", "no-such-program-x"]).json();
    assert!(failed.get("error").is_some(), "{failed}");

    let r = "run.json";
    rejects(r, &with(&ran, |d| d["pid"] = json!("123")), "a string pid");
    rejects(
        r,
        &with(&ran, |d| d["bogus"] = json!(1)),
        "an unknown field",
    );
    rejects(
        r,
        &with(&ran, |d| d["tracking"] = json!("docker")),
        "an unknown tracking",
    );
    rejects(r, &remove(&ran, "killed"), "no killed");
    rejects(r, &remove(&ran, "tracking"), "no tracking on a run");
    rejects(
        r,
        &with(&ran, |d| d["rusage"]["threads"] = json!(1)),
        "an unknown rusage field",
    );
    rejects(
        r,
        &with(&ran, |d| d["signal"] = json!("TERM")),
        "both an exit code and a signal",
    );
    rejects(
        r,
        &with(&killed, |d| d["signal"] = json!("SIGUSR1")),
        "a signal named with SIG",
    );
    rejects(
        r,
        &with(&ran, |d| d["stderr"] = json!("a?")),
        "base64 beside text that has no U+FFFD",
    );
    rejects(
        r,
        &with(&ran, |d| d["stderr_base64"] = json!("not base64!")),
        "bad base64",
    );
    rejects(
        r,
        &with(&ran, |d| d["stdout"] = json!({"same_as_previous": true})),
        "a run log's stream",
    );
    rejects(
        r,
        &with(&failed, |d| d["tracking"] = json!("cgroup")),
        "tracking on a start failure",
    );
    rejects(
        r,
        &with(&failed, |d| d["pid"] = json!(42)),
        "a pid on a start failure",
    );
    let leftover = json!({"pid": 7, "ppid": 6, "cmdline": "sleep 300",
                          "holds": ["stdout", "stderr"], "action": "left"});
    assert_schema(&with(&ran, |d| d["leftovers"] = json!([leftover])), r);
    for (field, bad) in [
        ("action", json!("stopped")),
        ("holds", json!(["stdin"])),
        ("pid", json!(0)),
    ] {
        let mut l = leftover.clone();
        l[field] = bad;
        rejects(
            r,
            &with(&ran, |d| d["leftovers"] = json!([l])),
            &format!("a leftover with a bad {field}"),
        );
    }
}

#[test]
fn run_log_schema_accepts_real_lines_and_rejects_broken_ones() {
    let s = Scratch::new("schema-log");
    let log = s.path("jobs.log");
    let l = log.to_str().unwrap();
    for _ in 0..2 {
        let r = sexton_run(&s, "auto", &["--log", l, "--", "printf", "a\\377"]);
        assert_eq!(r.code, Some(0), "{r:?}");
    }
    let r = sexton_run(&s, "auto", &["--log", l, "--", "no-such-program-x"]);
    assert_eq!(r.code, Some(127), "{r:?}");
    let lines: Vec<Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|x| serde_json::from_str(x).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    for line in &lines {
        assert_schema(line, "run-log.json");
    }
    let (first, same) = (&lines[0], &lines[1]);
    assert!(first.get("stdout_base64").is_some(), "{first}");
    assert_eq!(same["stdout"], json!({"same_as_previous": true}), "{same}");

    let r = "run-log.json";
    rejects(
        r,
        &with(first, |d| d["bogus"] = json!(1)),
        "an unknown field",
    );
    rejects(
        r,
        &with(same, |d| d["stdout"] = json!({"same_as_previous": false})),
        "same_as_previous false",
    );
    rejects(
        r,
        &with(same, |d| d["stdout"]["lines"] = json!(1)),
        "more than same_as_previous",
    );
    rejects(
        r,
        &with(same, |d| d["stdout_base64"] = json!("YfE=")),
        "base64 beside same_as_previous",
    );
    rejects(r, &remove(first, "stdout_bytes"), "no stdout_bytes");
}

/// A zombie finding and a blocked one, as docs/audit.md shows them.
fn findings_doc() -> Value {
    json!({
        "findings": [
            {"kind": "zombie", "pid": 89, "ppid": 2, "cmdline": "[python3] <defunct>",
             "parent": {"pid": 2, "cmdline": "python3 server.py", "state": "S", "zombies": 1},
             "message": "pid 2 never waits for its children (1 zombie)",
             "hint": "reap with waitpid(-1, WNOHANG) in a loop on SIGCHLD"},
            {"kind": "blocked", "pid": 99, "ppid": 1, "cmdline": "python3 communicate.py",
             "holders": [{"pid": 142, "cmdline": "sleep 300", "fds": [1], "end": "write"}],
             "fd": 3, "target": "pipe:[583859]", "syscall": "read", "wchan": "anon_pipe_read",
             "state": "S", "message": "blocked in read(3)", "hint": ""},
            {"kind": "shared_pipe", "pid": 4, "cmdline": "sh", "pids": [4, 5],
             "target": "pipe:[12]",
             "holders": [{"pid": 4, "cmdline": "sh", "fds": [4], "end": "write"},
                         {"pid": 5, "cmdline": "sh", "fds": [4], "end": "write"}],
             "message": "the write end of pipe:[12] is open in 2 processes: 4, 5",
             "hint": "close the pipe end in every process that does not use it"},
            {"kind": "leftover", "pid": 148, "ppid": 146, "cmdline": "sleep 30",
             "holds": ["stdout", "stderr"], "message": "still running", "hint": "wait"}
        ],
        "scanned": {"processes": 12, "fds": 36, "skipped": 0},
        "duration_ms": 15.8
    })
}

#[test]
fn findings_schema_accepts_real_documents_and_rejects_broken_ones() {
    let s = Scratch::new("schema-findings");
    // Real documents: a sleeping child explained by `why`, and whatever
    // the whole machine holds.
    let mut sleeper = spawn(std::process::Command::new("sleep").arg("300"));
    for args in [
        vec!["why".to_string(), sleeper.pid().to_string()],
        vec!["audit".to_string()],
        vec!["shared".to_string()],
    ] {
        let mut c = std::process::Command::new(SEXTON);
        c.args(&args).arg("--json");
        let r = run_cmd(&mut c, &s);
        let doc: Value = serde_json::from_str(r.stdout.trim())
            .unwrap_or_else(|e| panic!("sexton {args:?}: {e}: {r:?}"));
        assert_schema(&doc, "findings.json");
    }
    let _ = sleeper.child.kill();

    let f = "findings.json";
    let doc = findings_doc();
    assert_schema(&doc, f);
    // What only some documents have: check's `interrupted`, and a lock
    // holder of `why` whose fds could not be read.
    assert_schema(
        &with(&doc, |d| d["interrupted"] = json!({"signal": "TERM"})),
        f,
    );
    assert_schema(
        &with(&doc, |d| {
            d["findings"][1]["holders"] = json!([{"pid": 7, "cmdline": "flock", "fds": []}])
        }),
        f,
    );
    let bad: [Breakage; 20] = [
        ("an unknown kind", |d| {
            d["findings"][0]["kind"] = json!("ghost")
        }),
        ("a string pid", |d| d["findings"][0]["pid"] = json!("89")),
        ("an unknown field", |d| d["findings"][1]["bogus"] = json!(1)),
        ("a field of another kind", |d| {
            d["findings"][0]["endpoint"] = json!("tcp 1.2.3.4:5")
        }),
        ("a zombie without ppid", |d| {
            d["findings"][0].as_object_mut().unwrap().remove("ppid");
        }),
        ("no hint", |d| {
            d["findings"][1].as_object_mut().unwrap().remove("hint");
        }),
        ("an unknown scanned field", |d| {
            d["scanned"]["threads"] = json!(1)
        }),
        ("a string zombie count", |d| {
            d["findings"][0]["parent"]["zombies"] = json!("3")
        }),
        ("a zombie's parent without its zombie count", |d| {
            d["findings"][0]["parent"]
                .as_object_mut()
                .unwrap()
                .remove("zombies");
        }),
        ("a zombie count on a blocked process's parent", |d| {
            d["findings"][1]["parent"] =
                json!({"pid": 1, "cmdline": "init", "state": "S", "zombies": 1})
        }),
        ("no scanned.skipped", |d| {
            d["scanned"].as_object_mut().unwrap().remove("skipped");
        }),
        ("a negative skipped count", |d| {
            d["scanned"]["skipped"] = json!(-1)
        }),
        ("an interrupted signal named with SIG", |d| {
            d["interrupted"] = json!({"signal": "SIGTERM"})
        }),
        ("an interrupted without its signal", |d| {
            d["interrupted"] = json!({})
        }),
        ("a shared pipe holder without fds", |d| {
            d["findings"][2]["holders"][1]["fds"] = json!([])
        }),
        ("a shared pipe holder without its end", |d| {
            d["findings"][2]["holders"][1]
                .as_object_mut()
                .unwrap()
                .remove("end");
        }),
        ("a shared pipe with one holder", |d| {
            d["findings"][2]["pids"] = json!([4])
        }),
        ("a leftover holding stdin", |d| {
            d["findings"][3]["holds"] = json!(["stdin"])
        }),
        ("a blocked state that is no letter", |d| {
            d["findings"][1]["state"] = json!("sleeping")
        }),
        ("an unknown top-level field", |d| d["version"] = json!(1)),
    ];
    for (why, f_) in bad {
        rejects(f, &with(&doc, f_), why);
    }
}

#[test]
fn findings_schema_names_every_kind_the_code_has() {
    use sexton::audit::Kind;
    // Exhaustive: a new kind fails to compile here until it is listed.
    let name = |k: Kind| match k {
        Kind::Zombie
        | Kind::Orphan
        | Kind::SharedSocket
        | Kind::SharedPipe
        | Kind::PipeHolder
        | Kind::Leftover
        | Kind::InheritedFd
        | Kind::Blocked => serde_json::to_value(k).unwrap(),
    };
    let code: Vec<Value> = [
        Kind::Zombie,
        Kind::Orphan,
        Kind::SharedSocket,
        Kind::SharedPipe,
        Kind::PipeHolder,
        Kind::Leftover,
        Kind::InheritedFd,
        Kind::Blocked,
    ]
    .into_iter()
    .map(name)
    .collect();
    let text = std::fs::read_to_string(schema_dir().join("findings.json")).unwrap();
    let schema: Value = serde_json::from_str(&text).unwrap();
    let listed = schema["$defs"]["kind"]["enum"].as_array().unwrap().clone();
    assert_eq!(listed, code);
}

/// The status document as docs/supervisor.md shows it.
fn status_doc() -> Value {
    json!({"supervisor": 4242, "config": "/srv/app/sexton.toml", "state_dir": "/srv/app/.sexton",
        "services": [
          {"name": "db", "state": "ready", "pid": 4250, "uptime_s": 83.2, "restarts": 0,
           "last_exit": null, "reason": null},
          {"name": "web", "state": "failed", "pid": null, "uptime_s": null, "restarts": 4,
           "last_exit": {"code": 1}, "reason": "crash loop", "log_error": "disk full"},
          {"name": "job", "state": "exited", "pid": null, "uptime_s": null, "restarts": 0,
           "last_exit": {"signal": "RTMIN+3"}, "reason": null, "status_text": "done"}]})
}

#[test]
fn status_schema_rejects_broken_documents() {
    // Real status documents are checked by every status call of
    // tests/supervisor.rs.
    let st = "status.json";
    let doc = status_doc();
    assert_schema(&doc, st);
    let bad: [Breakage; 8] = [
        ("an unknown state", |d| {
            d["services"][0]["state"] = json!("sleeping")
        }),
        ("both an exit code and a signal", |d| {
            d["services"][1]["last_exit"] = json!({"code": 1, "signal": "TERM"})
        }),
        ("an exit as a bare number", |d| {
            d["services"][1]["last_exit"] = json!(1)
        }),
        ("an uptime without a pid", |d| {
            d["services"][1]["uptime_s"] = json!(3.0)
        }),
        ("an unknown service field", |d| {
            d["services"][0]["cpu"] = json!(1)
        }),
        ("no reason", |d| {
            d["services"][0].as_object_mut().unwrap().remove("reason");
        }),
        ("a string supervisor pid", |d| {
            d["supervisor"] = json!("4242")
        }),
        ("an unknown top-level field", |d| d["uptime"] = json!(1)),
    ];
    for (why, f) in bad {
        rejects(st, &with(&doc, f), why);
    }
}

#[test]
fn control_schema_accepts_the_library_lines_and_rejects_broken_ones() {
    use sexton::supervise::control::{Request, Response};
    // Every request and answer the library writes (real lines to and
    // from a supervisor are checked in tests/supervisor.rs).
    for r in [
        Request::Status,
        Request::Start {
            services: vec!["web".into()],
        },
        Request::Stop { services: vec![] },
        Request::Restart {
            services: vec!["a".into(), "b".into()],
        },
        Request::Reload,
        Request::Down,
    ] {
        let line = serde_json::to_value(&r).unwrap();
        assert_schema(&line, "control.json#/$defs/request");
        assert_schema(&line, "control.json");
    }
    let status: sexton::supervise::control::Status = serde_json::from_value(status_doc()).unwrap();
    for r in [
        Response::ok(None),
        Response::ok(Some("reloaded: a".into())),
        Response::error("permission denied"),
        Response {
            status: Some(status),
            ..Response::ok(None)
        },
    ] {
        let line = serde_json::to_value(&r).unwrap();
        assert_schema(&line, "control.json#/$defs/response");
        assert_schema(&line, "control.json");
    }

    let c = "control.json";
    for (why, line) in [
        ("an unknown command", json!({"cmd": "frobnicate"})),
        (
            "services for status",
            json!({"cmd": "status", "services": ["a"]}),
        ),
        (
            "services as a string",
            json!({"cmd": "stop", "services": "a"}),
        ),
        (
            "an unknown request field",
            json!({"cmd": "down", "now": true}),
        ),
        ("a failure without its error", json!({"ok": false})),
        ("an error beside ok", json!({"ok": true, "error": "x"})),
        (
            "a status beside a failure",
            json!({"ok": false, "error": "x", "status": status_doc()}),
        ),
        (
            "a broken status",
            json!({"ok": true, "status": {"supervisor": 1}}),
        ),
        ("an unknown answer field", json!({"ok": true, "code": 0})),
        ("a string ok", json!({"ok": "yes"})),
    ] {
        rejects(c, &line, why);
    }
}

/// The fenced blocks of a docs page: (info string, lines).
fn blocks(page: &str) -> Vec<(String, Vec<String>)> {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("docs")
            .join(page),
    )
    .unwrap();
    let mut out = Vec::new();
    let mut open: Option<(String, Vec<String>)> = None;
    for line in text.lines() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(info)) => open = Some((info.to_string(), Vec::new())),
            (Some(_), Some(_)) => out.push(open.take().unwrap()),
            (Some((_, body)), None) => body.push(line.to_string()),
            (None, None) => {}
        }
    }
    out
}

fn parse(page: &str, text: &str) -> Value {
    serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("{page}: example is not JSON: {e}: {text}"))
}

#[test]
fn every_json_example_of_the_docs_matches_its_schema() {
    // run.md: result documents, and the lines of a run log.
    let (mut docs, mut log_lines) = (0, 0);
    for (_, body) in blocks("run.md") {
        let mut command = String::new();
        for line in body {
            if let Some(c) = line.strip_prefix("$ ") {
                command = c.to_string();
            } else if line.starts_with("{\"") {
                let v = parse("run.md", &line);
                if command.contains("cat jobs.log") {
                    assert_schema(&v, "run-log.json");
                    log_lines += 1;
                } else {
                    assert_schema(&v, "run.json");
                    docs += 1;
                }
            }
        }
    }
    assert!(docs >= 7 && log_lines >= 3, "run.md: {docs} + {log_lines}");

    // audit.md: findings documents.
    let mut found = 0;
    for (info, body) in blocks("audit.md") {
        for line in body.iter().filter(|l| l.starts_with("{\"findings\"")) {
            if info == "json" && line.contains("...") {
                continue; // the outline of the document, not an example
            }
            assert_schema(&parse("audit.md", line), "findings.json");
            found += 1;
        }
    }
    assert!(found >= 4, "audit.md: {found} examples");

    // supervisor.md: the status document, and the control socket's lines
    // quoted in the text (`[...]` and `...` stand for more).
    let mut status = 0;
    for (info, body) in blocks("supervisor.md") {
        if info == "json" {
            assert_schema(&parse("supervisor.md", &body.join("\n")), "status.json");
            status += 1;
        }
    }
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/supervisor.md"),
    )
    .unwrap();
    let (mut requests, mut answers) = (0, 0);
    for span in text.split('`').skip(1).step_by(2) {
        let whole = !span.contains("[...]") && !span.contains(",...}");
        if span.starts_with("{\"cmd\"") && whole {
            assert_schema(&parse("supervisor.md", span), "control.json#/$defs/request");
            requests += 1;
        } else if span.starts_with("{\"ok\"") && whole {
            assert_schema(
                &parse("supervisor.md", span),
                "control.json#/$defs/response",
            );
            answers += 1;
        }
    }
    assert_eq!(status, 1, "supervisor.md: status examples");
    assert!(
        requests >= 4 && answers >= 1,
        "supervisor.md: {requests} requests, {answers} answers"
    );
}

#[test]
fn signal_names_of_the_code_are_the_schemas() {
    // Every name `run`, `check` and `status` can print (1 to 64, and a
    // number beyond) is one the schema allows.
    for n in 1..=65 {
        let name = sexton::parse::signal_name_of(n);
        assert_schema(&json!(name), "run.json#/$defs/signal");
    }
    for bad in [
        "SIGTERM", "TERM2", "term", "RTMIN+0", "RTMIN+16", "RTMAX-0", "RTMAX-15", "RTMIN-1", "0",
        "", "ALL",
    ] {
        rejects(
            "run.json#/$defs/signal",
            &json!(bad),
            "a signal no code prints",
        );
    }
}

/// The `name` properties of `schema` (a schema object).
fn keys(schema: &Value) -> std::collections::BTreeSet<String> {
    schema["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("no properties: {schema}"))
        .keys()
        .cloned()
        .collect()
}

/// Each `"NAME"` the Python text quotes right after `prefix`.
fn quoted_after(text: &str, prefix: &str) -> std::collections::BTreeSet<String> {
    text.split(prefix)
        .skip(1)
        .filter_map(|rest| {
            let name = rest.strip_prefix('"')?.split('"').next()?;
            Some(name.to_string())
        })
        .collect()
}

#[test]
fn the_python_package_reads_the_fields_of_the_run_schema() {
    // python/sexton builds its Result from `run --json`: it reads every
    // field of the document, and no field the document does not have.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let py = std::fs::read_to_string(root.join("python/sexton/__init__.py")).unwrap();
    let text = std::fs::read_to_string(schema_dir().join("run.json")).unwrap();
    let run: Value = serde_json::from_str(&text).unwrap();
    let fields = &run["$defs"]["fields"];

    let mut read = quoted_after(&py, "doc.get(");
    for stream in quoted_after(&py, "stream(") {
        read.insert(format!("{stream}_base64"));
        read.insert(stream);
    }
    assert!(
        read.contains("argv") && read.contains("stdout_base64"),
        "{read:?}"
    );
    // The two streams are defined beside the other fields.
    let mut documented = keys(fields);
    documented.extend(keys(&run));
    assert_eq!(read, documented, "fields python/sexton reads vs run.json");

    let rusage = quoted_after(&py, "rusage.get(");
    assert_eq!(rusage, keys(&fields["properties"]["rusage"]), "rusage");

    let mut leftover = quoted_after(&py, "left[");
    leftover.extend(quoted_after(&py, "left.get("));
    assert_eq!(leftover, keys(&run["$defs"]["leftover"]), "a leftover");
}

#[test]
fn supervisor_state_schema_accepts_the_library_record_and_rejects_broken_ones() {
    use sexton::supervise::state::{Leader, Record};
    // A real state.json is checked by tests/supervisor.rs (the crash test).
    let leader = |pid: i32, cgroup: Option<&str>| Leader {
        pid,
        start_time: 123456,
        pgid: pid,
        cgroup: cgroup.map(Into::into),
    };
    let record = Record {
        supervisor: 40,
        worker: 41,
        services: [
            (
                "web".to_string(),
                leader(42, Some("/sys/fs/cgroup/sexton/web")),
            ),
            ("db".to_string(), leader(43, None)),
        ]
        .into_iter()
        .collect(),
    };
    let doc = serde_json::to_value(&record).unwrap();
    let st = "supervisor-state.json";
    assert_schema(&doc, st);
    let bad: [Breakage; 7] = [
        ("no worker", |d| {
            d.as_object_mut().unwrap().remove("worker");
        }),
        ("an unknown field", |d| d["version"] = json!(2)),
        ("a leader without its start time", |d| {
            d["services"]["web"]
                .as_object_mut()
                .unwrap()
                .remove("start_time");
        }),
        ("a leader with an unknown field", |d| {
            d["services"]["db"]["name"] = json!("db")
        }),
        ("a relative cgroup", |d| {
            d["services"]["web"]["cgroup"] = json!("sexton/web")
        }),
        ("a negative start time", |d| {
            d["services"]["db"]["start_time"] = json!(-1)
        }),
        ("services as a list", |d| d["services"] = json!([])),
    ];
    for (why, f) in bad {
        rejects(st, &with(&doc, f), why);
    }
}
