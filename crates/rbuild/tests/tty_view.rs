//! The live view (`--progress=tty`) through the CLI, on a real terminal: rbuild runs under
//! `script` (util-linux), whose pseudo-terminal is stderr, sized with `stty`. The view has
//! BuildKit's header (`[+] Building 0.3s (2/4)`), redrawn while the build runs, and leaves a
//! final frame: `[+] Building 0.9s (4/4) FINISHED` over every step with its time
//! (`=> [1/2] COPY a /a  0.0s`, `=> CACHED …`, `=> ERROR …`). Without a terminal the same
//! flag prints plain lines.

mod support;

use std::process::Output;

use support::*;

/// Runs `rbuild ARGS` under `script` on a 100×30 pseudo-terminal; `None` (said loudly) when
/// util-linux's `script` is missing. Returns the output and the terminal's text.
fn on_terminal(env: &Env, args: &[&str]) -> Option<(Output, String)> {
    let script = require_tool("script")?;
    let quoted: Vec<String> = std::iter::once(env!("CARGO_BIN_EXE_rbuild"))
        .chain(args.iter().copied())
        .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
        .collect();
    let command = format!("stty cols 100 rows 30; exec {}", quoted.join(" "));
    let out = std::process::Command::new(script)
        .args(["-qefc", &command, "/dev/null"])
        .env("RBUILD_ROOT", &env.store)
        .env("RBUILD_CONFIG", &env.config)
        .env("TERM", "xterm")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run script");
    let text = String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n");
    Some((out, text))
}

/// The final frame: the lines from the last header on, without the terminal's escapes.
fn last_frame(text: &str) -> Vec<String> {
    let start = text.rfind("[+] Building").expect("a header line");
    text[start..]
        .lines()
        .take_while(|l| l.starts_with("[+] Building") || l.starts_with(" => "))
        .map(|l| l.trim_end().to_string())
        .collect()
}

/// `(ended, seen, finished)` of a header line `[+] Building 1.2s (3/4)[ FINISHED]`.
fn header(line: &str) -> (usize, usize, bool) {
    let counts = line
        .split_once('(')
        .and_then(|(_, r)| r.split_once(')'))
        .expect("counts")
        .0;
    let (ended, seen) = counts.split_once('/').expect("a/b");
    let secs = line["[+] Building ".len()..]
        .split_once('s')
        .expect("time")
        .0;
    assert!(secs.parse::<f64>().is_ok(), "time in {line:?}");
    (
        ended.parse().expect("ended"),
        seen.parse().expect("seen"),
        line.ends_with(" FINISHED"),
    )
}

fn step<'a>(frame: &'a [String], name: &str) -> &'a str {
    frame
        .iter()
        .find(|l| l.contains(name))
        .unwrap_or_else(|| panic!("no step {name:?} in {frame:#?}"))
}

/// The time at the end of a step line (`… 0.3s`).
fn seconds(line: &str) -> f64 {
    let last = line.rsplit(' ').next().expect("time");
    last.strip_suffix('s')
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no time at the end of {line:?}"))
}

fn copy_context(env: &Env) -> std::path::PathBuf {
    env.context(
        "ctx",
        &[
            ("Dockerfile", "FROM scratch\nCOPY a /a\nCOPY b /b\n"),
            ("a", "a\n"),
            ("b", "b\n"),
        ],
    )
}

#[test]
fn tty_view_has_buildkits_header_and_a_finished_frame() {
    let env = Env::new();
    let ctx = copy_context(&env);
    let dest = env.path("out");
    let output = format!("type=local,dest={}", dest.display());
    let Some((out, text)) = on_terminal(&env, &["--progress=tty", "-o", &output, s(&ctx)]) else {
        return;
    };
    assert!(out.status.success(), "rbuild failed:\n{text}");
    assert_eq!(std::fs::read_to_string(dest.join("b")).unwrap(), "b\n");
    // Plain lines are not drawn on a terminal.
    assert!(!text.contains("#2 DONE"), "{text}");
    let frame = last_frame(&text);
    let (ended, seen, finished) = header(&frame[0]);
    assert!(finished && ended == seen, "{frame:#?}");
    // internal load, two COPYs, the export; every step a line of its own.
    assert_eq!(seen, 4, "{frame:#?}");
    assert_eq!(frame.len(), 1 + seen, "{frame:#?}");
    for name in [
        "=> [internal] load build definition",
        "=> [1/2] COPY a /a",
        "=> [2/2] COPY b /b",
        "=> exporting",
    ] {
        let line = step(&frame, name);
        assert!(seconds(line) >= 0.0);
        assert!(line.len() <= 100, "wider than the terminal: {line:?}");
    }
    // The header was drawn while the build ran, before it was finished.
    assert!(
        text.matches("[+] Building").count() > 1,
        "one header only:\n{text}"
    );

    // Again: the steps are CACHED.
    let Some((out, text)) = on_terminal(&env, &["--progress=tty", "-o", &output, s(&ctx)]) else {
        return;
    };
    assert!(out.status.success(), "rbuild failed:\n{text}");
    let frame = last_frame(&text);
    assert!(header(&frame[0]).2, "{frame:#?}");
    assert_eq!(seconds(step(&frame, "=> CACHED [1/2] COPY a /a")), 0.0);
    step(&frame, "=> CACHED [2/2] COPY b /b");
}

#[test]
fn tty_view_is_the_default_on_a_terminal() {
    let env = Env::new();
    let ctx = copy_context(&env);
    let Some((out, text)) = on_terminal(&env, &["-o", "type=tar,dest=/dev/null", s(&ctx)]) else {
        return;
    };
    assert!(out.status.success(), "rbuild failed:\n{text}");
    let frame = last_frame(&text);
    assert!(header(&frame[0]).2, "{frame:#?}");
    step(&frame, "=> [2/2] COPY b /b");
}

#[test]
fn tty_view_without_a_terminal_is_plain_lines() {
    let env = Env::new();
    let ctx = copy_context(&env);
    let out = env.ok(&["--progress=tty", "-o", "type=tar,dest=/dev/null", s(&ctx)]);
    let err = stderr(&out);
    assert!(err.contains("#2 [1/2] COPY a /a\n"), "{err}");
    assert!(!err.contains("[+] Building"), "{err}");
}

#[test]
fn tty_view_of_a_failed_run_says_error_then_the_report() {
    let Some(env) = Env::with_busybox() else {
        return;
    };
    let ctx = env.context(
        "fail",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN echo one\nRUN echo oops; exit 3\n",
        )],
    );
    let Some((out, text)) = on_terminal(&env, &["--progress=tty", s(&ctx)]) else {
        return;
    };
    assert!(!out.status.success(), "{text}");
    let frame = last_frame(&text);
    let (ended, seen, finished) = header(&frame[0]);
    assert!(finished && ended == seen, "{frame:#?}");
    assert!(seconds(step(&frame, "=> [2/3] RUN echo one")) >= 0.0);
    step(&frame, "=> ERROR [3/3] RUN echo oops; exit 3");
    // The report comes after the frame and names the command and its exit code.
    let report = &text[text.rfind("[+] Building").unwrap()..];
    assert!(report.contains("exit code: 3"), "{report}");
    assert!(report.contains("oops"), "{report}");
}

#[test]
fn tty_and_json_modes_are_documented_in_help() {
    let env = Env::new();
    let help = stdout(&env.ok(&["build", "--help"]));
    for needle in [
        "[+] Building 1.2s (3/5)",
        "FINISHED",
        "`time` (Unix seconds)",
        "`stream` and `text`",
    ] {
        assert!(help.contains(needle), "{needle:?} not in:\n{help}");
    }
}
