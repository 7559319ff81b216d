//! Parsers for the values users type on the command line and in config
//! files: durations (`250ms`, `5s`, `1h30m`, `0.5`), sizes (`64KiB`,
//! `10MB`) and signals (`TERM`, `SIGTERM`, `15`).
//!
//! Durations follow GNU `timeout`: a bare number is seconds and may be
//! fractional. Anything with a unit goes to `humantime`, sizes to
//! `parse-size`, signal names to nix's `Signal` table.

use nix::sys::signal::Signal;
use std::str::FromStr;
use std::time::Duration;

/// A value the user typed that does not parse.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("invalid duration '{0}' (use e.g. 250ms, 5s, 2m, 1h30m or a number of seconds)")]
    Duration(String),
    #[error("invalid size '{0}' (use e.g. 512, 64KiB, 10MB, 1GiB)")]
    Size(String),
    #[error("invalid signal '{0}' (use e.g. TERM, SIGTERM or 15)")]
    Signal(String),
}

/// Parses a duration the way GNU `timeout` and the spec accept it.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(sexton::parse::duration("250ms").unwrap(), Duration::from_millis(250));
/// assert_eq!(sexton::parse::duration("1h30m").unwrap(), Duration::from_secs(5400));
/// assert_eq!(sexton::parse::duration("0.5").unwrap(), Duration::from_millis(500));
/// assert!(sexton::parse::duration("soon").is_err());
/// ```
pub fn duration(text: &str) -> Result<Duration, ParseError> {
    let t = text.trim();
    let bad = || ParseError::Duration(text.to_string());
    if t.is_empty() {
        return Err(bad());
    }
    if t.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let secs: f64 = t.parse().map_err(|_| bad())?;
        return Duration::try_from_secs_f64(secs).map_err(|_| bad());
    }
    // GNU timeout also takes a single-letter suffix with a fractional
    // number ("1.5m"); humantime wants integers, so handle that form here.
    if let Some((num, unit)) = t.split_at_checked(t.len() - 1)
        && num.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && num.contains('.')
    {
        let n: f64 = num.parse().map_err(|_| bad())?;
        let mult = match unit {
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            _ => return Err(bad()),
        };
        return Duration::try_from_secs_f64(n * mult).map_err(|_| bad());
    }
    humantime::parse_duration(t).map_err(|_| bad())
}

/// Parses a byte size: a plain number of bytes or one with a decimal
/// (`MB`) or binary (`MiB`) unit.
///
/// ```
/// assert_eq!(sexton::parse::size("64KiB").unwrap(), 65536);
/// assert_eq!(sexton::parse::size("10MB").unwrap(), 10_000_000);
/// ```
pub fn size(text: &str) -> Result<u64, ParseError> {
    parse_size::parse_size(text.trim()).map_err(|_| ParseError::Size(text.to_string()))
}

/// Parses a signal given as `TERM`, `SIGTERM`, `term` or `15`.
///
/// ```
/// use nix::sys::signal::Signal;
/// assert_eq!(sexton::parse::signal("TERM").unwrap(), Signal::SIGTERM);
/// assert_eq!(sexton::parse::signal("9").unwrap(), Signal::SIGKILL);
/// ```
pub fn signal(text: &str) -> Result<Signal, ParseError> {
    let t = text.trim();
    let bad = || ParseError::Signal(text.to_string());
    if let Ok(n) = t.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| bad());
    }
    let upper = t.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    Signal::from_str(&name).map_err(|_| bad())
}

/// Parses a signal given as a name (`TERM`, `SIGTERM`), a number in
/// 0..=64 (0 sends nothing), or a realtime name (`RTMIN+3`).
pub fn signal_number(text: &str) -> Result<i32, ParseError> {
    let t = text.trim();
    if let Ok(n) = t.parse::<i32>() {
        return if (0..=RTMAX).contains(&n) {
            Ok(n)
        } else {
            Err(ParseError::Signal(text.to_string()))
        };
    }
    (1..=RTMAX)
        .find(|&n| {
            let name = signal_name_of(n);
            let u = t.to_ascii_uppercase();
            u == name || u.strip_prefix("SIG") == Some(&*name)
        })
        .ok_or_else(|| ParseError::Signal(text.to_string()))
}

/// The short name of a signal as the result document spells it (`"TERM"`).
pub fn signal_name(sig: Signal) -> &'static str {
    let s = sig.as_str();
    s.strip_prefix("SIG").unwrap_or(s)
}

/// glibc's `SIGRTMIN`: the kernel's first realtime signal is 32, and
/// glibc keeps 32 and 33 for itself, so programs (and `kill -l`) count
/// from 34.
pub const RTMIN: i32 = 34;
/// `SIGRTMAX` on Linux.
pub const RTMAX: i32 = 64;

/// The short name of signal number `n`, realtime ones included, as
/// bash's `kill -l` spells them without `SIG`: `TERM`, `RTMIN`,
/// `RTMIN+3`, `RTMAX-14`, `RTMAX`; a number no name fits (32, 33, or
/// out of range) as its digits.
///
/// ```
/// assert_eq!(sexton::parse::signal_name_of(15), "TERM");
/// assert_eq!(sexton::parse::signal_name_of(37), "RTMIN+3");
/// assert_eq!(sexton::parse::signal_name_of(64), "RTMAX");
/// ```
pub fn signal_name_of(n: i32) -> std::borrow::Cow<'static, str> {
    use std::borrow::Cow;
    if let Ok(sig) = Signal::try_from(n) {
        return Cow::Borrowed(signal_name(sig));
    }
    let mid = RTMIN + (RTMAX - RTMIN) / 2;
    Cow::Owned(match n {
        RTMIN => "RTMIN".to_string(),
        RTMAX => "RTMAX".to_string(),
        n if n > RTMIN && n <= mid => format!("RTMIN+{}", n - RTMIN),
        n if n > mid && n < RTMAX => format!("RTMAX-{}", RTMAX - n),
        n => n.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("5").unwrap(), Duration::from_secs(5));
        assert_eq!(duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(duration("1.5m").unwrap(), Duration::from_secs(90));
        assert_eq!(duration("0").unwrap(), Duration::ZERO);
        for bad in ["", "-1", "abc", "5x", "1..2"] {
            assert!(duration(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(size("512").unwrap(), 512);
        assert_eq!(size("1GiB").unwrap(), 1 << 30);
        assert!(size("lots").is_err());
    }

    #[test]
    fn signals() {
        assert_eq!(signal("SIGKILL").unwrap(), Signal::SIGKILL);
        assert_eq!(signal("hup").unwrap(), Signal::SIGHUP);
        assert_eq!(signal_name(Signal::SIGTERM), "TERM");
        assert!(signal("NOPE").is_err());
        assert!(signal("99").is_err());
    }

    #[test]
    fn realtime_signal_names_follow_kill_l() {
        assert_eq!(signal_name_of(9), "KILL");
        assert_eq!(signal_name_of(34), "RTMIN");
        assert_eq!(signal_name_of(35), "RTMIN+1");
        assert_eq!(signal_name_of(49), "RTMIN+15");
        assert_eq!(signal_name_of(50), "RTMAX-14");
        assert_eq!(signal_name_of(63), "RTMAX-1");
        assert_eq!(signal_name_of(64), "RTMAX");
        assert_eq!(signal_name_of(32), "32");
    }
}
