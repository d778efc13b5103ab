use proptest::prelude::*;
use serde_json::json;

use std::collections::BTreeMap;

use super::{flamebearer::*, *};

fn folded(lines: &[(&str, u64)]) -> Folded {
    lines
        .iter()
        .map(|(stack, value)| ((*stack).to_owned(), *value))
        .collect()
}

#[test]
fn folded_text_reads_and_says_what_is_wrong() {
    let read = parse_folded("main;a 60\nmain;b 30\n\nmain 10\nmain;a 5\n").unwrap();
    assert_eq!(
        read,
        folded(&[("main", 10), ("main;a", 65), ("main;b", 30)])
    );
    assert_eq!(total(&read), 105);
    assert_eq!(
        parse_folded("main;a 60\nmain;b lots").unwrap_err(),
        FoldedError {
            line: 2,
            reason: "the sample count is not a whole number".into()
        }
    );
    assert_eq!(parse_folded("justastack").unwrap_err().line, 1);
    assert_eq!(
        parse_folded("main 3\n 2\n").unwrap(),
        folded(&[("main", 3), (UNKNOWN_STACK, 2)]),
        "py-spy's unattributed samples"
    );
}

#[test]
fn a_render_flamebearer_decodes_into_its_stacks() {
    let render = json!({
        "names": ["total", "main", "a", "b"],
        "levels": [[0, 100, 0, 0], [0, 100, 10, 1], [10, 60, 60, 2, 0, 30, 30, 3]],
        "numTicks": 100, "maxSelf": 60
    });
    let decoded = Flamegraph::from_json(&render).unwrap().to_folded().unwrap();
    assert_eq!(
        decoded,
        folded(&[("main", 10), ("main;a", 60), ("main;b", 30)])
    );

    // The Connect API's protojson: the same layout, int64s as strings.
    let connect = json!({
        "names": ["total", "main", "a", "b"],
        "levels": [{"values": ["0", "100", "0", "0"]}, {"values": ["0", "100", "10", "1"]},
                   {"values": ["10", "60", "60", "2", "0", "30", "30", "3"]}],
        "total": "100", "maxSelf": "60"
    });
    assert_eq!(
        Flamegraph::from_json(&connect)
            .unwrap()
            .to_folded()
            .unwrap(),
        decoded
    );
}

#[test]
fn broken_flamegraphs_are_errors_not_panics() {
    let ragged = json!({"names": ["total"], "levels": [[0, 1, 0]]});
    assert!(matches!(
        Flamegraph::from_json(&ragged).unwrap().to_folded(),
        Err(FlamegraphError::Ragged { level: 0, len: 3 })
    ));
    let unknown = json!({"names": ["total"], "levels": [[0, 1, 0, 7]]});
    assert!(matches!(
        Flamegraph::from_json(&unknown).unwrap().to_folded(),
        Err(FlamegraphError::UnknownName { index: 7, .. })
    ));
    let negative = json!({"names": ["total"], "levels": [[0, 1, 5, 0]]});
    assert!(matches!(
        Flamegraph::from_json(&negative).unwrap().to_folded(),
        Err(FlamegraphError::BadValue { level: 0 })
    ));
    let not_numbers = json!({"names": ["total"], "levels": [{"values": ["x"]}]});
    assert!(Flamegraph::from_json(&not_numbers).is_err());
    assert!(Flamegraph::from_json(&json!({"levels": []})).is_err());
}

#[test]
fn top_functions_and_growth_against_the_baseline() {
    let baseline = folded(&[("main;handle;json", 50), ("main;handle;db", 50)]);
    let current = folded(&[
        ("main;handle;json", 20),
        ("main;handle;db", 20),
        ("main;handle;regex", 50),
        ("main;gc;regex", 10),
    ]);
    let top = top_functions(&current, 2);
    assert_eq!(top[0].name, "regex");
    assert_eq!(top[0].self_value, 60);
    assert!((top[0].self_share - 0.6).abs() < 1e-12);
    assert_eq!(top[1].name, "db", "ties ordered by name");

    let growth = grown(&current, &baseline, 5, 0.01);
    assert_eq!(growth.len(), 1, "json and db shrank: {growth:?}");
    assert_eq!(growth[0].name, "regex");
    assert_eq!(growth[0].baseline_share, 0.0);
    assert!((growth[0].current_share - 0.6).abs() < 1e-12);
}

fn stacks() -> impl Strategy<Value = Folded> {
    let frame = prop::sample::select(vec!["main", "a", "b", "c", "d", "regex", "gc"]);
    let stack = prop::collection::vec(frame, 1..6).prop_map(|frames| frames.join(";"));
    prop::collection::btree_map(stack, 1u64..1_000_000, 1..60)
}

proptest! {
    #[test]
    fn decoding_an_encoded_flamegraph_gives_back_the_stacks(folded in stacks()) {
        let flamegraph = Flamegraph::from_folded(&folded);
        prop_assert_eq!(flamegraph.to_folded().unwrap(), folded);
    }

    #[test]
    fn top_functions_match_a_count_over_every_sample(folded in stacks()) {
        // Independent: every stack's leaf, counted by a plain scan of the text form.
        let mut expected = BTreeMap::<String, u64>::new();
        for line in to_text(&folded).lines() {
            let (stack, value) = line.rsplit_once(' ').unwrap();
            let leaf = stack.split(';').next_back().unwrap();
            *expected.entry(leaf.to_owned()).or_default() += value.parse::<u64>().unwrap();
        }
        let top = top_functions(&folded, usize::MAX);
        prop_assert_eq!(top.len(), expected.len());
        for share in &top {
            prop_assert_eq!(share.self_value, expected[&share.name]);
        }
        prop_assert!(top.windows(2).all(|pair| pair[0].self_value >= pair[1].self_value));
        let shares: f64 = top.iter().map(|share| share.self_share).sum();
        prop_assert!((shares - 1.0).abs() < 1e-9);
    }

    #[test]
    fn any_levels_decode_or_fail_without_panicking(
        names in prop::collection::vec("[a-z]{1,4}", 0..5),
        levels in prop::collection::vec(prop::collection::vec(-3i64..200, 0..17), 0..5),
    ) {
        let _ = Flamegraph { names, levels }.to_folded();
    }
}
