use proptest::prelude::*;

use super::*;

fn stacks(lines: &[(&str, u64)]) -> Vec<StackCount> {
    lines
        .iter()
        .map(|(stack, count)| StackCount {
            frames: stack.split(';').map(str::to_owned).collect(),
            count: *count,
        })
        .collect()
}

/// A profile as Go writes one: inlined functions share a location, innermost line first.
fn go_like() -> Profile {
    let strings: Vec<String> = [
        "",
        "samples",
        "count",
        "cpu",
        "nanoseconds",
        "main.main",
        "main.handle",
        "strings.Index",
        "runtime.goexit",
    ]
    .map(str::to_owned)
    .to_vec();
    let function = |id: u64, name: i64| Function {
        id,
        name,
        system_name: name,
        ..Function::default()
    };
    let line = |function_id: u64| Line {
        function_id,
        line: 10,
        column: 0,
    };
    Profile {
        sample_type: vec![
            ValueType { r#type: 1, unit: 2 },
            ValueType { r#type: 3, unit: 4 },
        ],
        sample: vec![
            Sample {
                // leaf first: [handle, strings.Index inlined into it], main, goexit
                location_id: vec![2, 1, 3],
                value: vec![7, 70_000_000],
                label: Vec::new(),
            },
            Sample {
                location_id: vec![1, 3],
                value: vec![3, 30_000_000],
                label: Vec::new(),
            },
            Sample {
                location_id: vec![9],
                value: vec![1, 10_000_000],
                label: Vec::new(),
            },
        ],
        location: vec![
            Location {
                id: 1,
                line: vec![line(1)],
                ..Location::default()
            },
            Location {
                id: 2,
                line: vec![line(3), line(2)],
                ..Location::default()
            },
            Location {
                id: 3,
                line: vec![line(4)],
                ..Location::default()
            },
            Location {
                id: 9,
                address: 0xdead,
                ..Location::default()
            },
        ],
        function: vec![
            function(1, 5),
            function(2, 6),
            function(3, 7),
            function(4, 8),
        ],
        string_table: strings,
        period: 10_000_000,
        period_type: Some(ValueType { r#type: 3, unit: 4 }),
        duration_nanos: 1_000_000_000,
        ..Profile::default()
    }
}

fn gz(profile: &Profile) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &profile.encode_to_vec()).unwrap();
    gz.finish().unwrap()
}

#[test]
fn a_go_profile_folds_root_first_with_inlined_frames_in_order() {
    let decoded = decode(&gz(&go_like()), 1 << 20, None).unwrap();
    assert_eq!(decoded.sample_type, "cpu", "CPU time is preferred");
    assert_eq!(decoded.unit, "nanoseconds");
    assert_eq!(decoded.duration_nanos, 1_000_000_000);
    let expected: Folded = [
        (
            "runtime.goexit;main.main;main.handle;strings.Index",
            70_000_000,
        ),
        ("runtime.goexit;main.main", 30_000_000),
        ("0xdead", 10_000_000),
    ]
    .into_iter()
    .map(|(stack, value)| (stack.to_owned(), value))
    .collect();
    assert_eq!(decoded.folded, expected);
    // Another sample type on request; raw (not gzipped) protobuf reads the same.
    let samples = decode(&go_like().encode_to_vec(), 1 << 20, Some("samples")).unwrap();
    assert_eq!(samples.unit, "count");
    assert_eq!(crate::folded::total(&samples.folded), 11);
}

#[test]
fn bad_profiles_say_what_is_wrong() {
    assert!(matches!(
        decode(b"\x1f\x8bnot really gzip", 1 << 20, None),
        Err(PprofError::Gzip(_))
    ));
    assert!(matches!(
        decode(b"<html>sign in</html>", 1 << 20, None),
        Err(PprofError::Protobuf(_))
    ));
    // A small gzip that inflates past the limit is refused without inflating it all.
    let zeros = {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut gz, &vec![0u8; 8 << 20]).unwrap();
        gz.finish().unwrap()
    };
    assert!(zeros.len() < 64 << 10);
    assert_eq!(
        decode(&zeros, 1 << 20, None),
        Err(PprofError::TooLarge { limit: 1 << 20 })
    );
    let mut broken = go_like();
    broken.function[0].name = 99;
    assert_eq!(
        decode(&broken.encode_to_vec(), 1 << 20, None)
            .unwrap_err()
            .to_string(),
        "the profile is inconsistent: string index 99 is out of range"
    );
    let mut broken = go_like();
    broken.sample[0].location_id.push(42);
    assert!(matches!(
        decode(&broken.encode_to_vec(), 1 << 20, None),
        Err(PprofError::Inconsistent(_))
    ));
    assert_eq!(
        decode(&go_like().encode_to_vec(), 1 << 20, Some("alloc_space")),
        Err(PprofError::NoSuchSampleType("alloc_space".into()))
    );
    assert!(matches!(
        decode(&Profile::default().encode_to_vec(), 1 << 20, None),
        Err(PprofError::Inconsistent(_))
    ));
}

#[test]
fn what_we_encode_reads_back() {
    let written = encode(
        &stacks(&[("main;serve;parse", 5), ("main;serve", 2), ("main;a;b", 1)]),
        10_000_000,
        1,
        2_000_000_000,
    );
    let read = decode(&written, 1 << 20, None).unwrap();
    assert_eq!(read.sample_type, "cpu");
    assert_eq!(read.folded["main;serve;parse"], 50_000_000);
    assert_eq!(read.folded["main;serve"], 20_000_000);
    let counts = decode(&written, 1 << 20, Some("samples")).unwrap();
    assert_eq!(crate::folded::total(&counts.folded), 8);
}

proptest! {
    #[test]
    fn decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode(&bytes, 1 << 16, None);
    }

    #[test]
    fn encode_then_decode_is_the_identity(
        lines in proptest::collection::btree_map("[a-z]{1,3}(;[a-z]{1,3}){0,4}", 1u64..1000, 1..20)
    ) {
        let input: Vec<StackCount> = lines
            .iter()
            .map(|(stack, count)| StackCount {
                frames: stack.split(';').map(str::to_owned).collect(),
                count: *count,
            })
            .collect();
        let read = decode(&encode(&input, 1, 0, 0), 1 << 20, Some("samples")).unwrap();
        prop_assert_eq!(read.folded, lines);
    }
}

#[test]
fn a_hostile_profile_is_bounded_after_decompression() {
    // Deep, long-named, and endlessly varied: small gzipped, large decoded.
    let deep = StackCount {
        frames: (0..5000).map(|i| format!("f{i}")).collect(),
        count: 1,
    };
    let long = StackCount {
        frames: vec!["x".repeat(100_000)],
        count: 1,
    };
    let varied: Vec<StackCount> = (0..40_000)
        .map(|i| StackCount {
            frames: vec![format!("{i}-{}", "y".repeat(500))],
            count: 1,
        })
        .collect();
    let stacks: Vec<StackCount> = [deep, long].into_iter().chain(varied).collect();
    let bytes = encode(&stacks, 10_000_000, 0, 1_000_000_000);
    let decoded = decode(&bytes, 256 << 20, Some("samples")).unwrap();
    let deepest = decoded
        .folded
        .keys()
        .find(|stack| stack.starts_with("f0;"))
        .unwrap();
    assert_eq!(deepest.split(';').count(), limits::STACK_DEPTH + 1);
    assert!(
        deepest.ends_with(";[… 4744 more frames]"),
        "{}",
        &deepest[deepest.len() - 40..]
    );
    let longest = decoded
        .folded
        .keys()
        .map(|stack| stack.chars().count())
        .max()
        .unwrap();
    assert!(longest <= limits::STACK_DEPTH * 8 + 40, "{longest}");
    assert!(decoded.folded.keys().all(|stack| {
        stack
            .split(';')
            .all(|frame| frame.chars().count() <= limits::FRAME_NAME)
    }),);
    let stored: usize = decoded.folded.keys().map(String::len).sum();
    assert!(
        stored <= limits::FOLDED_BYTES + OTHER_STACKS.len(),
        "{stored}"
    );
    // Nothing is lost from the totals: what did not fit is counted as other stacks.
    assert_eq!(decoded.folded.values().sum::<u64>(), stacks.len() as u64);
    assert!(
        decoded.folded.get(OTHER_STACKS).is_some_and(|n| *n > 0),
        "{stored} bytes in {} stacks: {:?}",
        decoded.folded.len(),
        decoded
            .folded
            .iter()
            .map(|(k, v)| (k.chars().take(30).collect::<String>(), *v))
            .collect::<Vec<_>>()
    );
}
