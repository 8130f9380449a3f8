//! Node → [`Instruction`]: per-keyword argument and flag checks, as BuildKit's
//! `instructions` package does them (before variable expansion).

use rbuild_types::{ByteString, Span};

use crate::ast::{Heredoc, Node};
use crate::parser::parse_heredoc_word;

use super::duration::parse_go_duration;
use super::error::InstructionError;
use super::flags::{Flags, Kind};
use super::mount::check_unexpanded;
use super::values::{Chmod, Network, Security};
use super::{AddArgs, Command, CopyArgs, Healthcheck, Instruction, Spanned};

/// An error and, when known, the span of the flag or word at fault (else the instruction's).
#[derive(Debug)]
pub struct Located {
    pub error: InstructionError,
    pub span: Option<Span>,
}

impl From<InstructionError> for Located {
    fn from(error: InstructionError) -> Self {
        Located { error, span: None }
    }
}

impl From<(InstructionError, Span)> for Located {
    fn from((error, span): (InstructionError, Span)) -> Self {
        Located {
            error,
            span: Some(span),
        }
    }
}

type Result<T> = std::result::Result<T, Located>;

const NO_FLAGS: &[(&str, Kind)] = &[];
const FROM_FLAGS: &[(&str, Kind)] = &[("platform", Kind::String)];
const RUN_FLAGS: &[(&str, Kind)] = &[
    ("mount", Kind::Strings),
    ("device", Kind::Strings),
    ("network", Kind::String),
    ("security", Kind::String),
];
const COPY_FLAGS: &[(&str, Kind)] = &[
    ("from", Kind::String),
    ("chown", Kind::String),
    ("chmod", Kind::String),
    ("link", Kind::Bool),
    ("parents", Kind::Bool),
    ("exclude", Kind::Strings),
];
const ADD_FLAGS: &[(&str, Kind)] = &[
    ("chown", Kind::String),
    ("chmod", Kind::String),
    ("link", Kind::Bool),
    ("exclude", Kind::Strings),
    ("checksum", Kind::String),
    ("keep-git-dir", Kind::Bool),
    ("unpack", Kind::Bool),
];
const HEALTH_FLAGS: &[(&str, Kind)] = &[
    ("interval", Kind::String),
    ("timeout", Kind::String),
    ("start-period", Kind::String),
    ("start-interval", Kind::String),
    ("retries", Kind::String),
];

fn upper(node: &Node) -> String {
    node.keyword.to_ascii_uppercase()
}

fn flags(node: &Node, spec: &[(&str, Kind)]) -> Result<Flags> {
    Ok(Flags::parse(
        &node.keyword,
        &node.flags,
        &node.flag_spans,
        node.span,
        spec,
    )?)
}

/// Checks a value now when it has no variables (else lowering checks it after expansion).
fn check_now<T>(
    v: &Spanned<String>,
    parse: impl Fn(&str) -> std::result::Result<T, super::error::ValueError>,
) -> Result<()> {
    if !v.value.contains('$') {
        parse(&v.value).map_err(|e| (InstructionError::from(e), v.span))?;
    }
    Ok(())
}

/// A bool flag that is only meaningful when true: its span when given as true.
fn true_span(f: &Flags, name: &str) -> Option<Span> {
    f.opt_bool(name).filter(|b| b.value).map(|b| b.span)
}

fn command(node: &Node) -> Command {
    if node.json_form {
        Command::Exec(node.args.clone())
    } else {
        Command::Shell(node.args.join(" "))
    }
}

/// RUN's command with its exact bytes.
fn run_command(node: &Node) -> Command<ByteString> {
    let args = (0..node.args.len()).filter_map(|i| node.arg_bytes(i));
    if node.json_form {
        Command::Exec(args.collect())
    } else {
        let mut text = ByteString::default();
        for (i, a) in args.enumerate() {
            if i > 0 {
                text.push_str(" ");
            }
            text.push_bytes(a.as_bytes());
        }
        Command::Shell(text)
    }
}

/// Refuses a byte that is not UTF-8 where text is needed: anywhere but in a RUN command
/// (heredoc bodies are not part of the line).
fn check_utf8(node: &Node) -> Result<()> {
    let Some(bad) = node.non_utf8 else {
        return Ok(());
    };
    if node.keyword == "run" && bad.in_args {
        return Ok(());
    }
    let part = if bad.in_args { "arguments" } else { "flags" };
    Err(Located::from((
        InstructionError::NotUtf8 {
            what: format!("{} {part}", upper(node)),
            byte: bad.byte,
        },
        bad.span,
    )))
}

fn exactly_one(node: &Node) -> Result<String> {
    flags(node, NO_FLAGS)?;
    match node.args.as_slice() {
        [one] => Ok(one.clone()),
        _ => Err(Located::from(InstructionError::ExactlyOne {
            keyword: upper(node),
        })),
    }
}

fn at_least_one(node: &Node) -> Result<Vec<String>> {
    flags(node, NO_FLAGS)?;
    if node.args.is_empty() {
        return Err(Located::from(InstructionError::AtLeastOne {
            keyword: upper(node),
        }));
    }
    Ok(node.args.clone())
}

/// Stage names: `^[a-z][a-z0-9-_.]*$` after lower-casing.
fn valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
}

fn from(node: &Node) -> Result<Instruction> {
    let f = flags(node, FROM_FLAGS)?;
    let (image, alias) = match node.args.as_slice() {
        [image] => (image.clone(), None),
        [image, as_word, name] => {
            if !as_word.eq_ignore_ascii_case("as") {
                return Err(Located::from(InstructionError::FromAs {
                    found: as_word.clone(),
                }));
            }
            let name = name.to_ascii_lowercase();
            if !valid_stage_name(&name) {
                return Err(Located::from(InstructionError::StageName { name }));
            }
            (image.clone(), Some(name))
        }
        _ => return Err(Located::from(InstructionError::FromArgs)),
    };
    Ok(Instruction::From {
        image,
        platform: f.string("platform"),
        alias,
    })
}

fn run(node: &Node) -> Result<Instruction> {
    let f = flags(node, RUN_FLAGS)?;
    if node.args.is_empty() {
        return Err(Located::from(InstructionError::AtLeastOne {
            keyword: upper(node),
        }));
    }
    let mounts = f.strings("mount");
    for m in &mounts {
        check_unexpanded(&m.value).map_err(|source| {
            (
                InstructionError::Mount {
                    value: m.value.clone(),
                    source,
                },
                m.span,
            )
        })?;
    }
    let typed = |name: &str| f.string(name);
    let network = match typed("network") {
        None => None,
        Some(v) => Some(Spanned {
            value: Network::parse(&v.value).map_err(|e| (e.into(), v.span))?,
            span: v.span,
        }),
    };
    let security = match typed("security") {
        None => None,
        Some(v) => Some(Spanned {
            value: Security::parse(&v.value).map_err(|e| (e.into(), v.span))?,
            span: v.span,
        }),
    };
    Ok(Instruction::Run {
        cmd: run_command(node),
        mounts,
        devices: f.strings("device"),
        network,
        security,
        heredocs: node.heredocs.clone(),
    })
}

/// Name/value pairs from the parser's `key, value, sep` triples.
fn pairs(node: &Node) -> Result<Vec<(String, String)>> {
    flags(node, NO_FLAGS)?;
    if node.args.is_empty() {
        return Err(Located::from(InstructionError::AtLeastOne {
            keyword: upper(node),
        }));
    }
    let mut out = Vec::with_capacity(node.args.len() / 3);
    for triple in node.args.chunks(3) {
        let (k, v) = match triple {
            [k, v, ..] => (k, v),
            [k] => (k, &String::new()),
            [] => continue,
        };
        if k.is_empty() {
            return Err(Located::from(InstructionError::BlankName {
                keyword: upper(node),
            }));
        }
        out.push((k.clone(), v.clone()));
    }
    Ok(out)
}

fn arg(node: &Node) -> Result<Instruction> {
    let words = at_least_one(node)?;
    let mut out = Vec::with_capacity(words.len());
    for w in words {
        let (name, default) = match w.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (w.clone(), None),
        };
        if name.is_empty() {
            return Err(Located::from(InstructionError::BlankName {
                keyword: upper(node),
            }));
        }
        out.push((name, default));
    }
    Ok(Instruction::Arg(out))
}

/// Splits COPY/ADD args into path sources, heredoc sources and the destination.
fn sources_and_dest(node: &Node) -> Result<(Vec<String>, Vec<Heredoc>, String)> {
    let Some((dest, srcs)) = node.args.split_last() else {
        return Err(Located::from(InstructionError::NoDestination {
            keyword: upper(node),
        }));
    };
    if srcs.is_empty() {
        return Err(Located::from(InstructionError::NoDestination {
            keyword: upper(node),
        }));
    }
    let mut sources = Vec::new();
    let mut heredocs = Vec::new();
    for s in srcs {
        let doc = if node.json_form {
            None
        } else {
            parse_heredoc_word(s)
                .ok()
                .flatten()
                .and_then(|h| node.heredocs.iter().find(|d| d.name == h.name))
        };
        match doc {
            Some(d) => heredocs.push(d.clone()),
            None => sources.push(s.clone()),
        }
    }
    Ok((sources, heredocs, dest.clone()))
}

fn copy(node: &Node) -> Result<Instruction> {
    let f = flags(node, COPY_FLAGS)?;
    let (sources, heredocs, dest) = sources_and_dest(node)?;
    let chmod = f.string("chmod");
    if let Some(c) = &chmod {
        check_now(c, Chmod::parse)?;
    }
    Ok(Instruction::Copy(CopyArgs {
        sources,
        dest,
        from: f.string("from"),
        chown: f.string("chown"),
        chmod,
        link: f.bool("link"),
        parents: true_span(&f, "parents"),
        excludes: f.strings("exclude"),
        heredocs,
    }))
}

fn add(node: &Node) -> Result<Instruction> {
    let f = flags(node, ADD_FLAGS)?;
    let (sources, heredocs, dest) = sources_and_dest(node)?;
    let chmod = f.string("chmod");
    if let Some(c) = &chmod {
        check_now(c, Chmod::parse)?;
    }
    // Checked at lowering, once the source is known: a digest for a URL, a commit id (hex)
    // for a git source.
    let checksum = f.string("checksum");
    Ok(Instruction::Add(AddArgs {
        sources,
        dest,
        chown: f.string("chown"),
        chmod,
        link: f.bool("link"),
        excludes: f.strings("exclude"),
        heredocs,
        checksum,
        keep_git_dir: true_span(&f, "keep-git-dir"),
        unpack: f.opt_bool("unpack"),
    }))
}

fn duration_flag(f: &Flags, name: &str) -> Result<Option<std::time::Duration>> {
    let Some(Spanned { value: v, span }) = f.string(name) else {
        return Ok(None);
    };
    let d = parse_go_duration(&v).ok_or_else(|| {
        (
            InstructionError::BadDuration {
                flag: name.to_string(),
                value: v.clone(),
            },
            span,
        )
    })?;
    if !d.is_zero() && d < std::time::Duration::from_millis(1) {
        return Err(Located::from((
            InstructionError::DurationTooShort {
                flag: name.to_string(),
                min: "1ms",
            },
            span,
        )));
    }
    Ok(Some(d))
}

fn healthcheck(node: &Node) -> Result<Instruction> {
    let f = flags(node, HEALTH_FLAGS)?;
    let Some((typ, rest)) = node.args.split_first() else {
        return Err(Located::from(InstructionError::AtLeastOne {
            keyword: upper(node),
        }));
    };
    match typ.to_ascii_uppercase().as_str() {
        "NONE" => {
            if !rest.is_empty() {
                return Err(Located::from(InstructionError::HealthNoneArgs));
            }
            Ok(Instruction::Healthcheck(Healthcheck::None))
        }
        "CMD" => {
            if rest.is_empty() {
                return Err(Located::from(InstructionError::HealthNoCmd));
            }
            let cmd = if node.json_form {
                Command::Exec(rest.to_vec())
            } else {
                Command::Shell(rest.join(" "))
            };
            let retries = match f.string("retries") {
                None => None,
                Some(Spanned { value: v, span }) => Some(
                    v.parse::<u32>()
                        .map_err(|_| (InstructionError::BadRetries { value: v.clone() }, span))?,
                ),
            };
            Ok(Instruction::Healthcheck(Healthcheck::Cmd {
                cmd,
                interval: duration_flag(&f, "interval")?,
                timeout: duration_flag(&f, "timeout")?,
                start_period: duration_flag(&f, "start-period")?,
                start_interval: duration_flag(&f, "start-interval")?,
                retries,
            }))
        }
        _ => Err(Located::from(InstructionError::HealthType {
            typ: typ.clone(),
        })),
    }
}

fn onbuild(node: &Node) -> Result<Instruction> {
    flags(node, NO_FLAGS)?;
    let Some(next) = &node.next else {
        return Err(Located::from(InstructionError::OnbuildEmpty));
    };
    if matches!(next.keyword.as_str(), "onbuild" | "from" | "maintainer") {
        return Err(Located::from(InstructionError::OnbuildForbidden {
            keyword: upper(next),
        }));
    }
    let trigger = convert(next)?;
    Ok(Instruction::Onbuild {
        trigger: Box::new(trigger),
        raw: next.original.trim().to_string(),
    })
}

/// Converts one node. Keywords are matched case-insensitively (nodes hold them lower-cased).
pub fn from_node(node: &Node) -> std::result::Result<Instruction, InstructionError> {
    convert(node).map_err(|l| l.error)
}

/// Converts one node; the error carries the span of the flag at fault, else the node's.
pub fn from_node_spanned(
    node: &Node,
) -> std::result::Result<Instruction, (InstructionError, Span)> {
    convert(node).map_err(|l| (l.error, l.span.unwrap_or(node.span)))
}

fn convert(node: &Node) -> Result<Instruction> {
    check_utf8(node)?;
    let kw = node.keyword.to_ascii_lowercase();
    match kw.as_str() {
        "from" => from(node),
        "run" => run(node),
        "cmd" => {
            flags(node, NO_FLAGS)?;
            Ok(Instruction::Cmd(command(node)))
        }
        "entrypoint" => {
            flags(node, NO_FLAGS)?;
            Ok(Instruction::Entrypoint(command(node)))
        }
        "shell" => {
            flags(node, NO_FLAGS)?;
            if !node.json_form {
                return Err(Located::from(InstructionError::ShellNotJson));
            }
            if node.args.is_empty() {
                return Err(Located::from(InstructionError::AtLeastOne {
                    keyword: upper(node),
                }));
            }
            Ok(Instruction::Shell(node.args.clone()))
        }
        "env" => Ok(Instruction::Env(pairs(node)?)),
        "label" => Ok(Instruction::Label(pairs(node)?)),
        "arg" => arg(node),
        "expose" => Ok(Instruction::Expose(at_least_one(node)?)),
        "copy" => copy(node),
        "add" => add(node),
        "workdir" => Ok(Instruction::Workdir(exactly_one(node)?)),
        "user" => Ok(Instruction::User(exactly_one(node)?)),
        "volume" => Ok(Instruction::Volume(at_least_one(node)?)),
        "stopsignal" => Ok(Instruction::StopSignal(exactly_one(node)?)),
        "maintainer" => Ok(Instruction::Maintainer(exactly_one(node)?)),
        "healthcheck" => healthcheck(node),
        "onbuild" => onbuild(node),
        _ => Err(Located::from(InstructionError::UnknownInstruction {
            keyword: upper(node),
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::parse;

    fn one(src: &str) -> std::result::Result<Instruction, InstructionError> {
        let df = parse(src.as_bytes()).map_err(|_| InstructionError::OnbuildEmpty)?;
        from_node(&df.instructions[0])
    }

    fn s(v: &str) -> String {
        v.to_string()
    }

    fn sp(v: &str, start: usize, end: usize) -> Spanned<String> {
        Spanned {
            value: s(v),
            span: Span::new(start, end, 1, start as u32 + 1),
        }
    }

    #[test]
    fn from_forms() {
        assert_eq!(
            one("FROM --platform=linux/amd64 busybox AS Build"),
            Ok(Instruction::From {
                image: s("busybox"),
                platform: Some(sp("linux/amd64", 5, 27)),
                alias: Some(s("build")),
            })
        );
        assert_eq!(one("FROM a b"), Err(InstructionError::FromArgs));
        assert!(matches!(
            one("FROM a to b"),
            Err(InstructionError::FromAs { .. })
        ));
        assert!(matches!(
            one("FROM a AS 1x"),
            Err(InstructionError::StageName { .. })
        ));
    }

    #[test]
    fn run_and_commands() {
        assert_eq!(
            one("run --mount=type=cache,target=/c --network=none echo $HOME"),
            Ok(Instruction::Run {
                cmd: Command::Shell("echo $HOME".into()),
                mounts: vec![sp("type=cache,target=/c", 4, 32)],
                devices: vec![],
                network: Some(Spanned {
                    value: Network::None,
                    span: Span::new(33, 47, 1, 34)
                }),
                security: None,
                heredocs: vec![],
            })
        );
        assert_eq!(
            one("CMD [\"a\", \"b\"]"),
            Ok(Instruction::Cmd(Command::Exec(vec![s("a"), s("b")])))
        );
        assert!(matches!(
            one("RUN --bogus x"),
            Err(InstructionError::UnknownFlag { .. })
        ));
        assert_eq!(one("SHELL /bin/sh"), Err(InstructionError::ShellNotJson));
        let r = one("RUN <<EOF\necho hi\nEOF\n");
        assert!(matches!(r, Ok(Instruction::Run { ref heredocs, .. }) if heredocs.len() == 1));
    }

    #[test]
    fn copy_and_add() {
        let c = one("COPY --from=build --exclude=*.md --exclude=x --link a b /dst/");
        let Ok(Instruction::Copy(c)) = c else {
            panic!("not a copy: {c:?}");
        };
        assert_eq!(c.sources, vec![s("a"), s("b")]);
        assert_eq!(c.dest, "/dst/");
        assert_eq!(c.from.map(|f| f.value).as_deref(), Some("build"));
        let ex: Vec<String> = c.excludes.into_iter().map(|e| e.value).collect();
        assert_eq!(ex, vec![s("*.md"), s("x")]);
        assert!(c.link);
        assert!(matches!(
            one("COPY a"),
            Err(InstructionError::NoDestination { .. })
        ));
        let h = one("COPY <<A <<B /dest\na\nA\nb\nB\n");
        let Ok(Instruction::Copy(h)) = h else {
            panic!("not a copy: {h:?}");
        };
        assert!(h.sources.is_empty());
        assert_eq!(h.heredocs.len(), 2);
        assert_eq!(h.heredocs[1].content, "b\n");
        // Accepted here: lowering checks it against the kind of source.
        let a = one("ADD --checksum=0a1b --unpack=false git://x/y /z");
        assert!(matches!(a, Ok(Instruction::Add(_))));
        let sum = format!("sha256:{}", "0".repeat(64));
        let a = one(&format!(
            "ADD --checksum={sum} --unpack=false http://x/y /z"
        ));
        let Ok(Instruction::Add(a)) = a else {
            panic!("not an add: {a:?}");
        };
        assert_eq!(a.checksum.map(|c| c.value), Some(sum));
        assert_eq!(a.unpack.map(|u| u.value), Some(false));
        assert!(matches!(
            one("ADD --from=x a b"),
            Err(InstructionError::UnknownFlag { .. })
        ));
    }

    #[test]
    fn name_values() {
        assert_eq!(
            one("ENV a=\"1 2\" b=3"),
            Ok(Instruction::Env(vec![
                (s("a"), s("\"1 2\"")),
                (s("b"), s("3"))
            ]))
        );
        assert_eq!(
            one("ENV a 1 2"),
            Ok(Instruction::Env(vec![(s("a"), s("1 2"))]))
        );
        assert_eq!(
            one("ARG a b=2"),
            Ok(Instruction::Arg(vec![
                (s("a"), None),
                (s("b"), Some(s("2")))
            ]))
        );
        assert!(matches!(
            one("ARG"),
            Err(InstructionError::AtLeastOne { .. })
        ));
        assert!(matches!(
            one("ENV =x"),
            Err(InstructionError::BlankName { .. })
        ));
    }

    #[test]
    fn misc() {
        assert!(matches!(
            one("FROBNICATE x"),
            Err(InstructionError::UnknownInstruction { .. })
        ));
        assert!(matches!(
            one("WORKDIR"),
            Err(InstructionError::ExactlyOne { .. })
        ));
        assert!(matches!(
            one("ONBUILD FROM x"),
            Err(InstructionError::OnbuildForbidden { .. })
        ));
        assert!(matches!(
            one("ONBUILD ONBUILD RUN x"),
            Err(InstructionError::OnbuildForbidden { .. })
        ));
        assert_eq!(
            one("onbuild RUN echo hi"),
            Ok(Instruction::Onbuild {
                trigger: Box::new(Instruction::Run {
                    cmd: Command::Shell("echo hi".into()),
                    mounts: vec![],
                    devices: vec![],
                    network: None,
                    security: None,
                    heredocs: vec![],
                }),
                raw: s("RUN echo hi"),
            })
        );
        assert_eq!(
            one("HEALTHCHECK --interval=5s --retries=3 CMD curl x"),
            Ok(Instruction::Healthcheck(Healthcheck::Cmd {
                cmd: Command::Shell("curl x".into()),
                interval: Some(std::time::Duration::from_secs(5)),
                timeout: None,
                start_period: None,
                start_interval: None,
                retries: Some(3),
            }))
        );
        assert_eq!(
            one("HEALTHCHECK NONE"),
            Ok(Instruction::Healthcheck(Healthcheck::None))
        );
        assert!(matches!(
            one("HEALTHCHECK --interval=5 CMD x"),
            Err(InstructionError::BadDuration { .. })
        ));
    }
}
