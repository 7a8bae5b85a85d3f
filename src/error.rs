//! The error type of pond.
//!
//! One enum for every layer, with messages that name what failed and where (the
//! series path, the file, the column). Conversions to and from
//! [`DataFusionError`] keep Arrow, Parquet, object store and I/O errors
//! structural, so a `pond` error raised inside a DataFusion plan still reads
//! well at the SQL prompt.

use datafusion::error::DataFusionError;

/// Result with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in pond.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A series path broke the naming rules.
    #[error("invalid series path {path:?}: {reason}")]
    InvalidPath {
        /// The path as given.
        path: String,
        /// Which rule it broke.
        reason: String,
    },

    /// A series that does not exist was asked for.
    #[error("unknown series {path}")]
    UnknownSeries {
        /// The series path.
        path: String,
    },

    /// A series that already exists was to be created.
    #[error("series {path} already exists")]
    SeriesExists {
        /// The series path.
        path: String,
    },

    /// The data handed to an append cannot become a version of the series.
    #[error("cannot append to {path}: {reason}")]
    InvalidData {
        /// The series path.
        path: String,
        /// What is wrong with the data.
        reason: String,
    },

    /// A delete cannot be committed as asked.
    #[error("cannot delete from {path}: {reason}")]
    InvalidDelete {
        /// The series path.
        path: String,
        /// What is wrong with the request.
        reason: String,
    },

    /// A setting of a series (its sort key, its codec) cannot be declared
    /// as asked.
    #[error("cannot configure {path}: {reason}")]
    InvalidSetting {
        /// The series path.
        path: String,
        /// What is wrong with the setting.
        reason: String,
    },

    /// The input's schema does not agree with the series' schema.
    #[error("schema mismatch for {path}: {reason}")]
    SchemaMismatch {
        /// The series path.
        path: String,
        /// Which column disagrees, and how.
        reason: String,
    },

    /// A location holds no pond.
    #[error("{location} is not a pond: {reason}")]
    NotAPond {
        /// The location that was opened.
        location: String,
        /// Why it is not a pond.
        reason: String,
    },

    /// `create` found a pond already there.
    #[error("a pond already exists at {location}")]
    PondExists {
        /// The location.
        location: String,
    },

    /// A write lost the race for the next oplog version too many times.
    #[error("writing to {path} gave up after {attempts} conflicting commits; nothing was written")]
    CommitConflict {
        /// The series path.
        path: String,
        /// How many commits were tried.
        attempts: u32,
    },

    /// Another compaction superseded versions this one was rewriting; this
    /// one changed nothing.
    #[error("another compaction of {path} landed first; this one changed nothing")]
    CompactionConflict {
        /// The series path.
        path: String,
    },

    /// A written data file waited for its commit longer than
    /// [`PondOptions::commit_within`](crate::PondOptions::commit_within):
    /// a vacuum may have taken it for garbage, so it was not committed.
    #[error(
        "{path}: a file written for it waited {waited_secs} s for its commit, longer than \
         the {limit_secs} s a concurrent vacuum is sure to leave it alone; nothing was \
         committed, write it again"
    )]
    StaleWrite {
        /// The series path.
        path: String,
        /// Seconds since the file was written.
        waited_secs: u64,
        /// The limit, [`PondOptions::commit_within`](crate::PondOptions::commit_within).
        limit_secs: u64,
    },

    /// A read as of an earlier version needs a superseded version whose data
    /// file vacuum has deleted.
    #[error(
        "version {version} of {path} was superseded by a compaction and its file vacuumed; \
         it can no longer be read as of an earlier version"
    )]
    VacuumedVersion {
        /// The series path.
        path: String,
        /// The version whose file is gone.
        version: i64,
    },

    /// The oplog holds something this version of pond cannot read.
    #[error("oplog is invalid at {location}: {reason}")]
    InvalidOplog {
        /// The oplog file or commit.
        location: String,
        /// What is wrong.
        reason: String,
    },

    /// The pond's store could not be used.
    #[error("cannot use the store at {location}: {reason}")]
    Store {
        /// The pond's location.
        location: String,
        /// What went wrong, in a sentence.
        reason: String,
    },

    /// The pond's store does not refuse a second create of one object, so
    /// a commit could overwrite another writer's.
    #[error(
        "the store at {location} does not refuse a second create of one object (S3's \
         conditional write, If-None-Match: *); pond will not commit there, as two writers \
         could overwrite each other's commit"
    )]
    UnsafeStore {
        /// The pond's location.
        location: String,
    },

    /// A URL or path could not be understood.
    #[error("invalid location {location:?}: {reason}")]
    InvalidLocation {
        /// The location as given.
        location: String,
        /// Why it is invalid.
        reason: String,
    },

    /// Error from Arrow.
    #[error(transparent)]
    Arrow {
        /// The Arrow error.
        #[from]
        source: arrow::error::ArrowError,
    },

    /// Error from Parquet, with the file it concerns.
    #[error("parquet file {file}: {source}")]
    Parquet {
        /// The data file.
        file: String,
        /// The Parquet error.
        source: parquet::errors::ParquetError,
    },

    /// Error from the object store.
    #[error(transparent)]
    ObjectStore {
        /// The object store error.
        #[from]
        source: object_store::Error,
    },

    /// Error from Delta Lake while reading or writing the oplog.
    #[error("oplog: {source}")]
    Delta {
        /// The Delta Lake error.
        #[from]
        source: deltalake::DeltaTableError,
    },

    /// Error from DataFusion.
    #[error(transparent)]
    DataFusion {
        /// The DataFusion error.
        #[from]
        source: DataFusionError,
    },

    /// I/O error.
    #[error(transparent)]
    Io {
        /// The I/O error.
        #[from]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn parquet(file: impl Into<String>, source: parquet::errors::ParquetError) -> Self {
        Self::Parquet {
            file: file.into(),
            source,
        }
    }

    pub(crate) fn invalid_data(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidData {
            path: path.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid_setting(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidSetting {
            path: path.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn schema_mismatch(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::SchemaMismatch {
            path: path.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid_oplog(location: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidOplog {
            location: location.into(),
            reason: reason.into(),
        }
    }
}

/// `err` and its causes as one line, each cause once: what the command
/// line prints after `error: `, and the text of pond's Python exceptions.
pub fn error_line(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cause = Some(err);
    while let Some(e) = cause {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cause = e.source();
    }
    parts.join(": ").replace('\n', " ")
}

impl From<Error> for DataFusionError {
    fn from(err: Error) -> Self {
        match err {
            Error::Arrow { source } => DataFusionError::ArrowError(Box::new(source), None),
            Error::ObjectStore { source } => DataFusionError::ObjectStore(Box::new(source)),
            Error::DataFusion { source } => source,
            Error::Io { source } => DataFusionError::IoError(source),
            other => DataFusionError::External(Box::new(other)),
        }
    }
}
