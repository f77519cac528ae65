//! # strata — an embeddable storage engine
