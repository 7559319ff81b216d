//! Parsers for the values users type on the command line and in config
//! files: durations (`250ms`, `5s`, `1h30m`, `0.5`), sizes (`64KiB`,
//! `10MB`) and signals (`TERM`, `SIGTERM`, `15`).
//!
//! Durations follow GNU `timeout` (a number of seconds, fractional or in
//! scientific notation, with an optional `s`/`m`/`h`/`d` suffix; huge
//! values saturate) and also take `humantime`'s compound form (`1h30m`);
//! see [`duration`]. Sizes go to `parse-size`; signals follow GNU's
//! `str2sig` on top of nix's `Signal` table (see [`signal_number`]).

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
    #[error("expected FROM:TO, got '{0}'")]
    Rewrite(String),
    #[error("expected K=V, got '{0}'")]
    Env(String),
}

/// The longest duration [`duration`] returns: larger values (`1e400`,
/// `9223372036854775808d`, `inf`) saturate to it instead of failing, as
/// GNU `timeout` bounds them. It is `i64::MAX / 4` seconds (about 73
/// billion years): far past any real deadline, yet small enough that
/// `Instant::now() + d`, even with two such durations added, cannot
/// overflow (an `Instant` counts seconds in an `i64`; `Duration::MAX`
/// would make that addition panic).
pub const MAX_DURATION: Duration = Duration::from_secs(i64::MAX as u64 / 4);

/// Parses a duration the way GNU `timeout` accepts it, plus `250ms` and
/// `1h30m` (see docs/run.md).
///
/// - GNU form: a decimal number, optionally signed, fractional or in
///   scientific notation (`10`, `.1`, `9.999999999`, `2.34e+5`, `inf`),
///   then at most one suffix `s`, `m`, `h` or `d` (lower case).
/// - Compound form: numbers each followed by a unit, as `humantime`
///   spells them (`250ms`, `1h30m`, `2 min`, `1.5s`, `3w`).
///
/// The value is converted exactly (no float rounding); a fraction finer
/// than a nanosecond rounds up, so a positive value never becomes zero
/// (`1e-5000` is 1 ns: a timeout that fires at once, as GNU's does).
/// Zero stays zero (callers take it as "no timeout"), and so does `-0`.
/// Values above [`MAX_DURATION`] saturate to it. Negative values, NaN,
/// unknown or upper-case GNU suffixes (`42D`) and anything else are
/// errors; nothing panics.
///
/// ```
/// use std::time::Duration;
/// use sexton::parse::{duration, MAX_DURATION};
/// assert_eq!(duration("250ms").unwrap(), Duration::from_millis(250));
/// assert_eq!(duration("1h30m").unwrap(), Duration::from_secs(5400));
/// assert_eq!(duration("0.5").unwrap(), Duration::from_millis(500));
/// assert_eq!(duration("2.34e+5d").unwrap(), Duration::from_secs(234_000 * 86_400));
/// assert_eq!(duration("9223372036854775808d").unwrap(), MAX_DURATION);
/// assert_eq!(duration("1e-5000").unwrap(), Duration::from_nanos(1));
/// assert!(duration("soon").is_err());
/// assert!(duration("42D").is_err());
/// ```
pub fn duration(text: &str) -> Result<Duration, ParseError> {
    let t = text.trim();
    let bad = || ParseError::Duration(text.to_string());
    if t.is_empty() {
        return Err(bad());
    }
    let nanos = match gnu_duration(t) {
        Some((negative, n)) if negative && n != 0 => return Err(bad()),
        Some((_, n)) => n,
        None => compound_duration(t).ok_or_else(bad)?,
    };
    Ok(from_nanos_saturating(nanos))
}

/// Nanoseconds per unit of the GNU suffixes (none means seconds).
fn gnu_suffix_nanos(suffix: &str) -> Option<u128> {
    Some(match suffix {
        "" | "s" => NANOS_PER_SEC,
        "m" => 60 * NANOS_PER_SEC,
        "h" => 3_600 * NANOS_PER_SEC,
        "d" => 86_400 * NANOS_PER_SEC,
        _ => return None,
    })
}

/// Nanoseconds per unit of the compound form: `humantime`'s unit names.
fn compound_unit_nanos(unit: &str) -> Option<u128> {
    Some(match unit {
        "nanos" | "nsec" | "ns" => 1,
        "usec" | "us" | "µs" => 1_000,
        "millis" | "msec" | "ms" => 1_000_000,
        "seconds" | "second" | "secs" | "sec" | "s" => NANOS_PER_SEC,
        "minutes" | "minute" | "min" | "mins" | "m" => 60 * NANOS_PER_SEC,
        "hours" | "hour" | "hr" | "hrs" | "h" => 3_600 * NANOS_PER_SEC,
        "days" | "day" | "d" => 86_400 * NANOS_PER_SEC,
        "weeks" | "week" | "wk" | "wks" | "w" => 604_800 * NANOS_PER_SEC,
        // 30.44 days and 365.25 days, as humantime counts them.
        "months" | "month" | "M" => 2_630_016 * NANOS_PER_SEC,
        "years" | "year" | "yr" | "yrs" | "y" => 31_557_600 * NANOS_PER_SEC,
        _ => return None,
    })
}

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// The GNU form (see [`duration`]): `Some((negative, nanoseconds))`, or
/// `None` when `t` is not written that way. Nanoseconds saturate at
/// `u128::MAX`.
fn gnu_duration(t: &str) -> Option<(bool, u128)> {
    let (negative, rest) = match t.as_bytes().first()? {
        b'+' => (false, &t[1..]),
        b'-' => (true, &t[1..]),
        _ => (false, t),
    };
    let lower = rest.to_ascii_lowercase();
    for word in ["infinity", "inf"] {
        if let Some(suffix) = lower.strip_prefix(word)
            && gnu_suffix_nanos(&rest[rest.len() - suffix.len()..]).is_some()
        {
            return Some((negative, u128::MAX));
        }
    }
    let b = rest.as_bytes();
    let digits_from = |mut i: usize| {
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        i
    };
    let int_end = digits_from(0);
    let (frac_start, frac_end) = if b.get(int_end) == Some(&b'.') {
        (int_end + 1, digits_from(int_end + 1))
    } else {
        (int_end, int_end)
    };
    if int_end == 0 && frac_end == frac_start {
        return None;
    }
    let mut end = frac_end;
    let mut exp: i128 = 0;
    if matches!(b.get(end), Some(b'e' | b'E')) {
        let mut i = end + 1;
        let exp_negative = b.get(i) == Some(&b'-');
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exp_end = digits_from(i);
        // An `e` without digits is not an exponent (strtod leaves it).
        if exp_end > i {
            // Any exponent beyond this bound saturates or underflows the
            // same way; clamping keeps the arithmetic small.
            const BOUND: i128 = 1_000_000_000_000;
            for &d in &b[i..exp_end] {
                exp = (exp * 10 + i128::from(d - b'0')).min(BOUND);
            }
            if exp_negative {
                exp = -exp;
            }
            end = exp_end;
        }
    }
    let unit = gnu_suffix_nanos(&rest[end..])?;
    let mut digits = Vec::with_capacity(frac_end);
    digits.extend_from_slice(&b[..int_end]);
    digits.extend_from_slice(&b[frac_start..frac_end]);
    let exp10 = exp - (frac_end - frac_start) as i128;
    Some((negative, scaled_nanos(&digits, exp10, unit)))
}

/// The compound form (see [`duration`]) in nanoseconds, saturating at
/// `u128::MAX`; `None` when `t` is not written that way.
fn compound_duration(t: &str) -> Option<u128> {
    let mut total: u128 = 0;
    let mut rest = t.trim_start();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (int, frac) = match rest[..n_end].split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (&rest[..n_end], None),
        };
        // Digits on both sides of a decimal point, one point at most.
        if int.is_empty() || frac.is_some_and(|f| f.is_empty() || f.contains('.')) {
            return None;
        }
        let frac = frac.unwrap_or("");
        rest = rest[n_end..].trim_start();
        let u_end = rest
            .find(|c: char| !(c.is_ascii_alphabetic() || c == 'µ'))
            .unwrap_or(rest.len());
        let unit = compound_unit_nanos(&rest[..u_end])?;
        rest = rest[u_end..].trim_start();
        let digits = [int.as_bytes(), frac.as_bytes()].concat();
        total = total.saturating_add(scaled_nanos(&digits, -(frac.len() as i128), unit));
    }
    Some(total)
}

/// `digits × 10^exp10 × unit` (ASCII decimal digits, `unit` at most about
/// 10^17), rounded up to a whole number, saturating at `u128::MAX`.
/// Exact: the product is formed in decimal, so no float rounding and no
/// overflow however long the input is.
fn scaled_nanos(digits: &[u8], exp10: i128, unit: u128) -> u128 {
    let first = digits.iter().position(|&d| d != b'0');
    let Some(first) = first else { return 0 };
    if unit == 0 {
        return 0;
    }
    // digits × unit, least significant digit first.
    let mut prod: Vec<u8> = Vec::with_capacity(digits.len() - first + 40);
    let mut carry: u128 = 0;
    for &d in digits[first..].iter().rev() {
        let v = u128::from(d - b'0') * unit + carry;
        prod.push((v % 10) as u8);
        carry = v / 10;
    }
    while carry > 0 {
        prod.push((carry % 10) as u8);
        carry /= 10;
    }
    while prod.last() == Some(&0) {
        prod.pop();
    }
    // u128::MAX has 39 digits.
    let value_of = |high: &[u8], zeros: usize| -> u128 {
        if high.len() + zeros > 39 {
            return u128::MAX;
        }
        let mut v: u128 = 0;
        for &d in high.iter().rev().chain(std::iter::repeat_n(&0, zeros)) {
            match v.checked_mul(10).and_then(|v| v.checked_add(u128::from(d))) {
                Some(n) => v = n,
                None => return u128::MAX,
            }
        }
        v
    };
    if exp10 >= 0 {
        let zeros = usize::try_from(exp10).unwrap_or(usize::MAX).min(40);
        value_of(&prod, zeros)
    } else {
        let drop = usize::try_from(-exp10).unwrap_or(usize::MAX);
        if drop >= prod.len() {
            // A positive value below one unit of the result: round up.
            return 1;
        }
        let round_up = prod[..drop].iter().any(|&d| d != 0);
        value_of(&prod[drop..], 0).saturating_add(u128::from(round_up))
    }
}

/// A duration of `nanos` nanoseconds, saturating at [`MAX_DURATION`].
fn from_nanos_saturating(nanos: u128) -> Duration {
    if nanos >= MAX_DURATION.as_nanos() {
        return MAX_DURATION;
    }
    // Below MAX_DURATION the seconds fit in a u64.
    Duration::new(
        (nanos / NANOS_PER_SEC) as u64,
        (nanos % NANOS_PER_SEC) as u32,
    )
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

/// Parses a signal given as `TERM`, `SIGTERM`, `term` or `15` into
/// nix's [`Signal`]: the standard signals only (see [`signal_number`]
/// for 0 and the realtime ones).
///
/// ```
/// use nix::sys::signal::Signal;
/// assert_eq!(sexton::parse::signal("TERM").unwrap(), Signal::SIGTERM);
/// assert_eq!(sexton::parse::signal("9").unwrap(), Signal::SIGKILL);
/// assert!(sexton::parse::signal("RTMIN").is_err());
/// ```
pub fn signal(text: &str) -> Result<Signal, ParseError> {
    let n = signal_number(text)?;
    Signal::try_from(n).map_err(|_| ParseError::Signal(text.to_string()))
}

/// Parses any signal `kill(2)` can send, as GNU `timeout -s` takes it:
///
/// - a number from 0 to 64 (0 sends nothing but checks the process
///   exists, as `timeout -s 0` uses it);
/// - a name with or without `SIG`, in any case: `TERM`, `sigterm`,
///   `EXIT` (0), and the aliases `IOT`, `CLD`, `POLL`;
/// - a realtime name: `RTMIN`, `RTMIN+n`, `RTMAX-n`, `RTMAX`
///   (n up to `RTMAX - RTMIN`), counted from glibc's [`RTMIN`].
///
/// Every name [`signal_name_of`] gives parses back to its number.
///
/// ```
/// use sexton::parse::signal_number;
/// assert_eq!(signal_number("SIGTERM").unwrap(), 15);
/// assert_eq!(signal_number("0").unwrap(), 0);
/// assert_eq!(signal_number("rtmin+3").unwrap(), 37);
/// assert_eq!(signal_number("SIGRTMAX-1").unwrap(), 63);
/// assert!(signal_number("65").is_err());
/// ```
pub fn signal_number(text: &str) -> Result<i32, ParseError> {
    let t = text.trim();
    let bad = || ParseError::Signal(text.to_string());
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return small_number(t)
            .filter(|n| (0..=RTMAX).contains(n))
            .ok_or_else(bad);
    }
    let upper = t.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    realtime_number(name)
        .or_else(|| named_number(name))
        .ok_or_else(bad)
}

/// A short run of ASCII digits as a number (leading zeros allowed).
fn small_number(digits: &str) -> Option<i32> {
    let digits = digits.trim_start_matches('0');
    if digits.is_empty() {
        return Some(0);
    }
    if digits.len() > 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// `RTMIN`, `RTMIN+n`, `RTMAX-n`, `RTMAX` (upper case, without `SIG`).
fn realtime_number(name: &str) -> Option<i32> {
    let span = RTMAX - RTMIN;
    let offset = |n: &str| {
        (!n.is_empty())
            .then(|| small_number(n))
            .flatten()
            .filter(|&n| n <= span)
    };
    match name {
        "RTMIN" => Some(RTMIN),
        "RTMAX" => Some(RTMAX),
        _ => {
            if let Some(n) = name.strip_prefix("RTMIN+") {
                offset(n).map(|n| RTMIN + n)
            } else if let Some(n) = name.strip_prefix("RTMAX-") {
                offset(n).map(|n| RTMAX - n)
            } else {
                None
            }
        }
    }
}

/// A standard signal name (upper case, without `SIG`), with the aliases
/// GNU's `str2sig` also takes.
fn named_number(name: &str) -> Option<i32> {
    match name {
        "" => None,
        "EXIT" => Some(0),
        "IOT" => Some(Signal::SIGABRT as i32),
        "CLD" => Some(Signal::SIGCHLD as i32),
        "POLL" => Some(Signal::SIGIO as i32),
        _ => Signal::from_str(&format!("SIG{name}"))
            .ok()
            .map(|s| s as i32),
    }
}

/// Parses `init --rewrite FROM:TO`: forward signal FROM as TO, both
/// standard signals as [`signal`] takes them; TO `0` drops FROM. The
/// text `FROM:TO` reads back, with the names of [`signal_name`].
///
/// ```
/// use nix::sys::signal::Signal;
/// use sexton::parse::rewrite;
/// assert_eq!(rewrite("TERM:USR1").unwrap(), (Signal::SIGTERM, Signal::SIGUSR1 as i32));
/// assert_eq!(rewrite("sigwinch:0").unwrap(), (Signal::SIGWINCH, 0));
/// assert!(rewrite("TERM").is_err());
/// ```
pub fn rewrite(text: &str) -> Result<(Signal, i32), ParseError> {
    let (from, to) = text
        .split_once(':')
        .ok_or_else(|| ParseError::Rewrite(text.to_string()))?;
    let from = signal(from)?;
    let to = match to.trim() {
        "0" => 0,
        t => signal(t)? as i32,
    };
    Ok((from, to))
}

/// Parses `run --env K=V` as bytes, as an environment holds them: K is
/// everything before the first `=` and must not be empty; V is the rest,
/// any bytes, `=` included.
///
/// ```
/// use std::ffi::OsStr;
/// let (k, v) = sexton::parse::env_pair(OsStr::new("A=b=c")).unwrap();
/// assert_eq!((k.as_os_str(), v.as_os_str()), (OsStr::new("A"), OsStr::new("b=c")));
/// assert!(sexton::parse::env_pair(OsStr::new("=x")).is_err());
/// ```
pub fn env_pair(
    text: &std::ffi::OsStr,
) -> Result<(std::ffi::OsString, std::ffi::OsString), ParseError> {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let b = text.as_bytes();
    match b.iter().position(|&c| c == b'=') {
        Some(i) if i > 0 => Ok((
            OsStr::from_bytes(&b[..i]).to_owned(),
            OsStr::from_bytes(&b[i + 1..]).to_owned(),
        )),
        _ => Err(ParseError::Env(text.to_string_lossy().into_owned())),
    }
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

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn durations() {
        assert_eq!(duration("5").unwrap(), secs(5));
        assert_eq!(duration("5s").unwrap(), secs(5));
        assert_eq!(duration("2m").unwrap(), secs(120));
        assert_eq!(duration("1.5m").unwrap(), secs(90));
        assert_eq!(duration("0").unwrap(), Duration::ZERO);
        for bad in ["", "-1", "abc", "5x", "1..2"] {
            assert!(duration(bad).is_err(), "{bad:?} should not parse");
        }
    }

    /// The values of GNU coreutils' tests/timeout/*.sh that must parse.
    #[test]
    fn durations_gnu_timeout_accepts() {
        let cases: &[(&str, Duration)] = &[
            ("10", secs(10)),
            ("1d", secs(86_400)),
            ("0", Duration::ZERO),
            (".1", Duration::from_millis(100)),
            ("10.34", Duration::from_millis(10_340)),
            ("9.999999999", Duration::new(9, 999_999_999)),
            ("2.34e+5d", secs(234_000 * 86_400)),
            ("4294967296", secs(4_294_967_296)),
            ("+5", secs(5)),
            ("5.", secs(5)),
            ("1e3", secs(1000)),
            ("1E3s", secs(1000)),
            ("1.5e-3", Duration::from_micros(1500)),
            ("25e-1m", secs(150)),
            ("0.5h", secs(1800)),
            ("1.25d", secs(108_000)),
            ("007", secs(7)),
            (" 3 ", secs(3)),
            ("0.0", Duration::ZERO),
            ("0e999999", Duration::ZERO),
            ("0d", Duration::ZERO),
            ("-0", Duration::ZERO),
            ("-0.0s", Duration::ZERO),
        ];
        for (text, want) in cases {
            assert_eq!(duration(text).ok(), Some(*want), "{text:?}");
        }
    }

    #[test]
    fn huge_durations_saturate_and_stay_usable_as_deadlines() {
        for text in [
            "9223372036854775808",
            "9223372036854775808d",
            "18446744073709551616",
            "1e400",
            "1e18446744073709551616",
            "1.18973149535723176502e+4932",
            "179769313486231570814527423731704356798070e+308d",
            "inf",
            "Infinity",
            "infd",
            "99999999999999999999999999999999999999999999999999ms",
            "100000000000y",
            "1y1y1y1y1y1y1y1y1y1y1y1y1y1y1y1y1y1y1y1y99999999999999999999y",
        ] {
            assert_eq!(duration(text).ok(), Some(MAX_DURATION), "{text:?}");
        }
        // Just below the bound, a value is kept as it is.
        let max = MAX_DURATION.as_secs();
        assert_eq!(duration(&(max - 1).to_string()).unwrap(), secs(max - 1));
        // What callers do with a timeout does not overflow.
        let now = std::time::Instant::now();
        let end = now.checked_add(MAX_DURATION).expect("now + max");
        assert!(end.checked_add(MAX_DURATION).is_some(), "now + 2 max");
        assert!(MAX_DURATION.checked_add(secs(3600)).is_some());
    }

    /// The extremes of GNU's timeout-large-parameters.sh, parsed and
    /// handed to a real run: a saturated timeout (and kill delay) lets
    /// the program finish, an underflowed one times out at once.
    #[test]
    fn parsed_extremes_work_as_run_timeouts() {
        for (timeout, kill_after) in [("9223372036854775808", "2s"), ("1e400", "1e400")] {
            let out = crate::Command::new("true")
                .timeout(duration(timeout).unwrap())
                .kill_after(Some(duration(kill_after).unwrap()))
                .run()
                .expect("run true");
            assert_eq!((out.exit_code, out.timed_out), (Some(0), false));
        }
        let out = crate::Command::new("sleep")
            .arg("30")
            .timeout(duration("1e-5000").unwrap())
            .run()
            .expect("run sleep");
        assert!(out.timed_out, "{out:?}");
        assert_eq!(out.exit_status(false, false), 124);
    }

    #[test]
    fn positive_underflow_is_one_nanosecond_not_zero() {
        for text in [
            "1e-5000",
            "1e-10",
            "0.0000000001",
            "0.0000000000000000000000000000000000000000000000000000001",
            "4.9e-324",
            "1e-999999999999999999999",
            "1e-15d",
            "0.1ns",
        ] {
            assert_eq!(
                duration(text).ok(),
                Some(Duration::from_nanos(1)),
                "{text:?}"
            );
        }
        // A fraction of a nanosecond above a whole one rounds up.
        assert_eq!(duration("1.0000000001").unwrap(), Duration::new(1, 1));
        assert_eq!(duration("1.5e-9").unwrap(), Duration::from_nanos(2));
        // Exact decimal: no float error in the nanoseconds.
        assert_eq!(duration("0.3").unwrap(), Duration::from_millis(300));
        assert_eq!(
            duration("86400.000000001").unwrap(),
            Duration::new(86_400, 1)
        );
    }

    #[test]
    fn durations_gnu_timeout_rejects() {
        for bad in [
            "",
            "   ",
            "invalid",
            "42D",
            "42S",
            "42M5",
            "-1",
            "-1d",
            "-.5",
            "-1e-5000",
            "-inf",
            "-1.18973149535723176502e+4932",
            "nan",
            "NaN",
            "-nan",
            "5e",
            "5e+",
            "5ee3",
            "1e3.5",
            ".",
            "+",
            "-",
            "+-5",
            "--5",
            "1..2",
            "1.2.3",
            "5sm",
            "5 x",
            "1h30",
            "h",
            "ms",
            "5.ms",
            ".5.ms",
            "0x10",
            "1_000",
            "5 s s",
            "5\u{00e9}",
            "\u{0665}",
            "infinite",
            "1,5",
        ] {
            assert!(
                duration(bad).is_err(),
                "{bad:?} parsed as {:?}",
                duration(bad)
            );
        }
    }

    #[test]
    fn compound_durations() {
        let cases: &[(&str, Duration)] = &[
            ("250ms", Duration::from_millis(250)),
            ("1h30m", secs(5400)),
            ("1h 30m", secs(5400)),
            ("2 min", secs(120)),
            ("1.5s", Duration::from_millis(1500)),
            ("3w", secs(3 * 604_800)),
            ("1M", secs(2_630_016)),
            ("2years", secs(2 * 31_557_600)),
            ("10us", Duration::from_micros(10)),
            ("10µs", Duration::from_micros(10)),
            ("7ns", Duration::from_nanos(7)),
            ("1s500ms", Duration::from_millis(1500)),
            ("0.001h", Duration::from_millis(3600)),
        ];
        for (text, want) in cases {
            assert_eq!(duration(text).ok(), Some(*want), "{text:?}");
        }
    }

    /// Tiny deterministic generator for the property tests.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Wherever humantime parses a compound duration, the value is the
    /// same (humantime refuses some that this parser takes, e.g. values
    /// past its range or a fraction finer than it divides).
    #[test]
    fn compound_durations_agree_with_humantime() {
        const UNITS: &[&str] = &[
            "ns", "us", "ms", "s", "sec", "min", "m", "h", "hours", "d", "days", "w", "M", "y",
        ];
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut compared = 0;
        for _ in 0..20_000 {
            let mut text = String::new();
            for i in 0..1 + rng.below(3) {
                if i > 0 && rng.below(2) == 0 {
                    text.push(' ');
                }
                text.push_str(&(rng.next() % [10, 1000, 1 << 20][rng.below(3)]).to_string());
                if rng.below(3) == 0 {
                    text.push('.');
                    text.push_str(&(rng.next() % 1000).to_string());
                }
                text.push_str(UNITS[rng.below(UNITS.len())]);
            }
            let ours = duration(&text);
            match humantime::parse_duration(&text) {
                Ok(d) => {
                    assert_eq!(ours.ok(), Some(d.min(MAX_DURATION)), "{text:?}");
                    compared += 1;
                }
                Err(humantime::DurationError::NumberOverflow) => {}
                Err(e) => panic!("{text:?}: humantime says {e}"),
            }
        }
        assert!(compared > 10_000, "only {compared} compared");
    }

    /// Odd input never panics: a table of edge cases plus random strings
    /// over the characters the grammars care about.
    #[test]
    fn no_parser_panics_on_odd_input() {
        let mut inputs: Vec<String> = [
            "",
            " ",
            "\0",
            ".",
            "e",
            "E",
            "+",
            "-",
            "..",
            "+.",
            "-.",
            "e5",
            ".e5",
            "1e",
            "1e-",
            "1e+",
            "1e--5",
            "9".repeat(5000).as_str(),
            "0.".repeat(100).as_str(),
            "SIG",
            "SIGRTMIN+",
            "RTMIN+99999999999999999999",
            "RTMAX-",
            "RTMIN-1",
            "RTMAX+1",
            "SIGSIG",
            "µ",
            "µs",
            "1µ",
            "\u{1F600}",
            "5\u{1F600}s",
            "9223372036854775807",
            "-9223372036854775808",
            "4294967295",
            "2147483648",
            "-2147483649",
            "0x7fffffff",
            "18446744073709551615ns",
            "1ns1ns1ns",
            "inf",
            "-inf",
            "nan",
            "infinityd",
            "1e9223372036854775807",
            "1e-9223372036854775808",
            "1KiB",
            "1EiB",
            "99999999999EiB",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let alphabet: Vec<char> = "0123456789.eE+-smhdDSMnuµywkKiBIGTRTMAXINsig \t\u{e9}"
            .chars()
            .collect();
        let mut rng = Rng(0x2545_F491_4F6C_DD1D);
        for _ in 0..50_000 {
            let len = rng.below(24);
            inputs.push(
                (0..len)
                    .map(|_| alphabet[rng.below(alphabet.len())])
                    .collect(),
            );
        }
        let mut panicked = Vec::new();
        for text in &inputs {
            let r = std::panic::catch_unwind(|| {
                let _ = duration(text);
                let _ = size(text);
                let _ = signal(text);
                let _ = signal_number(text);
                if let Ok(n) = text.trim().parse::<i32>() {
                    let _ = signal_name_of(n);
                }
            });
            if r.is_err() {
                panicked.push(text.clone());
            }
        }
        assert!(panicked.is_empty(), "panicked on {panicked:?}");
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
        assert_eq!(signal("15").unwrap(), Signal::SIGTERM);
        assert_eq!(signal(" Term ").unwrap(), Signal::SIGTERM);
        assert_eq!(signal_name(Signal::SIGTERM), "TERM");
        assert!(signal("NOPE").is_err());
        assert!(signal("99").is_err());
        // nix's Signal has no 0 and no realtime signals.
        assert!(signal("0").is_err());
        assert!(signal("RTMIN").is_err());
        assert!(signal("35").is_err());
    }

    #[test]
    fn signal_numbers() {
        let cases: &[(&str, i32)] = &[
            ("0", 0),
            ("00", 0),
            ("EXIT", 0),
            ("sigexit", 0),
            ("1", 1),
            ("015", 15),
            ("64", 64),
            ("32", 32),
            ("33", 33),
            ("TERM", 15),
            ("term", 15),
            ("SIGTERM", 15),
            ("SigTerm", 15),
            ("kill", 9),
            ("SIGSTKFLT", 16),
            ("PWR", 30),
            ("sys", 31),
            ("IOT", 6),
            ("CLD", 17),
            ("POLL", 29),
            ("RTMIN", 34),
            ("SIGRTMIN", 34),
            ("rtmin+0", 34),
            ("RTMIN+3", 37),
            ("RTMIN+30", 64),
            ("RTMAX-30", 34),
            ("sigrtmax-1", 63),
            ("RTMAX-0", 64),
            ("RTMAX", 64),
        ];
        for (text, want) in cases {
            assert_eq!(signal_number(text).ok(), Some(*want), "{text:?}");
        }
        for bad in [
            "",
            " ",
            "65",
            "-1",
            "+15",
            "1000",
            "99999999999999999999",
            "invalid",
            "SIG",
            "SIGSIGTERM",
            "SIG15",
            "15s",
            "RTMIN+31",
            "RTMAX-31",
            "RTMIN+",
            "RTMAX-",
            "RTMIN-1",
            "RTMAX+1",
            "RTMIN3",
            "RTMIN+-1",
            "RTMIN++1",
            "RTMIN+1x",
            "RTMID",
            "TERM X",
        ] {
            assert!(
                signal_number(bad).is_err(),
                "{bad:?} parsed as {:?}",
                signal_number(bad)
            );
        }
    }

    #[test]
    fn signal_names_round_trip() {
        for n in 0..=RTMAX {
            let name = signal_name_of(n);
            assert_eq!(signal_number(&name).ok(), Some(n), "{name}");
            if !name.bytes().all(|b| b.is_ascii_digit()) {
                assert_eq!(signal_number(&format!("SIG{name}")).ok(), Some(n), "{name}");
                let lower = name.to_ascii_lowercase();
                assert_eq!(signal_number(&lower).ok(), Some(n), "{lower}");
            }
            // signal() agrees wherever nix has the signal.
            if let Ok(sig) = Signal::try_from(n) {
                assert_eq!(signal(&name).ok(), Some(sig), "{name}");
            }
        }
        // Only 0, 32 and 33 have no name.
        let unnamed: Vec<i32> = (0..=RTMAX)
            .filter(|&n| signal_name_of(n).bytes().all(|b| b.is_ascii_digit()))
            .collect();
        assert_eq!(unnamed, [0, 32, 33]);
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
