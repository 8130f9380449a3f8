//! `--progress=json`: one JSON object per line on stderr, for scripts. Each step event is the
//! solver's event as it is serialised (`event`, `vertex`, and the event's own fields), with
//! `time` (Unix seconds, as a fraction) added; a `log` event carries its bytes as `text`
//! (UTF-8, any invalid sequence as U+FFFD) and, only when they are not valid UTF-8, also as
//! `base64`, so nothing is lost. Transfers (`transfer.rs`) and notices have their own lines.

use base64::Engine as _;
use rbuild_solver::events::Event;
use serde_json::Value;

/// The JSON line of `event` at `time` (Unix seconds).
pub fn event_line(event: &Event, time: f64) -> Option<String> {
    let mut value = serde_json::to_value(event).ok()?;
    let object = value.as_object_mut()?;
    if let Event::Log { data, .. } = event {
        object.remove("data");
        object.insert(
            "text".into(),
            Value::String(String::from_utf8_lossy(data).into_owned()),
        );
        if std::str::from_utf8(data).is_err() {
            object.insert(
                "base64".into(),
                Value::String(base64::engine::general_purpose::STANDARD.encode(data)),
            );
        }
    }
    object.insert("time".into(), serde_json::json!(time));
    serde_json::to_string(&value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rbuild_solver::ports::LogStream;

    #[test]
    fn logs_are_text_with_a_time_and_bytes_that_are_not_utf8_survive() {
        let line = event_line(
            &Event::Log {
                vertex: 1,
                stream: LogStream::Stdout,
                data: b"hello\n".to_vec(),
            },
            12.5,
        )
        .unwrap();
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["event"], "log");
        assert_eq!(v["text"], "hello\n");
        assert_eq!(v["time"], 12.5);
        assert!(v.get("data").is_none() && v.get("base64").is_none(), "{v}");

        let line = event_line(
            &Event::Log {
                vertex: 1,
                stream: LogStream::Stderr,
                data: vec![0xff, b'a'],
            },
            1.0,
        )
        .unwrap();
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["text"], "\u{fffd}a");
        assert_eq!(v["base64"], "/2E=");

        let v: Value = serde_json::from_str(
            &event_line(
                &Event::Done {
                    vertex: 2,
                    seconds: 0.5,
                },
                3.0,
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(
            (v["event"].as_str(), v["time"].as_f64()),
            (Some("done"), Some(3.0))
        );
    }
}
