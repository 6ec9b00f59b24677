//! Data-parallel training over MPI (`examples/ddp_mpi.rs`): two ranks, each on its shard
//! of an odd-sized batch, end with the parameters of one process trained on the whole
//! batch, to 1e-12 in f64, and with identical parameters on both ranks.
//!
//! Needs the `mpi` feature and OpenMPI (`bash scripts/install-openmpi.sh`):
//!
//! ```sh
//! cargo test --release --features mpi --test ddp_mpi
//! ```
#![cfg(feature = "mpi")]

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long the two-rank run may take before the test kills it (a rank waiting forever
/// on a collective the other never reaches would otherwise hang CI).
const TIMEOUT: Duration = Duration::from_secs(300);

#[test]
fn two_ranks_match_one_process_on_the_whole_batch() {
    let example = build_example();
    let mut child = Command::new("mpirun")
        .args(["-n", "2"])
        .arg(&example)
        .args(["--quick", "--verify"])
        // OpenMPI refuses to run as root without both of these, and more ranks than
        // cores (a one-core CI machine) without the third; as variables rather than
        // flags, they are harmless where they are not needed.
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("OMPI_MCA_rmaps_base_oversubscribe", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mpirun runs (install OpenMPI with scripts/install-openmpi.sh)");

    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("mpirun can be waited for") {
            break status;
        }
        if start.elapsed() > TIMEOUT {
            child.kill().expect("mpirun can be killed");
            panic!("mpirun -n 2 {} took over {TIMEOUT:?}", example.display());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (mut stdout, mut stderr) = (String::new(), String::new());
    child
        .stdout
        .take()
        .expect("piped")
        .read_to_string(&mut stdout)
        .expect("utf-8 output");
    child
        .stderr
        .take()
        .expect("piped")
        .read_to_string(&mut stderr)
        .expect("utf-8 output");

    assert!(
        status.success(),
        "mpirun -n 2 ddp_mpi --quick --verify failed ({status}):\n{stdout}\n{stderr}"
    );
    // The batch splits unevenly, so the shares' weighting is what is tested ...
    assert!(
        stdout.contains("2 rank(s), batch 4001 rows (shards [2001, 2000])"),
        "unexpected set-up:\n{stdout}"
    );
    // ... and the comparison ran and passed (the exit status says so too).
    let verdict = stdout
        .lines()
        .find(|line| line.starts_with("verify: 2 rank(s) against one process"))
        .unwrap_or_else(|| panic!("no comparison reported:\n{stdout}\n{stderr}"));
    assert!(verdict.ends_with(": ok"), "{verdict}");
    assert!(verdict.contains("spread across ranks 0.000e0"), "{verdict}");
}

/// Builds `examples/ddp_mpi.rs` with the `mpi` feature, in the profile this test was
/// built in (so under `cargo test --release` it is usually up to date already), and
/// returns the executable's path as cargo reports it: that respects `CARGO_TARGET_DIR`
/// and any build directory layout.
fn build_example() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut build = Command::new(cargo);
    build
        .args([
            "build",
            "--example",
            "ddp_mpi",
            "--features",
            "mpi",
            "--message-format=json",
        ])
        .arg("--manifest-path")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .stderr(Stdio::inherit());
    if !cfg!(debug_assertions) {
        build.arg("--release");
    }
    let output = build.output().expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo build --example ddp_mpi --features mpi failed"
    );
    let messages = String::from_utf8(output.stdout).expect("cargo's JSON is UTF-8");
    messages
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["reason"] == "compiler-artifact" && message["target"]["name"] == "ddp_mpi")
        .find_map(|message| message["executable"].as_str().map(PathBuf::from))
        .expect("cargo reports the example's executable")
}
