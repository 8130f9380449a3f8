//! Fuzzes the whole frontend: arbitrary bytes → parse → typed instructions → plan → resolve
//! → build checks, outline and targets → lower (with a stand-in config for every base image),
//! and the rendering of every diagnostic.
//! The first byte picks options (a target stage, build args) so those paths are reached
//! too. Any panic, stack overflow or timeout is a bug.
#![no_main]

use std::convert::Infallible;

use libfuzzer_sys::fuzz_target;
use rbuild_frontend::lower::{lower, plan, BuildOptions, ResolveError};
use rbuild_types::{ImageRef, Platform};

fuzz_target!(|data: &[u8]| {
    let (sel, src) = match data.split_first() {
        Some((s, rest)) => (*s, rest),
        None => (0, data),
    };
    let df = match rbuild_frontend::parse(src) {
        Ok(df) => df,
        Err(d) => {
            let _ = d.render("Dockerfile", src);
            return;
        }
    };
    if let Err(d) = rbuild_frontend::instructions(&df) {
        let _ = d.render("Dockerfile", src);
    }
    let mut opts = BuildOptions::default();
    if sel & 1 != 0 {
        opts.target = Some(["build", "a", "final", "0"][usize::from(sel >> 1) & 3].into());
    }
    if sel & 8 != 0 {
        opts.build_args.insert("A".into(), "x".into());
        opts.build_args.insert("IMG".into(), "busybox".into());
    }
    let mut p = match plan(&df, &opts) {
        Ok(p) => p,
        Err(d) => {
            let _ = d.render("Dockerfile", src);
            return;
        }
    };
    let mut resolver = |_: &ImageRef, _: &Platform| {
        let mut config = rbuild_graph::ImageConfig::default();
        if sel & 16 != 0 {
            config.on_build = vec![
                "RUN echo onbuild".into(),
                "COPY a /b".into(),
                "COPY --from=0 /x /y".into(),
            ];
        }
        Ok::<_, Infallible>(config)
    };
    let bases = match p.resolve(&mut resolver) {
        Ok(bases) => bases,
        Err(ResolveError::Dockerfile(d)) => {
            let _ = d.render("Dockerfile", src);
            return;
        }
        Err(ResolveError::Image { source, .. }) => match source {},
    };
    // The build checks over every stage, with and without the plan.
    let config = rbuild_frontend::lint::CheckConfig::default();
    for plan in [None, Some(&p)] {
        let _ = rbuild_frontend::lint::check(&rbuild_frontend::lint::CheckInput {
            df: &df,
            source: src,
            options: &opts,
            config: &config,
            plan,
            bases: Some(&bases),
            ignored: None,
            scope: rbuild_frontend::lint::Scope::AllStages,
        });
    }
    let _ = rbuild_frontend::outline::targets(&df, src);
    let _ = rbuild_frontend::outline::outline(&df, src, &p);
    match lower(&p, &bases) {
        Ok(g) => {
            let _ = g.validate();
        }
        Err(d) => {
            let _ = d.render("Dockerfile", src);
        }
    }
});
