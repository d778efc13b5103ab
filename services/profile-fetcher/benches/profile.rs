//! Decoding plus top-N plus diff on a large profile: 200,000 distinct stacks, as Pyroscope would
//! send it and as folded text; and drawing the interactive and differential SVGs.
//!
//! `cargo bench -p profile-fetcher --bench profile`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use profile_fetcher::{
    flamegraph,
    profile::{self, Folded, flamebearer::Flamegraph},
};

/// Deterministic stacks: depth 4–19 over 5,000 function names (a xorshift, so no dependency).
fn large_profile(stacks: usize, seed: u64) -> Folded {
    let mut state = seed;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut folded = Folded::new();
    while folded.len() < stacks {
        let depth = 4 + (next() % 16) as usize;
        let frames: Vec<String> = (0..depth)
            .map(|level| format!("pkg{}::fn{}", level, next() % 5_000))
            .collect();
        folded.insert(frames.join(";"), 1 + next() % 1_000);
    }
    folded
}

fn benchmarks(c: &mut Criterion) {
    let current = large_profile(200_000, 0x9e37_79b9_7f4a_7c15);
    let baseline = large_profile(200_000, 0x2545_f491_4f6c_dd1d);
    let flamegraph = Flamegraph::from_folded(&current);
    let nodes: usize = flamegraph.levels.iter().map(|level| level.len() / 4).sum();
    let json = serde_json::json!({"names": flamegraph.names, "levels": flamegraph.levels});
    let text = profile::to_text(&current);
    let shape = format!(
        "profile: {} stacks, {nodes} flamegraph nodes, {} names, {} KiB folded\n",
        current.len(),
        flamegraph.names.len(),
        text.len() / 1024
    );
    let _ = std::io::Write::write_all(&mut std::io::stderr(), shape.as_bytes());

    let mut group = c.benchmark_group("profile");
    group.sample_size(10);
    group.throughput(Throughput::Elements(nodes as u64));
    group.bench_function("decode_flamebearer_json", |b| {
        b.iter(|| {
            Flamegraph::from_json(&json)
                .and_then(|flamegraph| flamegraph.to_folded())
                .map(|folded| folded.len())
        })
    });
    group.bench_function("decode_top10_and_diff", |b| {
        b.iter(|| {
            let folded = flamegraph.to_folded().unwrap_or_default();
            let top = profile::top_functions(&folded, 10);
            let grown = profile::grown(&folded, &baseline, 10, 0.001);
            (top.len(), grown.len())
        })
    });
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("parse_folded_text", |b| {
        b.iter(|| profile::parse_folded(&text).map(|folded| folded.len()))
    });
    group.finish();

    // Drawing: inferno's interactive SVG and the differential one, on 20,000 stacks.
    let drawn = large_profile(20_000, 0x9e37_79b9_7f4a_7c15);
    let drawn_baseline = large_profile(20_000, 0x2545_f491_4f6c_dd1d);
    let mut group = c.benchmark_group("flamegraph_svg");
    group.sample_size(10);
    group.throughput(Throughput::Elements(drawn.len() as u64));
    group.bench_function("svg_20k_stacks", |b| {
        b.iter(|| flamegraph::svg(&drawn, "bench", "samples").map(|svg| svg.len()))
    });
    group.bench_function("diff_svg_20k_stacks", |b| {
        b.iter(|| {
            flamegraph::diff_svg(&drawn_baseline, &drawn, "bench", "samples").map(|svg| svg.len())
        })
    });
    group.finish();
}

criterion_group!(benches, benchmarks);
criterion_main!(benches);
