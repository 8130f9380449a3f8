//! BuildKit's suggestion for a misspelt name (`util/suggest.Search`): the option at the
//! smallest Levenshtein distance below 3; none when the name is itself an option.

/// The closest of `options` to `value` (case-sensitive), if any is close enough.
pub fn search<'a>(value: &str, options: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let mut best: Option<&str> = None;
    let mut min = 3;
    for opt in options {
        if opt == value {
            return None;
        }
        let d = strsim::levenshtein(value, opt);
        if d < min {
            min = d;
            best = Some(opt);
        }
    }
    best.map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_below_three_edits() {
        let opts = ["BUILDPLATFORM", "TARGETPLATFORM", "MY_ARCH"];
        assert_eq!(
            search("BULIDPLATFORM", opts).as_deref(),
            Some("BUILDPLATFORM")
        );
        assert_eq!(search("MYARCH", opts).as_deref(), Some("MY_ARCH"));
        assert_eq!(search("version", opts), None);
        assert_eq!(search("MY_ARCH", opts), None);
    }
}
