//! The span store: Parquet files in one directory, the rows not yet written in memory, and
//! read-only SQL over both.
//!
//! Rows come in the order of the `span.received` stream. Each file is named after the first and
//! last stream sequence it holds (`spans-<first>-<last>.parquet`), written under a temporary name
//! and renamed into place, so after a restart the store knows exactly where its files end
//! ([`SpanStore::resume_after`]) and a batch is stored once however often it is delivered.
//!
//! A span is queryable as soon as it is appended (the issue asks for five seconds): a query sees
//! the files and the pending rows, taken together under one lock, so a flush never shows a row
//! twice or not at all. Files are written every `flush_every` or `flush_rows`, whichever comes
//! first, sorted by `(ServiceName, SpanName, Timestamp)` as the ClickHouse exporter orders its
//! table. Retention removes whole files by age and, past `max_bytes`, the oldest first.
//!
//! Queries are read-only by construction (DataFusion's `SQLOptions` refuse DDL, DML and
//! statements, and no table but `otel_traces` is registered), bounded in time (the query is
//! dropped), rows (the answer is cut and says so) and memory (DataFusion's memory pool refuses).

use std::{
    fs,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime},
};

use crate::{
    query::{Answer, QueryError, QueryLimits, cut_cell},
    table::{self, TABLE},
};
use datafusion::{
    arrow::{
        array::RecordBatch,
        compute::concat_batches,
        util::display::{ArrayFormatter, FormatOptions},
    },
    catalog::MemTable,
    datasource::file_format::parquet::ParquetFormat,
    datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl},
    execution::{
        disk_manager::{DiskManagerBuilder, DiskManagerMode},
        memory_pool::GreedyMemoryPool,
        runtime_env::RuntimeEnvBuilder,
    },
    parquet::{
        arrow::ArrowWriter,
        basic::{Compression, ZstdLevel},
        file::properties::WriterProperties,
    },
    prelude::{SQLOptions, SessionConfig, SessionContext},
};
use proto::SpanRow;

/// Pending rows holding this much memory are written, however few they are (spans with large
/// attributes would otherwise fill memory before `flush_rows` is reached).
pub const FLUSH_BYTES: usize = 256 << 20;

/// Where and how long spans are kept.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub dir: PathBuf,
    /// Pending rows are written at least this often.
    pub flush_every: Duration,
    /// …or as soon as this many are pending.
    pub flush_rows: usize,
    /// Files older than this are removed.
    pub retention: Duration,
    /// Past this many bytes of files, the oldest are removed.
    pub max_bytes: u64,
}

/// Why the store could not write or open its directory.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("span store {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("span store: cannot write Parquet: {0}")]
    Parquet(String),
}

#[derive(Debug, Clone)]
struct StoredFile {
    path: PathBuf,
    last_seq: u64,
    bytes: u64,
    written: SystemTime,
}

#[derive(Debug, Default)]
struct State {
    pending: Vec<RecordBatch>,
    pending_rows: usize,
    /// Memory the pending rows hold; past [`FLUSH_BYTES`] they are written whatever their count.
    pending_bytes: usize,
    pending_since: Option<Instant>,
    pending_first_seq: Option<u64>,
    /// The last stream sequence appended (pending or written).
    last_seq: u64,
    files: Vec<StoredFile>,
}

/// What a flush or a retention pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Housekeeping {
    pub rows_written: usize,
    pub files_removed: usize,
}

/// The span store. Share it in an `Arc`: appends, flushes and queries may run at once.
#[derive(Debug)]
pub struct SpanStore {
    config: StoreConfig,
    state: Mutex<State>,
}

impl SpanStore {
    /// Opens (creating) the directory, forgets temporary files a crash left, and reads which
    /// stream sequences the files hold.
    pub fn open(config: StoreConfig) -> Result<SpanStore, StoreError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| StoreError::Io { path, source }
        };
        fs::create_dir_all(&config.dir).map_err(io(&config.dir))?;
        let mut files = Vec::new();
        for entry in fs::read_dir(&config.dir).map_err(io(&config.dir))? {
            let entry = entry.map_err(io(&config.dir))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".tmp") {
                let _ = fs::remove_file(&path);
                continue;
            }
            let Some((_, last_seq)) = sequences(&name) else {
                continue;
            };
            let metadata = entry.metadata().map_err(io(&path))?;
            files.push(StoredFile {
                path,
                last_seq,
                bytes: metadata.len(),
                written: metadata.modified().unwrap_or_else(|_| SystemTime::now()),
            });
        }
        files.sort_by_key(|file| file.last_seq);
        let last_seq = files.last().map_or(0, |file| file.last_seq);
        Ok(SpanStore {
            config,
            state: Mutex::new(State {
                last_seq,
                files,
                ..State::default()
            }),
        })
    }

    /// The last stream sequence the store holds: read the stream from the one after it.
    pub fn resume_after(&self) -> u64 {
        self.lock().last_seq
    }

    /// Adds the rows of stream message `seq`; a sequence already held is ignored. Returns whether
    /// the rows were added.
    pub fn append(&self, seq: u64, rows: &[SpanRow]) -> bool {
        let batch = table::to_batch(rows);
        let mut state = self.lock();
        if seq <= state.last_seq {
            return false;
        }
        state.last_seq = seq;
        state.pending_first_seq.get_or_insert(seq);
        state.pending_since.get_or_insert_with(Instant::now);
        state.pending_rows += batch.num_rows();
        state.pending_bytes += batch.get_array_memory_size();
        state.pending.push(batch);
        true
    }

    /// Whether pending rows are due to be written.
    pub fn flush_due(&self) -> bool {
        let state = self.lock();
        state.pending_rows >= self.config.flush_rows
            || state.pending_bytes >= FLUSH_BYTES
            || state
                .pending_since
                .is_some_and(|since| since.elapsed() >= self.config.flush_every)
    }

    /// Rows appended but not yet written.
    pub fn pending_rows(&self) -> usize {
        self.lock().pending_rows
    }

    /// Writes the pending rows to one file. Blocking (Parquet encoding and a disk write): call it
    /// from a blocking thread. The rows stay queryable while it writes.
    pub fn flush(&self) -> Result<Housekeeping, StoreError> {
        let (batches, first_seq, last_seq) = {
            let state = self.lock();
            match state.pending_first_seq {
                Some(first) if !state.pending.is_empty() => {
                    (state.pending.clone(), first, state.last_seq)
                }
                _ => return Ok(Housekeeping::default()),
            }
        };
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        let memory: usize = batches.iter().map(RecordBatch::get_array_memory_size).sum();
        let name = format!("spans-{first_seq:020}-{last_seq:020}.parquet");
        let path = self.config.dir.join(&name);
        let temporary = self.config.dir.join(format!("{name}.tmp"));
        let bytes = write_parquet(&temporary, &batches)?;
        let mut state = self.lock();
        fs::rename(&temporary, &path).map_err(|source| StoreError::Io {
            path: path.clone(),
            source,
        })?;
        // Only what was written leaves memory; what arrived meanwhile waits for the next file.
        let written = batches.len();
        state.pending.drain(..written);
        state.pending_rows -= rows;
        state.pending_bytes -= memory;
        state.pending_first_seq = (!state.pending.is_empty()).then_some(last_seq + 1);
        state.pending_since = (!state.pending.is_empty()).then(Instant::now);
        state.files.push(StoredFile {
            path,
            last_seq,
            bytes,
            written: SystemTime::now(),
        });
        Ok(Housekeeping {
            rows_written: rows,
            files_removed: 0,
        })
    }

    /// Removes files past the retention age, then the oldest while the files exceed
    /// `max_bytes`. The newest file is kept whatever its size: it marks where the stream resumes.
    pub fn enforce_retention(&self) -> Housekeeping {
        let now = SystemTime::now();
        let mut state = self.lock();
        let mut total: u64 = state.files.iter().map(|file| file.bytes).sum();
        let mut removed = 0;
        while state.files.len() > 1 {
            let oldest = &state.files[0];
            let expired = now
                .duration_since(oldest.written)
                .is_ok_and(|age| age > self.config.retention);
            if !expired && total <= self.config.max_bytes {
                break;
            }
            let oldest = state.files.remove(0);
            if let Err(err) = fs::remove_file(&oldest.path) {
                tracing::warn!(path = %oldest.path.display(), error = %err, "cannot remove an expired span file");
            }
            total -= oldest.bytes;
            removed += 1;
        }
        Housekeeping {
            rows_written: 0,
            files_removed: removed,
        }
    }

    /// Bytes of Parquet files held.
    pub fn stored_bytes(&self) -> u64 {
        self.lock().files.iter().map(|file| file.bytes).sum()
    }

    /// Runs one read-only query over `otel_traces`.
    pub async fn query(&self, sql: &str, limits: QueryLimits) -> Result<Answer, QueryError> {
        let sql = sql.trim().trim_end_matches(';');
        if sql.is_empty() {
            return Err(QueryError::Empty);
        }
        let started = Instant::now();
        let context = self.context(limits)?;
        let options = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        let run = async {
            let frame = context
                .sql_with_options(sql, options)
                .await
                .map_err(|err| refusal(err, limits))?;
            let frame = frame
                .limit(0, Some(limits.max_rows + 1))
                .map_err(|err| refusal(err, limits))?;
            frame.collect().await.map_err(|err| refusal(err, limits))
        };
        let batches = tokio::time::timeout(limits.timeout, run)
            .await
            .map_err(|_| QueryError::TimedOut(limits.timeout))??;
        let mut answer = render(&batches, limits)?;
        answer.elapsed_ms = started.elapsed().as_millis().try_into().unwrap_or(u64::MAX);
        Ok(answer)
    }

    /// A session that sees the files and the pending rows as one `otel_traces`, taken together.
    fn context(&self, limits: QueryLimits) -> Result<SessionContext, QueryError> {
        let (files, pending) = {
            let state = self.lock();
            let files: Vec<PathBuf> = state.files.iter().map(|file| file.path.clone()).collect();
            (files, state.pending.clone())
        };
        // No spilling: a query stays within its memory pool, never the disk (DataFusion would
        // otherwise let each one write up to 100 GB of temporary files).
        let runtime = RuntimeEnvBuilder::new()
            .with_disk_manager_builder(
                DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled),
            )
            .with_memory_pool(Arc::new(GreedyMemoryPool::new(limits.memory_bytes)))
            .build_arc()
            .map_err(|err| QueryError::Invalid(err.to_string()))?;
        let mut config = SessionConfig::new()
            .with_target_partitions(2)
            .with_information_schema(false);
        // Column names as the exporter spells them, unquoted (`ServiceName`), as in ClickHouse.
        config.options_mut().sql_parser.enable_ident_normalization = false;
        let context = SessionContext::new_with_config_rt(config, runtime);
        let schema = table::schema();
        let stored = if files.is_empty() {
            None
        } else {
            let urls = files
                .iter()
                .map(|path| ListingTableUrl::parse(path.to_string_lossy()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|err| QueryError::Invalid(err.to_string()))?;
            let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
                .with_file_extension(".parquet");
            let config = ListingTableConfig::new_with_multi_paths(urls)
                .with_listing_options(options)
                .with_schema(schema.clone());
            Some(
                ListingTable::try_new(config)
                    .map_err(|err| QueryError::Invalid(err.to_string()))?,
            )
        };
        let recent = MemTable::try_new(schema.clone(), vec![pending])
            .map_err(|err| QueryError::Invalid(err.to_string()))?;
        let invalid =
            |err: datafusion::error::DataFusionError| QueryError::Invalid(err.to_string());
        let table: Arc<dyn datafusion::catalog::TableProvider> = match stored {
            None => Arc::new(recent),
            Some(stored) => {
                let stored = context.read_table(Arc::new(stored)).map_err(invalid)?;
                let recent = context.read_table(Arc::new(recent)).map_err(invalid)?;
                stored.union(recent).map_err(invalid)?.into_view()
            }
        };
        context
            .register_table(TABLE, table)
            .map_err(|err| QueryError::Invalid(err.to_string()))?;
        Ok(context)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// `spans-<first>-<last>.parquet` → (first, last).
fn sequences(name: &str) -> Option<(u64, u64)> {
    let middle = name.strip_prefix("spans-")?.strip_suffix(".parquet")?;
    let (first, last) = middle.split_once('-')?;
    Some((first.parse().ok()?, last.parse().ok()?))
}

fn write_parquet(path: &Path, batches: &[RecordBatch]) -> Result<u64, StoreError> {
    let schema = table::schema();
    let batch =
        concat_batches(&schema, batches).map_err(|err| StoreError::Parquet(err.to_string()))?;
    let batch = sorted(&batch).map_err(|err| StoreError::Parquet(err.to_string()))?;
    let file = fs::File::create(path).map_err(|source| StoreError::Io {
        path: path.to_owned(),
        source,
    })?;
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(128 * 1024))
        .build();
    let mut writer = ArrowWriter::try_new(file, schema, Some(properties))
        .map_err(|err| StoreError::Parquet(err.to_string()))?;
    writer
        .write(&batch)
        .map_err(|err| StoreError::Parquet(err.to_string()))?;
    let file = writer
        .into_inner()
        .map_err(|err| StoreError::Parquet(err.to_string()))?;
    // On disk before it is renamed into place: the stream is read past these rows once the
    // file exists, so a crash must not leave a named file that is empty.
    let io_error = |source| StoreError::Io {
        path: path.to_owned(),
        source,
    };
    file.sync_all().map_err(io_error)?;
    file.metadata()
        .map(|metadata| metadata.len())
        .map_err(io_error)
}

/// Ordered by `(ServiceName, SpanName, Timestamp)`, as the exporter's table is.
fn sorted(batch: &RecordBatch) -> Result<RecordBatch, datafusion::arrow::error::ArrowError> {
    use datafusion::arrow::compute::{SortColumn, lexsort_to_indices, take_record_batch};
    let key = |name: &str| SortColumn {
        values: batch
            .column_by_name(name)
            .expect("a column of otel_traces")
            .clone(),
        options: None,
    };
    let indices = lexsort_to_indices(
        &[key("ServiceName"), key("SpanName"), key("Timestamp")],
        None,
    )?;
    take_record_batch(batch, &indices)
}

fn refusal(err: datafusion::error::DataFusionError, limits: QueryLimits) -> QueryError {
    use datafusion::error::DataFusionError;
    match err.find_root() {
        DataFusionError::ResourcesExhausted(_) => {
            QueryError::TooMuchMemory(limits.memory_bytes >> 20)
        }
        DataFusionError::Plan(text) if text.contains("not supported") => {
            QueryError::NotReadOnly(text.clone())
        }
        _ => {
            let text = err.to_string();
            if text.contains("DDL not supported")
                || text.contains("DML not supported")
                || text.contains("Statement not supported")
            {
                QueryError::NotReadOnly(text)
            } else {
                QueryError::Invalid(text)
            }
        }
    }
}

/// Batches as text cells, at most `max_rows` rows and `max_cell_chars` characters a cell.
fn render(batches: &[RecordBatch], limits: QueryLimits) -> Result<Answer, QueryError> {
    let columns = batches
        .first()
        .map(|batch| {
            batch
                .schema()
                .fields()
                .iter()
                .map(|field| field.name().clone())
                .collect()
        })
        .unwrap_or_default();
    let options = FormatOptions::default().with_null("NULL");
    let mut rows = Vec::new();
    let mut truncated = false;
    'batches: for batch in batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|column| ArrayFormatter::try_new(column.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| QueryError::Invalid(err.to_string()))?;
        for row in 0..batch.num_rows() {
            if rows.len() == limits.max_rows {
                truncated = true;
                break 'batches;
            }
            rows.push(
                formatters
                    .iter()
                    .map(|formatter| {
                        cut_cell(formatter.value(row).to_string(), limits.max_cell_chars)
                    })
                    .collect(),
            );
        }
    }
    Ok(Answer {
        columns,
        rows,
        truncated,
        elapsed_ms: 0,
    })
}

#[cfg(test)]
mod tests;
