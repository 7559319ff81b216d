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
