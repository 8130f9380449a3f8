//! `rbuild bake`: compose files (current and version-1 shape), HCL and JSON bake files,
//! `--print`, `--set`, notes for ignored runtime keys, errors with file and line, and the
//! joint solve: a base stage three services share runs once.

mod support;

use std::path::Path;
use std::process::Output;

use support::{s, stderr, stdout, Env};

/// `rbuild bake ARGS` run in `dir` (where the default bake files are looked for).
fn bake(env: &Env, dir: &Path, args: &[&str]) -> Output {
    let mut all = vec!["bake"];
    all.extend_from_slice(args);
    env.cmd()
        .current_dir(dir)
        .args(&all)
        .output()
        .expect("run rbuild bake")
}

fn bake_ok(env: &Env, dir: &Path, args: &[&str]) -> Output {
    let out = bake(env, dir, args);
    assert!(
        out.status.success(),
        "rbuild bake {args:?} failed ({}):\n{}",
        out.status,
        stderr(&out)
    );
    out
}

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (path, contents) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, contents).expect("write");
    }
}

/// Each service's Dockerfile: the same base stage (whose RUN prints `shared-42` once per
/// run), then a step of its own, which waits (up to 10 s) until every service's own step has
/// started: it passes only when the three run at the same time, in one solve.
fn service_dockerfile(name: &str) -> String {
    let all = "[ -e /b/web ] && [ -e /b/api ] && [ -e /b/worker ]";
    format!(
        "FROM busybox AS base\nRUN echo shared-$((40+2)) && echo base > /base\n\
         FROM base\nCOPY own.txt /own.txt\n\
         RUN --mount=type=cache,id=bake-barrier,target=/b touch /b/{name} && \
         for i in $(seq 200); do {all} && break; sleep 0.05; done && {all} && \
         echo {name}-$((1+1)) && cat /base /own.txt > /result\n"
    )
}

#[test]
fn three_services_share_a_base_stage_that_runs_once() {
    let Some(env) = Env::with_busybox() else {
        return;
    };
    let project = env.path("project");
    let mut files = vec![(
        "compose.yaml".to_string(),
        "services:\n  web:\n    build: ./web\n    image: bake-web:1\n    ports: ['8080:80']\n\
         \x20 api:\n    build:\n      context: api\n      dockerfile: api.Dockerfile\n    image: bake-api:1\n    links: [db]\n\
         \x20 worker:\n    build: {context: worker}\n    image: bake-worker:1\n    volumes: ['/data']\n\
         \x20 db:\n    image: postgres\n"
            .to_string(),
    )];
    for (name, dockerfile) in [
        ("web", "Dockerfile"),
        ("api", "api.Dockerfile"),
        ("worker", "Dockerfile"),
    ] {
        files.push((format!("{name}/{dockerfile}"), service_dockerfile(name)));
        files.push((format!("{name}/own.txt"), format!("{name}\n")));
    }
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    write(&project, &files);

    let out = bake_ok(&env, &project, &["--progress=plain"]);
    let err = stderr(&out);
    // The shared RUN printed its line once; each service's own RUN ran.
    let shared = err.lines().filter(|l| l.ends_with(" shared-42")).count();
    assert_eq!(shared, 1, "the base stage ran {shared} times:\n{err}");
    for name in ["web", "api", "worker"] {
        assert!(
            err.lines().any(|l| l.ends_with(&format!(" {name}-2"))),
            "{name}'s own step did not run:\n{err}"
        );
        // Steps are named after their target, as buildx names them.
        assert!(err.contains(&format!("[{name} ")), "{err}");
    }
    // Runtime keys are ignored, each with a note naming service and key; the image-only
    // service builds nothing.
    for (service, key) in [("web", "ports"), ("api", "links"), ("worker", "volumes")] {
        assert!(
            err.contains(&format!(
                "service \"{service}\": \"{key}\" is a runtime setting"
            )),
            "{err}"
        );
    }
    assert!(!err.contains("\"db\""), "{err}");
    // Every image is in the store under its `image:` name, with its own file.
    for name in ["web", "api", "worker"] {
        let out = env.ok(&["inspect", "--format", "{{.Id}}", &format!("bake-{name}:1")]);
        assert!(stdout(&out).starts_with("sha256:"), "{}", stdout(&out));
    }
    let dest = env.path("worker-out");
    bake_ok(
        &env,
        &project,
        &[
            "worker",
            "--set",
            &format!("worker.output=type=local,dest={}", s(&dest)),
        ],
    );
    assert_eq!(
        std::fs::read_to_string(dest.join("result")).unwrap(),
        "base\nworker\n"
    );

    // Again: nothing runs.
    let out = bake_ok(&env, &project, &["--progress=plain"]);
    let err = stderr(&out);
    assert!(!err.lines().any(|l| l.ends_with(" shared-42")), "{err}");
    assert!(!err.lines().any(|l| l.ends_with(" web-2")), "{err}");

    // The version-1 shape of a classic CI chapter: services at the top level.
    let v1 = env.path("v1");
    write(
        &v1,
        &[
            (
                "docker-compose.yml",
                "identidock:\n  build: .\n  image: identidock:ci\n  environment:\n    ENV: PROD\n  ports:\n    - \"5000:5000\"\n\
                 redis:\n  image: redis:3.0\n",
            ),
            ("Dockerfile", "FROM busybox\nRUN echo identidock > /app\n"),
        ],
    );
    let out = bake_ok(&env, &v1, &["--progress=plain"]);
    let err = stderr(&out);
    assert!(
        err.contains("service \"identidock\": \"environment\" is a runtime setting"),
        "{err}"
    );
    env.ok(&["inspect", "identidock:ci"]);

    // A build secret from the compose file's top-level secrets (here from the environment).
    let secrets = env.path("secrets");
    write(
        &secrets,
        &[
            (
                "compose.yaml",
                "services:\n  app:\n    build:\n      context: .\n      secrets: [token]\n\
                 secrets:\n  token:\n    environment: BAKE_TOKEN\n",
            ),
            (
                "Dockerfile",
                "FROM busybox\nRUN --mount=type=secret,id=token cp /run/secrets/token /token\n",
            ),
        ],
    );
    let dest = env.path("secret-out");
    let out = env
        .cmd()
        .current_dir(&secrets)
        .env("BAKE_TOKEN", "s3cret")
        .args([
            "bake",
            "--set",
            &format!("app.output=type=local,dest={}", s(&dest)),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(dest.join("token")).unwrap(),
        "s3cret"
    );
}

#[test]
fn hcl_with_group_variables_args_tags_and_contexts() {
    let Some(env) = Env::with_busybox() else {
        return;
    };
    let project = env.path("hcl");
    write(
        &project,
        &[
            (
                "docker-bake.hcl",
                r#"variable "TAG" { default = "dev" }
variable "GREETING" { default = "hello ${TAG}" }
group "default" { targets = ["app", "tools", "app2", "derived"] }
target "common" {
  args = { GREETING = "${GREETING}" }
}
target "app" {
  inherits = ["common"]
  context = "app"
  contexts = { extra = "./extra" }
  tags = ["bake-app:${TAG}"]
}
target "tools" {
  inherits = ["common"]
  context = "app"
  dockerfile = "Tools.Dockerfile"
  tags = ["bake-tools:${TAG}"]
  target = "second"
}
target "derived" {
  context = "app"
  contexts = { app = "target:app" }
  dockerfile-inline = "FROM app\nRUN cat /greeting /local.txt > /derived\n"
}
target "app2" {
  inherits = ["app"]
  args = { GREETING = "two" }
  tags = ["bake-app2:${TAG}"]
}
"#,
            ),
            (
                "app/Dockerfile",
                "FROM busybox\nARG GREETING\nCOPY local.txt /local.txt\nCOPY --from=extra note.txt /note.txt\nRUN echo \"$GREETING\" > /greeting\n",
            ),
            (
                "app/Tools.Dockerfile",
                "FROM busybox AS first\nRUN echo first > /stage\nFROM busybox AS second\nARG GREETING\nRUN echo \"second $GREETING\" > /stage\n",
            ),
            ("app/local.txt", "from the context\n"),
            ("extra/note.txt", "from a named context\n"),
        ],
    );
    let app = env.path("app-out");
    let tools = env.path("tools-out");
    let app2 = env.path("app2-out");
    let derived = env.path("derived-out");
    let out = env
        .cmd()
        .current_dir(&project)
        .env("TAG", "2.0")
        .args([
            "bake",
            "--set",
            &format!("app.output=type=local,dest={}", s(&app)),
            "--set",
            &format!("tools.output=type=local,dest={}", s(&tools)),
            "--set",
            &format!("app2.output=type=local,dest={}", s(&app2)),
            "--set",
            &format!("derived.output=type=local,dest={}", s(&derived)),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let read = |p: &Path| std::fs::read_to_string(p).unwrap();
    // The environment's TAG overrides the default, inside another variable's default too.
    assert_eq!(read(&app.join("greeting")), "hello 2.0\n");
    assert_eq!(read(&app.join("note.txt")), "from a named context\n");
    assert_eq!(read(&tools.join("stage")), "second hello 2.0\n");
    // Two targets reading one context directory (and each its named context) in one solve.
    assert_eq!(read(&app2.join("greeting")), "two\n");
    assert_eq!(read(&app2.join("local.txt")), "from the context\n");
    assert_eq!(read(&app2.join("note.txt")), "from a named context\n");
    assert_eq!(read(&app.join("local.txt")), "from the context\n");
    // A target built FROM another's result (`target:app`), after it.
    assert_eq!(
        read(&derived.join("derived")),
        "hello 2.0\nfrom the context\n"
    );
    let images = stdout(&env.ok(&["images"]));
    assert!(!images.contains("rbuild-bake.invalid"), "{images}");

    // Tags go to the store (an output of -o type=local does not: --set replaces it).
    let out = env
        .cmd()
        .current_dir(&project)
        .env("TAG", "2.0")
        .args(["bake", "app", "--set", "app.args.GREETING=set"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    env.ok(&["inspect", "bake-app:2.0"]);
    let dest = env.path("set-out");
    bake_ok(
        &env,
        &project,
        &[
            "app",
            "--set",
            "app.args.GREETING=from set",
            "--set",
            &format!("app.output=type=local,dest={}", s(&dest)),
        ],
    );
    assert_eq!(read(&dest.join("greeting")), "from set\n");

    // JSON, the shape --print writes, builds the same.
    let json = env.path("json");
    write(
        &json,
        &[(
            "docker-bake.json",
            r#"{"variable": {"WHO": {"default": "json"}},
 "target": {"default": {"context": "../hcl/app", "dockerfile": "Tools.Dockerfile",
   "args": {"GREETING": "from ${WHO}"}, "tags": ["bake-json:1"]},
  "inline": {"context": ".", "dockerfile-inline": "FROM busybox\nARG V\nRUN echo \"inline $$V\" > /inline\n",
   "args": {"V": "${WHO}"}}}}"#,
        )],
    );
    let dest = env.path("json-out");
    bake_ok(
        &env,
        &json,
        &[
            "--set",
            &format!("default.output=type=local,dest={}", s(&dest)),
        ],
    );
    assert_eq!(read(&dest.join("stage")), "second from json\n");
    // An inline Dockerfile (`$$` is a dollar the interpolation leaves to the Dockerfile).
    let dest = env.path("inline-out");
    bake_ok(
        &env,
        &json,
        &[
            "inline",
            "--set",
            &format!("inline.output=type=local,dest={}", s(&dest)),
        ],
    );
    assert_eq!(read(&dest.join("inline")), "inline json\n");
}

#[test]
fn print_shows_the_resolved_plan() {
    let env = Env::new();
    let project = env.path("p");
    write(
        &project,
        &[
            (
                "compose.yaml",
                "services:\n  web:\n    build:\n      context: web\n      args: {A: 1}\n      cache_from: ['type=local,src=c']\n    image: web:${TAG:-latest}\n",
            ),
            (
                "docker-bake.hcl",
                "variable \"PUSH\" { default = \"\" }\n\
                 target \"web\" {\n  tags = [\"web:hcl\"]\n  platforms = [\"linux/amd64\"]\n\
                 labels = { local = \"${BAKE_LOCAL_PLATFORM}\", pushing = notequal(PUSH, \"\") }\n}\n",
            ),
        ],
    );
    let out = bake_ok(&env, &project, &["--print", "--set", "*.args.B=2"]);
    let plan: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    assert_eq!(
        plan["group"]["default"]["targets"],
        serde_json::json!(["web"])
    );
    let web = &plan["target"]["web"];
    assert_eq!(web["context"], "web");
    assert_eq!(web["dockerfile"], "Dockerfile");
    assert_eq!(web["args"], serde_json::json!({"A": "1", "B": "2"}));
    // The HCL file comes after the compose file, so its tags win.
    assert_eq!(web["tags"], serde_json::json!(["web:hcl"]));
    assert_eq!(web["platforms"], serde_json::json!(["linux/amd64"]));
    assert_eq!(web["cache-from"], serde_json::json!(["type=local,src=c"]));
    // buildx's built-in variables and functions.
    let host = web["labels"]["local"].as_str().unwrap();
    assert!(host.starts_with("linux/"), "{host}");
    assert_eq!(web["labels"]["pushing"], "false");

    // With -f only the named file, interpolated from the environment.
    let out = env
        .cmd()
        .current_dir(&project)
        .env("TAG", "7")
        .args(["bake", "-f", "compose.yaml", "--print", "web"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let plan: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    assert_eq!(plan["target"]["web"]["tags"], serde_json::json!(["web:7"]));

    // `-f -` reads standard input, its format told by its content: here version-1 compose.
    let out = support::output_with_stdin(
        env.cmd()
            .current_dir(&project)
            .args(["bake", "-f", "-", "--print"]),
        b"identidock:\n  build: .\n  environment: {ENV: PROD}\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let plan: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    assert_eq!(plan["target"]["identidock"]["context"], ".");
    assert!(
        stderr(&out).contains("service \"identidock\": \"environment\" is a runtime setting"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bad_bake_files_are_usage_errors_with_file_and_line() {
    let env = Env::new();
    let project = env.path("p");
    write(
        &project,
        &[
            (
                "bad.yaml",
                "services:\n  web:\n    build:\n      contxt: .\n",
            ),
            ("bad.hcl", "target \"a\" {\n  tags = [\"x\"\n}\n"),
            (
                "bad.json",
                "{\n  \"target\": {\n    \"a\": {\"colour\": 1}\n  }\n}\n",
            ),
            ("ok.hcl", "target \"a\" {}\n"),
        ],
    );
    for (file, want) in [
        ("bad.yaml", "bad.yaml:4: "),
        ("bad.hcl", "bad.hcl:"),
        ("bad.json", "bad.json:3: target \"a\""),
    ] {
        let out = bake(&env, &project, &["-f", file, "--print"]);
        assert_eq!(out.status.code(), Some(2), "{file}: {}", stderr(&out));
        assert!(stderr(&out).contains(want), "{file}: {}", stderr(&out));
    }
    let out = bake(&env, &project, &["-f", "ok.hcl", "nope"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("\"nope\""), "{}", stderr(&out));
    let out = bake(
        &env,
        &project,
        &["-f", "ok.hcl", "a", "--set", "a.network=mesh"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("bake target \"a\""),
        "{}",
        stderr(&out)
    );
    // Nothing is built when a later target is wrong.
    write(
        &project,
        &[(
            "deps.hcl",
            "target \"a\" {}\ntarget \"b\" {\n  contexts = { a = \"target:a\" }\n  pull = true\n}\n",
        )],
    );
    let out = bake(&env, &project, &["-f", "deps.hcl", "b"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("bake target \"b\": pull with a target: context"),
        "{}",
        stderr(&out)
    );
    assert!(
        !stderr(&out).contains("load build definition"),
        "{}",
        stderr(&out)
    );
    let empty = env.path("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = bake(&env, &empty, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("docker-bake.hcl"), "{}", stderr(&out));
}

#[test]
fn a_failing_target_is_reported_in_its_own_dockerfile() {
    if !support::can_build_runs() {
        return;
    }
    let env = Env::new();
    let project = env.path("p");
    write(
        &project,
        &[
            (
                "docker-bake.hcl",
                "group \"default\" { targets = [\"good\", \"bad\"] }\n\
                 target \"good\" { context = \"good\" }\ntarget \"bad\" { context = \"bad\" }\n",
            ),
            ("good/Dockerfile", "FROM scratch\nCOPY a /a\n"),
            ("good/a", "a"),
            ("bad/Dockerfile", "FROM scratch\n\nCOPY missing /m\n"),
        ],
    );
    let out = bake(&env, &project, &["--progress=plain"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("bad/Dockerfile:3"), "{err}");
    assert!(err.contains("[bad 1/1] COPY missing /m"), "{err}");
}
