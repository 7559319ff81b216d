//! Property tests of the parsers users feed: whatever the text, no panic;
//! and what sexton prints, it reads back.

use proptest::prelude::*;
use sexton::parse;
use std::time::Duration;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn durations_never_panic(s in ".{0,40}") {
        let _ = parse::duration(&s);
    }

    #[test]
    fn duration_like_text_never_panics(
        n in "[+-]?[0-9]{0,30}(\\.[0-9]{0,30})?([eE][+-]?[0-9]{1,5})?",
        unit in prop::sample::select(vec!["", "s", "m", "h", "d", "ms", "us", "ns", "min", "D", "x"]),
    ) {
        if let Ok(d) = parse::duration(&format!("{n}{unit}")) {
            prop_assert!(d <= parse::MAX_DURATION);
        }
    }

    #[test]
    fn whole_seconds_and_milliseconds_read_back(secs in 0u64..10_000_000, ms in 0u64..1000) {
        prop_assert_eq!(parse::duration(&secs.to_string()).unwrap(), Duration::from_secs(secs));
        prop_assert_eq!(parse::duration(&format!("{secs}s")).unwrap(), Duration::from_secs(secs));
        let d = Duration::from_secs(secs) + Duration::from_millis(ms);
        // humantime's own printing, read back.
        let text = humantime::format_duration(d).to_string();
        prop_assert_eq!(parse::duration(&text).unwrap(), d, "{}", text);
    }

    #[test]
    fn sizes_never_panic_and_bytes_read_back(s in ".{0,30}", n in 0u64..u64::MAX / 2) {
        let _ = parse::size(&s);
        prop_assert_eq!(parse::size(&n.to_string()).unwrap(), n);
    }

    #[test]
    fn binary_units_read_back(n in 0u64..1 << 20) {
        prop_assert_eq!(parse::size(&format!("{n}KiB")).unwrap(), n * 1024);
        prop_assert_eq!(parse::size(&format!("{n}MiB")).unwrap(), n << 20);
    }

    #[test]
    fn signals_never_panic(s in ".{0,20}") {
        let _ = parse::signal_number(&s);
        let _ = parse::signal(&s);
    }

    #[test]
    fn every_signal_name_reads_back(n in 0i32..=64) {
        let name = parse::signal_name_of(n);
        prop_assert_eq!(parse::signal_number(&name).unwrap(), n);
        // glibc's own realtime signals (32, 33) and 0 print as numbers;
        // every other name also reads back with SIG and in lower case.
        if !matches!(n, 0 | 32 | 33) {
            prop_assert_eq!(parse::signal_number(&format!("SIG{name}")).unwrap(), n);
            prop_assert_eq!(parse::signal_number(&name.to_lowercase()).unwrap(), n);
        }
    }
}

// ------------------------------------------------------------------
// The other parsers users feed: `init --rewrite`, `run --env`,
// `daemon --ready`, the supervisor's sexton.toml, Procfile and env
// files, and the /proc readers (stat lines, fd links, /proc/net tables)
// whose text processes control (command names, paths).

use nix::sys::signal::Signal;
use sexton::procfs::net::{Proto, Table};
use sexton::supervise::config::{self, Config, Format, Found, Restart};
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

/// The standard signals (nix's table), by number.
fn standard_signals() -> Vec<Signal> {
    Signal::iterator().collect()
}

/// A directory for one case's files, removed on drop.
struct CaseDir(PathBuf);

impl CaseDir {
    fn new() -> CaseDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "sexton-props-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("case dir");
        CaseDir(dir)
    }

    /// Writes `name` and loads it as the supervisor would (`-f name`).
    fn load(&self, name: &str, format: Format, bytes: &[u8]) -> Result<Config, String> {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).expect("write config");
        Config::load_found(&Found { path, format }).map_err(|e| e.to_string())
    }
}

impl Drop for CaseDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A TOML basic string holding exactly `s`.
fn toml_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\u{:04X}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// What a duration written in sexton.toml may look like, with the value
/// it stands for (`None`: it must be refused).
#[derive(Debug, Clone)]
enum TomlDuration {
    /// humantime's own printing of a duration, as a string.
    Text(Duration),
    Int(i64),
    Float(f64),
}

impl TomlDuration {
    fn toml(&self) -> String {
        match self {
            TomlDuration::Text(d) => toml_str(&humantime::format_duration(*d).to_string()),
            TomlDuration::Int(i) => i.to_string(),
            TomlDuration::Float(f) if f.is_nan() => "nan".into(),
            TomlDuration::Float(f) if f.is_infinite() => {
                if *f > 0.0 {
                    "inf".into()
                } else {
                    "-inf".into()
                }
            }
            TomlDuration::Float(f) => {
                let t = format!("{f:?}");
                // TOML wants digits around a decimal point, and Rust's
                // `{:?}` may print `1e300`: both forms are valid.
                t
            }
        }
    }

    /// The value: numbers of seconds saturate at parse::MAX_DURATION as
    /// the text form does; negative numbers and NaN are refused.
    fn value(&self) -> Option<Duration> {
        match *self {
            TomlDuration::Text(d) => Some(d),
            TomlDuration::Int(i) if i < 0 => None,
            TomlDuration::Int(i) => Some(Duration::from_secs(i as u64).min(parse::MAX_DURATION)),
            TomlDuration::Float(f) if f.is_nan() || f < 0.0 => None,
            TomlDuration::Float(f) => Some(
                Duration::try_from_secs_f64(f)
                    .unwrap_or(parse::MAX_DURATION)
                    .min(parse::MAX_DURATION),
            ),
        }
    }
}

fn toml_duration() -> impl Strategy<Value = TomlDuration> {
    prop_oneof![
        (0u64..10_000_000, 0u32..1_000_000_000)
            .prop_map(|(s, n)| TomlDuration::Text(Duration::new(s, n))),
        prop_oneof![
            0i64..100_000,
            Just(i64::MAX),
            Just(i64::MAX / 4),
            Just(i64::MAX / 4 + 1),
            Just(-1i64),
            any::<i64>(),
        ]
        .prop_map(TomlDuration::Int),
        prop_oneof![
            0.0f64..1e6,
            Just(1.8e19f64),
            Just(1.8446744073709552e19f64),
            Just(9.3e18f64),
            Just(1e300f64),
            Just(f64::INFINITY),
            Just(f64::NAN),
            Just(-0.5f64),
            any::<f64>(),
        ]
        .prop_map(TomlDuration::Float),
    ]
}

/// One generated service of a sexton.toml.
#[derive(Debug, Clone)]
struct GenService {
    name: String,
    argv: Vec<String>,
    /// Written as one string split like a shell would, else an array.
    as_string: bool,
    env: std::collections::BTreeMap<String, String>,
    stop_signal: i32,
    restart: &'static str,
    stop_timeout: TomlDuration,
    backoff_initial: TomlDuration,
    backoff_max: TomlDuration,
    start_limit_interval: TomlDuration,
    start_limit_burst: u32,
}

fn service_name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_.-]{1,12}".prop_filter("not . or ..", |n| n != "." && n != "..")
}

fn gen_service() -> impl Strategy<Value = GenService> {
    (
        service_name(),
        (
            "[^\\x00]{1,12}",
            prop::collection::vec("[^\\x00]{0,12}", 0..4),
        ),
        any::<bool>(),
        prop::collection::btree_map("[^\\x00=]{1,10}", "[^\\x00]{0,16}", 0..4),
        prop::sample::select(
            (1..=64)
                .filter(|n| *n != 32 && *n != 33)
                .collect::<Vec<i32>>(),
        ),
        prop::sample::select(vec!["always", "on-failure", "never"]),
        (
            toml_duration(),
            toml_duration(),
            toml_duration(),
            toml_duration(),
        ),
        1u32..=u32::MAX,
    )
        .prop_map(
            |(name, (prog, args), as_string, env, stop_signal, restart, d, burst)| {
                let mut argv = vec![prog];
                argv.extend(args);
                GenService {
                    name,
                    argv,
                    as_string,
                    env,
                    stop_signal,
                    restart,
                    stop_timeout: d.0,
                    backoff_initial: d.1,
                    backoff_max: d.2,
                    start_limit_interval: d.3,
                    start_limit_burst: burst,
                }
            },
        )
}

impl GenService {
    fn toml(&self) -> String {
        let mut t = format!("[services.{}]\n", toml_str(&self.name));
        if self.as_string {
            let line = shlex::try_join(self.argv.iter().map(String::as_str)).expect("no NUL");
            t.push_str(&format!("command = {}\n", toml_str(&line)));
        } else {
            let items: Vec<String> = self.argv.iter().map(|a| toml_str(a)).collect();
            t.push_str(&format!("command = [{}]\n", items.join(", ")));
        }
        t.push_str(&format!(
            "stop_signal = {}\n",
            toml_str(&parse::signal_name_of(self.stop_signal))
        ));
        t.push_str(&format!("restart = \"{}\"\n", self.restart));
        t.push_str(&format!("stop_timeout = {}\n", self.stop_timeout.toml()));
        t.push_str(&format!(
            "backoff_initial = {}\n",
            self.backoff_initial.toml()
        ));
        t.push_str(&format!("backoff_max = {}\n", self.backoff_max.toml()));
        t.push_str(&format!(
            "start_limit_interval = {}\n",
            self.start_limit_interval.toml()
        ));
        t.push_str(&format!("start_limit_burst = {}\n", self.start_limit_burst));
        if !self.env.is_empty() {
            t.push_str("[services.");
            t.push_str(&toml_str(&self.name));
            t.push_str(".env]\n");
            for (k, v) in &self.env {
                t.push_str(&format!("{} = {}\n", toml_str(k), toml_str(v)));
            }
        }
        t
    }

    /// Whether the file must load: every duration valid and
    /// backoff_initial <= backoff_max.
    fn valid(&self) -> bool {
        let ds = [
            &self.stop_timeout,
            &self.backoff_initial,
            &self.backoff_max,
            &self.start_limit_interval,
        ];
        ds.iter().all(|d| d.value().is_some())
            && self.backoff_initial.value() <= self.backoff_max.value()
    }
}

/// The restart policy of a loaded service, as the supervisor builds it.
fn policy_of(s: &config::Service) -> sexton::daemon::Respawn {
    sexton::daemon::Respawn {
        backoff: s.backoff_initial,
        backoff_max: s.backoff_max,
        limit: s.start_limit_burst,
        interval: s.start_limit_interval,
        healthy_after: s.backoff_initial.saturating_mul(10),
    }
}

/// One generated line of an env file, with the value it must give.
#[derive(Debug, Clone)]
struct EnvLine {
    key: String,
    value: String,
    style: u8,
    export: bool,
}

impl EnvLine {
    fn text(&self) -> String {
        let v = match self.style {
            // Single quotes: taken literally.
            0 => format!("'{}'", self.value),
            // Double quotes with the escapes the format has.
            1 => {
                let mut s = String::from("\"");
                for c in self.value.chars() {
                    match c {
                        '\\' => s.push_str("\\\\"),
                        '"' => s.push_str("\\\""),
                        '$' => s.push_str("\\$"),
                        '\n' => s.push_str("\\n"),
                        c => s.push(c),
                    }
                }
                s.push('"');
                s
            }
            // Unquoted: a plain word.
            _ => self.value.clone(),
        };
        format!(
            "{}{}={}\n",
            if self.export { "export " } else { "" },
            self.key,
            v
        )
    }
}

fn env_line() -> impl Strategy<Value = EnvLine> {
    (
        "[A-Za-z_][A-Za-z0-9_]{0,10}",
        0u8..3,
        any::<bool>(),
        // No backslash in single quotes: dotenvy 0.15.7 takes a
        // backslash right before the closing quote as escaping it (its
        // line joiner), so `K='C:\'` is refused although single quotes
        // are literal everywhere else.
        "[^\\x00'\\r\\n\\\\]{0,16}",
        "[^\\x00\\r]{0,16}",
        "[A-Za-z0-9_./:+,@%-]{0,16}",
    )
        .prop_map(|(key, style, export, single, double, plain)| EnvLine {
            key,
            value: match style {
                0 => single,
                1 => double,
                _ => plain,
            },
            style,
            export,
        })
}

/// A /proc/PID/stat line as the kernel writes it (`fs/proc/array.c`):
/// the command name raw between parentheses, 52 fields in all.
fn stat_line(
    pid: i32,
    comm: &[u8],
    state: char,
    ppid: i32,
    pgrp: i32,
    sid: i32,
    start: u64,
) -> Vec<u8> {
    let mut line = format!("{pid} (").into_bytes();
    line.extend_from_slice(comm);
    line.extend_from_slice(
        format!(
            ") {state} {ppid} {pgrp} {sid} 34816 {pgrp} 4194560 1126 0 0 0 1 0 0 0 20 0 1 0 {start} \
             8507392 962 18446744073709551615 94289136164864 94289136847157 140726734047104 0 0 0 \
             65536 4 65538 1 0 0 17 1 0 0 0 0 0 94289137060336 94289137081352 94289163472896 \
             140726734050563 140726734050574 140726734050574 140726734057455 0\n"
        )
        .as_bytes(),
    );
    line
}

/// `%08X:%04X` of an address and port as /proc/net/tcp{,6} and udp{,6}
/// write them: each 32-bit word of the address in host byte order.
fn net_addr(a: &std::net::SocketAddr) -> String {
    let words: Vec<u32> = match a.ip() {
        std::net::IpAddr::V4(ip) => vec![u32::from_ne_bytes(ip.octets())],
        std::net::IpAddr::V6(ip) => ip
            .octets()
            .chunks(4)
            .map(|c| u32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    };
    let hex: String = words.iter().map(|w| format!("{w:08X}")).collect();
    format!("{hex}:{:04X}", a.port())
}

fn socket_addr(v6: bool) -> impl Strategy<Value = std::net::SocketAddr> {
    (any::<[u8; 16]>(), any::<u16>()).prop_map(move |(b, port)| {
        if v6 {
            std::net::SocketAddr::new(std::net::Ipv6Addr::from(b).into(), port)
        } else {
            std::net::SocketAddr::new(std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]).into(), port)
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn rewrites_never_panic(s in ".{0,30}") {
        let _ = parse::rewrite(&s);
    }

    #[test]
    fn rewrites_read_back(
        from in prop::sample::select(standard_signals()),
        to in prop::option::of(prop::sample::select(standard_signals())),
        sig_prefix in any::<bool>(),
        lower in any::<bool>(),
    ) {
        let name = |s: Signal| {
            let n = if sig_prefix { s.as_str().to_string() } else { parse::signal_name(s).to_string() };
            if lower { n.to_lowercase() } else { n }
        };
        let text = format!("{}:{}", name(from), to.map_or("0".to_string(), name));
        prop_assert_eq!(parse::rewrite(&text).unwrap(), (from, to.map_or(0, |s| s as i32)), "{}", text);
        // The number form reads back the same.
        let text = format!("{}:{}", from as i32, to.map_or(0, |s| s as i32));
        prop_assert_eq!(parse::rewrite(&text).unwrap(), (from, to.map_or(0, |s| s as i32)), "{}", text);
    }

    #[test]
    fn env_pairs_never_panic_and_read_back(
        raw in prop::collection::vec(any::<u8>(), 0..40),
        key in prop::collection::vec(any::<u8>().prop_filter("no = or NUL", |b| *b != b'=' && *b != 0), 1..20),
        value in prop::collection::vec(any::<u8>().prop_filter("no NUL", |b| *b != 0), 0..40),
    ) {
        let _ = parse::env_pair(OsStr::from_bytes(&raw));
        let mut text = key.clone();
        text.push(b'=');
        text.extend_from_slice(&value);
        let (k, v) = parse::env_pair(OsStr::from_bytes(&text)).unwrap();
        prop_assert_eq!(k, OsString::from_vec(key.clone()));
        prop_assert_eq!(v, OsString::from_vec(value.clone()));
        // Without a key it is refused.
        let mut nokey = vec![b'='];
        nokey.extend_from_slice(&value);
        prop_assert!(parse::env_pair(OsStr::from_bytes(&nokey)).is_err());
        prop_assert!(parse::env_pair(OsStr::from_bytes(&key)).is_err());
    }

    #[test]
    fn ready_specs_never_panic_and_read_back(
        s in ".{0,40}",
        host in "[A-Za-z0-9.:-]{1,20}",
        port in 1u16..,
        words in prop::collection::vec("[^\\x00]{0,10}", 1..5),
    ) {
        use sexton::supervise::config::Ready;
        use sexton::supervise::ready::parse_spec;
        let _ = parse_spec(&s);
        match parse_spec(&format!("tcp:{host}:{port}")) {
            Ok(Ready::Tcp(a)) => prop_assert_eq!(a, format!("{host}:{port}")),
            other => prop_assert!(false, "tcp:{}:{} gave {:?}", host, port, other),
        }
        let line = shlex::try_join(words.iter().map(String::as_str)).unwrap();
        let want: Vec<OsString> = words.iter().map(OsString::from).collect();
        match parse_spec(&format!("cmd:{line}")) {
            Ok(Ready::Cmd(argv)) => prop_assert_eq!(argv, want),
            other => prop_assert!(false, "cmd:{} gave {:?}", line, other),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn config_files_never_panic(
        text in prop::collection::vec(any::<u8>(), 0..200),
        tomlish in prop::collection::vec(
            prop_oneof![
                Just("[services.a]\n".to_string()),
                Just("[services.\"b.c\"]\n".to_string()),
                Just("[services.a.env]\n".to_string()),
                Just("command = \"sh -c 'exit 3'\"\n".to_string()),
                Just("command = []\n".to_string()),
                Just("shell = true\n".to_string()),
                Just("depends_on = [\"a\"]\n".to_string()),
                Just("ready = \"notify\"\n".to_string()),
                Just("ready_cmd = \"true\"\n".to_string()),
                Just("ready_log = \"(\"\n".to_string()),
                Just("ready_tcp = \"h:0\"\n".to_string()),
                Just("user = 99999999\n".to_string()),
                Just("cwd = \"/nonexistent\"\n".to_string()),
                Just("env_file = \"missing.env\"\n".to_string()),
                Just("log_max_size = 0\n".to_string()),
                Just("log_keep = -1\n".to_string()),
                (prop::sample::select(vec![
                    "stop_timeout", "backoff_initial", "backoff_max",
                    "start_limit_interval", "start_limit_burst", "stop_signal",
                    "restart", "log_max_size", "log_keep", "command", "comand",
                ]), prop_oneof![
                    toml_duration().prop_map(|d| d.toml()),
                    ".{0,12}".prop_map(|s| toml_str(&s)),
                    Just("{ a = 1 }".to_string()),
                    Just("1979-05-27T07:32:00Z".to_string()),
                ]).prop_map(|(k, v)| format!("{k} = {v}\n")),
                ".{0,20}".prop_map(|s| s + "\n"),
            ],
            0..12,
        ),
    ) {
        let dir = CaseDir::new();
        let _ = dir.load("any.toml", Format::Toml, &text);
        let _ = dir.load("Procfile", Format::Procfile, &text);
        let joined: String = tomlish.concat();
        if let Ok(cfg) = dir.load("mix.toml", Format::Toml, joined.as_bytes()) {
            for s in cfg.services.values() {
                // Whatever the file says, the supervisor can run the
                // restart policy and set its deadlines.
                let mut b = sexton::daemon::respawn::Backoff::new(policy_of(s));
                let t = std::time::Instant::now();
                for _ in 0..4 {
                    b.started(t);
                    let _ = b.died(t);
                }
                prop_assert!(t.checked_add(s.stop_timeout).is_some());
            }
        }
        let _ = dir.load("Procfile", Format::Procfile, joined.as_bytes());
    }

    #[test]
    fn sexton_toml_reads_back(services in prop::collection::vec(gen_service(), 1..4)) {
        let mut seen = std::collections::BTreeSet::new();
        let services: Vec<GenService> =
            services.into_iter().filter(|s| seen.insert(s.name.clone())).collect();
        let text: String = services.iter().map(GenService::toml).collect::<Vec<_>>().join("\n");
        let dir = CaseDir::new();
        let loaded = dir.load("sexton.toml", Format::Toml, text.as_bytes());
        let all_valid = services.iter().all(GenService::valid);
        match loaded {
            Err(e) => {
                prop_assert!(!all_valid, "refused a valid file: {}\n{}", e, text);
                prop_assert!(!e.contains('\n'), "a two-line error: {:?}", e);
            }
            Ok(cfg) => {
                prop_assert!(all_valid, "loaded an invalid file:\n{}", text);
                prop_assert_eq!(cfg.services.len(), services.len());
                for g in &services {
                    let s = &cfg.services[&g.name];
                    let argv: Vec<OsString> = g.argv.iter().map(OsString::from).collect();
                    prop_assert_eq!(&s.argv, &argv);
                    let mut env: Vec<(OsString, OsString)> = g
                        .env
                        .iter()
                        .map(|(k, v)| (OsString::from(k), OsString::from(v)))
                        .collect();
                    let mut got = s.env.clone();
                    env.sort();
                    got.sort();
                    prop_assert_eq!(got, env);
                    prop_assert_eq!(s.stop_signal, g.stop_signal);
                    let restart = match g.restart {
                        "always" => Restart::Always,
                        "never" => Restart::Never,
                        _ => Restart::OnFailure,
                    };
                    prop_assert_eq!(s.restart, restart);
                    prop_assert_eq!(Some(s.stop_timeout), g.stop_timeout.value());
                    prop_assert_eq!(Some(s.backoff_initial), g.backoff_initial.value());
                    prop_assert_eq!(Some(s.backoff_max), g.backoff_max.value());
                    prop_assert_eq!(Some(s.start_limit_interval), g.start_limit_interval.value());
                    prop_assert_eq!(s.start_limit_burst, g.start_limit_burst);
                    // Every duration is usable as a deadline, as the
                    // text form promises (parse::MAX_DURATION).
                    for d in [s.stop_timeout, s.backoff_initial, s.backoff_max, s.start_limit_interval] {
                        prop_assert!(d <= parse::MAX_DURATION, "{:?}", d);
                    }
                    let mut b = sexton::daemon::respawn::Backoff::new(policy_of(s));
                    let t = std::time::Instant::now();
                    for _ in 0..70 {
                        b.started(t);
                        let _ = b.died(t);
                    }
                }
            }
        }
    }

    #[test]
    fn procfiles_read_back(
        entries in prop::collection::btree_map(service_name(), "[^\\x00\\r\\n]{1,40}", 1..6),
        noise in prop::collection::vec(prop_oneof![Just(""), Just("# a comment: x"), Just("   "), Just("\t# x")], 0..4),
        crlf in any::<bool>(),
    ) {
        let entries: Vec<(String, String)> = entries
            .into_iter()
            .filter(|(_, c)| !c.trim().is_empty())
            .collect();
        prop_assume!(!entries.is_empty());
        let nl = if crlf { "\r\n" } else { "\n" };
        let mut text = String::new();
        for (i, (name, cmd)) in entries.iter().enumerate() {
            if let Some(n) = noise.get(i) {
                text.push_str(n);
                text.push_str(nl);
            }
            text.push_str(&format!("{name}:{cmd}{nl}"));
        }
        let dir = CaseDir::new();
        let cfg = dir.load("Procfile", Format::Procfile, text.as_bytes());
        let cfg = match cfg {
            Ok(c) => c,
            Err(e) => return Err(TestCaseError::fail(format!("{e}\n{text:?}"))),
        };
        prop_assert_eq!(cfg.services.len(), entries.len());
        for (name, cmd) in &entries {
            let argv: Vec<OsString> = vec!["/bin/sh".into(), "-c".into(), cmd.trim().into()];
            prop_assert_eq!(&cfg.services[name].argv, &argv);
        }
    }

    #[test]
    fn env_files_read_back(
        lines in prop::collection::vec(env_line(), 1..6),
        comments in prop::collection::vec(prop_oneof![Just("# c\n"), Just("\n"), Just("   # indented\n")], 0..3),
    ) {
        let mut seen = std::collections::BTreeSet::new();
        let lines: Vec<EnvLine> = lines.into_iter().filter(|l| seen.insert(l.key.clone())).collect();
        let mut text = String::new();
        for (i, l) in lines.iter().enumerate() {
            if let Some(c) = comments.get(i) {
                text.push_str(c);
            }
            text.push_str(&l.text());
        }
        let dir = CaseDir::new();
        std::fs::write(dir.0.join("svc.env"), &text).unwrap();
        let toml = "[services.a]\ncommand = \"true\"\nenv_file = \"svc.env\"\n";
        let cfg = dir.load("sexton.toml", Format::Toml, toml.as_bytes());
        let cfg = match cfg {
            Ok(c) => c,
            Err(e) => return Err(TestCaseError::fail(format!("{e}\n{text}"))),
        };
        let got = &cfg.services["a"].env;
        let want: Vec<(OsString, OsString)> = lines
            .iter()
            .map(|l| (OsString::from(&l.key), OsString::from(&l.value)))
            .collect();
        prop_assert_eq!(got, &want, "{}", text);
    }

    #[test]
    fn env_files_never_panic(text in prop::collection::vec(any::<u8>(), 0..200), words in prop::collection::vec(
        prop_oneof![
            Just("A="), Just("export "), Just("'"), Just("\""), Just("\\"), Just("$"),
            Just("${"), Just("}"), Just("#"), Just(" "), Just("\n"), Just("B"), Just("="),
            Just("${A}"), Just("\\n"), Just("\t"),
        ],
        0..30,
    )) {
        let dir = CaseDir::new();
        let toml = "[services.a]\ncommand = \"true\"\nenv_file = \"svc.env\"\n";
        std::fs::write(dir.0.join("svc.env"), &text).unwrap();
        if let Err(e) = dir.load("sexton.toml", Format::Toml, toml.as_bytes()) {
            prop_assert!(!e.contains('\n'), "a two-line error: {:?}", e);
        }
        std::fs::write(dir.0.join("svc.env"), words.concat()).unwrap();
        if let Err(e) = dir.load("sexton.toml", Format::Toml, toml.as_bytes()) {
            prop_assert!(!e.contains('\n'), "a two-line error: {:?}", e);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn stat_lines_read_back(
        pid in 1i32..=4_194_304,
        comm in prop_oneof![
            prop::collection::vec(any::<u8>().prop_filter("no NUL", |b| *b != 0), 0..16),
            prop::collection::vec(prop::sample::select(b"() \n\tZ0)(x".to_vec()), 0..16),
            Just(b") R 1 (".to_vec()),
            Just(b"x) Z 0 (y".to_vec()),
            Just(b"a\nb".to_vec()),
            Just(b"  ".to_vec()),
        ],
        state in prop::sample::select(vec!['R', 'S', 'D', 'Z', 'T', 't', 'X', 'I']),
        ppid in 0i32..=4_194_304,
        pgrp in 0i32..=4_194_304,
        sid in 0i32..=4_194_304,
        start in any::<u64>(),
    ) {
        let line = stat_line(pid, &comm, state, ppid, pgrp, sid, start);
        let info = sexton::procfs::parse_stat(&line);
        let info = match info {
            Some(i) => i,
            None => return Err(TestCaseError::fail(format!("no parse: {:?}", String::from_utf8_lossy(&line)))),
        };
        prop_assert_eq!(info.pid, pid);
        prop_assert_eq!(info.comm, String::from_utf8_lossy(&comm).into_owned());
        prop_assert_eq!(info.state, state);
        prop_assert_eq!((info.ppid, info.pgid, info.sid), (ppid, pgrp, sid));
        prop_assert_eq!(info.start_time, start);
    }

    #[test]
    fn fd_links_read_back(
        link in prop_oneof![
            ".{0,40}",
            "/[^\\x00]{0,40}",
            "/[^\\x00]{0,30}".prop_map(|p| format!("{p} (deleted)")),
            any::<u64>().prop_map(|n| format!("pipe:[{n}]")),
            any::<u64>().prop_map(|n| format!("socket:[{n}]")),
            prop::sample::select(vec!["anon_inode:[eventfd]", "anon_inode:inotify", "net:[4026531840]", "/memfd:x (deleted)", "pipe:[", "pipe:[]", "socket:[x]"]).prop_map(String::from),
        ],
    ) {
        use sexton::procfs::FdKind;
        let kind = FdKind::from_link(&link);
        let printed = kind.to_string();
        prop_assert_eq!(FdKind::from_link(&printed), kind.clone(), "{:?}", link);
        match &kind {
            FdKind::Path(p) => {
                prop_assert!(link.starts_with('/'));
                prop_assert_eq!(p, &link);
            }
            FdKind::Other(o) => prop_assert_eq!(o, &link),
            FdKind::Pipe(n) | FdKind::Socket(n) => prop_assert!(link.ends_with(&format!("{n}]")), "{:?}", link),
        }
    }

    #[test]
    fn tcp_and_udp_tables_read_back(
        rows in prop::collection::vec(
            (any::<bool>(), 0u8..4, 1u8..=11, any::<u64>(), any::<u32>()),
            1..8,
        ),
        addrs4 in prop::collection::vec((socket_addr(false), socket_addr(false)), 8),
        addrs6 in prop::collection::vec((socket_addr(true), socket_addr(true)), 8),
    ) {
        for table in [Table::Tcp, Table::Tcp6, Table::Udp, Table::Udp6] {
            let v6 = matches!(table, Table::Tcp6 | Table::Udp6);
            let tcp = matches!(table, Table::Tcp | Table::Tcp6);
            let mut text = String::from(
                "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n",
            );
            let mut want = Vec::new();
            for (i, &(_, _, st, inode, uid)) in rows.iter().enumerate() {
                let (l, r) = if v6 { addrs6[i] } else { addrs4[i] };
                // UDP sockets are in state 7 (close) or 1 (established).
                let st = if tcp { st } else if st % 2 == 0 { 7 } else { 1 };
                text.push_str(&format!(
                    "{i:4}: {} {} {st:02X} 00000000:00000000 00:00000000 00000000 {uid:5} 0 {inode} 1 0000000000000000 20 4 30 10 -1\n",
                    net_addr(&l),
                    net_addr(&r),
                ));
                want.push((inode, l, r, st));
            }
            let got = sexton::procfs::net::parse_table(table, text.as_bytes());
            prop_assert_eq!(got.len(), want.len(), "{}", text);
            for (s, (inode, l, r, st)) in got.iter().zip(&want) {
                prop_assert_eq!(s.inode, *inode);
                prop_assert_eq!(s.local, Some(*l));
                prop_assert_eq!(s.remote, Some(*r));
                prop_assert_eq!(s.proto, if tcp { Proto::Tcp } else { Proto::Udp });
                if tcp {
                    prop_assert_eq!(s.listening, *st == 10);
                } else {
                    prop_assert_eq!(s.connected, *st == 1);
                }
            }
        }
    }

    #[test]
    fn unix_tables_read_back(
        rows in prop::collection::vec(
            (
                any::<u64>(),
                1u8..=4,
                prop::option::of(prop_oneof![
                    prop::collection::vec(any::<u8>().prop_filter("no NUL", |b| *b != 0), 1..40),
                    prop::collection::vec(prop::sample::select(b"/tmp ab\n\xff@:.".to_vec()), 1..40),
                    Just(b"/run/a b.sock".to_vec()),
                    Just(b"/tmp/n\nl.sock".to_vec()),
                    Just(b"/tmp/x\xff.sock".to_vec()),
                    Just(b"/tmp/end\n".to_vec()),
                    Just(b"@abstract".to_vec()),
                ]),
            ),
            1..8,
        ),
    ) {
        let mut text = b"Num       RefCount Protocol Flags    Type St Inode Path\n".to_vec();
        for (i, (inode, st, path)) in rows.iter().enumerate() {
            text.extend_from_slice(format!("{:016x}: 00000002 00000000 00010000 0001 {st:02X} {inode:5}", i * 64).as_bytes());
            if let Some(p) = path {
                text.push(b' ');
                text.extend_from_slice(p);
            }
            text.push(b'\n');
        }
        let got = sexton::procfs::net::parse_table(Table::Unix, &text);
        prop_assert_eq!(got.len(), rows.len(), "{:?}", String::from_utf8_lossy(&text));
        for (s, (inode, st, path)) in got.iter().zip(&rows) {
            prop_assert_eq!(s.inode, *inode);
            prop_assert_eq!(s.proto, Proto::Unix);
            prop_assert_eq!(s.connected, *st == 3);
            prop_assert_eq!(s.path.clone(), path.as_ref().map(|p| String::from_utf8_lossy(p).into_owned()));
        }
    }

    #[test]
    fn proc_tables_never_panic(text in prop::collection::vec(any::<u8>(), 0..300)) {
        for table in Table::ALL {
            let _ = sexton::procfs::net::parse_table(table, &text);
        }
        let _ = sexton::procfs::parse_stat(&text);
    }
}

/// Real sockets bound at paths a user chooses (a space, a newline, a
/// byte that is not UTF-8) are found in this process's /proc/net/unix,
/// each with its whole path, and they hide no other socket.
#[test]
fn unix_sockets_with_odd_paths_are_found() {
    use std::os::unix::net::UnixListener;
    let dir = CaseDir::new();
    let names: [&[u8]; 4] = [b"plain.sock", b"a b.sock", b"n\nl.sock", b"x\xff.sock"];
    let mut held = Vec::new();
    for n in names {
        let path = dir.0.join(OsStr::from_bytes(n));
        held.push((path.clone(), UnixListener::bind(&path).expect("bind")));
    }
    let table = sexton::procfs::net::sockets();
    let fds = sexton::procfs::fds(std::process::id() as i32);
    for (path, l) in &held {
        use std::os::fd::AsRawFd;
        let ino = fds
            .iter()
            .find(|f| f.fd == l.as_raw_fd())
            .and_then(|f| match f.kind {
                sexton::procfs::FdKind::Socket(i) => Some(i),
                _ => None,
            })
            .expect("the listener's fd is a socket");
        let s = table.get(&ino);
        assert_eq!(
            s.and_then(|s| s.path.clone()),
            Some(path.as_os_str().to_string_lossy().into_owned()),
            "socket {ino} at {path:?}: {s:?}"
        );
    }
}

/// Durations written as numbers of seconds saturate like the text form,
/// so the restart backoff can double them: a float just below 2^64
/// seconds used to load as it was, and the first restart then
/// overflowed `Duration * 2` (a panic: the supervisor aborted).
#[test]
fn huge_numeric_durations_saturate_and_the_backoff_doubles_them() {
    let dir = CaseDir::new();
    for (initial, max) in [
        ("1.8e19", "1.8e19"),
        ("9223372036854775807", "1.8e19"),
        ("inf", "inf"),
    ] {
        let toml = format!(
            "[services.a]\ncommand = \"false\"\nbackoff_initial = {initial}\nbackoff_max = {max}\nstop_timeout = {max}\n"
        );
        let cfg = dir
            .load("sexton.toml", Format::Toml, toml.as_bytes())
            .unwrap_or_else(|e| panic!("{initial}/{max}: {e}"));
        let s = &cfg.services["a"];
        let mut b = sexton::daemon::respawn::Backoff::new(policy_of(s));
        let t = std::time::Instant::now();
        for _ in 0..3 {
            b.started(t);
            let _ = b.died(t);
        }
        assert_eq!(s.backoff_initial, parse::MAX_DURATION, "{initial}");
        assert_eq!(s.backoff_max, parse::MAX_DURATION, "{max}");
        assert!(
            std::time::Instant::now()
                .checked_add(s.stop_timeout)
                .is_some()
        );
        let mut b = sexton::daemon::respawn::Backoff::new(policy_of(s));
        for _ in 0..3 {
            b.started(t);
            assert_eq!(
                b.died(t),
                sexton::daemon::respawn::Verdict::RestartIn(parse::MAX_DURATION)
            );
        }
    }
}
