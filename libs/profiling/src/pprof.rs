//! pprof's protobuf profile (`perftools.profiles.Profile`, what Go's `/debug/pprof/profile`
//! answers, gzipped), both ways: [`decode`] reads one into folded stacks, [`encode`] writes the
//! samples of our own profiler as one. Pure.
//!
//! The message types are written with `prost`'s derive from `profile.proto` (field numbers as in
//! google/pprof), so no `protoc` is needed to build. Only the fields folded stacks need are read;
//! unknown fields are skipped, as protobuf requires.

use std::{collections::HashMap, fmt::Write as _, io::Read};

use prost::Message;

use crate::folded::{Folded, UNKNOWN_STACK};

/// `perftools.profiles.Profile`.
#[derive(Clone, PartialEq, Message)]
pub struct Profile {
    #[prost(message, repeated, tag = "1")]
    pub sample_type: Vec<ValueType>,
    #[prost(message, repeated, tag = "2")]
    pub sample: Vec<Sample>,
    #[prost(message, repeated, tag = "3")]
    pub mapping: Vec<Mapping>,
    #[prost(message, repeated, tag = "4")]
    pub location: Vec<Location>,
    #[prost(message, repeated, tag = "5")]
    pub function: Vec<Function>,
    #[prost(string, repeated, tag = "6")]
    pub string_table: Vec<String>,
    #[prost(int64, tag = "7")]
    pub drop_frames: i64,
    #[prost(int64, tag = "8")]
    pub keep_frames: i64,
    #[prost(int64, tag = "9")]
    pub time_nanos: i64,
    #[prost(int64, tag = "10")]
    pub duration_nanos: i64,
    #[prost(message, optional, tag = "11")]
    pub period_type: Option<ValueType>,
    #[prost(int64, tag = "12")]
    pub period: i64,
    #[prost(int64, repeated, tag = "13")]
    pub comment: Vec<i64>,
    #[prost(int64, tag = "14")]
    pub default_sample_type: i64,
}

/// `perftools.profiles.ValueType`: indices into the string table.
#[derive(Clone, Copy, PartialEq, Eq, Message)]
pub struct ValueType {
    #[prost(int64, tag = "1")]
    pub r#type: i64,
    #[prost(int64, tag = "2")]
    pub unit: i64,
}

/// `perftools.profiles.Sample`: `location_id[0]` is the leaf.
#[derive(Clone, PartialEq, Message)]
pub struct Sample {
    #[prost(uint64, repeated, tag = "1")]
    pub location_id: Vec<u64>,
    #[prost(int64, repeated, tag = "2")]
    pub value: Vec<i64>,
    #[prost(message, repeated, tag = "3")]
    pub label: Vec<Label>,
}

/// `perftools.profiles.Label`.
#[derive(Clone, Copy, PartialEq, Eq, Message)]
pub struct Label {
    #[prost(int64, tag = "1")]
    pub key: i64,
    #[prost(int64, tag = "2")]
    pub str: i64,
    #[prost(int64, tag = "3")]
    pub num: i64,
    #[prost(int64, tag = "4")]
    pub num_unit: i64,
}

/// `perftools.profiles.Mapping`.
#[derive(Clone, Copy, PartialEq, Eq, Message)]
pub struct Mapping {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(uint64, tag = "2")]
    pub memory_start: u64,
    #[prost(uint64, tag = "3")]
    pub memory_limit: u64,
    #[prost(uint64, tag = "4")]
    pub file_offset: u64,
    #[prost(int64, tag = "5")]
    pub filename: i64,
    #[prost(int64, tag = "6")]
    pub build_id: i64,
    #[prost(bool, tag = "7")]
    pub has_functions: bool,
    #[prost(bool, tag = "8")]
    pub has_filenames: bool,
    #[prost(bool, tag = "9")]
    pub has_line_numbers: bool,
    #[prost(bool, tag = "10")]
    pub has_inline_frames: bool,
}

/// `perftools.profiles.Location`: `line[0]` is the innermost of the inlined functions.
#[derive(Clone, PartialEq, Message)]
pub struct Location {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(uint64, tag = "2")]
    pub mapping_id: u64,
    #[prost(uint64, tag = "3")]
    pub address: u64,
    #[prost(message, repeated, tag = "4")]
    pub line: Vec<Line>,
    #[prost(bool, tag = "5")]
    pub is_folded: bool,
}

/// `perftools.profiles.Line`.
#[derive(Clone, Copy, PartialEq, Eq, Message)]
pub struct Line {
    #[prost(uint64, tag = "1")]
    pub function_id: u64,
    #[prost(int64, tag = "2")]
    pub line: i64,
    #[prost(int64, tag = "3")]
    pub column: i64,
}

/// `perftools.profiles.Function`.
#[derive(Clone, Copy, PartialEq, Eq, Message)]
pub struct Function {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(int64, tag = "2")]
    pub name: i64,
    #[prost(int64, tag = "3")]
    pub system_name: i64,
    #[prost(int64, tag = "4")]
    pub filename: i64,
    #[prost(int64, tag = "5")]
    pub start_line: i64,
}

/// Why a pprof profile could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PprofError {
    #[error("the profile is larger than {limit} bytes uncompressed")]
    TooLarge { limit: usize },
    #[error("not a gzipped pprof profile: {0}")]
    Gzip(String),
    #[error("not a pprof profile: {0}")]
    Protobuf(String),
    #[error("the profile is inconsistent: {0}")]
    Inconsistent(String),
    #[error("the profile has no sample type `{0}`")]
    NoSuchSampleType(String),
}

/// A decoded profile, as folded stacks of one of its sample types.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub folded: Folded,
    /// The sample type the values are of, e.g. `cpu`.
    pub sample_type: String,
    /// Its unit, e.g. `nanoseconds`.
    pub unit: String,
    /// How long the profile was taken over, when it says.
    pub duration_nanos: i64,
}

/// Reads a pprof profile (gzipped, as served, or raw) of at most `limit` uncompressed bytes into
/// folded stacks of `sample_type` (`None`: the profile's default, else CPU time, else the last
/// type, as `go tool pprof` chooses).
pub fn decode(
    bytes: &[u8],
    limit: usize,
    sample_type: Option<&str>,
) -> Result<Decoded, PprofError> {
    let raw;
    let bytes = if bytes.starts_with(&[0x1f, 0x8b]) {
        raw = gunzip(bytes, limit)?;
        &raw[..]
    } else if bytes.len() > limit {
        return Err(PprofError::TooLarge { limit });
    } else {
        bytes
    };
    let profile = Profile::decode(bytes).map_err(|err| PprofError::Protobuf(err.to_string()))?;
    fold(&profile, sample_type)
}

fn gunzip(bytes: &[u8], limit: usize) -> Result<Vec<u8>, PprofError> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|err| PprofError::Gzip(err.to_string()))?;
    if out.len() > limit {
        return Err(PprofError::TooLarge { limit });
    }
    Ok(out)
}

/// Folds a decoded profile's samples of one sample type.
pub fn fold(profile: &Profile, sample_type: Option<&str>) -> Result<Decoded, PprofError> {
    let string = |index: i64| string_at(&profile.string_table, index);
    if profile.sample_type.is_empty() {
        return Err(PprofError::Inconsistent("no sample types".to_owned()));
    }
    let types = profile
        .sample_type
        .iter()
        .map(|value| Ok((string(value.r#type)?, string(value.unit)?)))
        .collect::<Result<Vec<_>, PprofError>>()?;
    let default = string(profile.default_sample_type).unwrap_or("");
    let column = column(&types, sample_type, default)?;
    let locations = location_frames(profile)?;
    let mut folded = Folded::new();
    let mut folded_bytes = 0;
    let mut stack = String::new();
    for sample in &profile.sample {
        let value = sample.value.get(column).copied().ok_or_else(|| {
            PprofError::Inconsistent(format!(
                "a sample has {} values for {} sample types",
                sample.value.len(),
                types.len()
            ))
        })?;
        let Ok(value) = u64::try_from(value) else {
            continue;
        };
        if value == 0 {
            continue;
        }
        write_stack(&sample.location_id, &locations, &mut stack)?;
        let key = if stack.is_empty() {
            UNKNOWN_STACK
        } else {
            &stack
        };
        let key = if folded.contains_key(key) || folded_bytes + key.len() <= limits::FOLDED_BYTES {
            key
        } else {
            OTHER_STACKS
        };
        if !folded.contains_key(key) {
            folded_bytes += key.len();
        }
        let entry = folded.entry(key.to_owned()).or_default();
        *entry = entry.saturating_add(value);
    }
    let (name, unit) = types[column];
    Ok(Decoded {
        folded,
        sample_type: name.to_owned(),
        unit: unit.to_owned(),
        duration_nanos: profile.duration_nanos,
    })
}

fn string_at(strings: &[String], index: i64) -> Result<&str, PprofError> {
    usize::try_from(index)
        .ok()
        .and_then(|index| strings.get(index))
        .map(String::as_str)
        .ok_or_else(|| PprofError::Inconsistent(format!("string index {index} is out of range")))
}

/// Which sample type's values to fold: the one asked for; else the profile's default, `cpu`,
/// or the last.
fn column(
    types: &[(&str, &str)],
    wanted: Option<&str>,
    default: &str,
) -> Result<usize, PprofError> {
    match wanted {
        Some(wanted) => types
            .iter()
            .position(|(name, _)| *name == wanted)
            .ok_or_else(|| PprofError::NoSuchSampleType(wanted.to_owned())),
        None => Ok(types
            .iter()
            .position(|(name, _)| !default.is_empty() && *name == default)
            .or_else(|| types.iter().position(|(name, _)| *name == "cpu"))
            .unwrap_or(types.len() - 1)),
    }
}

/// Each location's frames, outermost first (a location lists its inlined functions innermost
/// first); a location with no lines is its address.
fn location_frames(profile: &Profile) -> Result<HashMap<u64, Vec<String>>, PprofError> {
    let functions: HashMap<u64, &Function> = profile.function.iter().map(|f| (f.id, f)).collect();
    let mut locations = HashMap::with_capacity(profile.location.len());
    for location in &profile.location {
        let mut frames = Vec::with_capacity(location.line.len().max(1));
        for line in location.line.iter().rev() {
            let function = functions.get(&line.function_id).ok_or_else(|| {
                PprofError::Inconsistent(format!(
                    "location {} names function {}, which does not exist",
                    location.id, line.function_id
                ))
            })?;
            frames.push(frame_name(string_at(&profile.string_table, function.name)?));
        }
        if frames.is_empty() {
            frames.push(format!("0x{:x}", location.address));
        }
        locations.insert(location.id, frames);
    }
    Ok(locations)
}

/// Writes a sample's stack into `stack` (cleared first), root first and `;`-joined, at most
/// [`limits::STACK_DEPTH`] frames deep, the rest counted in a last frame.
fn write_stack(
    location_ids: &[u64],
    locations: &HashMap<u64, Vec<String>>,
    stack: &mut String,
) -> Result<(), PprofError> {
    stack.clear();
    let (mut depth, mut kept) = (0usize, 0usize);
    for id in location_ids.iter().rev() {
        let frames = locations.get(id).ok_or_else(|| {
            PprofError::Inconsistent(format!(
                "a sample names location {id}, which does not exist"
            ))
        })?;
        if kept == limits::STACK_DEPTH {
            depth += frames.len();
            continue;
        }
        for frame in frames {
            depth += 1;
            if kept == limits::STACK_DEPTH {
                continue;
            }
            if !stack.is_empty() {
                stack.push(';');
            }
            stack.push_str(frame);
            kept += 1;
        }
    }
    if depth > kept {
        let _ = write!(stack, ";[… {} more frames]", depth - kept);
    }
    Ok(())
}

/// Bounds on what one profile may become, whatever its compressed size said: a hostile or
/// runaway endpoint's names, stacks and variety are cut, never a reason to run out of memory.
pub mod limits {
    /// Characters of one frame's name; longer ones end in `…`.
    pub const FRAME_NAME: usize = 512;
    /// Frames of one stack; deeper stacks keep their outermost frames and a `[… N more]` frame.
    pub const STACK_DEPTH: usize = 256;
    /// Bytes of all distinct stacks together; past it, further stacks count as `[other stacks]`.
    pub const FOLDED_BYTES: usize = 16 << 20;
}

/// Where samples of stacks past [`limits::FOLDED_BYTES`] are counted.
pub const OTHER_STACKS: &str = "[other stacks]";

/// A function name as a folded-stack frame: `;` separates frames and a line holds one stack.
fn frame_name(name: &str) -> String {
    if name.is_empty() {
        return "[unknown]".to_owned();
    }
    let mut frame: String = name
        .chars()
        .take(limits::FRAME_NAME)
        .map(|c| match c {
            ';' => ':',
            '\n' | '\r' => ' ',
            c => c,
        })
        .collect();
    if name.chars().nth(limits::FRAME_NAME).is_some() {
        frame.pop();
        frame.push('…');
    }
    frame
}

/// One sampled stack of our own profiler: frames outermost first, and how many samples hit it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackCount {
    pub frames: Vec<String>,
    pub count: u64,
}

/// Writes CPU samples taken every `period_nanos` as a gzipped pprof profile with the sample
/// types Go's CPU profiles have (`samples/count`, `cpu/nanoseconds`), so that any pprof reader,
/// ours included, reads it.
pub fn encode(
    stacks: &[StackCount],
    period_nanos: i64,
    time_nanos: i64,
    duration_nanos: i64,
) -> Vec<u8> {
    let mut strings = Strings::default();
    let samples_type = ValueType {
        r#type: strings.index("samples"),
        unit: strings.index("count"),
    };
    let cpu_type = ValueType {
        r#type: strings.index("cpu"),
        unit: strings.index("nanoseconds"),
    };
    let mut function_ids: HashMap<String, u64> = HashMap::new();
    let mut profile = Profile {
        sample_type: vec![samples_type, cpu_type],
        period_type: Some(cpu_type),
        period: period_nanos,
        time_nanos,
        duration_nanos,
        ..Profile::default()
    };
    for stack in stacks {
        let mut location_id = Vec::with_capacity(stack.frames.len());
        // pprof lists a sample's locations leaf first.
        for frame in stack.frames.iter().rev() {
            let next = function_ids.len() as u64 + 1;
            let id = *function_ids.entry(frame.clone()).or_insert_with(|| {
                let name = strings.index(frame);
                profile.function.push(Function {
                    id: next,
                    name,
                    system_name: name,
                    ..Function::default()
                });
                // One location per function: the profile carries names, not addresses.
                profile.location.push(Location {
                    id: next,
                    line: vec![Line {
                        function_id: next,
                        ..Line::default()
                    }],
                    ..Location::default()
                });
                next
            });
            location_id.push(id);
        }
        let count = i64::try_from(stack.count).unwrap_or(i64::MAX);
        profile.sample.push(Sample {
            location_id,
            value: vec![count, count.saturating_mul(period_nanos)],
            label: Vec::new(),
        });
    }
    profile.string_table = strings.table;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = std::io::Write::write_all(&mut gz, &profile.encode_to_vec());
    gz.finish().unwrap_or_default()
}

/// The string table: index 0 is always "".
#[derive(Debug)]
struct Strings {
    table: Vec<String>,
    index: HashMap<String, i64>,
}

impl Default for Strings {
    fn default() -> Strings {
        Strings {
            table: vec![String::new()],
            index: HashMap::from([(String::new(), 0)]),
        }
    }
}

impl Strings {
    fn index(&mut self, text: &str) -> i64 {
        if let Some(index) = self.index.get(text) {
            return *index;
        }
        let index = self.table.len() as i64;
        self.table.push(text.to_owned());
        self.index.insert(text.to_owned(), index);
        index
    }
}

#[cfg(test)]
mod tests;
