//! The one place internal errors are mapped to Kafka error codes.
