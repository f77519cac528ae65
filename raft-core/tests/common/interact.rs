//! Placeholder for the golden-transcript driver.
