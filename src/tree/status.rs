//! How a process ended, told one way everywhere.
//!
//! Every command that reports a program's end (the exit status of `run`,
//! `init` and `check`, the result document's `exit_code` and `signal`,
//! the daemon monitor's log line) goes through these functions, so a
//! death by a realtime signal reads the same everywhere: exit status
//! 128+N, signal `RTMIN+3`.

use std::process::ExitStatus;

/// The status a shell would give for `status`: the exit code, or 128+N
/// when signal N ended the process (what `$?` shows).
pub fn exit_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => c,
        (None, Some(n)) => 128 + n,
        // Stopped or continued: not an end. Callers only pass ends.
        _ => 1,
    }
}

/// The name of the signal that ended the process (`"TERM"`, `"RTMIN+3"`),
/// `None` when it exited.
pub fn signal_name(status: ExitStatus) -> Option<String> {
    use std::os::unix::process::ExitStatusExt;
    status
        .signal()
        .map(|n| crate::parse::signal_name_of(n).into_owned())
}

/// One phrase for logs: `exited with status 3`, `was killed by signal
/// RTMIN+3` (`, core dumped` when it dumped core).
pub fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), signal_name(status)) {
        (Some(c), _) => format!("exited with status {c}"),
        (None, Some(name)) if status.core_dumped() => {
            format!("was killed by signal {name}, core dumped")
        }
        (None, Some(name)) => format!("was killed by signal {name}"),
        _ => "ended".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn codes_and_names() {
        let exited = ExitStatus::from_raw(3 << 8);
        assert_eq!(exit_code(exited), 3);
        assert_eq!(signal_name(exited), None);
        assert_eq!(describe(exited), "exited with status 3");
        let rt = ExitStatus::from_raw(37);
        assert_eq!(exit_code(rt), 128 + 37);
        assert_eq!(signal_name(rt).as_deref(), Some("RTMIN+3"));
        assert_eq!(describe(rt), "was killed by signal RTMIN+3");
        let term = ExitStatus::from_raw(15);
        assert_eq!(signal_name(term).as_deref(), Some("TERM"));
    }
}
