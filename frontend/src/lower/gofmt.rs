//! Text as Go's `fmt` writes it, because BuildKit's history entries are Go-formatted
//! (`CMD ["sh" "-c" "x"]`, `VOLUME [/data]`, durations like `1m30s`). Quoting is the parser
//! dump's `go_quote` (one `strconv.Quote`, held to BuildKit's corpus); durations are parsed by
//! `instructions::parse_go_duration`.

use crate::dump::go_quote;

/// `fmt.Sprintf("%q", []string{…})`: `["a" "b"]`.
pub fn quote_list(items: &[String]) -> String {
    let inner: Vec<String> = items.iter().map(|s| go_quote(s)).collect();
    format!("[{}]", inner.join(" "))
}

/// `fmt.Sprintf("%v", []string{…})`: `[a b]`.
pub fn plain_list(items: &[String]) -> String {
    format!("[{}]", items.join(" "))
}

/// `time.Duration.String()` for a non-negative duration in nanoseconds.
pub fn format_duration(ns: u64) -> String {
    if ns == 0 {
        return "0s".to_string();
    }
    if ns < 1_000_000_000 {
        let (unit, div) = if ns < 1_000 {
            ("ns", 1)
        } else if ns < 1_000_000 {
            ("µs", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        return format!("{}{unit}", frac(ns, div));
    }
    let h = ns / 3_600_000_000_000;
    let m = (ns / 60_000_000_000) % 60;
    let s_ns = ns % 60_000_000_000;
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&format!("{}s", frac(s_ns, 1_000_000_000)));
    out
}

/// `v / div` with the fraction written without trailing zeros.
fn frac(v: u64, div: u64) -> String {
    let whole = v / div;
    let rem = v % div;
    if rem == 0 {
        return whole.to_string();
    }
    let width = div.to_string().len() - 1;
    let digits = format!("{rem:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instructions::parse_go_duration;

    fn parse_duration(s: &str) -> Option<u64> {
        parse_go_duration(s).map(|d| d.as_nanos() as u64)
    }

    #[test]
    fn quoting() {
        assert_eq!(go_quote("a\"b\\c\n\u{0}é"), "\"a\\\"b\\\\c\\n\\x00é\"");
        assert_eq!(
            quote_list(&["/bin/sh".into(), "-c".into(), "echo hi".into()]),
            "[\"/bin/sh\" \"-c\" \"echo hi\"]"
        );
        assert_eq!(plain_list(&["/data".into(), "/x".into()]), "[/data /x]");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1m30s"), Some(90_000_000_000));
        assert_eq!(parse_duration("500ms"), Some(500_000_000));
        assert_eq!(parse_duration("1.5s"), Some(1_500_000_000));
        assert_eq!(parse_duration("x"), None);
        assert_eq!(format_duration(90_000_000_000), "1m30s");
        assert_eq!(format_duration(30_000_000_000), "30s");
        assert_eq!(format_duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(format_duration(1_500_000_000), "1.5s");
        assert_eq!(format_duration(500_000_000), "500ms");
        assert_eq!(format_duration(0), "0s");
    }
}
