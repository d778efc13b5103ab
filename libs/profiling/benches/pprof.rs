//! Decoding a large pprof profile (what "Profile now" reads from a busy service) into folded
//! stacks, plus the top functions: `cargo bench -p profiling --bench pprof`.

use criterion::{Criterion, criterion_group, criterion_main};
use profiling::pprof::{StackCount, decode, encode};

/// `n` distinct stacks over a few hundred functions, 8 to 40 frames deep.
fn stacks(n: usize) -> Vec<StackCount> {
    (0..n)
        .map(|i| {
            let depth = 8 + i % 33;
            StackCount {
                frames: (0..depth)
                    .map(|level| {
                        format!(
                            "crate::module_{}::function_{}",
                            level % 17,
                            (i * 7 + level * 13) % 401
                        )
                    })
                    .collect(),
                count: 1 + (i % 50) as u64,
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("pprof");
    group.sample_size(10);
    for n in [10_000, 200_000] {
        let bytes = encode(&stacks(n), 10_000_000, 0, 10_000_000_000);
        eprintln!("pprof/{n} stacks: {} bytes gzipped", bytes.len());
        group.bench_function(format!("decode+top/{n}_stacks"), |b| {
            b.iter(|| {
                let decoded = decode(&bytes, 512 << 20, None).expect("decodes");
                profiling::folded::top_functions(&decoded.folded, 10).len()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
