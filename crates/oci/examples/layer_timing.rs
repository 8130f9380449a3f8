//! Times the layer tar paths: unpacking a (gzip) layer blob into a snapshot directory, and
//! writing a 25k-file snapshot as a layer tar. Prints each median and the diff_ids, which
//! must not change between versions of the code for the same inputs.
//!
//! `cargo run --release -p rbuild-oci --example layer_timing -- LAYER.tar.gz SCRATCH RUNS`
//! (run as root, so that the layers keep their owners). For debian:bookworm-slim's layer the
//! diff_ids printed were, before and after the layer code moved to `rbuild-archive`:
//! unpacked `sha256:d20239a9…`, re-written `sha256:fd8bf052…`, 25k files `sha256:2efe2b74…`.

use std::fs;
use std::path::Path;
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn set_mtime(p: &Path, t: i64) {
    rbuild_archive::testutil::set_mtime(p, t).expect("set mtime");
}

/// 25,000 files of 1–4 KiB in 250 directories, every mtime fixed.
fn make_tree(root: &Path) {
    fs::create_dir_all(root).expect("mkdir");
    for d in 0..250 {
        let dir = root.join(format!("dir{d:03}"));
        fs::create_dir(&dir).expect("mkdir");
        for f in 0..100 {
            let p = dir.join(format!("file{f:03}.txt"));
            let len = 1024 + (d * 100 + f) % 3072;
            let data: Vec<u8> = (0..len).map(|i| ((i * 7 + d + f) % 251) as u8).collect();
            fs::write(&p, data).expect("write");
            set_mtime(&p, 1_600_000_000);
        }
        set_mtime(&dir, 1_600_000_000);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (layer, scratch, runs) = (
        Path::new(&args[1]),
        Path::new(&args[2]),
        args[3].parse::<usize>().expect("runs"),
    );
    let _ = fs::remove_dir_all(scratch);
    fs::create_dir_all(scratch).expect("scratch");

    let privileges = rbuild_test_support::privileges();
    let mut unpack_times = Vec::new();
    let mut unpacked_id = None;
    for i in 0..runs {
        let dest = scratch.join(format!("unpacked{i}"));
        fs::create_dir(&dest).expect("dest");
        let file = std::io::BufReader::new(fs::File::open(layer).expect("layer"));
        let t = Instant::now();
        let d = rbuild_oci::unpack(file, &dest, &privileges).expect("unpack");
        unpack_times.push(t.elapsed().as_secs_f64());
        unpacked_id = Some(d.diff_id);
        if i + 1 < runs {
            fs::remove_dir_all(&dest).expect("clean");
        }
    }
    let unpacked = scratch.join(format!("unpacked{}", runs - 1));
    let mut rewritten = Vec::new();
    let rewrite = rbuild_oci::write_tar(&unpacked, &mut rewritten).expect("rewrite");

    let tree = scratch.join("tree");
    make_tree(&tree);
    let mut export_times = Vec::new();
    let mut export_id = None;
    for _ in 0..runs {
        let out = fs::File::create(scratch.join("tree.tar")).expect("out");
        let t = Instant::now();
        let d = rbuild_oci::write_tar(&tree, std::io::BufWriter::new(out)).expect("write");
        export_times.push(t.elapsed().as_secs_f64());
        export_id = Some(d.diff_id);
    }
    println!(
        "unpack {}: median {:.3}s of {runs} {:?}",
        layer.display(),
        median(unpack_times.clone()),
        unpack_times
    );
    println!(
        "export 25k files: median {:.3}s of {runs} {:?}",
        median(export_times.clone()),
        export_times
    );
    println!("unpacked layer diff_id {}", unpacked_id.expect("ran"));
    println!("re-written unpacked layer diff_id {}", rewrite.diff_id);
    println!("25k-file layer diff_id {}", export_id.expect("ran"));
    let _ = fs::remove_dir_all(scratch);
}
