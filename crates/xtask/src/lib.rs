//! Repository chores. For now only the `tidy` test lives here (`tests/tidy.rs`): habits the whole
//! tree keeps, checked on every test run rather than in review.
