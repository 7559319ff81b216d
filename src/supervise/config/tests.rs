use super::*;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A directory of its own for one test, removed when the test ends,
/// passed or failed.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "sexton-config-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn os(v: &[&str]) -> Vec<OsString> {
    v.iter().map(OsString::from).collect()
}

/// Loads `text` as the `sexton.toml` of a fresh directory.
fn load_toml(text: &str) -> (TempDir, Result<Config, ConfigError>) {
    let d = TempDir::new();
    d.write(TOML_NAME, text);
    let r = Config::load(&d.0, None);
    (d, r)
}

/// Checks that `text` is refused with exactly `want`, where `FILE` stands
/// for the path of the file.
#[track_caller]
fn refused(text: &str, want: &str) {
    let (d, r) = load_toml(text);
    let file = d.0.join(TOML_NAME);
    let want = want.replace("FILE", &file.display().to_string());
    match r {
        Ok(c) => panic!("loaded, expected {want:?}:\n{text}\n{c:#?}"),
        Err(e) => {
            let got = e.to_string();
            assert_eq!(got, want, "for:\n{text}");
            assert!(!got.contains('\n'), "not one line: {got:?}");
        }
    }
}

const EXAMPLE: &str = r#"
[services.db]
command = ["redis-server", "--port", "6390"]
ready_tcp = "127.0.0.1:6390"

[services.web]
command = "./start.sh --port 8000"
depends_on = ["db"]
restart = "on-failure"
stop_timeout = "10s"
"#;

#[test]
fn the_example_loads_with_defaults_filled_in() {
    let (d, r) = load_toml(EXAMPLE);
    let c = r.unwrap();
    assert_eq!(c.file, d.0.join(TOML_NAME));
    assert_eq!(c.dir, d.0);
    assert_eq!(c.log_dir, None);
    assert_eq!(c.log_max_size, 10 * 1024 * 1024);
    assert_eq!(c.log_keep, 5);
    assert_eq!(c.services.len(), 2);

    let db = &c.services["db"];
    assert_eq!(db.argv, os(&["redis-server", "--port", "6390"]));
    assert_eq!(db.ready, Some(Ready::Tcp("127.0.0.1:6390".into())));
    assert!(db.depends_on.is_empty());

    let web = &c.services["web"];
    let mut want = Service::new("web", os(&["./start.sh", "--port", "8000"]), d.0.clone());
    want.depends_on = vec!["db".into()];
    assert_eq!(*web, want);
    assert_eq!(web.cwd, d.0);
    assert_eq!(web.stop_signal, 15);
    assert_eq!(web.stop_timeout, Duration::from_secs(10));
    assert_eq!(web.restart, Restart::OnFailure);
    assert_eq!(web.backoff_initial, Duration::from_secs(1));
    assert_eq!(web.backoff_max, Duration::from_secs(30));
    assert_eq!(web.start_limit_burst, 5);
    assert_eq!(web.start_limit_interval, Duration::from_secs(60));
    assert_eq!(web.user, None);
    assert_eq!(web.ready, None);
    assert!(web.env.is_empty());

    assert_eq!(c.start_order(), ["db", "web"]);
    assert_eq!(c.stop_order(), ["web", "db"]);
}

#[test]
fn a_string_command_is_split_like_a_shell_and_not_run_by_one() {
    let (_d, r) = load_toml(
        r#"
[services.web]
command = "./start.sh --port 8000 'a b'"
"#,
    );
    let argv = &r.unwrap().services["web"].argv;
    assert_eq!(argv, &os(&["./start.sh", "--port", "8000", "a b"]));

    // Control: shell = true hands the very same string to sh -c.
    let (_d, r) = load_toml(
        r#"
[services.web]
command = "./start.sh --port 8000 'a b'"
shell = true
"#,
    );
    let argv = &r.unwrap().services["web"].argv;
    assert_eq!(
        argv,
        &os(&["/bin/sh", "-c", "./start.sh --port 8000 'a b'"])
    );
}

#[test]
fn every_key_is_read() {
    let d = TempDir::new();
    std::fs::create_dir(d.0.join("sub")).unwrap();
    d.write("app.env", "A=1\n");
    d.write(
        TOML_NAME,
        r#"
log_dir = "var/log"
log_max_size = "1MiB"
log_keep = 2

[services.a]
command = ["prog", "x"]
cwd = "sub"
env = { B = "2", PORT = 8000, DEBUG = true }
env_file = "app.env"
user = 0
stop_signal = "INT"
stop_timeout = 3
restart = "always"
backoff_initial = "250ms"
backoff_max = 2.5
start_limit_burst = 9
start_limit_interval = "2m"
depends_on = ["b"]
ready_cmd = ["check", "--quiet"]
log_max_size = 4096
log_keep = 0

[services.b]
command = "b"
ready_log = "listening on \\d+"

[services.c]
command = "c"
ready = "notify"
restart = "never"
stop_signal = 9
"#,
    );
    let c = Config::load(&d.0, None).unwrap();
    assert_eq!(c.log_dir, Some(d.0.join("var/log")));
    assert_eq!((c.log_max_size, c.log_keep), (1 << 20, 2));

    let a = &c.services["a"];
    assert_eq!(a.argv, os(&["prog", "x"]));
    assert_eq!(a.cwd, d.0.join("sub"));
    let env: Vec<(OsString, OsString)> =
        [("A", "1"), ("B", "2"), ("DEBUG", "true"), ("PORT", "8000")]
            .iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
    assert_eq!(a.env, env);
    let root = a.user.as_ref().unwrap();
    assert_eq!((root.uid, root.gid, root.name.as_str()), (0, 0, "root"));
    assert_eq!(a.stop_signal, 2);
    assert_eq!(a.stop_timeout, Duration::from_secs(3));
    assert_eq!(a.restart, Restart::Always);
    assert_eq!(a.backoff_initial, Duration::from_millis(250));
    assert_eq!(a.backoff_max, Duration::from_millis(2500));
    assert_eq!(a.start_limit_burst, 9);
    assert_eq!(a.start_limit_interval, Duration::from_secs(120));
    assert_eq!(a.depends_on, ["b"]);
    assert_eq!(a.ready, Some(Ready::Cmd(os(&["check", "--quiet"]))));
    assert_eq!((a.log_max_size, a.log_keep), (4096, 0));

    let b = &c.services["b"];
    assert_eq!(b.argv, os(&["b"]));
    let Some(Ready::Log(LogPattern(re))) = &b.ready else {
        panic!("{:?}", b.ready)
    };
    assert!(re.is_match("listening on 8000"));
    assert!(!re.is_match("listening on port"));
    // Service-level log settings fall back to the top-level ones.
    assert_eq!((b.log_max_size, b.log_keep), (1 << 20, 2));

    let cs = &c.services["c"];
    assert_eq!(cs.ready, Some(Ready::Notify));
    assert_eq!(cs.restart, Restart::Never);
    assert_eq!(cs.stop_signal, 9);

    assert_eq!(c.start_order(), ["b", "a", "c"]);
}

#[test]
fn env_file_values_come_first_and_env_overrides_them() {
    let d = TempDir::new();
    d.write(
        ".env",
        "# settings\nA=from-file\n\nexport B='two words'\nC=\"quoted # not a comment\"\nD=4 # comment\n",
    );
    d.write(
        TOML_NAME,
        r#"
[services.web]
command = "w"
env_file = ".env"
env = { C = "from-table", E = "5" }
"#,
    );
    let c = Config::load(&d.0, None).unwrap();
    let env: Vec<(String, String)> = c.services["web"]
        .env
        .iter()
        .map(|(k, v)| {
            (
                k.clone().into_string().unwrap(),
                v.clone().into_string().unwrap(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("A", "from-file"),
        ("B", "two words"),
        ("C", "from-table"),
        ("D", "4"),
        ("E", "5"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(env, want);
}

#[test]
fn env_file_errors_name_the_env_file_line() {
    let d = TempDir::new();
    d.write(".env", "A=1\n# fine\nNOT A VARIABLE\n");
    let f = d.write(
        TOML_NAME,
        "[services.web]\ncommand = \"w\"\nenv_file = \".env\"\n",
    );
    let e = Config::load(&d.0, None).unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "{}:3: service web: key env_file: .env:3: cannot parse 'NOT A VARIABLE'",
            f.display()
        )
    );

    refused(
        "[services.web]\ncommand = \"w\"\n\nenv_file = \"missing.env\"\n",
        "FILE:4: service web: key env_file: cannot read missing.env: No such file or directory",
    );
}

#[test]
fn bad_configs_give_one_line_with_the_right_line_number() {
    let cases: &[(&str, &str)] = &[
        // TOML syntax
        (
            "[services.web]\ncommand = \"x\n",
            "FILE:2: invalid basic string, expected `\"`",
        ),
        (
            "[services.web]\ncommand = \"x\"\ncommand = \"y\"\n",
            "FILE:3: duplicate key",
        ),
        // unknown keys, at both levels
        (
            "[services.web]\ncommand = \"x\"\n\ncomand = \"y\"\n",
            "FILE:4: service web: key comand: unknown key (did you mean 'command'?)",
        ),
        (
            "log_kep = 3\n[services.web]\ncommand = \"x\"\n",
            "FILE:1: key log_kep: unknown key (did you mean 'log_keep'?)",
        ),
        (
            "[services.web]\ncommand = \"x\"\nwibble = 1\n",
            "FILE:3: service web: key wibble: unknown key",
        ),
        (
            "[service.web]\ncommand = \"x\"\n",
            "FILE:1: key service: unknown key (did you mean 'services'?)",
        ),
        // shapes
        (
            "services = 3\n",
            "FILE:1: key services: expected a table of services, like [services.web]",
        ),
        (
            "[services]\nweb = \"x\"\n",
            "FILE:2: service web: expected a table of settings, like [services.web]",
        ),
        (
            "log_keep = 3\n",
            "FILE: no services defined (add a [services.NAME] table with a command)",
        ),
        // commands
        (
            "\n[services.web]\nrestart = \"always\"\n",
            "FILE:2: service web: key command: missing (every service needs a command)",
        ),
        (
            "[services.web]\ncommand = []\n",
            "FILE:2: service web: key command: empty command",
        ),
        (
            "[services.web]\ncommand = \"  \"\n",
            "FILE:2: service web: key command: empty command",
        ),
        (
            "[services.web]\ncommand = [\"a\", 1]\n",
            "FILE:2: service web: key command: expected an array of strings, found the integer 1",
        ),
        (
            "[services.web]\ncommand = 7\n",
            "FILE:2: service web: key command: expected a string or an array of strings, got the integer 7",
        ),
        (
            "[services.web]\ncommand = \"run 'unclosed\"\n",
            "FILE:2: service web: key command: unbalanced quotes or a trailing backslash (or set shell = true)",
        ),
        (
            "[services.web]\ncommand = [\"a\", \"b\"]\nshell = true\n",
            "FILE:3: service web: key shell: shell = true takes command as one string, not an array",
        ),
        (
            "[services.web]\ncommand = \"a\"\nshell = \"yes\"\n",
            "FILE:3: service web: key shell: expected true or false, got the string \"yes\"",
        ),
        // values that do not parse
        (
            "[services.web]\ncommand = \"x\"\nstop_timeout = \"10 parsecs\"\n",
            "FILE:3: service web: key stop_timeout: invalid duration '10 parsecs' (use e.g. 250ms, 5s, 2m, 1h30m or a number of seconds)",
        ),
        (
            "[services.web]\ncommand = \"x\"\nbackoff_max = -1\n",
            "FILE:3: service web: key backoff_max: invalid duration -1 (negative)",
        ),
        (
            "[services.web]\ncommand = \"x\"\nbackoff_initial = \"1m\"\n",
            "FILE:3: service web: key backoff_initial: backoff_initial (1m) is longer than backoff_max (30s)",
        ),
        (
            "log_max_size = \"lots\"\n[services.web]\ncommand = \"x\"\n",
            "FILE:1: key log_max_size: invalid size 'lots' (use e.g. 512, 64KiB, 10MB, 1GiB)",
        ),
        (
            "[services.web]\ncommand = \"x\"\nlog_max_size = 0\n",
            "FILE:3: service web: key log_max_size: must be at least 1 byte",
        ),
        (
            "[services.web]\ncommand = \"x\"\nlog_keep = -2\n",
            "FILE:3: service web: key log_keep: -2 is out of range (use 0 to 4294967295)",
        ),
        (
            "[services.web]\ncommand = \"x\"\nstart_limit_burst = 0\n",
            "FILE:3: service web: key start_limit_burst: 0 is out of range (use 1 to 4294967295)",
        ),
        (
            "[services.web]\ncommand = \"x\"\nstop_signal = \"SIGNOPE\"\n",
            "FILE:3: service web: key stop_signal: invalid signal 'SIGNOPE' (use e.g. TERM, SIGTERM or 15)",
        ),
        (
            "[services.web]\ncommand = \"x\"\nstop_signal = 0\n",
            "FILE:3: service web: key stop_signal: signal 0 cannot stop anything",
        ),
        (
            "[services.web]\ncommand = \"x\"\nrestart = \"sometimes\"\n",
            "FILE:3: service web: key restart: 'sometimes' is not one of always, on-failure, never",
        ),
        (
            "[services.web]\ncommand = \"x\"\nready_log = \"(unclosed\"\n",
            "FILE:3: service web: key ready_log: invalid regex: unclosed group",
        ),
        (
            "[services.web]\ncommand = \"x\"\nready_tcp = \"localhost\"\n",
            "FILE:3: service web: key ready_tcp: 'localhost' is not HOST:PORT (e.g. 127.0.0.1:8000)",
        ),
        (
            "[services.web]\ncommand = \"x\"\nready = \"yes\"\n",
            "FILE:3: service web: key ready: the only value is \"notify\"",
        ),
        (
            "[services.web]\ncommand = \"x\"\nuser = \"no-such-user-sx\"\n",
            "FILE:3: service web: key user: no user named 'no-such-user-sx' in /etc/passwd",
        ),
        (
            "[services.web]\ncommand = \"x\"\nuser = 4000000000\n",
            "FILE:3: service web: key user: no user with uid 4000000000 in /etc/passwd",
        ),
        (
            "[services.web]\ncommand = \"x\"\ncwd = \"nowhere\"\n",
            "FILE:3: service web: key cwd: DIR/nowhere: No such file or directory",
        ),
        (
            "[services.web]\ncommand = \"x\"\n[services.web.env]\nA = \"1\"\nB = [2]\n",
            "FILE:5: service web: key env: B: expected a string, got an array",
        ),
        (
            "[services.web]\ncommand = \"x\"\nenv = { \"A=B\" = \"1\" }\n",
            "FILE:3: service web: key env: invalid variable name 'A=B' (it must not be empty or contain '=')",
        ),
        // two readiness checks: reported on the second
        (
            "[services.web]\ncommand = \"x\"\nready_tcp = \"127.0.0.1:80\"\nready_log = \"up\"\n",
            "FILE:4: service web: key ready_log: ready_tcp is already set (line 3): a service takes one readiness check",
        ),
        // names
        (
            "[services.\"my web\"]\ncommand = \"x\"\n",
            "FILE:1: service my web: invalid service name (use letters, digits, '_', '.' and '-')",
        ),
        (
            "[services.\"a\\nb\"]\ncommand = \"x\"\n",
            "FILE:1: service a\\nb: invalid service name (use letters, digits, '_', '.' and '-')",
        ),
        // dependencies
        (
            "[services.web]\ncommand = \"x\"\ndepends_on = [\"db\"]\n",
            "FILE:3: service web: key depends_on: unknown service 'db'",
        ),
        (
            "[services.web]\ncommand = \"x\"\ndepends_on = \"db\"\n",
            "FILE:3: service web: key depends_on: expected an array of service names, got the string \"db\"",
        ),
        (
            "[services.web]\ncommand = \"x\"\ndepends_on = [\"web\"]\n",
            "FILE:3: service web: key depends_on: dependency cycle web -> web",
        ),
    ];
    for (text, want) in cases {
        // The cwd case names the absolute directory.
        let (d, r) = load_toml(text);
        let file = d.0.join(TOML_NAME);
        let want = want
            .replace("FILE", &file.display().to_string())
            .replace("DIR", &d.0.display().to_string());
        let got = match r {
            Ok(c) => panic!("loaded, expected {want:?}:\n{text}\n{c:#?}"),
            Err(e) => e.to_string(),
        };
        assert_eq!(got, want, "for:\n{text}");
        assert!(!got.contains('\n'), "not one line: {got:?}");
    }
}

#[test]
fn the_first_error_in_the_file_is_the_one_reported() {
    // "a" sorts first but comes last in the file.
    refused(
        "[services.b]\ncommand = \"x\"\nstop_timeout = \"soon\"\n\n[services.a]\ncommand = 5\n",
        "FILE:3: service b: key stop_timeout: invalid duration 'soon' (use e.g. 250ms, 5s, 2m, 1h30m or a number of seconds)",
    );
}

#[test]
fn dependency_cycles_are_named() {
    refused(
        r#"
[services.web]
command = "w"
depends_on = ["api"]

[services.api]
command = "a"
depends_on = ["web"]
"#,
        "FILE:8: service api: key depends_on: dependency cycle api -> web -> api",
    );
    // A longer one, entered from a service outside it.
    refused(
        r#"
[services.a]
command = "x"
depends_on = ["b"]
[services.b]
command = "x"
depends_on = ["c"]
[services.c]
command = "x"
depends_on = ["d"]
[services.d]
command = "x"
depends_on = ["b"]
"#,
        "FILE:7: service b: key depends_on: dependency cycle b -> c -> d -> b",
    );
    // Control: the same shape without the closing edge loads.
    let (_d, r) = load_toml(
        r#"
[services.a]
command = "x"
depends_on = ["b"]
[services.b]
command = "x"
depends_on = ["c"]
[services.c]
command = "x"
depends_on = ["d"]
[services.d]
command = "x"
"#,
    );
    assert_eq!(r.unwrap().start_order(), ["d", "c", "b", "a"]);
}

#[test]
fn start_order_honours_dependencies_then_names() {
    let (_d, r) = load_toml(
        r#"
[services.e]
command = "x"
[services.d]
command = "x"
depends_on = ["c", "b"]
[services.c]
command = "x"
depends_on = ["a"]
[services.b]
command = "x"
depends_on = ["a"]
[services.a]
command = "x"
depends_on = ["z"]
[services.z]
command = "x"
"#,
    );
    let c = r.unwrap();
    assert_eq!(c.start_order(), ["e", "z", "a", "b", "c", "d"]);
    assert_eq!(c.stop_order(), ["d", "c", "b", "a", "z", "e"]);
    // Every service starts after each of its dependencies.
    let order = c.start_order();
    for s in c.services.values() {
        let me = order.iter().position(|n| *n == s.name).unwrap();
        for d in &s.depends_on {
            assert!(order.iter().position(|n| n == d).unwrap() < me);
        }
    }
}

#[test]
fn procfile_is_read_like_foreman() {
    let d = TempDir::new();
    d.write(
        PROCFILE_NAME,
        "# the app\nweb: ./server --port $PORT\n\n  worker:bundle exec work 'q 1'  \nclock.v2: echo tick # shell comment\n",
    );
    let c = Config::load(&d.0, None).unwrap();
    assert_eq!(c.file, d.0.join(PROCFILE_NAME));
    assert_eq!(c.dir, d.0);
    assert_eq!(c.services.len(), 3);
    let web = &c.services["web"];
    assert_eq!(
        *web,
        Service::new(
            "web",
            os(&["/bin/sh", "-c", "./server --port $PORT"]),
            d.0.clone()
        )
    );
    assert_eq!(
        c.services["worker"].argv,
        os(&["/bin/sh", "-c", "bundle exec work 'q 1'"])
    );
    assert_eq!(
        c.services["clock.v2"].argv,
        os(&["/bin/sh", "-c", "echo tick # shell comment"])
    );
    assert_eq!(c.start_order(), ["clock.v2", "web", "worker"]);
}

#[test]
fn procfile_errors_name_the_entry_line() {
    let cases: &[(&str, &str)] = &[
        (
            "web: a\n\n# x\nweb: b\n",
            "FILE:4: service web: duplicate service name (first defined on line 1)",
        ),
        ("web: a\njust words\n", "FILE:2: expected 'NAME: COMMAND'"),
        (
            "[services.web]\ncommand = \"x\"\n",
            "FILE:1: expected 'NAME: COMMAND' (a TOML configuration must have a name ending in .toml)",
        ),
        (
            "web: a\nmy web: b\n",
            "FILE:2: service my web: invalid service name (use letters, digits, '_', '.' and '-')",
        ),
        ("\nweb:\n", "FILE:2: service web: empty command"),
        (
            "# nothing\n\n",
            "FILE: no services defined (add lines like 'web: ./server --port 8000')",
        ),
    ];
    for (text, want) in cases {
        let d = TempDir::new();
        let file = d.write(PROCFILE_NAME, text);
        let want = want.replace("FILE", &file.display().to_string());
        let got = Config::load(&d.0, None).unwrap_err().to_string();
        assert_eq!(got, want, "for:\n{text}");
    }
}

#[test]
fn find_prefers_sexton_toml_then_procfile_and_honours_f() {
    let d = TempDir::new();
    let err = find(&d.0, None).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{}: no sexton.toml or Procfile in this directory (use -f FILE to name one)",
            d.0.display()
        )
    );

    let procfile = d.write(PROCFILE_NAME, "p: run\n");
    let f = find(&d.0, None).unwrap();
    assert_eq!((f.path, f.format), (procfile.clone(), Format::Procfile));

    let toml = d.write(TOML_NAME, "[services.t]\ncommand = \"run\"\n");
    let f = find(&d.0, None).unwrap();
    assert_eq!((f.path, f.format), (toml, Format::Toml));
    let c = Config::load(&d.0, None).unwrap();
    assert_eq!(c.services.keys().collect::<Vec<_>>(), ["t"]);

    // -f wins over both; the format follows the name.
    let other = d.write("dev.toml", "[services.dev]\ncommand = \"run\"\n");
    let c = Config::load(&d.0, Some(&other)).unwrap();
    assert_eq!(c.file, other);
    assert_eq!(c.services.keys().collect::<Vec<_>>(), ["dev"]);
    let c = Config::load(&d.0, Some(&procfile)).unwrap();
    assert_eq!(c.services.keys().collect::<Vec<_>>(), ["p"]);
    let pdev = d.write("Procfile.dev", "q: run\n");
    let c = Config::load(&d.0, Some(&pdev)).unwrap();
    assert_eq!(c.services.keys().collect::<Vec<_>>(), ["q"]);

    let missing = d.0.join("missing.toml");
    let err = Config::load(&d.0, Some(&missing)).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{}: cannot read: No such file or directory",
            missing.display()
        )
    );
}

/// The user database entry for `name`, read straight from /etc/passwd.
fn passwd_entry(name: &str) -> Option<(u32, u32)> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 4 && f[0] == name).then(|| (f[2].parse().unwrap(), f[3].parse().unwrap()))
    })
}

#[test]
fn user_nobody_resolves_by_name_and_by_uid() {
    let Some((uid, gid)) = passwd_entry("nobody") else {
        eprintln!("skipped: no 'nobody' entry in /etc/passwd on this machine");
        return;
    };
    let (_d, r) = load_toml(&format!(
        "[services.a]\ncommand = \"x\"\nuser = \"nobody\"\n[services.b]\ncommand = \"x\"\nuser = {uid}\n[services.c]\ncommand = \"x\"\nuser = \"{uid}\"\n"
    ));
    let c = r.unwrap();
    for name in ["a", "b", "c"] {
        let u = c.services[name].user.as_ref().unwrap();
        assert_eq!(
            (u.uid, u.gid, u.name.as_str()),
            (uid, gid, "nobody"),
            "{name}"
        );
        assert!(u.groups.contains(&gid), "{u:?}");
    }
}

#[test]
fn diff_tells_added_removed_changed_unchanged() {
    let (_d1, old) = load_toml(
        r#"
[services.keep]
command = "k"
ready_log = "up"
[services.edit]
command = "e"
[services.gone]
command = "g"
"#,
    );
    let (_d2, new) = load_toml(
        r#"
[services.keep]
command = "k"
ready_log = "up"
[services.edit]
command = "e"
stop_timeout = "11s"
[services.fresh]
command = "f"
"#,
    );
    let (old, new) = (old.unwrap(), new.unwrap());
    // Configs in two directories: make the working directories the same
    // so that only the settings in the file differ.
    let new = Config {
        services: new
            .services
            .into_iter()
            .map(|(k, mut s)| {
                s.cwd = old.dir.clone();
                (k, s)
            })
            .collect(),
        ..new
    };
    let d = old.diff(&new);
    assert_eq!(d.added, ["fresh"]);
    assert_eq!(d.removed, ["gone"]);
    assert_eq!(d.changed, ["edit"]);
    assert_eq!(d.unchanged, ["keep"]);

    // Regexes compare by pattern.
    let re = |p: &str| Ready::Log(LogPattern(regex::Regex::new(p).unwrap()));
    assert_eq!(re("a+"), re("a+"));
    assert_ne!(re("a+"), re("a*"));
    assert_eq!(old.diff(&old).unchanged.len(), 3);
}

#[test]
fn error_parts_are_left_out_when_absent_and_control_characters_escaped() {
    let e = ConfigError {
        file: "x.toml".into(),
        line: None,
        service: Some("a\nb".into()),
        key: None,
        message: "bad\r\nthing".into(),
    };
    assert_eq!(e.to_string(), "x.toml: service a\\nb: bad\\r\\nthing");
}

#[test]
fn a_file_that_is_not_utf8_is_refused_at_its_line() {
    let d = TempDir::new();
    let file = d.0.join(TOML_NAME);
    std::fs::write(&file, b"[services.web]\ncommand = \"caf\xe9\"\n").unwrap();
    let got = Config::load(&d.0, None).unwrap_err().to_string();
    assert_eq!(got, format!("{}:2: not valid UTF-8", file.display()));
}

#[test]
fn start_order_of_a_hand_made_cycle_still_lists_every_service() {
    let mut services = BTreeMap::new();
    for (name, deps) in [("a", vec!["b"]), ("b", vec!["a"]), ("c", vec!["gone"])] {
        let mut s = Service::new(name, os(&["x"]), "/".into());
        s.depends_on = deps.into_iter().map(String::from).collect();
        services.insert(name.to_string(), s);
    }
    let c = Config {
        file: "/x.toml".into(),
        dir: "/".into(),
        services,
        log_dir: None,
        log_max_size: DEFAULT_LOG_MAX_SIZE,
        log_keep: DEFAULT_LOG_KEEP,
    };
    assert_eq!(c.start_order(), ["c", "a", "b"]);
}

#[test]
fn the_env_file_example_of_the_documentation_reads_as_documented() {
    let doc = include_str!("../../../docs/supervisor-config.md");
    let (_, rest) = doc.split_once("```sh\n# a comment\n").unwrap();
    let (example, _) = rest.split_once("```").unwrap();
    let d = TempDir::new();
    d.write("doc.env", example);
    d.write(
        TOML_NAME,
        "[services.web]\ncommand = \"w\"\nenv_file = \"doc.env\"\n",
    );
    let c = Config::load(&d.0, None).unwrap();
    let env: BTreeMap<String, String> = c.services["web"]
        .env
        .iter()
        .map(|(k, v)| {
            (
                k.clone().into_string().unwrap(),
                v.clone().into_string().unwrap(),
            )
        })
        .collect();
    assert_eq!(env["PORT"], "8000");
    assert_eq!(env["MODE"], "production");
    assert_eq!(env["GREETING"], "hello world");
    assert_eq!(env["MOTD"], "line one\nline two");
    if std::env::var_os("DB_PORT").is_some() {
        eprintln!("DATABASE_URL not checked: DB_PORT is set in this environment and wins");
    } else {
        assert_eq!(env["DATABASE_URL"], "postgres://db:5432/app");
    }
    assert_eq!(env.len(), 6);
}
