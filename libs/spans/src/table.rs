//! Rows as Arrow: the `otel_traces` table, with the OpenTelemetry collector's ClickHouse
//! exporter's column names and meanings.
//!
//! | column | Arrow | ClickHouse |
//! |---|---|---|
//! | `Timestamp` | timestamp(ns, UTC) | `DateTime64(9)` |
//! | `TraceId`, `SpanId`, `ParentSpanId`, `TraceState`, `StatusMessage` | utf8 | `String` |
//! | `SpanName`, `SpanKind`, `ServiceName`, `ScopeName`, `ScopeVersion`, `StatusCode` | dictionary(int32, utf8) | `LowCardinality(String)` |
//! | `ResourceAttributes`, `SpanAttributes` | map(utf8, utf8) | `Map(LowCardinality(String), String)` |
//! | `Duration` | uint64 (ns) | `UInt64` |
//! | `Events.Timestamp`, `Events.Name`, `Events.Attributes` | list of timestamp / utf8 / map | `Nested` (the same flattened names) |
//! | `Links.TraceId`, `Links.SpanId`, `Links.TraceState`, `Links.Attributes` | list of utf8 / map | `Nested` |
//!
//! The schema is what [`to_batch`] builds, so the two cannot disagree. The few-valued columns are
//! dictionaries, as ClickHouse's `LowCardinality`: grouping 10 million spans by `SpanName` takes
//! about two thirds of the time it takes on plain strings (BENCHMARKS.md, "The span store").

use std::sync::{Arc, OnceLock};

use datafusion::arrow::{
    array::{
        ArrayRef, ListBuilder, MapBuilder, RecordBatch, StringBuilder, StringDictionaryBuilder,
        TimestampNanosecondBuilder, UInt64Builder,
    },
    datatypes::{Field, Schema},
    datatypes::{Int32Type, SchemaRef},
};
use proto::SpanRow;

/// The table's name, as the ClickHouse exporter creates it.
pub const TABLE: &str = "otel_traces";

/// The table's schema.
pub fn schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA.get_or_init(|| to_batch(&[]).schema()).clone()
}

type Attributes = MapBuilder<StringBuilder, StringBuilder>;

fn attributes_builder() -> Attributes {
    MapBuilder::new(None, StringBuilder::new(), StringBuilder::new())
}

fn push_attributes<'a>(
    builder: &mut Attributes,
    pairs: impl IntoIterator<Item = (&'a String, &'a String)>,
) {
    for (key, value) in pairs {
        builder.keys().append_value(key);
        builder.values().append_value(value);
    }
    // A map is never null: an empty one when there is nothing.
    let _ = builder.append(true);
}

fn timestamp_builder() -> TimestampNanosecondBuilder {
    TimestampNanosecondBuilder::new().with_timezone("UTC")
}

/// Rows as one record batch of `otel_traces`.
pub fn to_batch(rows: &[SpanRow]) -> RecordBatch {
    let n = rows.len();
    let mut timestamp = timestamp_builder();
    let mut text: Vec<StringBuilder> = (0..5)
        .map(|_| StringBuilder::with_capacity(n, n * 16))
        .collect();
    let mut names: Vec<StringDictionaryBuilder<Int32Type>> =
        (0..6).map(|_| StringDictionaryBuilder::new()).collect();
    let mut resource_attributes = attributes_builder();
    let mut span_attributes = attributes_builder();
    let mut duration = UInt64Builder::with_capacity(n);
    let mut event_timestamps = ListBuilder::new(timestamp_builder());
    let mut event_names = ListBuilder::new(StringBuilder::new());
    let mut event_attributes = ListBuilder::new(attributes_builder());
    let mut link_trace_ids = ListBuilder::new(StringBuilder::new());
    let mut link_span_ids = ListBuilder::new(StringBuilder::new());
    let mut link_trace_states = ListBuilder::new(StringBuilder::new());
    let mut link_attributes = ListBuilder::new(attributes_builder());
    for row in rows {
        timestamp.append_value(row.timestamp_ns);
        let texts = [
            row.trace_id.as_str(),
            &row.span_id,
            &row.parent_span_id,
            &row.trace_state,
            &row.status_message,
        ];
        for (builder, value) in text.iter_mut().zip(texts) {
            builder.append_value(value);
        }
        let few_valued = [
            row.span_name.as_str(),
            row.span_kind.as_str(),
            &row.service_name,
            &row.scope_name,
            &row.scope_version,
            row.status_code.as_str(),
        ];
        for (builder, value) in names.iter_mut().zip(few_valued) {
            builder.append_value(value);
        }
        push_attributes(&mut resource_attributes, &row.resource_attributes);
        push_attributes(&mut span_attributes, &row.span_attributes);
        duration.append_value(row.duration_ns);
        for event in &row.events {
            event_timestamps.values().append_value(event.timestamp_ns);
            event_names.values().append_value(&event.name);
            push_attributes(event_attributes.values(), &event.attributes);
        }
        event_timestamps.append(true);
        event_names.append(true);
        event_attributes.append(true);
        for link in &row.links {
            link_trace_ids.values().append_value(&link.trace_id);
            link_span_ids.values().append_value(&link.span_id);
            link_trace_states.values().append_value(&link.trace_state);
            push_attributes(link_attributes.values(), &link.attributes);
        }
        link_trace_ids.append(true);
        link_span_ids.append(true);
        link_trace_states.append(true);
        link_attributes.append(true);
    }
    let mut text = text
        .into_iter()
        .map(|mut builder| Arc::new(builder.finish()) as ArrayRef);
    let mut next_text = || text.next().expect("five text columns");
    let mut names = names
        .into_iter()
        .map(|mut builder| Arc::new(builder.finish()) as ArrayRef);
    let mut next_name = || names.next().expect("six dictionary columns");
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("Timestamp", Arc::new(timestamp.finish())),
        ("TraceId", next_text()),
        ("SpanId", next_text()),
        ("ParentSpanId", next_text()),
        ("TraceState", next_text()),
        ("SpanName", next_name()),
        ("SpanKind", next_name()),
        ("ServiceName", next_name()),
        ("ResourceAttributes", Arc::new(resource_attributes.finish())),
        ("ScopeName", next_name()),
        ("ScopeVersion", next_name()),
        ("SpanAttributes", Arc::new(span_attributes.finish())),
        ("Duration", Arc::new(duration.finish())),
        ("StatusCode", next_name()),
        ("StatusMessage", next_text()),
        ("Events.Timestamp", Arc::new(event_timestamps.finish())),
        ("Events.Name", Arc::new(event_names.finish())),
        ("Events.Attributes", Arc::new(event_attributes.finish())),
        ("Links.TraceId", Arc::new(link_trace_ids.finish())),
        ("Links.SpanId", Arc::new(link_span_ids.finish())),
        ("Links.TraceState", Arc::new(link_trace_states.finish())),
        ("Links.Attributes", Arc::new(link_attributes.finish())),
    ];
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, array)| Field::new(*name, array.data_type().clone(), false))
        .collect();
    let arrays = columns.into_iter().map(|(_, array)| array).collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)
        .expect("every column has one value per row")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use datafusion::arrow::array::{Array, ArrayAccessor as _, AsArray};
    use proto::span::{SpanEventRow, SpanKind, StatusCode};

    use super::*;

    pub(crate) fn row(name: &str, millis: u64) -> SpanRow {
        SpanRow {
            timestamp_ns: 1_700_000_000_000_000_000,
            trace_id: "0af7651916cd43dd8448eb211c80319c".to_owned(),
            span_id: "b7ad6b7169203331".to_owned(),
            parent_span_id: String::new(),
            trace_state: String::new(),
            span_name: name.to_owned(),
            span_kind: SpanKind::Server,
            service_name: "checkout".to_owned(),
            resource_attributes: BTreeMap::from([("service.name".into(), "checkout".into())]),
            scope_name: String::new(),
            scope_version: String::new(),
            span_attributes: BTreeMap::from([("http.route".into(), "/cart".into())]),
            duration_ns: millis * 1_000_000,
            status_code: StatusCode::Error,
            status_message: "boom".to_owned(),
            events: vec![SpanEventRow {
                timestamp_ns: 1_700_000_000_001_000_000,
                name: "exception".to_owned(),
                attributes: BTreeMap::from([("exception.type".into(), "Timeout".into())]),
            }],
            links: Vec::new(),
        }
    }

    #[test]
    fn rows_become_the_exporters_columns() {
        let batch = to_batch(&[row("GET /cart", 250), row("GET /pay", 5)]);
        assert_eq!(batch.schema(), schema());
        assert_eq!(batch.num_rows(), 2);
        let names: Vec<_> = schema().fields().iter().map(|f| f.name().clone()).collect();
        assert_eq!(names[..3], ["Timestamp", "TraceId", "SpanId"]);
        assert!(names.contains(&"Events.Name".to_owned()));
        let kind = batch
            .column_by_name("SpanKind")
            .unwrap()
            .as_dictionary::<Int32Type>()
            .downcast_dict::<datafusion::arrow::array::StringArray>()
            .unwrap();
        assert_eq!(kind.value(0), "Server");
        let events = batch
            .column_by_name("Events.Name")
            .unwrap()
            .as_list::<i32>();
        assert_eq!(events.value(1).len(), 1);
        assert_eq!(schema().fields().len(), 22);
    }
}
