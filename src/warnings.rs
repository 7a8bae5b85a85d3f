//! Warnings of the work pond does on the side, which no caller's `Result`
//! reports: an automatic compaction that failed, a file it could not clean
//! up, a commit it cannot tell landed. They are `tracing` events at WARN
//! (and ERROR, as are those of deltalake and DataFusion). The command line
//! prints them with `tracing-subscriber`; a program with no subscriber of
//! its own (the Python module) hands them on with [`forward_warnings`].

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Hands the text of every warning and error event of this process to
/// `to` (`automatic compaction failed series=/a error=…`), as the process's
/// global `tracing` subscriber. Returns false if the process has one
/// already: that one gets the events.
pub fn forward_warnings(to: impl Fn(&str) + Send + Sync + 'static) -> bool {
    tracing::subscriber::set_global_default(Forward(Box::new(to))).is_ok()
}

/// The subscriber of [`forward_warnings`].
struct Forward(Box<dyn Fn(&str) + Send + Sync>);

impl Subscriber for Forward {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        // Less verbose is less: ERROR < WARN.
        *metadata.level() <= Level::WARN
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::WARN)
    }

    /// Spans carry nothing here: one id for all.
    fn new_span(&self, _span: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _span: &Id, _values: &Record<'_>) {}

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut text = Text::default();
        event.record(&mut text);
        (self.0)(format!("{}{}", text.message, text.fields).trim_start());
    }

    fn enter(&self, _span: &Id) {}

    fn exit(&self, _span: &Id) {}
}

/// An event's message, and its other fields as ` name=value`.
#[derive(Default)]
struct Text {
    message: String,
    fields: String,
}

impl Visit for Text {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.record_debug(field, &format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let _ = if field.name() == "message" {
            write!(self.message, "{value:?}")
        } else {
            write!(self.fields, " {}={value:?}", field.name())
        };
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[test]
    fn an_event_becomes_its_message_and_fields() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let into = Arc::clone(&seen);
        let subscriber = Forward(Box::new(move |text: &str| {
            into.lock().unwrap().push(text.to_string());
        }));
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(series = "/a", error = %"no such file", "automatic compaction failed");
            tracing::info!("not a warning");
            tracing::error!(version = 3, "oplog checkpoint failed");
        });
        assert_eq!(
            *seen.lock().unwrap(),
            [
                "automatic compaction failed series=/a error=no such file",
                "oplog checkpoint failed version=3"
            ]
        );
    }
}
