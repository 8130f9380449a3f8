//! Attestations through the CLI (`--provenance`, `--sbom`, `--attest`): an attestation
//! manifest beside each platform's image in its index, shaped as BuildKit's (platform
//! `unknown/unknown`, `vnd.docker.reference.type=attestation-manifest`, in-toto layers with
//! their predicate type), in an OCI layout and pushed to a registry (read back with skopeo);
//! the statements checked against JSON schemas (`testdata/schemas/`: the in-toto statement,
//! SLSA provenance v0.2, SPDX 2.3's required fields); the SBOM of package databases copied
//! from the context (no network); one attestation manifest per platform; outputs and options
//! that cannot hold them refused.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use support::{json_file, require_tool, s, stderr, Env, Registry};

const IN_TOTO: &str = "application/vnd.in-toto+json";
const PROVENANCE: &str = "https://slsa.dev/provenance/v0.2";
const SPDX: &str = "https://spdx.dev/Document";

/// A context whose image holds a dpkg status, an apk database and a Python distribution.
fn packages_context(env: &Env) -> PathBuf {
    env.context(
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM base:1\nARG FLAVOUR=plain\nCOPY rootfs/ /\nLABEL flavour=$FLAVOUR\n",
            ),
            ("rootfs/etc/os-release", "ID=debian\nVERSION_ID=\"12\"\n"),
            (
                "rootfs/var/lib/dpkg/status",
                "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\n\
                 Version: 2.36-9+deb12u4\nMaintainer: GNU Libc Maintainers <libc@debian.org>\n\n\
                 Package: removed\nStatus: deinstall ok config-files\nVersion: 1\n\n\
                 Package: tzdata\nStatus: install ok installed\nArchitecture: all\nVersion: 2024a-0+deb12u1\n",
            ),
            (
                "rootfs/lib/apk/db/installed",
                "P:musl\nV:1.2.4-r2\nA:x86_64\nL:MIT\n\nP:zlib\nV:1.3.1-r0\nA:x86_64\nL:Zlib\n\n",
            ),
            (
                "rootfs/usr/lib/python3.11/site-packages/Flask_Login-0.6.3.dist-info/METADATA",
                "Metadata-Version: 2.1\nName: Flask_Login\nVersion: 0.6.3\nLicense: MIT\n\nbody\n",
            ),
        ],
    )
}

/// `base:1` in the store of `env`: a base image the build records as a material.
fn base_image(env: &Env) {
    let ctx = env.context(
        "base-ctx",
        &[
            ("Dockerfile", "FROM scratch\nCOPY base.txt /\n"),
            ("base.txt", "base"),
        ],
    );
    env.ok(&["build", "-q", "-t", "base:1", s(&ctx)]);
}

/// A JSON schema of `testdata/schemas/`, compiled with format checks on.
fn schema(name: &str) -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/schemas")
        .join(name);
    let schema = json_file(&path);
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap_or_else(|e| panic!("schema {name}: {e}"))
}

/// Asserts `doc` is valid against schema `name`, listing every error.
fn assert_valid(name: &str, doc: &Value) {
    let validator = schema(name);
    let errors: Vec<String> = validator
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{name}: {errors:#?}\n{doc:#}");
}

/// Reads a JSON blob by digest, from wherever the test found the image.
trait Blobs {
    fn json(&self, digest: &str) -> Value;
}

struct Layout(PathBuf);

impl Blobs for Layout {
    fn json(&self, digest: &str) -> Value {
        json_file(&support::layout_blob(&self.0, digest))
    }
}

/// The registry repository `name` (`host:port/repo`), read with skopeo.
struct Remote(String);

impl Blobs for Remote {
    fn json(&self, digest: &str) -> Value {
        let repo = self.0.rsplit_once(':').map_or(self.0.as_str(), |(r, tag)| {
            if tag.contains('/') {
                self.0.as_str()
            } else {
                r
            }
        });
        // Manifests through `inspect --raw`; other blobs through `copy`'s layout.
        let raw = Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(format!("docker://{repo}@{digest}"))
            .output()
            .expect("run skopeo");
        if raw.status.success() {
            return serde_json::from_slice(&raw.stdout).expect("JSON");
        }
        panic!("not a manifest of {repo}: {digest}: {}", stderr(&raw));
    }
}

/// The attestation entries of `index` (and checks each is shaped as BuildKit's), keyed by the
/// image manifest they describe.
fn attestation_entries(index: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for entry in index["manifests"].as_array().expect("manifests") {
        let Some(kind) = entry["annotations"]["vnd.docker.reference.type"].as_str() else {
            continue;
        };
        assert_eq!(kind, "attestation-manifest");
        assert_eq!(
            entry["platform"],
            serde_json::json!({"os": "unknown", "architecture": "unknown"}),
            "{entry}"
        );
        assert_eq!(
            entry["mediaType"],
            "application/vnd.oci.image.manifest.v1+json"
        );
        let subject = entry["annotations"]["vnd.docker.reference.digest"]
            .as_str()
            .expect("reference digest")
            .to_string();
        let described = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["digest"] == subject.as_str())
            .unwrap_or_else(|| panic!("the subject {subject} is in the index: {index}"));
        assert_ne!(described["platform"]["os"], "unknown");
        out.push((subject, entry.clone()));
    }
    out
}

/// The statements of attestation manifest `manifest` (read through `blobs`, statements
/// through `read`), each checked against the in-toto schema and its layer annotation.
fn statements(manifest: &Value, read: &dyn Fn(&str) -> Value) -> Vec<Value> {
    let config = read(manifest["config"]["digest"].as_str().unwrap());
    assert_eq!(config["os"], "unknown");
    let mut out = Vec::new();
    for (i, layer) in manifest["layers"].as_array().unwrap().iter().enumerate() {
        assert_eq!(layer["mediaType"], IN_TOTO);
        let digest = layer["digest"].as_str().unwrap();
        assert_eq!(config["rootfs"]["diff_ids"][i], digest);
        let statement = read(digest);
        assert_valid("in-toto-statement.json", &statement);
        assert_eq!(
            layer["annotations"]["in-toto.io/predicate-type"],
            statement["predicateType"]
        );
        out.push(statement);
    }
    out
}

/// The purls the SPDX document lists.
fn purls(spdx: &Value) -> Vec<String> {
    spdx["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            p["externalRefs"][0]["referenceLocator"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

fn by_type<'a>(statements: &'a [Value], predicate: &str) -> &'a Value {
    statements
        .iter()
        .find(|s| s["predicateType"] == predicate)
        .unwrap_or_else(|| panic!("a {predicate} statement in {statements:#?}"))
}

/// Checks the attestations of a one-platform image whose index is `index`: returns the
/// provenance and SBOM statements.
fn check_one(index: &Value, blobs: &dyn Blobs, raw_blob: &dyn Fn(&str) -> Value) -> (Value, Value) {
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let entries = attestation_entries(index);
    assert_eq!(entries.len(), 1, "{index}");
    let (subject, entry) = &entries[0];
    let manifest = blobs.json(entry["digest"].as_str().unwrap());
    let statements = statements(&manifest, raw_blob);
    assert_eq!(statements.len(), 2);
    for st in &statements {
        let subjects = st["subject"].as_array().unwrap();
        assert_eq!(subjects.len(), 1, "{st}");
        // The subject is the manifest as distributed (compressed layers), not as stored.
        assert_eq!(
            format!(
                "sha256:{}",
                subjects[0]["digest"]["sha256"].as_str().unwrap()
            ),
            *subject
        );
    }
    let provenance = by_type(&statements, PROVENANCE).clone();
    let sbom = by_type(&statements, SPDX).clone();
    assert_valid("slsa-provenance-v0.2.json", &provenance["predicate"]);
    assert_valid("spdx-2.3.json", &sbom["predicate"]);
    (provenance, sbom)
}

#[test]
fn max_provenance_and_an_sbom_go_beside_the_image_in_a_layout() {
    let env = Env::new();
    base_image(&env);
    let ctx = packages_context(&env);
    let layout = env.build_oci(
        "layout",
        &[
            "-t",
            "app:1",
            "--provenance=mode=max",
            "--sbom=true",
            "--build-arg",
            "FLAVOUR=spicy",
        ],
        &ctx,
    );
    let top = json_file(&layout.join("index.json"));
    let index_digest = top["manifests"][0]["digest"].as_str().unwrap();
    let index = Layout(layout.clone()).json(index_digest);
    let read = |d: &str| Layout(layout.clone()).json(d);
    let (provenance, sbom) = check_one(&index, &Layout(layout.clone()), &read);

    // The subject names the image by its purl, with the platform.
    let name = provenance["subject"][0]["name"].as_str().unwrap();
    assert!(
        name.starts_with("pkg:docker/app@1?platform=linux%2F"),
        "{name}"
    );

    // mode=max: build args, the steps, the Dockerfile; the base image as a material.
    let p = &provenance["predicate"];
    assert_eq!(p["buildType"], "https://mobyproject.org/buildkit@v1");
    assert_eq!(p["invocation"]["configSource"]["entryPoint"], "Dockerfile");
    assert_eq!(p["invocation"]["parameters"]["frontend"], "dockerfile.v0");
    assert_eq!(
        p["invocation"]["parameters"]["args"]["build-arg:FLAVOUR"],
        "spicy"
    );
    assert_eq!(
        p["invocation"]["parameters"]["locals"],
        serde_json::json!([{"name": "context"}, {"name": "dockerfile"}])
    );
    assert_eq!(p["metadata"]["completeness"]["parameters"], true);
    // The context is read: a local source, not a material with a digest.
    assert_eq!(p["metadata"]["completeness"]["materials"], false);
    let steps = p["buildConfig"]["llbDefinition"].as_array().expect("steps");
    assert!(
        steps.iter().any(|s| s["op"].get("File").is_some()),
        "the COPY is a step: {steps:#?}"
    );
    let materials = p["materials"].as_array().unwrap();
    assert_eq!(materials.len(), 1, "{materials:#?}");
    assert!(
        materials[0]["uri"]
            .as_str()
            .unwrap()
            .starts_with("pkg:docker/base@1?platform=linux%2F"),
        "{materials:#?}"
    );
    assert_eq!(materials[0]["digest"]["sha256"].as_str().unwrap().len(), 64);

    // The SBOM: the installed packages of each database, with purls; not the removed one.
    let listed = purls(&sbom["predicate"]);
    for want in [
        "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12",
        "pkg:deb/debian/tzdata@2024a-0%2Bdeb12u1?arch=all&distro=debian-12",
        "pkg:apk/debian/musl@1.2.4-r2?arch=x86_64&distro=debian-12",
        "pkg:apk/debian/zlib@1.3.1-r0?arch=x86_64&distro=debian-12",
        "pkg:pypi/flask-login@0.6.3",
    ] {
        assert!(listed.iter().any(|p| p == want), "{want} in {listed:#?}");
    }
    assert_eq!(listed.len(), 5, "{listed:#?}");

    // Attestations change no image digest: built at one SOURCE_DATE_EPOCH with and without
    // them, the image manifest is the same (with them, it is an entry of the index).
    let oci_at_epoch = |name: &str, extra: &[&str]| -> Value {
        let dest = env.path(name);
        let mut cmd = env.cmd();
        cmd.env("SOURCE_DATE_EPOCH", "1700000000")
            .args(["build", "-q", "-t", "app:1", "-o"])
            .arg(format!("type=oci,dest={},tar=false", s(&dest)))
            .args(extra)
            .arg(&ctx);
        let out = cmd.output().expect("run rbuild");
        assert!(out.status.success(), "{}", stderr(&out));
        json_file(&dest.join("index.json"))["manifests"][0].clone()
    };
    let plain = oci_at_epoch("plain", &[]);
    assert_eq!(
        plain["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    let attested = oci_at_epoch("attested", &["--sbom=true"]);
    assert_eq!(
        attested["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let dir = env.path("attested");
    let index = Layout(dir).json(attested["digest"].as_str().unwrap());
    let image_entry = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["platform"]["os"] == "linux")
        .unwrap();
    assert_eq!(image_entry["digest"], plain["digest"]);
}

/// The statements of the one attestation manifest of the packages context built with `args`
/// into an OCI layout.
fn built_statements(args: &[&str]) -> Vec<serde_json::Value> {
    let env = Env::new();
    base_image(&env);
    let ctx = packages_context(&env);
    let layout = env.build_oci("layout", args, &ctx);
    let top = json_file(&layout.join("index.json"));
    let index = Layout(layout.clone()).json(top["manifests"][0]["digest"].as_str().unwrap());
    let entries = attestation_entries(&index);
    assert_eq!(entries.len(), 1);
    let manifest = Layout(layout.clone()).json(entries[0].1["digest"].as_str().unwrap());
    let read = |d: &str| Layout(layout.clone()).json(d);
    statements(&manifest, &read)
}

#[test]
fn min_provenance_leaves_out_build_args_and_steps() {
    let statements = built_statements(&[
        "--attest",
        "type=provenance",
        "--build-arg",
        "FLAVOUR=secret",
    ]);
    assert_eq!(statements.len(), 1);
    // No name: no subject (as BuildKit's, whose subjects are the image's names).
    assert_eq!(statements[0]["subject"], serde_json::json!([]));
    let p = &statements[0]["predicate"];
    assert_valid("slsa-provenance-v0.2.json", p);
    assert!(p["invocation"]["parameters"].get("args").is_none(), "{p:#}");
    assert!(p.get("buildConfig").is_none());
    assert_eq!(p["metadata"]["completeness"]["parameters"], false);
    assert!(!p.to_string().contains("secret"), "{p:#}");
}

#[test]
fn version_v1_writes_slsa_provenance_v1() {
    let statements = built_statements(&[
        "-t",
        "app:1",
        "--attest",
        "type=provenance,mode=max,version=v1",
        "--build-arg",
        "FLAVOUR=plain",
    ]);
    let st = by_type(&statements, "https://slsa.dev/provenance/v1");
    let p = &st["predicate"];
    assert_valid("slsa-provenance-v1.json", p);
    let def = &p["buildDefinition"];
    assert_eq!(
        def["externalParameters"]["configSource"]["path"],
        "Dockerfile"
    );
    assert_eq!(
        def["externalParameters"]["request"]["args"]["build-arg:FLAVOUR"],
        "plain"
    );
    assert!(def["resolvedDependencies"][0]["uri"]
        .as_str()
        .unwrap()
        .starts_with("pkg:docker/base@1"));
    assert!(def["internalParameters"]["buildConfig"]["llbDefinition"].is_array());
}

#[test]
fn a_pushed_image_carries_its_attestations() {
    if require_tool("skopeo").is_none() {
        return;
    }
    let Some(registry) = Registry::start() else {
        return;
    };
    let env = Env::new();
    base_image(&env);
    let ctx = packages_context(&env);
    let name = format!("{}/team/attested:1", registry.addr);
    env.ok(&[
        "build",
        "-q",
        "--provenance=mode=max",
        "--sbom=true",
        "-o",
        &format!("type=image,name={name},push=true"),
        s(&ctx),
    ]);
    let index = support::raw_json(&name, &[]);
    let remote = Remote(name.clone());
    // Statement blobs: copy the image (all platforms, attestations included) to a layout.
    let copy = env.path("copied");
    let out = Command::new("skopeo")
        .args(["copy", "--all", "--src-tls-verify=false"])
        .arg(format!("docker://{name}"))
        .arg(format!("oci:{}:copied", s(&copy)))
        .output()
        .expect("run skopeo");
    assert!(out.status.success(), "{}", stderr(&out));
    let read = |d: &str| Layout(copy.clone()).json(d);
    let (provenance, sbom) = check_one(&index, &remote, &read);
    assert!(provenance["subject"][0]["name"]
        .as_str()
        .unwrap()
        .starts_with("pkg:docker/"));
    assert_eq!(purls(&sbom["predicate"]).len(), 5);
}

#[test]
fn each_platform_gets_its_own_attestation_manifest() {
    let env = Env::new();
    let ctx = env.context(
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM scratch\nARG TARGETARCH\nCOPY a.txt /arch-${TARGETARCH}\n",
            ),
            ("a.txt", "a"),
        ],
    );
    let layout = env.build_oci(
        "layout",
        &[
            "--platform",
            "linux/amd64,linux/arm64",
            "--provenance=true",
            "-t",
            "multi:1",
        ],
        &ctx,
    );
    let top = json_file(&layout.join("index.json"));
    let index = Layout(layout.clone()).json(top["manifests"][0]["digest"].as_str().unwrap());
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 4, "{index}");
    let entries = attestation_entries(&index);
    assert_eq!(entries.len(), 2);
    for (arch, (subject, entry)) in ["amd64", "arm64"].iter().zip(&entries) {
        let image = manifests
            .iter()
            .find(|m| m["digest"] == subject.as_str())
            .unwrap();
        assert_eq!(image["platform"]["architecture"], *arch);
        let manifest = Layout(layout.clone()).json(entry["digest"].as_str().unwrap());
        let read = |d: &str| Layout(layout.clone()).json(d);
        let st = statements(&manifest, &read);
        assert_eq!(
            st[0]["subject"][0]["name"],
            format!("pkg:docker/multi@1?platform=linux%2F{arch}")
        );
        assert_valid("slsa-provenance-v0.2.json", &st[0]["predicate"]);
    }

    // A local output: each platform's directory has its own statement about its own files.
    let out = env.build_local(
        &["--platform", "linux/amd64,linux/arm64", "--provenance=true"],
        &ctx,
    );
    for arch in ["amd64", "arm64"] {
        let statement = json_file(&out.join(format!("linux_{arch}/provenance.json")));
        assert_eq!(
            statement["subject"],
            serde_json::json!([{
                "name": format!("arch-{arch}"),
                "digest": {"sha256": rbuild_types::Digest::of(b"a").hex()},
            }])
        );
    }
}

#[test]
fn local_and_tar_outputs_get_the_statements_as_files() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    base_image(&env);
    let ctx = packages_context(&env);
    let out = env.build_local(&["--provenance=true", "--sbom=true"], &ctx);
    assert!(out.join("var/lib/dpkg/status").is_file());
    let status = std::fs::read(out.join("var/lib/dpkg/status")).unwrap();
    let status_sha = rbuild_types::Digest::of(&status).hex();
    for (file, predicate_type, schema) in [
        ("provenance.json", PROVENANCE, "slsa-provenance-v0.2.json"),
        ("sbom.spdx.json", SPDX, "spdx-2.3.json"),
    ] {
        let path = out.join(file);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
        let statement = json_file(&path);
        assert_valid("in-toto-statement.json", &statement);
        assert_eq!(statement["predicateType"], predicate_type);
        assert_valid(schema, &statement["predicate"]);
        // Its subjects are the output's files, by path and sha256 (as BuildKit's).
        let subjects = statement["subject"].as_array().unwrap();
        let status_subject = subjects
            .iter()
            .find(|s| s["name"] == "var/lib/dpkg/status")
            .unwrap_or_else(|| panic!("{subjects:#?}"));
        assert_eq!(status_subject["digest"]["sha256"], status_sha.as_str());
        assert!(subjects.iter().any(|s| s["name"] == "base.txt"));
        assert!(!subjects.iter().any(|s| s["name"] == "provenance.json"));
    }

    // A tar output holds them too, after the image's files.
    let tar = env.path("rootfs.tar");
    env.ok(&[
        "build",
        "-q",
        "--sbom=true",
        "-o",
        &format!("type=tar,dest={}", s(&tar)),
        s(&ctx),
    ]);
    let listed = rbuild_archive::testutil::list(std::fs::File::open(&tar).unwrap()).unwrap();
    let last = listed.last().unwrap();
    assert_eq!(last.name_lossy(), "sbom.spdx.json");
    assert_eq!((last.mode, last.uid), (0o600, 0));
    let statement: Value = serde_json::from_slice(&last.data).unwrap();
    assert_eq!(statement["predicateType"], SPDX);
    assert_valid("spdx-2.3.json", &statement["predicate"]);
    assert!(listed
        .iter()
        .any(|e| e.name_lossy() == "var/lib/dpkg/status"));
    assert!(!listed.iter().any(|e| e.name_lossy() == "provenance.json"));
}

#[test]
fn what_cannot_hold_or_make_attestations_is_refused() {
    let env = Env::new();
    let ctx = env.context(
        "ctx",
        &[("Dockerfile", "FROM scratch\nCOPY a /\n"), ("a", "a")],
    );
    let docker = format!("type=docker,dest={}", s(&env.path("d.tar")));
    for (args, says) in [
        (
            vec!["--sbom=true", "-o", docker.as_str()],
            "docker exporter cannot hold attestations",
        ),
        (
            vec!["--sbom=generator=docker/buildkit-syft-scanner"],
            "generator=docker/buildkit-syft-scanner is not supported",
        ),
        (vec!["--attest", "type=vex"], "unknown attestation type"),
        (vec!["--provenance=mode=most"], "invalid mode="),
    ] {
        let mut all = vec!["build", "-q"];
        all.extend_from_slice(&args);
        all.push(s(&ctx));
        let out = env.run(&all);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
    }
    // Attestations need OCI media types (as BuildKit): refused before anything is built.
    let out = env.run(&[
        "build",
        "-q",
        "--provenance=true",
        "-o",
        &format!(
            "type=oci,dest={},oci-mediatypes=false",
            s(&env.path("o.tar"))
        ),
        s(&ctx),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot export attestations with oci-mediatypes=false"),
        "{}",
        stderr(&out)
    );
}
