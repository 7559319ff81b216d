//! What every command shares on the command line: the manual pages and
//! completion scripts made from its definition, `--color` with
//! `NO_COLOR` and terminals, and usage errors.

mod common;

use common::*;
use std::path::Path;
use std::process::{Command, Stdio};

/// Runs sexton to the end (stdin empty, NO_COLOR unset unless `env` sets
/// it) through the common harness: output captured through files.
fn sexton(args: &[&str], env: &[(&str, &str)]) -> Ran {
    let s = Scratch::new("cli");
    let mut c = Command::new(SEXTON);
    c.args(args).env_remove("NO_COLOR").stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    run_cmd(&mut c, &s)
}

/// A usage error: the status, nothing on stdout, one `sexton: usage:`
/// line and a hint on stderr, no panic.
fn assert_usage_error(args: &[&str], code: i32) {
    let r = sexton(args, &[]);
    assert_eq!(r.code, Some(code), "{args:?}: {r:?}");
    assert!(r.stdout.is_empty(), "{args:?}: {r:?}");
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{args:?}: {r:?}");
    assert!(lines[0].starts_with("sexton: usage: "), "{args:?}: {r:?}");
    assert!(lines[1].starts_with("hint: "), "{args:?}: {r:?}");
}

/// Every command, as `sexton --help` lists them (clap's `help` aside).
fn commands() -> Vec<String> {
    let r = sexton(&["--help"], &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let names: Vec<String> = r
        .stdout
        .lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|&n| n != "help")
        .map(String::from)
        .collect();
    for known in ["run", "init", "zombies", "status", "man", "completions"] {
        assert!(names.iter().any(|n| n == known), "{known}: {names:?}");
    }
    names
}

/// The long options `sexton CMD --help` lists (`--color`, `--help`...).
fn long_options(cmd: &str) -> Vec<String> {
    let r = sexton(&[cmd, "--help"], &[]);
    assert_eq!(r.code, Some(0), "{cmd}: {r:?}");
    let options: Vec<String> = r
        .stdout
        .lines()
        .skip_while(|l| *l != "Options:")
        .filter_map(|l| {
            let l = l.trim_start();
            let l = l
                .strip_prefix('-')
                .and_then(|l| l.split_once(", "))
                .map_or(l, |(_, r)| r);
            let name = l.strip_prefix("--")?;
            let end = name.find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'));
            Some(format!("--{}", &name[..end.unwrap_or(name.len())]))
        })
        .collect();
    assert!(
        options.contains(&"--help".to_string()),
        "{cmd}: {options:?}"
    );
    options
}

#[test]
fn usage_errors_of_man_and_completions_exit_2() {
    assert_usage_error(&["nosuch"], 2);
    assert_usage_error(&["man", "nosuch"], 2);
    // clap's help command has no page.
    assert_usage_error(&["man", "help"], 2);
    assert_usage_error(&["man", "run", "--dir", "."], 2);
    assert_usage_error(&["completions"], 2);
    assert_usage_error(&["completions", "tcsh"], 2);
    // What they print is for programs: no --color.
    assert_usage_error(&["completions", "bash", "--color", "always"], 2);
    assert_usage_error(&["man", "--color", "always"], 2);
}

/// `text` with roff's escapes of `-` (`\-`), as a page writes a name.
fn roff_dashes(text: &str) -> String {
    text.replace('-', "\\-")
}

/// Whether `program` is installed (runs `program --version`).
fn installed(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `groff -man -ww -z` on `page`: roff's own warnings about the page
/// (none: empty), or None when groff is not installed.
fn groff_warnings(s: &Scratch, page: &str) -> Option<String> {
    if !installed("groff") {
        return None;
    }
    let file = s.path("page.1");
    std::fs::write(&file, page).unwrap();
    let mut c = Command::new("groff");
    c.args(["-man", "-Tutf8", "-ww", "-z"]).arg(&file);
    let r = run_cmd(&mut c, s);
    assert_eq!(r.code, Some(0), "groff: {r:?}");
    Some(r.stderr)
}

#[test]
fn man_prints_a_page_for_sexton_and_for_every_command() {
    let s = Scratch::new("cli-man");
    let version = sexton(&["--version"], &[]).stdout.trim().to_string();
    assert!(version.starts_with("sexton "), "{version:?}");
    let commands = commands();
    let has_groff = installed("groff");
    if !has_groff {
        eprintln!("groff is not installed: the pages are not run through it");
    }

    // sexton(1): every command's page under SUBCOMMANDS.
    let top = sexton(&["man"], &[]);
    assert_eq!(top.code, Some(0), "{top:?}");
    assert!(top.stderr.is_empty(), "{top:?}");
    assert!(
        top.stdout.contains(&format!(
            "\n.TH SEXTON 1 \"\" \"{version}\" \"sexton manual\"\n"
        )),
        "{}",
        top.stdout
    );
    assert!(
        top.stdout.contains("\n.SH NAME\nsexton \\- "),
        "{}",
        top.stdout
    );
    let subcommands = top
        .stdout
        .split_once("\n.SH SUBCOMMANDS\n")
        .map(|(_, rest)| rest)
        .expect("a SUBCOMMANDS section");
    for cmd in &commands {
        let reference = format!("\nsexton\\-{}(1)\n", roff_dashes(cmd));
        assert!(subcommands.contains(&reference), "{cmd}: {}", top.stdout);
    }
    // clap's help command has no page, and none is named.
    assert!(!subcommands.contains("sexton\\-help"), "{}", top.stdout);
    if let Some(w) = groff_warnings(&s, &top.stdout) {
        assert!(w.is_empty(), "sexton(1): {w}");
    }

    for cmd in &commands {
        let r = sexton(&["man", cmd], &[]);
        assert_eq!(r.code, Some(0), "{cmd}: {r:?}");
        assert!(r.stderr.is_empty(), "{cmd}: {r:?}");
        let page = &r.stdout;
        let title = format!(
            "\n.TH SEXTON-{} 1 \"\" \"{version}\" \"sexton manual\"\n",
            cmd.to_uppercase()
        );
        assert!(page.contains(&title), "{cmd}: {page}");
        let name = format!("\n.SH NAME\nsexton\\-{} \\- ", roff_dashes(cmd));
        assert!(page.contains(&name), "{cmd}: {page}");
        let synopsis = format!("\n.SH SYNOPSIS\n\\fBsexton {cmd}\\fR");
        assert!(page.contains(&synopsis), "{cmd}: {page}");
        assert!(page.contains("\n.SH OPTIONS\n"), "{cmd}: {page}");
        // Every option --help lists is on the page.
        for opt in long_options(cmd) {
            let written = format!("\\fB{}\\fR", roff_dashes(&opt));
            assert!(page.contains(&written), "{cmd}: no {opt}: {page}");
        }
        if let Some(w) = groff_warnings(&s, page) {
            assert!(w.is_empty(), "sexton-{cmd}(1): {w}");
        }
    }

    // The pages differ by command: run's has no --pidfile, daemon's has.
    let run = sexton(&["man", "run"], &[]).stdout;
    let daemon = sexton(&["man", "daemon"], &[]).stdout;
    assert!(!run.contains("\\-\\-pidfile"), "{run}");
    assert!(daemon.contains("\\fB\\-\\-pidfile\\fR"), "{daemon}");
    // Defaults and possible values are there too.
    assert!(
        run.contains("\\fB\\-\\-leftovers\\fR \\fI<LEFTOVERS>\\fR [default: leave]"),
        "{run}"
    );
    for value in ["leave", "kill", "fail"] {
        assert!(run.contains(&format!("\n{value}\n")), "{value}: {run}");
    }
    let zombies = sexton(&["man", "zombies"], &[]).stdout;
    assert!(
        zombies.contains("\\fB\\-\\-color\\fR \\fI<WHEN>\\fR [default: auto]"),
        "{zombies}"
    );

    // Rendered, the page reads as a page.
    if has_groff {
        let file = s.path("run.1");
        std::fs::write(&file, &run).unwrap();
        let mut c = Command::new("groff");
        // Plain text: no overstriking for bold or underline.
        c.args(["-man", "-Tascii", "-P-c", "-P-b", "-P-u"])
            .arg(&file);
        let r = run_cmd(&mut c, &s);
        assert_eq!(r.code, Some(0), "{r:?}");
        let text = r.stdout;
        assert!(text.contains("SEXTON-RUN(1)"), "{text}");
        assert!(text.contains("--leftovers"), "{text}");
    }
}

#[test]
fn man_dir_writes_every_page_as_man_prints_it() {
    let s = Scratch::new("cli-man-dir");
    let dir = s.path("man1");
    std::fs::create_dir(&dir).unwrap();
    // An old page is replaced.
    std::fs::write(dir.join("sexton-run.1"), "old").unwrap();
    let r = sexton(&["man", "--dir", dir.to_str().unwrap()], &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stdout.is_empty() && r.stderr.is_empty(), "{r:?}");
    let mut want: Vec<String> = commands().iter().map(|c| format!("sexton-{c}.1")).collect();
    want.push("sexton.1".into());
    want.sort();
    let mut got: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    got.sort();
    assert_eq!(got, want);
    for file in &got {
        let printed = match file.strip_suffix(".1").unwrap().strip_prefix("sexton-") {
            Some(cmd) => sexton(&["man", cmd], &[]),
            None => sexton(&["man"], &[]),
        };
        let written = std::fs::read_to_string(dir.join(file)).unwrap();
        assert_eq!(written, printed.stdout, "{file}");
    }

    // A directory that is not there: one line, exit 1.
    let missing = s.path("missing");
    let r = sexton(&["man", "--dir", missing.to_str().unwrap()], &[]);
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(r.stdout.is_empty(), "{r:?}");
    assert_eq!(r.stderr.lines().count(), 1, "{r:?}");
    assert!(
        r.stderr.starts_with(&format!(
            "sexton: man: cannot write {}/sexton.1: ",
            missing.display()
        )),
        "{r:?}"
    );
    assert!(!missing.exists());
}

/// `sexton completions SHELL`, checked to have worked, in a file.
fn completion_script(s: &Scratch, shell: &str) -> (std::path::PathBuf, String) {
    let r = sexton(&["completions", shell], &[]);
    assert_eq!(r.code, Some(0), "{shell}: {r:?}");
    assert!(r.stderr.is_empty(), "{shell}: {r:?}");
    for cmd in commands() {
        assert!(r.stdout.contains(&cmd), "{shell}: no {cmd}");
    }
    for opt in ["color", "leftovers", "pidfile", "json"] {
        // fish's `complete -l color`, the others' `--color`.
        let written = match shell {
            "fish" => format!("-l {opt}"),
            _ => format!("--{opt}"),
        };
        assert!(r.stdout.contains(&written), "{shell}: no {written}");
    }
    let file = s.path(&format!("sexton.{shell}"));
    std::fs::write(&file, &r.stdout).unwrap();
    (file, r.stdout)
}

/// Runs `shell ARGS...` with HOME in the scratch folder (no user
/// config read or written).
fn shell(s: &Scratch, shell: &str, args: &[&str]) -> Ran {
    let mut c = Command::new(shell);
    c.args(args)
        .env("HOME", &s.dir)
        .env("XDG_CONFIG_HOME", s.path("config"))
        .env("XDG_DATA_HOME", s.path("data"))
        .env("XDG_CACHE_HOME", s.path("cache"))
        .current_dir(&s.dir);
    run_cmd(&mut c, s)
}

/// What bash's completion function offers for `line` (the last word is
/// the one being completed).
fn bash_completes(s: &Scratch, script: &Path, line: &str) -> Vec<String> {
    let words: Vec<&str> = if line.ends_with(' ') {
        line.split_whitespace().chain([""]).collect()
    } else {
        line.split_whitespace().collect()
    };
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let cword = words.len() - 1;
    let prev = if cword > 0 { words[cword - 1] } else { "" };
    let code = format!(
        "source '{}'; COMP_WORDS=({}); COMP_CWORD={cword}; COMP_LINE='{line}'; \
         COMP_POINT=${{#COMP_LINE}}; _sexton sexton '{}' '{prev}'; \
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        quoted.join(" "),
        words[cword],
    );
    let r = shell(s, "bash", &["--norc", "--noprofile", "-c", &code]);
    assert_eq!(r.code, Some(0), "{line:?}: {r:?}");
    assert!(r.stderr.is_empty(), "{line:?}: {r:?}");
    // printf prints one empty line for no word at all.
    r.stdout
        .lines()
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

#[test]
fn completions_bash_is_valid_and_completes_commands_options_and_values() {
    let s = Scratch::new("cli-bash");
    let (file, text) = completion_script(&s, "bash");
    assert!(text.contains("complete -F _sexton"), "{text}");
    let r = shell(&s, "bash", &["-n", file.to_str().unwrap()]);
    assert_eq!(r.code, Some(0), "bash -n: {r:?}");
    assert!(r.stderr.is_empty(), "bash -n: {r:?}");
    // Control: bash -n does reject a script cut in the middle.
    let cut = s.path("cut.bash");
    std::fs::write(&cut, &text[..text.len() / 2]).unwrap();
    let r = shell(&s, "bash", &["-n", cut.to_str().unwrap()]);
    assert_ne!(r.code, Some(0), "bash -n took half a script: {r:?}");

    assert_eq!(bash_completes(&s, &file, "sexton zo"), ["zombies"]);
    let run = bash_completes(&s, &file, "sexton run --lef");
    assert_eq!(run, ["--leftovers"]);
    let mut leftovers = bash_completes(&s, &file, "sexton run --leftovers ");
    leftovers.sort();
    assert_eq!(leftovers, ["fail", "kill", "leave"]);
    let mut colors = bash_completes(&s, &file, "sexton zombies --color ");
    colors.sort();
    assert_eq!(colors, ["always", "auto", "never"]);
    let pages = bash_completes(&s, &file, "sexton man ");
    for cmd in ["run", "status", "completions"] {
        assert!(pages.iter().any(|p| p == cmd), "{cmd}: {pages:?}");
    }
    let shells = bash_completes(&s, &file, "sexton completions ");
    assert!(shells.iter().any(|p| p == "fish"), "{shells:?}");
    // Control: nothing is offered for a word that starts no command.
    assert!(bash_completes(&s, &file, "sexton qq").is_empty());
}

#[test]
fn completions_zsh_is_valid() {
    let s = Scratch::new("cli-zsh");
    let (file, text) = completion_script(&s, "zsh");
    assert!(text.starts_with("#compdef sexton\n"), "{text}");
    assert!(text.contains("_sexton()"), "{text}");
    assert!(text.contains("(auto always never)"), "{text}");
    // After run's options, a command and its arguments.
    assert!(
        text.contains("The program and its arguments:_cmdambivalent"),
        "{text}"
    );
    if !installed("zsh") {
        eprintln!("zsh is not installed: the zsh script's syntax is not checked");
        return;
    }
    let r = shell(&s, "zsh", &["-n", "-f", file.to_str().unwrap()]);
    assert_eq!(r.code, Some(0), "zsh -n: {r:?}");
    assert!(r.stderr.is_empty(), "zsh -n: {r:?}");
    let cut = s.path("cut.zsh");
    std::fs::write(&cut, &text[..text.len() / 2]).unwrap();
    let r = shell(&s, "zsh", &["-n", "-f", cut.to_str().unwrap()]);
    assert_ne!(r.code, Some(0), "zsh -n took half a script: {r:?}");
}

#[test]
fn completions_fish_is_valid_and_completes() {
    let s = Scratch::new("cli-fish");
    let (file, text) = completion_script(&s, "fish");
    assert!(text.contains("complete -c sexton"), "{text}");
    if !installed("fish") {
        eprintln!("fish is not installed: the fish script is not checked with fish");
        return;
    }
    let f = file.to_str().unwrap();
    let r = shell(&s, "fish", &["--no-config", "-n", f]);
    assert_eq!(r.code, Some(0), "fish -n: {r:?}");
    assert!(r.stderr.is_empty(), "fish -n: {r:?}");
    let complete = |line: &str| -> Vec<String> {
        let code = format!("source '{f}'; complete -C '{line}'");
        let r = shell(&s, "fish", &["--no-config", "-c", &code]);
        assert_eq!(r.code, Some(0), "{line:?}: {r:?}");
        // `word<TAB>description`.
        r.stdout
            .lines()
            .map(|l| l.split('\t').next().unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(complete("sexton zo"), ["zombies"]);
    assert!(complete("sexton run --lef").contains(&"--leftovers".to_string()));
    let mut leftovers = complete("sexton run --leftovers ");
    leftovers.sort();
    assert_eq!(leftovers, ["fail", "kill", "leave"]);
    let mut colors = complete("sexton zombies --color ");
    colors.sort();
    assert_eq!(colors, ["always", "auto", "never"]);
    assert!(complete("sexton qq").is_empty());
}

/// The commands that take no `--color`: what they print is for programs
/// (roff, a shell script).
const NO_COLOR_FLAG: &[&str] = &["man", "completions"];

fn has_escape(s: &str) -> bool {
    s.contains("\x1b[")
}

/// `s` without its SGR escapes (`ESC [ ... m`).
fn strip(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("\x1b[") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let end = after.find('m').expect("an SGR sequence ends with m");
        rest = &after[end + 1..];
    }
    out + rest
}

/// The end of an audit summary (`... scanned in 41.0 ms)`): the last
/// text the audit commands write.
const SUMMARY: Option<&str> = Some(" ms)");

#[test]
fn every_command_but_man_and_completions_takes_color_the_same_way() {
    for cmd in commands() {
        let r = sexton(&[&cmd, "--help"], &[]);
        assert_eq!(r.code, Some(0), "{cmd}: {r:?}");
        if NO_COLOR_FLAG.contains(&cmd.as_str()) {
            assert!(!r.stdout.contains("--color"), "{cmd}: {r:?}");
            continue;
        }
        assert!(r.stdout.contains("--color <WHEN>"), "{cmd}: {r:?}");
        assert!(r.stdout.contains("[default: auto]"), "{cmd}: {r:?}");
        assert!(
            r.stdout.contains("[possible values: auto, always, never]"),
            "{cmd}: {r:?}"
        );
    }
}

#[test]
fn a_bad_color_is_a_usage_error_2_and_125_for_the_program_runners() {
    for cmd in [
        "zombies", "orphans", "shared", "audit", "status", "logs", "up",
    ] {
        assert_usage_error(&[cmd, "--color", "sometimes"], 2);
    }
    assert_usage_error(&["why", "1", "--color", "sometimes"], 2);
    assert_usage_error(&["zombies", "--color"], 2);
    assert_usage_error(&["zombies", "--color=sometimes"], 2);
    assert_usage_error(&["demo", "--color", "sometimes"], 2);
    assert_usage_error(&["stop", "--color", "sometimes"], 2);
    assert_usage_error(
        &[
            "daemon",
            "--status",
            "--pidfile",
            "p",
            "--color",
            "sometimes",
        ],
        2,
    );
    // run, init and check: their other statuses are the program's, their
    // usage errors are 125.
    for cmd in ["run", "init", "check"] {
        assert_usage_error(&[cmd, "--color", "sometimes", "--", "true"], 125);
    }
    let r = sexton(&["zombies", "--color", "sometimes"], &[]);
    assert_eq!(
        r.stderr.lines().next(),
        Some("sexton: usage: invalid value 'sometimes' for '--color <WHEN>'"),
        "{r:?}"
    );
}

#[test]
fn color_always_colours_a_listing_and_never_or_a_pipe_do_not() {
    let always = sexton(&["zombies", "--color", "always"], &[]);
    assert!(matches!(always.code, Some(0 | 1)), "{always:?}");
    assert!(has_escape(&always.stdout), "{always:?}");
    // The summary is green when there is nothing, bold red otherwise.
    let last = always.stdout.lines().last().unwrap();
    assert!(
        last.starts_with("\x1b[32mno findings\x1b[0m (")
            || (last.starts_with("\x1b[1;31m") && last.contains(" finding")),
        "{last:?}"
    );
    // `always` wins over NO_COLOR, as a flag does over the environment.
    let r = sexton(&["zombies", "--color", "always"], &[("NO_COLOR", "1")]);
    assert!(has_escape(&r.stdout), "{r:?}");
    for (args, env) in [
        (&["zombies", "--color", "never"][..], &[][..]),
        (&["zombies"][..], &[][..]),
        (
            &["zombies", "--color", "auto"][..],
            &[("NO_COLOR", "1")][..],
        ),
        (&["orphans"][..], &[][..]),
        (&["shared"][..], &[][..]),
        (&["audit", "--color", "never"][..], &[][..]),
    ] {
        let r = sexton(args, env);
        assert!(matches!(r.code, Some(0 | 1)), "{args:?}: {r:?}");
        assert!(r.stdout.contains(" scanned in "), "{args:?}: {r:?}");
        assert!(!has_escape(&r.stdout), "{args:?} {env:?}: {r:?}");
    }
    // JSON is never coloured.
    let r = sexton(&["audit", "--json", "--color", "always"], &[]);
    assert!(!has_escape(&r.stdout), "{r:?}");
    let doc = parse_doc(&r.stdout, "findings.json");
    assert!(doc["findings"].is_array(), "{doc}");
}

/// Runs `env PREFIX... sexton ARGS...` on a pseudo-terminal (`PREFIX`
/// sets or unsets NO_COLOR, and may put a shell in between) and returns
/// everything written there. With `until`, reads until that text came
/// (the last thing sexton writes) before the exit.
fn on_terminal(prefix: &[&str], args: &[&str], until: Option<&str>) -> String {
    let s = Scratch::new("cli-pty");
    let mut argv: Vec<&str> = prefix.to_vec();
    argv.push(SEXTON);
    argv.extend_from_slice(args);
    let mut t = Pty::spawn("env", &argv, &s.dir);
    if let Some(text) = until {
        assert!(
            t.expect(text, DEADLINE),
            "{args:?}: {text:?} never came on the terminal: {:?}",
            t.seen()
        );
    }
    // Then the rest, until the terminal hangs up (no text has a NUL).
    t.expect("\0", DEADLINE);
    let status = t.sp.wait(DEADLINE);
    assert!(matches!(status.code(), Some(0 | 1)), "{args:?}: {status:?}");
    t.seen()
}

#[test]
fn auto_colours_a_terminal_unless_no_color_is_set_and_not_empty() {
    let seen = on_terminal(&["-u", "NO_COLOR"], &["zombies"], SUMMARY);
    assert!(has_escape(&seen), "no colour on a terminal: {seen:?}");
    let seen = on_terminal(&["NO_COLOR="], &["zombies"], SUMMARY);
    assert!(
        has_escape(&seen),
        "an empty NO_COLOR disabled colour: {seen:?}"
    );
    let seen = on_terminal(&["NO_COLOR=1"], &["zombies"], SUMMARY);
    assert!(!has_escape(&seen), "colour despite NO_COLOR=1: {seen:?}");
    let seen = on_terminal(
        &["-u", "NO_COLOR"],
        &["zombies", "--color", "never"],
        SUMMARY,
    );
    assert!(!has_escape(&seen), "colour despite --color never: {seen:?}");
}

#[test]
fn auto_looks_at_the_stream_the_text_goes_to() {
    // Both on a terminal whose stdout goes to a file: check's report is
    // on stderr, the terminal, and coloured; zombies' listing is on
    // stdout, the file, and not.
    let s = Scratch::new("cli-streams");
    let out = s.path("stdout");
    let sh = format!("exec \"$0\" \"$@\" > '{}'", out.display());
    let seen = on_terminal(
        &["-u", "NO_COLOR", "sh", "-c", &sh],
        &["check", "--", "true"],
        SUMMARY,
    );
    assert!(
        seen.contains("sexton check: \x1b[32mno findings\x1b[0m ("),
        "check's report on a terminal not coloured: {seen:?}"
    );
    let seen = on_terminal(&["-u", "NO_COLOR", "sh", "-c", &sh], &["zombies"], None);
    assert!(!has_escape(&seen), "{seen:?}");
    let listing = std::fs::read_to_string(&out).unwrap();
    assert!(listing.contains(" scanned in "), "{listing:?}");
    assert!(!has_escape(&listing), "colour in a file: {listing:?}");
}

/// A `sleep 300` killed on drop.
fn sleeper() -> Spawned {
    let mut c = Command::new("sleep");
    c.arg("300").stdin(Stdio::null()).stdout(Stdio::null());
    spawn(&mut c)
}

#[test]
fn why_colours_only_by_adding_escapes() {
    let sl = sleeper();
    let pid = sl.pid().to_string();
    // Until the sleeper sleeps, its state may still be R.
    let sleeping = poll(DEADLINE, || {
        sexton::procfs::process(sl.pid()).is_some_and(|p| p.state == 'S')
    });
    assert!(sleeping, "sleep {pid} never slept");
    let never = sexton(&["why", &pid, "--color", "never"], &[]);
    assert_eq!(never.code, Some(0), "{never:?}");
    assert!(!has_escape(&never.stdout), "{never:?}");
    assert!(
        never
            .stdout
            .starts_with(&format!("{pid} sleep 300  [state S]\n")),
        "{never:?}"
    );
    let always = sexton(&["why", &pid, "--color", "always"], &[]);
    assert_eq!(always.code, Some(0), "{always:?}");
    assert!(
        always.stdout.starts_with(&format!(
            "\x1b[1m{pid}\x1b[0m sleep 300  [\x1b[33mstate S\x1b[0m]\n"
        )),
        "{always:?}"
    );
    assert_eq!(strip(&always.stdout), never.stdout);
    let piped = sexton(&["why", &pid], &[]);
    assert_eq!(piped.stdout, never.stdout);
}

#[test]
fn check_colours_its_report_on_stderr() {
    let always = sexton(&["check", "--color", "always", "--", "true"], &[]);
    assert_eq!(always.code, Some(0), "{always:?}");
    assert!(
        always
            .stderr
            .contains("sexton check: \x1b[32mno findings\x1b[0m ("),
        "{always:?}"
    );
    for args in [
        &["check", "--color", "never", "--", "true"][..],
        &["check", "--", "true"][..],
    ] {
        let r = sexton(args, &[]);
        assert_eq!(r.code, Some(0), "{args:?}: {r:?}");
        assert!(r.stderr.contains("sexton check: no findings ("), "{r:?}");
        assert!(!has_escape(&r.stderr), "{args:?}: {r:?}");
    }
    // A finding: its kind in colour, and the summary bold red.
    let r = sexton(
        &[
            "check",
            "--color",
            "always",
            "--",
            "sh",
            "-c",
            "sleep 300 & exit 0",
        ],
        &[],
    );
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(r.stderr.contains("  [\x1b[31mleftover\x1b[0m]\n"), "{r:?}");
    assert!(
        r.stderr
            .contains("sexton check: \x1b[1;31m1 finding\x1b[0m ("),
        "{r:?}"
    );
    // Cut short by a signal: "interrupted:" in yellow, the rest plain.
    let cut = ["sh", "-c", "kill -TERM $$"];
    let always = sexton(
        &[&["check", "--color", "always", "--"][..], &cut].concat(),
        &[],
    );
    assert_eq!(always.code, Some(143), "{always:?}");
    assert!(
        always
            .stderr
            .contains("sexton check: \x1b[33minterrupted:\x1b[0m sh was killed by SIGTERM "),
        "{always:?}"
    );
    let never = sexton(
        &[&["check", "--color", "never", "--"][..], &cut].concat(),
        &[],
    );
    assert_eq!(never.code, Some(143), "{never:?}");
    assert!(
        never
            .stderr
            .contains("sexton check: interrupted: sh was killed by SIGTERM "),
        "{never:?}"
    );
    assert!(!has_escape(&never.stderr), "{never:?}");
}

/// A supervisor in a scratch folder (two services that say hello and
/// sleep), brought down and its services killed on drop.
struct Supervised {
    s: Scratch,
}

impl Supervised {
    fn up() -> Supervised {
        let s = Scratch::new("cli-up");
        let pids = s.pidfile();
        let service = |name: &str| {
            format!(
                "[services.{name}]\ncommand = [\"sh\", \"-c\", \"echo $$ >> {}; echo hello from {name}; exec sleep 300\"]\n",
                pids.display()
            )
        };
        std::fs::write(s.path("sexton.toml"), service("web") + &service("db")).unwrap();
        let me = Supervised { s };
        let r = me.sexton(&["up", "-d"]);
        assert_eq!(r.code, Some(0), "{r:?}");
        me
    }

    fn sexton(&self, args: &[&str]) -> Ran {
        let mut c = Command::new(SEXTON);
        c.args(args)
            .current_dir(&self.s.dir)
            .env_remove("SEXTON_STATE_DIR")
            .env_remove("NO_COLOR")
            .stdin(Stdio::null());
        run_cmd(&mut c, &self.s)
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        let mut c = Command::new(SEXTON);
        c.arg("down")
            .current_dir(&self.s.dir)
            .env_remove("SEXTON_STATE_DIR")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut sp = spawn(&mut c);
        let _ = poll(DEADLINE, || sp.child.try_wait().ok().flatten().is_some());
    }
}

#[test]
fn status_and_logs_colour_states_and_names() {
    let sv = Supervised::up();
    // status: the states in colour, the columns still aligned.
    let never = sv.sexton(&["status", "--color", "never"]);
    assert_eq!(never.code, Some(0), "{never:?}");
    assert!(!has_escape(&never.stdout), "{never:?}");
    let piped = sv.sexton(&["status"]);
    assert!(!has_escape(&piped.stdout), "{piped:?}");
    let always = sv.sexton(&["status", "--color", "always"]);
    assert_eq!(always.code, Some(0), "{always:?}");
    assert!(
        always.stdout.contains("\x1b[32mrunning\x1b[0m"),
        "{always:?}"
    );
    let plain = strip(&always.stdout);
    let lines: Vec<&str> = plain.lines().collect();
    assert_eq!(lines[1], never.stdout.lines().nth(1).unwrap(), "{plain}");
    let head = lines[1];
    let (state_at, pid_at) = (head.find("STATE").unwrap(), head.find("PID").unwrap());
    for row in &lines[2..4] {
        assert_eq!(row.find("running"), Some(state_at), "{plain}");
        assert!(
            row[pid_at..].starts_with(|c: char| c.is_ascii_digit()),
            "{plain}"
        );
    }
    let json = sv.sexton(&["status", "--json", "--color", "always"]);
    assert!(!has_escape(&json.stdout), "{json:?}");
    parse_doc(&json.stdout, "status.json");

    // logs: each name in the colour `up` gives it.
    let hello = |r: &Ran| r.stdout.contains("hello from web") && r.stdout.contains("hello from db");
    assert!(
        poll(DEADLINE, || hello(
            &sv.sexton(&["logs", "--color", "never"])
        )),
        "no hello in the logs"
    );
    let (mut always, mut never) = (None, None);
    // The logs are quiet once both said hello; should a line come in
    // between the two reads, read both again.
    let same = poll(DEADLINE, || {
        let n1 = sv.sexton(&["logs", "--color", "never"]);
        let a = sv.sexton(&["logs", "--color", "always"]);
        let n2 = sv.sexton(&["logs", "--color", "never"]);
        let ok = n1.stdout == n2.stdout;
        (always, never) = (Some(a), Some(n1));
        ok
    });
    assert!(same, "the logs kept changing");
    let (always, never) = (always.unwrap(), never.unwrap());
    assert!(!has_escape(&never.stdout), "{never:?}");
    assert_eq!(strip(&always.stdout), never.stdout);
    for (name, padded) in [("web", "web"), ("db", "db ")] {
        let prefix = format!(
            "\x1b[{}m{padded} |\x1b[0m ",
            sexton::supervise::logs::color_of(name)
        );
        let said = format!("hello from {name}");
        assert!(
            always
                .stdout
                .lines()
                .any(|l| l.starts_with(&prefix) && l.ends_with(&said)),
            "{name}: {always:?}"
        );
    }
    let piped = sv.sexton(&["logs"]);
    assert!(hello(&piped) && !has_escape(&piped.stdout), "{piped:?}");
    // One service: its lines as they are, nothing to colour.
    let one = sv.sexton(&["logs", "web", "--color", "always"]);
    assert!(one.stdout.contains("hello from web"), "{one:?}");
    assert!(!has_escape(&one.stdout), "{one:?}");
}

#[test]
fn run_init_and_the_supervisor_commands_take_color_and_colour_nothing() {
    for color in ["always", "never"] {
        let r = sexton(&["run", "--color", color, "--", "echo", "hi"], &[]);
        assert_eq!(r.code, Some(0), "{r:?}");
        assert_eq!(r.stdout, "hi\n");
        let r = sexton(&["init", "--color", color, "--", "echo", "hi"], &[]);
        assert_eq!(r.code, Some(0), "{r:?}");
        assert_eq!(r.stdout, "hi\n");
    }
    // The program's own arguments are its own, --color included.
    let r = sexton(&["run", "--", "echo", "--color", "sometimes"], &[]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(r.stdout, "--color sometimes\n");
}

#[test]
fn daemon_status_colours_the_state() {
    let s = Scratch::new("cli-daemon");
    let pidfile = s.path("d.pid");
    let p = pidfile.to_str().unwrap();
    let never = sexton(
        &["daemon", "--status", "--pidfile", p, "--color", "never"],
        &[],
    );
    assert_eq!(never.code, Some(3), "{never:?}");
    assert_eq!(never.stdout, "not running\n");
    let piped = sexton(&["daemon", "--status", "--pidfile", p], &[]);
    assert_eq!(piped.stdout, "not running\n");
    let always = sexton(
        &["daemon", "--status", "--pidfile", p, "--color", "always"],
        &[],
    );
    assert_eq!(always.code, Some(3), "{always:?}");
    assert_eq!(always.stdout, "\x1b[33mnot running\x1b[0m\n");
    // A running daemon: green.
    struct Stop<'a>(&'a str);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            let _ = sexton(&["daemon", "--stop", "--pidfile", self.0], &[]);
        }
    }
    let _stop = Stop(p);
    let started = sexton(&["daemon", "--pidfile", p, "--", "sleep", "300"], &[]);
    assert_eq!(started.code, Some(0), "{started:?}");
    let always = sexton(
        &["daemon", "--status", "--pidfile", p, "--color", "always"],
        &[],
    );
    assert_eq!(always.code, Some(0), "{always:?}");
    assert!(
        always.stdout.starts_with("\x1b[32mrunning\x1b[0m: "),
        "{always:?}"
    );
    let never = sexton(&["daemon", "--status", "--pidfile", p], &[]);
    assert_eq!(strip(&always.stdout), never.stdout);
    // On a terminal: coloured unless NO_COLOR says no.
    let seen = on_terminal(
        &["-u", "NO_COLOR"],
        &["daemon", "--status", "--pidfile", p],
        None,
    );
    assert!(seen.contains("\x1b[32mrunning\x1b[0m: "), "{seen:?}");
    let seen = on_terminal(
        &["NO_COLOR=1"],
        &["daemon", "--status", "--pidfile", p],
        None,
    );
    assert!(seen.contains("running: ") && !has_escape(&seen), "{seen:?}");
}

#[test]
fn demo_colours_its_headings_and_verdict() {
    let always = sexton(&["demo", "--color", "always"], &[]);
    assert_eq!(always.code, Some(0), "{always:?}");
    assert!(
        always
            .stdout
            .starts_with("\x1b[1mThe script:\x1b[0m  sh -c "),
        "{always:?}"
    );
    assert!(
        always.stdout.contains(
            "\x1b[32mEvery process that held the output was named and killed; none is left.\x1b[0m\n"
        ),
        "{always:?}"
    );
    let piped = sexton(&["demo"], &[]);
    assert_eq!(piped.code, Some(0), "{piped:?}");
    assert!(!has_escape(&piped.stdout), "{piped:?}");
    assert!(piped.stdout.starts_with("The script:  sh -c "), "{piped:?}");
}
