//! Sources: where input bytes come from. Files and stdin are read by the `scan` command
//! directly; the CircleCI API source and archive walking live here.

pub mod archive;
pub mod circleci;
