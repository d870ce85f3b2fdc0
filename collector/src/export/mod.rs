//! What findings become outside the account's logs: OTLP spans and EMF
//! metric lines. Parsed fields only, never raw log messages.

pub mod dead_letter;
pub mod emf;
pub mod ids;
pub mod otlp;
pub mod spans;

pub use spans::Origin;
