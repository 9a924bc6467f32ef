//! Regression tests, named after the issue that found them.
