use super::*;

fn row(service: &str, trace_id: &str) -> SpanRow {
    SpanRow {
        service_name: service.to_owned(),
        trace_id: trace_id.to_owned(),
        ..SpanRow::default()
    }
}

#[test]
fn the_decision_is_opentelemetrys() {
    use opentelemetry::trace::{SpanKind, TraceId};
    use opentelemetry_sdk::trace::{Sampler, SamplingDecision, ShouldSample as _};
    for rate in [0.0, 0.01, 0.1, 0.5, 0.9] {
        let sampler = Sampler::TraceIdRatioBased(rate);
        for n in 0u128..2000 {
            let id = n.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835);
            let otel = sampler
                .should_sample(None, TraceId::from(id), "x", &SpanKind::Server, &[], &[])
                .decision
                == SamplingDecision::RecordAndSample;
            assert_eq!(
                keeps_trace(&format!("{id:032x}"), rate),
                otel,
                "{id:032x} at {rate}"
            );
        }
    }
}

#[test]
fn the_rate_keeps_that_share_of_traces_and_whole_traces_only() {
    let kept = (0u64..10_000)
        .filter(|n| {
            keeps_trace(
                &format!("{:032x}", n.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
                0.1,
            )
        })
        .count();
    assert!((900..1100).contains(&kept), "{kept} of 10000 at 10%");
    let id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let sampler = Sampler::new(0.5, BTreeMap::from([("noisy".to_owned(), 0.0)]));
    let mut rows = vec![row("checkout", id), row("cart", id), row("noisy", id)];
    sampler.retain(&mut rows, Utc::now());
    let services: Vec<_> = rows.iter().map(|row| row.service_name.as_str()).collect();
    let kept = keeps_trace(id, 0.5);
    assert_eq!(
        services,
        if kept {
            vec!["checkout", "cart"]
        } else {
            vec![]
        },
        "every service at the same rate keeps the same trace"
    );
}

#[test]
fn trace_all_keeps_everything_of_one_service_until_it_ends() {
    let now = Utc::now();
    let sampler = Sampler::new(0.0, BTreeMap::new());
    sampler.trace_all("checkout", now + chrono::Duration::seconds(120));
    sampler.trace_all("checkout", now + chrono::Duration::seconds(60));
    let mut rows = vec![row("checkout", "01"), row("cart", "02")];
    assert_eq!(sampler.retain(&mut rows, now), 1);
    assert_eq!(rows[0].service_name, "checkout");
    assert_eq!(
        sampler.traced_until("checkout", now),
        Some(now + chrono::Duration::seconds(120)),
        "the later end wins"
    );
    let mut later = vec![row("checkout", "01")];
    assert_eq!(
        sampler.retain(&mut later, now + chrono::Duration::seconds(121)),
        1
    );
}
