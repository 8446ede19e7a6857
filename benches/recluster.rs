//! The whole recluster (neighbour graph, diffusion embedding, k selection, linfa k-means,
//! labels, quotes) on synthetic theme data: `n` unit vectors in 384 dimensions around `themes`
//! random centres, with noise so that neighbouring themes overlap like real ones do.
//!
//! `cargo bench --bench recluster` reports 10k and 100k segments, k chosen automatically and k
//! given. Without `--bench` (as `cargo test --all-targets` runs it) it does a 2k smoke run.
//! `--dump DIR` also writes each data set as raw little-endian f32 (`n × 384`) for
//! `benches/compare_kmeans.sh`, which times scikit-learn's KMeans on the same vectors and k.

use std::time::Instant;

use ndarray::Array2;
use rand_xoshiro::rand_core::{RngCore, SeedableRng};
use rand_xoshiro::Xoshiro256Plus;
use verbatim::themes::recluster::{recluster, ReclusterOptions};

const DIM: usize = 384;

/// `n` unit vectors around `themes` centres; returns them and each one's true theme.
fn synthetic(n: usize, themes: usize, seed: u64) -> (Array2<f32>, Vec<usize>) {
    let mut rng = Xoshiro256Plus::seed_from_u64(seed);
    let mut gauss = move || {
        // Box–Muller from two uniforms.
        let u1 = ((rng.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
        let u2 = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
    };
    let centres: Vec<Vec<f32>> = (0..themes).map(|_| (0..DIM).map(|_| gauss()).collect()).collect();
    let mut x = Array2::<f32>::zeros((n, DIM));
    let mut truth = Vec::with_capacity(n);
    for (i, mut row) in x.outer_iter_mut().enumerate() {
        // Half the points spread evenly, half skewed towards the first themes: a few big themes
        // and a long tail, as in real feedback.
        let t = if i % 2 == 0 {
            (i / 2) % themes
        } else {
            let u = ((i * 7919) % n * themes / n).min(themes - 1);
            u * u / themes
        };
        truth.push(t);
        for (d, v) in row.iter_mut().enumerate() {
            *v = centres[t][d] + 2.0 * gauss();
        }
        let norm = row.dot(&row).sqrt();
        row /= norm;
    }
    (x, truth)
}

fn main() {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).with_writer(std::io::stderr).init();
    let args: Vec<String> = std::env::args().collect();
    let bench = args.iter().any(|a| a == "--bench");
    let dump = args.iter().position(|a| a == "--dump").and_then(|i| args.get(i + 1)).map(std::path::PathBuf::from);
    let sizes: &[(usize, usize)] = if bench { &[(10_000, 77), (100_000, 100)] } else { &[(2_000, 20)] };
    for &(n, themes) in sizes {
        let (x, truth) = synthetic(n, themes, 7);
        if let Some(dir) = &dump {
            std::fs::create_dir_all(dir).unwrap();
            let bytes: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
            std::fs::write(dir.join(format!("vectors-{n}.f32")), bytes).unwrap();
            let labels: Vec<String> = truth.iter().map(usize::to_string).collect();
            std::fs::write(dir.join(format!("truth-{n}.txt")), labels.join("\n")).unwrap();
        }
        let texts: Vec<String> = truth.iter().map(|t| format!("segment about topic{t}")).collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let true_k = truth.iter().collect::<std::collections::HashSet<_>>().len();
        for k in [None, Some(true_k)] {
            let opts = ReclusterOptions { k, k_range: None, seed: 42 };
            let started = Instant::now();
            let own: Vec<usize> = (0..refs.len()).collect(); // each segment its own response
            let outcome = recluster(&refs, x.view(), &own, &Default::default(), &opts, &mut |_| {}).unwrap();
            let seconds = started.elapsed().as_secs_f64();
            let predicted: Vec<usize> = outcome.assignments.iter().map(|a| a.0 as usize).collect();
            let nmi = verbatim::themes::eval::nmi(&truth, &predicted);
            println!(
                "recluster n={n} k={} ({}): {seconds:.2} s, NMI {nmi:.4} vs the planted themes",
                outcome.model.k,
                if k.is_some() { "given" } else { "automatic, selection included" }
            );
        }
    }
}
