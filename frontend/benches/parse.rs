//! Throughput of the frontend on a generated 10,000-instruction Dockerfile: `parse` alone,
//! and parse → plan → lower (the whole pure frontend). Reported in bytes/s of Dockerfile.
//!
//! Run: `cargo bench -p rbuild-frontend --bench parse`.

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rbuild_frontend::lower::{lower, plan, BuildOptions};
use rbuild_graph::ImageConfig;

/// A realistic mix: ten chained stages (each `FROM` the previous, so all are lowered),
/// ARG/ENV expansion, RUN with continuations and heredocs, COPY with flags, labels and
/// metadata — 10,000 instructions in all.
fn dockerfile(instructions: usize) -> String {
    let mut s = String::from("# syntax=docker/dockerfile:1\nARG BASE=busybox\n");
    let mut n = 1;
    let mut stage = 0;
    while n < instructions {
        if n % 1000 == 1 {
            // Each stage builds on the previous one, so every stage is lowered.
            if stage == 0 {
                s.push_str("FROM ${BASE}:latest AS stage0\n");
            } else {
                s.push_str(&format!("FROM stage{} AS stage{stage}\n", stage - 1));
            }
            stage += 1;
            n += 1;
            continue;
        }
        let line = match n % 10 {
            // Names repeat (as in real files): the environment every RUN carries stays
            // bounded. With 1,000 distinct ENVs in scope each Exec vertex would carry them
            // all, and the graph itself grows as RUNs × ENVs.
            0 => format!(
                "ENV VAR{}=value-{n} PATH=/opt/{}/bin:/usr/local/bin:/usr/bin:/bin\n",
                n % 50,
                n % 7
            ),
            1 => format!("ARG A{}=default-{n}\n", n % 50),
            2 => format!(
                "RUN set -e; \\\n    echo \"step {n}\" > /tmp/f{n} && \\\n    cat /tmp/f{n} | wc -c\n"
            ),
            3 => format!("COPY --chown=1000:1000 --chmod=0644 src/{n}/*.rs /app/src/{n}/\n"),
            4 => format!("LABEL org.example.k{n}=\"v {n}\" other{n}=x\n"),
            5 => format!("WORKDIR /work/{n}\n"),
            6 => format!("RUN <<EOF\necho heredoc {n}\nls -l /\nEOF\n"),
            7 => format!("EXPOSE {}/tcp\n", 1024 + n % 50000),
            8 => "USER 1000:1000\n".to_string(),
            _ => format!("RUN [\"/bin/sh\", \"-c\", \"echo exec {n}\"]\n"),
        };
        s.push_str(&line);
        n += 1;
    }
    s.push_str("CMD [\"/bin/sh\"]\n");
    s
}

fn bench(c: &mut Criterion) {
    let src = dockerfile(10_000);
    let opts = BuildOptions {
        platform: "linux/amd64".parse().expect("platform"),
        ..BuildOptions::default()
    };
    let mut group = c.benchmark_group("frontend_10k");
    group.throughput(Throughput::Bytes(src.len() as u64));
    group.sample_size(20);
    group.bench_function("parse", |b| {
        b.iter(|| rbuild_frontend::parse(black_box(src.as_bytes())).expect("parses"))
    });
    group.bench_function("parse_plan_lower", |b| {
        b.iter(|| {
            let df = rbuild_frontend::parse(black_box(src.as_bytes())).expect("parses");
            let p = plan(&df, &opts).expect("plans");
            let bases: BTreeMap<_, _> = p
                .base_images()
                .into_iter()
                .map(|r| (r, ImageConfig::default()))
                .collect();
            lower(&p, &bases).expect("lowers")
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
