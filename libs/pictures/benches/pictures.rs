//! Drawing the pictures that go to Slack: `cargo bench -p pictures --bench pictures`.
//! The budgets: a chart PNG in at most 50 ms, a flamegraph preview of 65,536 nodes in
//! at most 200 ms.

use criterion::{Criterion, criterion_group, criterion_main};
use std::collections::BTreeMap;

use pictures::{
    chart::{Baseline, Chart, Marker, Panel},
    flamegraph::Preview,
};

const END: i64 = 1_764_770_400;

/// A two-panel chart of `n` points per panel over 30 minutes, with a band, the alert and a change.
fn chart(n: i64) -> Chart {
    let panel = |title: &str| Panel {
        title: title.into(),
        unit: Some("cores".into()),
        points: (0..n)
            .map(|i| {
                (
                    END - 1800 + i * 1800 / n,
                    0.4 + ((i * 7919) % 100) as f64 / 60.0,
                )
            })
            .collect(),
        baseline: Some(Baseline {
            mean: 0.5,
            low: 0.4,
            high: 0.7,
        }),
    };
    Chart {
        caption: "HighCPU · checkout · 13:30 – 14:00 UTC".into(),
        window: (END - 1800, END),
        alert_at: Some(END - 300),
        panels: vec![panel("cpu"), panel("cpu throttled")],
        markers: vec![Marker {
            at: END - 420,
            label: "deploy 1.4.2".into(),
        }],
    }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("chart");
    group.sample_size(20);
    for n in [3, 120, 3000] {
        let drawn = chart(n);
        group.bench_function(format!("png_2_panels_{n}_points"), |b| {
            b.iter(|| drawn.png().expect("drawn"))
        });
    }
    let drawn = chart(120);
    group.bench_function("svg_2_panels_120_points", |b| {
        b.iter(|| drawn.svg().expect("drawn"))
    });
    group.finish();

    let mut group = c.benchmark_group("flamegraph_preview");
    group.sample_size(10);
    let stacks = wide_profile();
    group.bench_function("png_65536_leaves", |b| {
        b.iter(|| {
            Preview {
                title: "CPU · checkout",
                stacks: &stacks,
                baseline: None,
            }
            .png()
            .expect("drawn")
        })
    });
    let baseline: BTreeMap<String, u64> =
        stacks.iter().map(|(k, v)| (k.clone(), v % 7 + 1)).collect();
    group.bench_function("diff_png_65536_leaves", |b| {
        b.iter(|| {
            Preview {
                title: "CPU · checkout vs baseline",
                stacks: &stacks,
                baseline: Some(&baseline),
            }
            .png()
            .expect("drawn")
        })
    });
    group.finish();
}

/// 16⁴ = 65,536 distinct leaf frames under 4,368 inner ones (69,904 nodes), uneven weights.
fn wide_profile() -> BTreeMap<String, u64> {
    let mut stacks = BTreeMap::new();
    for i in 0..65_536_u64 {
        let (a, b, c, d) = (i >> 12, (i >> 8) & 15, (i >> 4) & 15, i & 15);
        stacks.insert(
            format!("main;service::handler_{a};module_{b}::work;crate::inner_{c}::leaf_{d}"),
            1 + (i * 2_654_435_761) % 97,
        );
    }
    stacks
}

criterion_group!(benches, bench);
criterion_main!(benches);
