//! `thawtrace scan DIR` of many one-line files against the same events in
//! one file: the cost per file must stay flat (no work per file that grows
//! with the number of files read before it). Prints the times and ratios.
//!
//! `cargo bench -p thawtrace --bench many_files` (add `-- 10000 100000`
//! for other counts; `THAWTRACE_BIN=path` times another build).

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn line(i: usize) -> String {
    format!(
        "{{\"id\":\"{i:020}\",\"timestamp\":{},\"message\":\"START RequestId: aaaaaaaa-0000-4000-8000-{i:012} Version: $LATEST\",\"logStream\":\"s{}\",\"logGroup\":\"/aws/lambda/f\"}}\n",
        1_795_853_230_000i64 + i as i64,
        i % 10
    )
}

fn scan(path: &Path) -> Duration {
    let t = Instant::now();
    let bin =
        std::env::var_os("THAWTRACE_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_thawtrace").into());
    let out = Command::new(bin)
        .args(["scan", "--format", "json"])
        .arg(path)
        .output()
        .unwrap();
    let elapsed = t.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    elapsed
}

fn main() {
    let counts: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let counts = if counts.is_empty() {
        vec![10_000, 100_000]
    } else {
        counts
    };
    let root = std::env::temp_dir().join(format!("thawtrace-many-files-{}", std::process::id()));
    println!(
        "{:>8} {:>12} {:>12} {:>10} {:>12}",
        "files", "many files", "one file", "ratio", "per file"
    );
    let mut per_file = Vec::new();
    for &n in &counts {
        let dir = root.join(format!("{n}"));
        let files = dir.join("files");
        std::fs::create_dir_all(&files).unwrap();
        let mut all = std::fs::File::create(dir.join("all.jsonl")).unwrap();
        for i in 0..n {
            let l = line(i);
            std::fs::write(files.join(format!("{i:07}.jsonl")), &l).unwrap();
            all.write_all(l.as_bytes()).unwrap();
        }
        drop(all);
        let many = scan(&files);
        let one = scan(&dir.join("all.jsonl"));
        let each = many.as_secs_f64() / n as f64;
        per_file.push(each);
        println!(
            "{n:>8} {:>11.2}s {:>11.2}s {:>9.1}x {:>10.1}µs",
            many.as_secs_f64(),
            one.as_secs_f64(),
            many.as_secs_f64() / one.as_secs_f64(),
            each * 1e6
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
    if let [first, .., last] = per_file[..] {
        println!(
            "time per file, {} files against {}: {:.2}x (1.0 is linear)",
            counts[counts.len() - 1],
            counts[0],
            last / first
        );
    }
    let _ = std::fs::remove_dir_all(&root);
}
