//! Why the shared state could not be read or written.

use std::fmt;

/// The DynamoDB call that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Storing a signal.
    PutItem,
    /// Raising the watermark, a marker or a group's newest timeout.
    UpdateItem,
    /// Reading a partition.
    Query,
}

impl Action {
    /// The API's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::PutItem => "PutItem",
            Action::UpdateItem => "UpdateItem",
            Action::Query => "Query",
        }
    }
}

/// A DynamoDB call that failed once the SDK's retries were spent: the
/// batch's cross-stream state is not settled, so the batch is delivered
/// again (its signals already stored read as a redelivery).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateError {
    /// The call.
    pub action: Action,
    /// The table.
    pub table: String,
    /// The partition it was about.
    pub partition: String,
    /// The service's or the transport's error, in words.
    pub reason: String,
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "DynamoDB {} on table {}, partition {:?}: {}",
            self.action.as_str(),
            self.table,
            self.partition,
            self.reason
        )
    }
}

impl std::error::Error for StateError {}
