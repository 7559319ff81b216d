//! The supervisor's configuration: `sexton.toml` or a `Procfile`, found,
//! parsed, resolved and checked in one go, before anything is started.
//!
//! Everything that can be wrong with a configuration is caught here: an
//! unknown key, a value of the wrong type or that does not parse (duration,
//! size, signal, regex, user), a missing command, two readiness checks on one
//! service, an unknown or circular dependency. Each problem is one
//! [`ConfigError`], displayed as one line:
//!
//! ```text
//! FILE:LINE: service NAME: key KEY: what is wrong
//! ```
//!
//! where the `service` and `key` parts are left out when the problem is not
//! about one (a TOML syntax error has neither).
//!
//! What comes out is a [`Config`] of fully resolved [`Service`]s: argv
//! vectors, absolute working directories, merged environments, numeric user
//! and group ids, signal numbers and durations. Two configs compare service by
//! service ([`Config::diff`]), which is what a reload needs.

use super::{io_reason, one_line};
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::fmt::Write as _;
use std::ops::Range;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;
use toml::Value;
use toml::de::{DeTable, DeValue};

/// The file name looked for first.
pub const TOML_NAME: &str = "sexton.toml";
/// The file name looked for when there is no [`TOML_NAME`].
pub const PROCFILE_NAME: &str = "Procfile";

/// Default size at which a service's log is rotated.
pub const DEFAULT_LOG_MAX_SIZE: u64 = 10 * 1024 * 1024;
/// Default number of rotated logs kept.
pub const DEFAULT_LOG_KEEP: u32 = 5;
/// Default signal that asks a service to stop (`TERM`).
pub const DEFAULT_STOP_SIGNAL: i32 = 15;
/// Default time between the stop signal and `KILL`.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Default first delay before a restart.
pub const DEFAULT_BACKOFF_INITIAL: Duration = Duration::from_secs(1);
/// Default longest delay before a restart.
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Default number of starts allowed within [`DEFAULT_START_LIMIT_INTERVAL`].
pub const DEFAULT_START_LIMIT_BURST: u32 = 5;
/// Default window in which starts are counted.
pub const DEFAULT_START_LIMIT_INTERVAL: Duration = Duration::from_secs(60);

/// The shell that runs `shell = true` commands and Procfile entries.
pub const SHELL: &str = "/bin/sh";

/// A configuration problem, displayed as exactly one line:
/// `FILE:LINE: service NAME: key KEY: what is wrong`.
///
/// `line`, `service` and `key` are left out of the line when they are
/// `None`. Control characters in any part are escaped, so the line stays one
/// line whatever the file contains.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct ConfigError {
    /// The configuration file, as it was given or found.
    pub file: PathBuf,
    /// 1-based line in `file`.
    pub line: Option<usize>,
    /// The service the problem is in.
    pub service: Option<String>,
    /// The key the problem is in.
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl ConfigError {
    fn render(&self) -> String {
        let mut s = one_line(&self.file.display().to_string());
        if let Some(line) = self.line {
            let _ = write!(s, ":{line}");
        }
        if let Some(service) = &self.service {
            s.push_str(": service ");
            s.push_str(&one_line(service));
        }
        if let Some(key) = &self.key {
            s.push_str(": key ");
            s.push_str(&one_line(key));
        }
        s.push_str(": ");
        s.push_str(&one_line(&self.message));
        s
    }

    fn file(file: &Path, message: impl Into<String>) -> Self {
        ConfigError {
            file: file.to_path_buf(),
            line: None,
            service: None,
            key: None,
            message: message.into(),
        }
    }
}

/// Which format a configuration file is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `sexton.toml`.
    Toml,
    /// A foreman-style `Procfile`.
    Procfile,
}

/// The configuration file [`find`] chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The file, as given or as `dir` joined with the file name.
    pub path: PathBuf,
    /// How to read it.
    pub format: Format,
}

/// Chooses the configuration file: `file` when given (`-f FILE`; a name
/// ending in `.toml` is read as TOML, anything else as a Procfile), else
/// `dir/sexton.toml` if it exists, else `dir/Procfile`.
pub fn find(dir: &Path, file: Option<&Path>) -> Result<Found, ConfigError> {
    if let Some(file) = file {
        let format = if file.extension().is_some_and(|e| e == "toml") {
            Format::Toml
        } else {
            Format::Procfile
        };
        return Ok(Found {
            path: file.to_path_buf(),
            format,
        });
    }
    for (name, format) in [(TOML_NAME, Format::Toml), (PROCFILE_NAME, Format::Procfile)] {
        let path = dir.join(name);
        // symlink_metadata would refuse a symlinked config; follow links.
        if path.metadata().is_ok() {
            return Ok(Found { path, format });
        }
    }
    Err(ConfigError::file(
        dir,
        format!("no {TOML_NAME} or {PROCFILE_NAME} in this directory (use -f FILE to name one)"),
    ))
}

/// When a service is started again after it exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Restart {
    /// Whatever the exit status.
    Always,
    /// Only after a non-zero exit or a death by signal.
    #[default]
    OnFailure,
    /// Never.
    Never,
}

/// A compiled `ready_log` pattern; two compare equal when their source
/// patterns are the same string.
#[derive(Debug, Clone)]
pub struct LogPattern(pub regex::Regex);

impl PartialEq for LogPattern {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

impl Eq for LogPattern {}

/// How the supervisor learns that a started service is ready, so that the
/// services depending on it may start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ready {
    /// A TCP connection to `host:port` succeeds.
    Tcp(String),
    /// This command exits 0.
    Cmd(Vec<OsString>),
    /// A line of the service's output matches.
    Log(LogPattern),
    /// The service sends `READY=1` over the notify socket.
    Notify,
}

/// The user a service runs as, resolved when the configuration is loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSpec {
    pub uid: u32,
    /// The primary group.
    pub gid: u32,
    /// Every group the user is in, the primary one included.
    pub groups: Vec<u32>,
    pub name: String,
}

impl UserSpec {
    /// What a spawn sets to run as this user (groups included), or
    /// `None` when this process already is that user and, not being
    /// root, could not set its groups anyway.
    pub fn credentials(&self) -> Option<crate::tree::Credentials> {
        let me = nix::unistd::geteuid().as_raw();
        if me != 0 && self.uid == me {
            return None;
        }
        Some(crate::tree::Credentials {
            uid: self.uid,
            gid: self.gid,
            groups: self.groups.clone(),
        })
    }
}

/// Looks a user up by name or numeric uid in `/etc/passwd` and lists its
/// groups from `/etc/group` (see [`crate::names`]: never through NSS). A
/// uid with no entry is refused: it has no primary group to run with.
pub fn resolve_user(spec: &str) -> Result<UserSpec, String> {
    use crate::names::{self, UserKey};
    if spec.is_empty() {
        return Err("empty user name".to_string());
    }
    let db = |e: std::io::Error| format!("cannot read /etc/passwd: {}", io_reason(&e));
    let user = if let Ok(uid) = spec.parse::<u32>() {
        names::user(UserKey::Uid(uid))
            .map_err(db)?
            .ok_or_else(|| format!("no user with uid {uid} in /etc/passwd"))?
    } else {
        names::user(UserKey::Name(spec))
            .map_err(db)?
            .ok_or_else(|| format!("no user named '{spec}' in /etc/passwd"))?
    };
    let groups = names::groups(&user.name, user.gid)
        .map_err(|e| format!("cannot read /etc/group: {}", io_reason(&e)))?;
    Ok(UserSpec {
        uid: user.uid,
        gid: user.gid,
        groups,
        name: user.name,
    })
}

/// One service, every value resolved and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub name: String,
    /// Program and arguments; `shell = true` and Procfile commands are
    /// `["/bin/sh", "-c", command]`.
    pub argv: Vec<OsString>,
    /// Absolute working directory.
    pub cwd: PathBuf,
    /// Variables to set on top of the supervisor's environment: the
    /// `env_file` ones first, in file order, then the `env` table's; a
    /// name appears once, with the value that wins.
    pub env: Vec<(OsString, OsString)>,
    pub user: Option<UserSpec>,
    pub stop_signal: i32,
    pub stop_timeout: Duration,
    pub restart: Restart,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    pub start_limit_burst: u32,
    pub start_limit_interval: Duration,
    pub depends_on: Vec<String>,
    pub ready: Option<Ready>,
    pub log_max_size: u64,
    pub log_keep: u32,
}

impl Service {
    /// A service with every setting at its default.
    pub fn new(name: impl Into<String>, argv: Vec<OsString>, cwd: PathBuf) -> Self {
        Service {
            name: name.into(),
            argv,
            cwd,
            env: Vec::new(),
            user: None,
            stop_signal: DEFAULT_STOP_SIGNAL,
            stop_timeout: DEFAULT_STOP_TIMEOUT,
            restart: Restart::default(),
            backoff_initial: DEFAULT_BACKOFF_INITIAL,
            backoff_max: DEFAULT_BACKOFF_MAX,
            start_limit_burst: DEFAULT_START_LIMIT_BURST,
            start_limit_interval: DEFAULT_START_LIMIT_INTERVAL,
            depends_on: Vec::new(),
            ready: None,
            log_max_size: DEFAULT_LOG_MAX_SIZE,
            log_keep: DEFAULT_LOG_KEEP,
        }
    }
}

/// A loaded configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The file it came from, absolute.
    pub file: PathBuf,
    /// The directory of `file`, which relative paths are taken against.
    pub dir: PathBuf,
    pub services: BTreeMap<String, Service>,
    /// `log_dir`, absolute; `None` leaves the choice to the caller.
    pub log_dir: Option<PathBuf>,
    pub log_max_size: u64,
    pub log_keep: u32,
}

/// How the services of two configurations differ, each list sorted by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diff {
    /// Only in the newer configuration.
    pub added: Vec<String>,
    /// Only in the older one.
    pub removed: Vec<String>,
    /// In both, with any setting different.
    pub changed: Vec<String>,
    /// In both, identical.
    pub unchanged: Vec<String>,
}

impl Config {
    /// Finds the configuration with [`find`] and loads it.
    pub fn load(dir: &Path, file: Option<&Path>) -> Result<Config, ConfigError> {
        Config::load_found(&find(dir, file)?)
    }

    /// Reads and checks the file [`find`] chose.
    pub fn load_found(found: &Found) -> Result<Config, ConfigError> {
        let shown = found.path.as_path();
        let bytes = std::fs::read(shown)
            .map_err(|e| ConfigError::file(shown, format!("cannot read: {}", io_reason(&e))))?;
        let text = match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                let at = e.utf8_error().valid_up_to();
                return Err(ConfigError {
                    line: Some(line_of(e.as_bytes(), at)),
                    ..ConfigError::file(shown, "not valid UTF-8")
                });
            }
        };
        let file = clean(&std::path::absolute(shown).map_err(|e| {
            ConfigError::file(shown, format!("cannot resolve path: {}", io_reason(&e)))
        })?);
        let dir = file.parent().unwrap_or(Path::new("/")).to_path_buf();
        let config = match found.format {
            Format::Toml => Toml::new(shown, &text, &dir)?.load(file)?,
            Format::Procfile => parse_procfile(shown, &text, file, dir)?,
        };
        Ok(config)
    }

    /// Service names in the order to start them: each after everything it
    /// depends on, ties broken by name.
    pub fn start_order(&self) -> Vec<&str> {
        order(&self.services)
    }

    /// Service names in the order to stop them: [`Config::start_order`]
    /// reversed, so a service stops before what it depends on.
    pub fn stop_order(&self) -> Vec<&str> {
        let mut v = self.start_order();
        v.reverse();
        v
    }

    /// Compares the services of `self` (running) with those of `newer`
    /// (just loaded). Top-level `log_dir` is not a service setting: compare
    /// it separately.
    pub fn diff(&self, newer: &Config) -> Diff {
        let mut d = Diff::default();
        for (name, old) in &self.services {
            match newer.services.get(name) {
                None => d.removed.push(name.clone()),
                Some(new) if new == old => d.unchanged.push(name.clone()),
                Some(_) => d.changed.push(name.clone()),
            }
        }
        for name in newer.services.keys() {
            if !self.services.contains_key(name) {
                d.added.push(name.clone());
            }
        }
        d
    }
}

/// Kahn's algorithm with a sorted ready set. A config loaded from a file
/// has no cycle and no unknown name; a hand-made one that does gets the
/// services caught in a cycle appended by name, unknown names ignored.
fn order(services: &BTreeMap<String, Service>) -> Vec<&str> {
    let mut waiting: BTreeMap<&str, usize> = BTreeMap::new();
    let mut dependents: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (name, s) in services {
        let deps: BTreeSet<&str> = s
            .depends_on
            .iter()
            .map(String::as_str)
            .filter(|d| services.contains_key(*d))
            .collect();
        waiting.insert(name, deps.len());
        for d in deps {
            dependents.entry(d).or_default().push(name);
        }
    }
    let mut ready: BTreeSet<&str> = waiting
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(k, _)| *k)
        .collect();
    let mut out = Vec::with_capacity(services.len());
    while let Some(name) = ready.pop_first() {
        out.push(name);
        waiting.remove(name);
        for &d in dependents.get(name).map(Vec::as_slice).unwrap_or(&[]) {
            if let Some(n) = waiting.get_mut(d) {
                *n -= 1;
                if *n == 0 {
                    ready.insert(d);
                }
            }
        }
    }
    // Left waiting: only services in a cycle (see above).
    out.extend(waiting.keys());
    out
}

/// A service name: `[A-Za-z0-9_.-]+`, and not `.` or `..`, so that it
/// can name a log file.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

const NAME_RULE: &str = "invalid service name (use letters, digits, '_', '.' and '-')";

/// Removes `.` components and repeated separators, without touching `..`
/// or symlinks.
fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        if c != Component::CurDir {
            out.push(c);
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &[u8], offset: usize) -> usize {
    text[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

// ---------------------------------------------------------------- Procfile

// Procfile: crates.io's `procfile` parser splits commands on spaces
// instead of handing them to a shell, drops malformed and duplicate lines
// silently and keeps no line numbers, so this trivial format is read here.

/// Reads a foreman-style Procfile: `name: command` lines, blank lines and
/// `#` comments ignored, every command run by `/bin/sh -c`.
fn parse_procfile(
    shown: &Path,
    text: &str,
    file: PathBuf,
    dir: PathBuf,
) -> Result<Config, ConfigError> {
    let err = |line: usize, service: Option<&str>, message: String| ConfigError {
        file: shown.to_path_buf(),
        line: Some(line),
        service: service.map(str::to_string),
        key: None,
        message,
    };
    let mut services = BTreeMap::new();
    let mut lines_of: BTreeMap<String, usize> = BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let t = raw.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let Some((name, command)) = t.split_once(':') else {
            let hint = if t.starts_with('[') {
                " (a TOML configuration must have a name ending in .toml)"
            } else {
                ""
            };
            return Err(err(line, None, format!("expected 'NAME: COMMAND'{hint}")));
        };
        let (name, command) = (name.trim(), command.trim());
        if !valid_name(name) {
            return Err(err(line, Some(name), NAME_RULE.to_string()));
        }
        if let Some(first) = lines_of.get(name) {
            return Err(err(
                line,
                Some(name),
                format!("duplicate service name (first defined on line {first})"),
            ));
        }
        if command.is_empty() {
            return Err(err(line, Some(name), "empty command".to_string()));
        }
        if command.contains('\0') {
            return Err(err(line, Some(name), "command contains a NUL byte".into()));
        }
        lines_of.insert(name.to_string(), line);
        let argv = vec![SHELL.into(), "-c".into(), command.into()];
        services.insert(name.to_string(), Service::new(name, argv, dir.clone()));
    }
    if services.is_empty() {
        return Err(ConfigError::file(
            shown,
            "no services defined (add lines like 'web: ./server --port 8000')",
        ));
    }
    Ok(Config {
        file,
        dir,
        services,
        log_dir: None,
        log_max_size: DEFAULT_LOG_MAX_SIZE,
        log_keep: DEFAULT_LOG_KEEP,
    })
}

// ------------------------------------------------------------ sexton.toml

/// The top level of `sexton.toml`. Every value is kept as a spanned TOML
/// value and converted by hand afterwards, so that each conversion error
/// names its own line and says what was expected; serde's part is the
/// shape and the set of allowed keys.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    services: Option<Spanned<BTreeMap<Spanned<String>, Spanned<RawService>>>>,
    log_dir: Option<Spanned<Value>>,
    log_max_size: Option<Spanned<Value>>,
    log_keep: Option<Spanned<Value>>,
}

/// One `[services.NAME]` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    command: Option<Spanned<Value>>,
    shell: Option<Spanned<Value>>,
    cwd: Option<Spanned<Value>>,
    env: Option<Spanned<Value>>,
    env_file: Option<Spanned<Value>>,
    user: Option<Spanned<Value>>,
    stop_signal: Option<Spanned<Value>>,
    stop_timeout: Option<Spanned<Value>>,
    restart: Option<Spanned<Value>>,
    backoff_initial: Option<Spanned<Value>>,
    backoff_max: Option<Spanned<Value>>,
    start_limit_burst: Option<Spanned<Value>>,
    start_limit_interval: Option<Spanned<Value>>,
    depends_on: Option<Spanned<Value>>,
    ready_tcp: Option<Spanned<Value>>,
    ready_cmd: Option<Spanned<Value>>,
    ready_log: Option<Spanned<Value>>,
    ready: Option<Spanned<Value>>,
    log_max_size: Option<Spanned<Value>>,
    log_keep: Option<Spanned<Value>>,
}

/// A `sexton.toml` being loaded: its text, its parse tree with the span of
/// every key (to place serde's errors and table entries on their lines)
/// and the directory relative paths start from.
struct Toml<'a> {
    shown: &'a Path,
    text: &'a str,
    tree: Spanned<DeTable<'a>>,
    dir: &'a Path,
}

/// Where a value sits: the service (if any) and key it belongs to.
#[derive(Clone, Copy)]
struct At<'s> {
    service: Option<&'s str>,
    key: &'s str,
}

impl<'a> Toml<'a> {
    fn new(shown: &'a Path, text: &'a str, dir: &'a Path) -> Result<Self, ConfigError> {
        match DeTable::parse(text) {
            Ok(tree) => Ok(Toml {
                shown,
                text,
                tree,
                dir,
            }),
            Err(e) => Err(ConfigError {
                file: shown.to_path_buf(),
                line: e.span().map(|s| line_of(text.as_bytes(), s.start)),
                service: None,
                key: None,
                message: first_line(e.message()),
            }),
        }
    }

    fn error(
        &self,
        span: Option<Range<usize>>,
        service: Option<&str>,
        key: Option<&str>,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError {
            file: self.shown.to_path_buf(),
            line: span.map(|s| line_of(self.text.as_bytes(), s.start)),
            service: service.map(str::to_string),
            key: key.map(str::to_string),
            message: message.into(),
        }
    }

    fn at(&self, at: At<'_>, span: Range<usize>, message: impl Into<String>) -> ConfigError {
        self.error(Some(span), at.service, Some(at.key), message)
    }

    fn load(&self, file: PathBuf) -> Result<Config, ConfigError> {
        let raw: RawFile = toml::from_str(self.text).map_err(|e| self.serde_error(&e))?;
        let top = |key| At { service: None, key };

        let log_dir = match &raw.log_dir {
            None => None,
            Some(v) => {
                let s = self.string(top("log_dir"), v)?;
                if s.is_empty() {
                    return Err(self.at(top("log_dir"), v.span(), "empty path"));
                }
                Some(clean(&self.dir.join(s)))
            }
        };
        let log_max_size = match &raw.log_max_size {
            None => DEFAULT_LOG_MAX_SIZE,
            Some(v) => self.log_size(top("log_max_size"), v)?,
        };
        let log_keep = match &raw.log_keep {
            None => DEFAULT_LOG_KEEP,
            Some(v) => self.count(top("log_keep"), v, 0)?,
        };

        let Some(table) = raw.services.filter(|t| !t.get_ref().is_empty()) else {
            return Err(ConfigError::file(
                self.shown,
                "no services defined (add a [services.NAME] table with a command)",
            ));
        };
        // Check in file order, so that the error reported is the first one.
        let mut entries: Vec<_> = table.into_inner().into_iter().collect();
        entries.sort_by_key(|(k, _)| k.span().start);

        let mut services = BTreeMap::new();
        let mut deps_spans = BTreeMap::new();
        for (name, raw) in &entries {
            let service = self.service(name, raw, log_max_size, log_keep)?;
            if let Some(d) = &raw.get_ref().depends_on {
                deps_spans.insert(service.name.clone(), d.span());
            }
            services.insert(service.name.clone(), service);
        }
        self.check_dependencies(&services, &deps_spans)?;

        let dir = self.dir.to_path_buf();
        Ok(Config {
            file,
            dir,
            services,
            log_dir,
            log_max_size,
            log_keep,
        })
    }

    /// Places an error from serde (an unknown key, or `services` or a
    /// service that is not a table) on its line, service and key.
    fn serde_error(&self, e: &toml::de::Error) -> ConfigError {
        let span = e.span();
        let path = span
            .as_ref()
            .map(|s| key_path(self.tree.get_ref(), s.start))
            .unwrap_or_default();
        let (service, key) = match path.as_slice() {
            [s, name, rest @ ..] if s == "services" => (Some(name.as_str()), rest.first()),
            [key, ..] => (None, Some(key)),
            [] => (None, None),
        };
        let msg = first_line(e.message());
        let message = if msg.starts_with("unknown field") {
            match key.and_then(|k| suggest(k, &msg)) {
                Some(s) => format!("unknown key (did you mean '{s}'?)"),
                None => "unknown key".to_string(),
            }
        } else if msg.starts_with("invalid type") {
            match (path.len(), service) {
                (1, _) => "expected a table of services, like [services.web]".to_string(),
                (2, Some(_)) => "expected a table of settings, like [services.web]".to_string(),
                _ => msg,
            }
        } else {
            msg
        };
        self.error(span, service, key.map(String::as_str), message)
    }

    /// The span of a key inside the document, by its path of keys.
    fn key_span(&self, path: &[&str]) -> Option<Range<usize>> {
        let mut table = self.tree.get_ref();
        let mut found = None;
        for (i, want) in path.iter().enumerate() {
            let (k, v) = table.iter().find(|(k, _)| k.get_ref() == want)?;
            found = Some(k.span());
            if i + 1 < path.len() {
                table = v.get_ref().as_table()?;
            }
        }
        found
    }

    fn service(
        &self,
        name: &Spanned<String>,
        raw: &Spanned<RawService>,
        top_log_max_size: u64,
        top_log_keep: u32,
    ) -> Result<Service, ConfigError> {
        let sname = name.get_ref().as_str();
        if !valid_name(sname) {
            return Err(self.error(Some(name.span()), Some(sname), None, NAME_RULE));
        }
        let at = |key| At {
            service: Some(sname),
            key,
        };
        let r = raw.get_ref();
        let duration = |key, v: &Option<Spanned<Value>>, default| match v {
            None => Ok(default),
            Some(v) => self.duration(at(key), v),
        };

        let mut s = Service::new(sname, self.command(name, r)?, self.dir.to_path_buf());
        if let Some(v) = &r.cwd {
            s.cwd = self.cwd(at("cwd"), v)?;
        }
        if let Some(v) = &r.env_file {
            for (k, val) in self.env_file(at("env_file"), v)? {
                set_env(&mut s.env, k.into(), val.into());
            }
        }
        if let Some(v) = &r.env {
            self.env(sname, v, &mut s.env)?;
        }
        if let Some(v) = &r.user {
            s.user = Some(self.user(at("user"), v)?);
        }
        if let Some(v) = &r.stop_signal {
            s.stop_signal = self.stop_signal(at("stop_signal"), v)?;
        }
        s.stop_timeout = duration("stop_timeout", &r.stop_timeout, DEFAULT_STOP_TIMEOUT)?;
        if let Some(v) = &r.restart {
            s.restart = self.restart(at("restart"), v)?;
        }
        s.backoff_initial = duration(
            "backoff_initial",
            &r.backoff_initial,
            DEFAULT_BACKOFF_INITIAL,
        )?;
        s.backoff_max = duration("backoff_max", &r.backoff_max, DEFAULT_BACKOFF_MAX)?;
        if s.backoff_initial > s.backoff_max {
            let (key, v) = match (&r.backoff_initial, &r.backoff_max) {
                (Some(v), _) => ("backoff_initial", v),
                (None, Some(v)) => ("backoff_max", v),
                (None, None) => unreachable!("the defaults are in order"),
            };
            return Err(self.at(
                at(key),
                v.span(),
                format!(
                    "backoff_initial ({}) is longer than backoff_max ({})",
                    humantime::format_duration(s.backoff_initial),
                    humantime::format_duration(s.backoff_max)
                ),
            ));
        }
        if let Some(v) = &r.start_limit_burst {
            s.start_limit_burst = self.count(at("start_limit_burst"), v, 1)?;
        }
        s.start_limit_interval = duration(
            "start_limit_interval",
            &r.start_limit_interval,
            DEFAULT_START_LIMIT_INTERVAL,
        )?;
        if let Some(v) = &r.depends_on {
            s.depends_on = self.names(at("depends_on"), v)?;
        }
        s.ready = self.ready(sname, r)?;
        s.log_max_size = match &r.log_max_size {
            None => top_log_max_size,
            Some(v) => self.log_size(at("log_max_size"), v)?,
        };
        s.log_keep = match &r.log_keep {
            None => top_log_keep,
            Some(v) => self.count(at("log_keep"), v, 0)?,
        };
        Ok(s)
    }

    /// `command` with `shell`: the argv to run.
    fn command(
        &self,
        name: &Spanned<String>,
        r: &RawService,
    ) -> Result<Vec<OsString>, ConfigError> {
        let sname = name.get_ref().as_str();
        let at = |key| At {
            service: Some(sname),
            key,
        };
        let shell = match &r.shell {
            None => false,
            Some(v) => match v.get_ref() {
                Value::Boolean(b) => *b,
                other => {
                    return Err(self.at(
                        at("shell"),
                        v.span(),
                        format!("expected true or false, got {}", describe(other)),
                    ));
                }
            },
        };
        let Some(v) = &r.command else {
            return Err(self.error(
                Some(name.span()),
                Some(sname),
                Some("command"),
                "missing (every service needs a command)",
            ));
        };
        if !shell {
            return self.argv(at("command"), v);
        }
        match v.get_ref() {
            Value::String(s) => {
                if s.trim().is_empty() {
                    return Err(self.at(at("command"), v.span(), "empty command"));
                }
                no_nul(self, at("command"), v, s)?;
                Ok(vec![SHELL.into(), "-c".into(), s.into()])
            }
            Value::Array(_) => Err(self.at(
                at("shell"),
                r.shell.as_ref().map_or(v.span(), Spanned::span),
                "shell = true takes command as one string, not an array",
            )),
            other => Err(self.at(
                at("command"),
                v.span(),
                format!("expected a string, got {}", describe(other)),
            )),
        }
    }

    /// `cwd`: an existing directory, relative to the config's.
    fn cwd(&self, at: At<'_>, v: &Spanned<Value>) -> Result<PathBuf, ConfigError> {
        let s = self.string(at, v)?;
        if s.is_empty() {
            return Err(self.at(at, v.span(), "empty path"));
        }
        let p = clean(&self.dir.join(s));
        match std::fs::metadata(&p) {
            Ok(m) if m.is_dir() => Ok(p),
            Ok(_) => Err(self.at(at, v.span(), format!("{}: not a directory", p.display()))),
            Err(e) => Err(self.at(at, v.span(), format!("{}: {}", p.display(), io_reason(&e)))),
        }
    }

    /// `env`: sets each entry in `env`, each error on the entry's line.
    fn env(
        &self,
        sname: &str,
        v: &Spanned<Value>,
        env: &mut Vec<(OsString, OsString)>,
    ) -> Result<(), ConfigError> {
        let at = At {
            service: Some(sname),
            key: "env",
        };
        let Value::Table(t) = v.get_ref() else {
            return Err(self.at(
                at,
                v.span(),
                format!("expected a table of strings, got {}", describe(v.get_ref())),
            ));
        };
        for (k, val) in t {
            let span = self
                .key_span(&["services", sname, "env", k])
                .unwrap_or(v.span());
            let bad = |msg: String| self.at(at, span.clone(), msg);
            if k.is_empty() || k.contains('=') || k.contains('\0') {
                return Err(bad(format!(
                    "invalid variable name '{k}' (it must not be empty or contain '=')"
                )));
            }
            let val = match val {
                Value::String(s) => s.clone(),
                Value::Integer(i) => i.to_string(),
                Value::Float(f) => f.to_string(),
                Value::Boolean(b) => b.to_string(),
                other => {
                    return Err(bad(format!(
                        "{k}: expected a string, got {}",
                        describe(other)
                    )));
                }
            };
            if val.contains('\0') {
                return Err(bad(format!("{k}: value contains a NUL byte")));
            }
            set_env(env, k.into(), val.into());
        }
        Ok(())
    }

    fn user(&self, at: At<'_>, v: &Spanned<Value>) -> Result<UserSpec, ConfigError> {
        let spec = match v.get_ref() {
            Value::String(s) => s.clone(),
            Value::Integer(i) if *i >= 0 => i.to_string(),
            other => {
                return Err(self.at(
                    at,
                    v.span(),
                    format!("expected a user name or uid, got {}", describe(other)),
                ));
            }
        };
        resolve_user(&spec).map_err(|m| self.at(at, v.span(), m))
    }

    fn stop_signal(&self, at: At<'_>, v: &Spanned<Value>) -> Result<i32, ConfigError> {
        let text = match v.get_ref() {
            Value::String(s) => s.clone(),
            Value::Integer(i) => i.to_string(),
            other => {
                return Err(self.at(
                    at,
                    v.span(),
                    format!("expected a signal name or number, got {}", describe(other)),
                ));
            }
        };
        match crate::parse::signal_number(&text) {
            Ok(0) => Err(self.at(at, v.span(), "signal 0 cannot stop anything")),
            Ok(n) => Ok(n),
            Err(e) => Err(self.at(at, v.span(), e.to_string())),
        }
    }

    fn restart(&self, at: At<'_>, v: &Spanned<Value>) -> Result<Restart, ConfigError> {
        match self.string(at, v)? {
            "always" => Ok(Restart::Always),
            "on-failure" => Ok(Restart::OnFailure),
            "never" => Ok(Restart::Never),
            other => Err(self.at(
                at,
                v.span(),
                format!("'{other}' is not one of always, on-failure, never"),
            )),
        }
    }

    /// `depends_on`: service names, each once; whether they exist is
    /// checked once every service is read.
    fn names(&self, at: At<'_>, v: &Spanned<Value>) -> Result<Vec<String>, ConfigError> {
        let Value::Array(items) = v.get_ref() else {
            return Err(self.at(
                at,
                v.span(),
                format!(
                    "expected an array of service names, got {}",
                    describe(v.get_ref())
                ),
            ));
        };
        let mut names: Vec<String> = Vec::new();
        for item in items {
            let Value::String(d) = item else {
                return Err(self.at(
                    at,
                    v.span(),
                    format!(
                        "expected an array of service names, found {}",
                        describe(item)
                    ),
                ));
            };
            if !names.contains(d) {
                names.push(d.clone());
            }
        }
        Ok(names)
    }

    /// The one readiness check of a service, if any.
    fn ready(&self, sname: &str, r: &RawService) -> Result<Option<Ready>, ConfigError> {
        let at = |key| At {
            service: Some(sname),
            key,
        };
        let mut given: Vec<(&str, &Spanned<Value>)> = [
            ("ready_tcp", &r.ready_tcp),
            ("ready_cmd", &r.ready_cmd),
            ("ready_log", &r.ready_log),
            ("ready", &r.ready),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
        .collect();
        given.sort_by_key(|(_, v)| v.span().start);
        let Some(&(key, v)) = given.first() else {
            return Ok(None);
        };
        if let Some(&(second, v2)) = given.get(1) {
            return Err(self.at(
                at(second),
                v2.span(),
                format!(
                    "{key} is already set (line {}): a service takes one readiness check",
                    line_of(self.text.as_bytes(), v.span().start)
                ),
            ));
        }
        let ready = match key {
            "ready_tcp" => {
                let s = self.string(at(key), v)?;
                let ok = s.rsplit_once(':').is_some_and(|(host, port)| {
                    !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0)
                });
                if !ok {
                    return Err(self.at(
                        at(key),
                        v.span(),
                        format!("'{s}' is not HOST:PORT (e.g. 127.0.0.1:8000)"),
                    ));
                }
                Ready::Tcp(s.to_string())
            }
            "ready_cmd" => Ready::Cmd(self.argv(at(key), v)?),
            "ready_log" => {
                let s = self.string(at(key), v)?;
                let re = regex::Regex::new(s).map_err(|e| {
                    self.at(
                        at(key),
                        v.span(),
                        format!("invalid regex: {}", regex_reason(&e)),
                    )
                })?;
                Ready::Log(LogPattern(re))
            }
            _ => {
                if self.string(at(key), v)? != "notify" {
                    return Err(self.at(at(key), v.span(), "the only value is \"notify\""));
                }
                Ready::Notify
            }
        };
        Ok(Some(ready))
    }

    /// Unknown names first, then cycles, each reported on the
    /// `depends_on` line of the service concerned.
    fn check_dependencies(
        &self,
        services: &BTreeMap<String, Service>,
        spans: &BTreeMap<String, Range<usize>>,
    ) -> Result<(), ConfigError> {
        let at_deps = |name: &str, msg: String| {
            self.error(
                spans.get(name).cloned(),
                Some(name),
                Some("depends_on"),
                msg,
            )
        };
        let mut by_line: Vec<&Service> = services.values().collect();
        by_line.sort_by_key(|s| spans.get(&s.name).map(|r| r.start));
        for s in &by_line {
            for d in &s.depends_on {
                if !services.contains_key(d) {
                    return Err(at_deps(&s.name, format!("unknown service '{d}'")));
                }
            }
        }
        if let Some(cycle) = find_cycle(services) {
            return Err(at_deps(
                &cycle[0],
                format!("dependency cycle {}", cycle.join(" -> ")),
            ));
        }
        Ok(())
    }

    fn string<'v>(&self, at: At<'_>, v: &'v Spanned<Value>) -> Result<&'v str, ConfigError> {
        match v.get_ref() {
            Value::String(s) => Ok(s),
            other => Err(self.at(
                at,
                v.span(),
                format!("expected a string, got {}", describe(other)),
            )),
        }
    }

    /// A command: an array of strings, or a string split into words the
    /// way a shell would, without running one.
    fn argv(&self, at: At<'_>, v: &Spanned<Value>) -> Result<Vec<OsString>, ConfigError> {
        let words: Vec<String> = match v.get_ref() {
            Value::String(s) => shlex::split(s).ok_or_else(|| {
                self.at(
                    at,
                    v.span(),
                    "unbalanced quotes or a trailing backslash (or set shell = true)",
                )
            })?,
            Value::Array(items) => {
                let mut words = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        Value::String(s) => words.push(s.clone()),
                        other => {
                            return Err(self.at(
                                at,
                                v.span(),
                                format!("expected an array of strings, found {}", describe(other)),
                            ));
                        }
                    }
                }
                words
            }
            other => {
                return Err(self.at(
                    at,
                    v.span(),
                    format!(
                        "expected a string or an array of strings, got {}",
                        describe(other)
                    ),
                ));
            }
        };
        match words.first() {
            None => return Err(self.at(at, v.span(), "empty command")),
            Some(p) if p.is_empty() => return Err(self.at(at, v.span(), "empty program name")),
            Some(_) => {}
        }
        for w in &words {
            no_nul(self, at, v, w)?;
        }
        Ok(words.into_iter().map(OsString::from).collect())
    }

    /// A duration: a string for [`crate::parse::duration`], or a number of
    /// seconds. A number saturates at [`crate::parse::MAX_DURATION`] as
    /// the string does, so that every duration of a service can be
    /// added to an `Instant` and doubled (the restart backoff).
    fn duration(&self, at: At<'_>, v: &Spanned<Value>) -> Result<Duration, ConfigError> {
        use crate::parse::MAX_DURATION;
        let bad = |m: String| self.at(at, v.span(), m);
        match v.get_ref() {
            Value::String(s) => crate::parse::duration(s).map_err(|e| bad(e.to_string())),
            Value::Integer(i) if *i >= 0 => Ok(Duration::from_secs(*i as u64).min(MAX_DURATION)),
            Value::Float(f) if f.is_nan() || *f < 0.0 => {
                Err(bad(format!("invalid duration {f} (a number of seconds)")))
            }
            Value::Float(f) => Ok(Duration::try_from_secs_f64(*f)
                .unwrap_or(MAX_DURATION)
                .min(MAX_DURATION)),
            Value::Integer(i) => Err(bad(format!("invalid duration {i} (negative)"))),
            other => Err(bad(format!(
                "expected a duration like \"10s\" or a number of seconds, got {}",
                describe(other)
            ))),
        }
    }

    /// A log size: a string for [`crate::parse::size`] or a number of
    /// bytes, at least 1.
    fn log_size(&self, at: At<'_>, v: &Spanned<Value>) -> Result<u64, ConfigError> {
        let bad = |m: String| self.at(at, v.span(), m);
        let n = match v.get_ref() {
            Value::String(s) => crate::parse::size(s).map_err(|e| bad(e.to_string()))?,
            Value::Integer(i) if *i >= 0 => *i as u64,
            Value::Integer(i) => return Err(bad(format!("invalid size {i} (negative)"))),
            other => {
                return Err(bad(format!(
                    "expected a size like \"10MiB\" or a number of bytes, got {}",
                    describe(other)
                )));
            }
        };
        if n == 0 {
            return Err(bad("must be at least 1 byte".to_string()));
        }
        Ok(n)
    }

    /// A whole number of at least `min`.
    fn count(&self, at: At<'_>, v: &Spanned<Value>, min: u32) -> Result<u32, ConfigError> {
        match v.get_ref() {
            Value::Integer(i) => match u32::try_from(*i) {
                Ok(n) if n >= min => Ok(n),
                _ => Err(self.at(
                    at,
                    v.span(),
                    format!("{i} is out of range (use {min} to {})", u32::MAX),
                )),
            },
            other => Err(self.at(
                at,
                v.span(),
                format!("expected a whole number, got {}", describe(other)),
            )),
        }
    }

    /// Reads an env file with dotenvy: `KEY=VALUE` lines, `#` comments,
    /// optional `export`, quotes, `$VAR` substitution.
    fn env_file(
        &self,
        at: At<'_>,
        v: &Spanned<Value>,
    ) -> Result<Vec<(String, String)>, ConfigError> {
        let name = self.string(at, v)?;
        if name.is_empty() {
            return Err(self.at(at, v.span(), "empty path"));
        }
        let path = clean(&self.dir.join(name));
        let bad = |m: String| self.at(at, v.span(), m);
        let iter = dotenvy::from_path_iter(&path).map_err(|e| bad(dotenv_reason(name, &e, "")))?;
        let mut out = Vec::new();
        for item in iter {
            match item {
                Ok(kv) => out.push(kv),
                Err(e) => {
                    let content = std::fs::read_to_string(&path).unwrap_or_default();
                    return Err(bad(dotenv_reason(name, &e, &content)));
                }
            }
        }
        Ok(out)
    }
}

fn no_nul(t: &Toml<'_>, at: At<'_>, v: &Spanned<Value>, s: &str) -> Result<(), ConfigError> {
    if s.contains('\0') {
        return Err(t.at(at, v.span(), "contains a NUL byte"));
    }
    Ok(())
}

/// Sets `key` in `env`, replacing an earlier value in place.
fn set_env(env: &mut Vec<(OsString, OsString)>, key: OsString, value: OsString) {
    match env.iter_mut().find(|(k, _)| *k == key) {
        Some(slot) => slot.1 = value,
        None => env.push((key, value)),
    }
}

/// One line about why an env file does not load; `content` (the file's
/// text, when it could be read) finds the line number dotenvy does not
/// report.
fn dotenv_reason(name: &str, e: &dotenvy::Error, content: &str) -> String {
    match e {
        dotenvy::Error::Io(io) => format!("cannot read {name}: {}", io_reason(io)),
        dotenvy::Error::LineParse(text, _) => {
            let first = text.lines().next().unwrap_or("").trim();
            let line = (!first.is_empty())
                .then(|| content.lines().position(|l| l.contains(first)))
                .flatten();
            match line {
                Some(n) => format!("{name}:{}: cannot parse '{first}'", n + 1),
                None => format!("{name}: cannot parse '{first}'"),
            }
        }
        other => format!("{name}: {other}"),
    }
}

/// The key path (`["services", "web", "comand"]`) whose key or value
/// covers byte `offset`, the deepest one found.
fn key_path(table: &DeTable<'_>, offset: usize) -> Vec<String> {
    fn covers(span: &Range<usize>, offset: usize) -> bool {
        span.start <= offset && offset < span.end.max(span.start + 1)
    }
    fn walk(table: &DeTable<'_>, offset: usize, path: &mut Vec<String>) -> bool {
        for (k, v) in table.iter() {
            if let DeValue::Table(inner) = v.get_ref() {
                path.push(k.get_ref().to_string());
                if walk(inner, offset, path) {
                    return true;
                }
                path.pop();
            }
            if covers(&k.span(), offset) || covers(&v.span(), offset) {
                path.push(k.get_ref().to_string());
                return true;
            }
        }
        false
    }
    let mut path = Vec::new();
    walk(table, offset, &mut path);
    path
}

/// The allowed key closest to `key`, from serde's "expected one of `a`,
/// `b`" list, if one is close enough to be a typo.
fn suggest(key: &str, serde_message: &str) -> Option<String> {
    let (_, expected) = serde_message.split_once("expected")?;
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|k| (edit_distance(key, k), k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min()
        .map(|(_, k)| k.to_string())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// A cycle among `depends_on`, as names from where it starts back to it
/// (`["api", "web", "api"]`); searched from services in name order, so the
/// same file always names the same cycle.
fn find_cycle(services: &BTreeMap<String, Service>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    fn visit<'a>(
        name: &'a str,
        services: &'a BTreeMap<String, Service>,
        marks: &mut BTreeMap<&'a str, Mark>,
        stack: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        marks.insert(name, Mark::Open);
        stack.push(name);
        for d in services.get(name).map(|s| &s.depends_on[..]).unwrap_or(&[]) {
            match marks.get(d.as_str()).copied().unwrap_or(Mark::Done) {
                Mark::Open => {
                    let from = stack.iter().position(|s| s == d).unwrap_or(0);
                    let mut cycle: Vec<String> =
                        stack[from..].iter().map(|s| s.to_string()).collect();
                    cycle.push(d.clone());
                    return Some(cycle);
                }
                Mark::New => {
                    if let Some(c) = visit(d, services, marks, stack) {
                        return Some(c);
                    }
                }
                Mark::Done => {}
            }
        }
        stack.pop();
        marks.insert(name, Mark::Done);
        None
    }
    let mut marks: BTreeMap<&str, Mark> =
        services.keys().map(|k| (k.as_str(), Mark::New)).collect();
    for name in services.keys() {
        if marks[name.as_str()] == Mark::New
            && let Some(c) = visit(name, services, &mut marks, &mut Vec::new())
        {
            return Some(c);
        }
    }
    None
}

/// What the file holds instead of what was expected: "the string \"x\"",
/// "the integer 3", "a table".
fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => format!("the string \"{s}\""),
        Value::Integer(i) => format!("the integer {i}"),
        Value::Float(f) => format!("the number {f}"),
        Value::Boolean(b) => format!("{b}"),
        Value::Datetime(d) => format!("the date {d}"),
        Value::Array(_) => "an array".to_string(),
        Value::Table(_) => "a table".to_string(),
    }
}

/// regex's syntax errors are several lines (pattern, caret, "error: ...");
/// keep the "error:" one.
fn regex_reason(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map(str::to_string)
        .unwrap_or_else(|| first_line(&text))
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or("").trim().to_string()
}

#[cfg(test)]
mod tests;
