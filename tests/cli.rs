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
    assert!(complete("sexton qq").is_empty());
}
