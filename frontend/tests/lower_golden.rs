//! Golden tests for lowering: every `testdata/lower/<name>.Dockerfile` is parsed, planned,
//! resolved and lowered (with fixed base configs and options) and compared with `<name>.json`
//! (the Graph as pretty JSON). `UPDATE_GOLDEN=1` rewrites the expected files.

use std::convert::Infallible;
use std::path::PathBuf;

use rbuild_frontend::lower::{lower, plan, BuildOptions, ResolveError};
use rbuild_graph::{HistoryEntry, ImageConfig};
use rbuild_test_support::golden;
use rbuild_types::{ImageRef, Platform};

fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("testdata")
        .join("lower")
}

/// A deterministic stand-in for a pulled base image config.
fn base_config(r: &ImageRef) -> ImageConfig {
    ImageConfig {
        platform: "linux/amd64".parse().expect("platform"),
        env: vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()],
        cmd: Some(vec![r
            .repository
            .rsplit('/')
            .next()
            .unwrap_or("sh")
            .to_string()]),
        history: vec![HistoryEntry {
            created: Some("2024-01-01T00:00:00Z".into()),
            created_by: format!("base layer of {r}"),
            comment: None,
            empty_layer: false,
        }],
        ..ImageConfig::default()
    }
}

/// Options for a golden case: `# rbuild-test: target=x build-arg=K=V no-cache-filter=s label=K=V`
/// lines in the Dockerfile set them.
fn options(src: &str) -> BuildOptions {
    let mut o = BuildOptions {
        platform: Platform {
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: None,
        },
        ..BuildOptions::default()
    };
    for line in src.lines() {
        let Some(rest) = line.strip_prefix("# rbuild-test:") else {
            continue;
        };
        for item in rest.split_whitespace() {
            let (k, v) = item.split_once('=').unwrap_or((item, ""));
            match k {
                "target" => o.target = Some(v.to_string()),
                "no-cache" => o.no_cache = true,
                "no-cache-filter" => o.no_cache_filter.push(v.to_string()),
                "build-arg" | "label" => {
                    let (a, b) = v.split_once('=').unwrap_or((v, ""));
                    let map = if k == "label" {
                        &mut o.labels
                    } else {
                        &mut o.build_args
                    };
                    map.insert(a.to_string(), b.to_string());
                }
                other => panic!("unknown rbuild-test option {other}"),
            }
        }
    }
    o
}

/// Lowers one Dockerfile to pretty JSON, or the rendered diagnostics for an error case.
fn render(src: &str) -> String {
    let df = match rbuild_frontend::parse(src.as_bytes()) {
        Ok(df) => df,
        Err(d) => return format!("parse error:\n{}", d.render("Dockerfile", src.as_bytes())),
    };
    let opts = options(src);
    let mut p = match plan(&df, &opts) {
        Ok(p) => p,
        Err(d) => return format!("plan error:\n{}", d.render("Dockerfile", src.as_bytes())),
    };
    let mut resolver = |r: &ImageRef, _: &Platform| Ok::<_, Infallible>(base_config(r));
    let bases = match p.resolve(&mut resolver) {
        Ok(bases) => bases,
        Err(ResolveError::Dockerfile(d)) => {
            return format!("resolve error:\n{}", d.render("Dockerfile", src.as_bytes()))
        }
        Err(ResolveError::Image { source, .. }) => match source {},
    };
    match lower(&p, &bases) {
        Ok(g) => {
            g.validate().expect("lowered graph is valid");
            let layers = g.image.history.iter().filter(|h| !h.empty_layer).count();
            let mut json = serde_json::to_string_pretty(&g).expect("serialise graph");
            json.push_str(&format!(
                "\n// base images: {:?}\n// layer history entries: {layers}\n",
                p.base_images()
                    .iter()
                    .map(|(r, platform)| format!("{r} ({platform})"))
                    .collect::<Vec<_>>()
            ));
            json
        }
        Err(d) => format!("lower error:\n{}", d.render("Dockerfile", src.as_bytes())),
    }
}

#[test]
fn golden() {
    let dir = testdata();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("read testdata/lower")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "Dockerfile"))
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no golden cases in {}", dir.display());
    let mut failed = Vec::new();
    for case in &cases {
        let src = std::fs::read_to_string(case).expect("read case");
        let got = render(&src);
        let want_path = case.with_extension("json");
        if golden::differs(&want_path, &got) {
            failed.push(format!(
                "{}: differs from {} (UPDATE_GOLDEN=1 to rewrite)\n{got}",
                case.display(),
                want_path.display()
            ));
        }
    }
    println!(
        "lower golden: {} passed, {} failed",
        cases.len() - failed.len(),
        failed.len()
    );
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}
