# Helpers shared by the benchmark scripts; source it (bash): . "$(dirname "$0")/../lib.sh"

# mirror_config FILE: an rbuild config that takes docker.io images from the local registry
# (127.0.0.1:5000, plain http), as ../shared/bench/setup.sh fills it.
mirror_config() {
  cat > "$1" <<'TOML'
[registry."docker.io"]
mirrors = ["127.0.0.1:5000"]
[registry."127.0.0.1:5000"]
http = true
TOML
}

# text_tree DIR N: N text files of 200-2000 random words (the same files every time) in
# DIR/dNN/sNN/fNNNNN.txt, 50 x 7 directories.
text_tree() {
  python3 - "$1" "$2" <<'PY'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(7)
words = [("w%d" % i).encode() for i in range(5000)]
for i in range(n):
    d = os.path.join(root, "d%02d" % (i % 50), "s%02d" % (i % 7))
    os.makedirs(d, exist_ok=True)
    body = b" ".join(rng.choice(words) for _ in range(rng.randint(200, 2000)))
    with open(os.path.join(d, "f%05d.txt" % i), "wb") as f:
        f.write(body)
PY
}

# rbuild_and_fixture_busybox REPO: sets RBUILD (the release build of REPO when unset) and
# BUSYBOX (the test fixtures' busybox OCI layout, built offline from busybox-static).
rbuild_and_fixture_busybox() {
  local target=${CARGO_TARGET_DIR:-$1/target}
  if [ -z "${RBUILD:-}" ]; then
    (cd "$1" && cargo build --release -q -p rbuild)
    RBUILD=$target/release/rbuild
  fi
  (cd "$1" && cargo build -q -p rbuild-test-support --bin rbuild-fixture)
  BUSYBOX=$("$target/debug/rbuild-fixture" busybox)
}
