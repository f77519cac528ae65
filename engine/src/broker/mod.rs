//! The publish/subscribe broker state machine (being built; see `subject` for routing).
