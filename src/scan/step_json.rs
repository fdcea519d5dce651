//! CircleCI step-output JSON: recognised from an input's first bytes, read whole (CircleCI
//! caps a step at 50 MB; here `max_json_bytes`) and decoded into the joined messages that are
//! scanned. JSON that does not parse is handed back to be scanned as text, with a note that
//! never quotes the input.

use std::io::Read;

use super::{read_some, Outcome, Scanner};
use crate::normalise::{circleci_step_text, StepText};

impl<'e> Scanner<'e> {
    /// Read the rest of a JSON body and decode it. On failure, give back the raw bytes read so
    /// far (the whole input unless it was over the size cap, in which case the rest is still
    /// in `reader`) and the reason, if it was a parse error.
    pub(super) fn read_json(
        &mut self,
        reader: &mut dyn Read,
        mut raw: Vec<u8>,
        outcome: &mut Outcome,
    ) -> Result<StepText, (Vec<u8>, Option<String>)> {
        loop {
            if raw.len() as u64 > self.options.max_json_bytes {
                return Err((raw, None));
            }
            match read_some(reader, &mut self.read_buf) {
                Ok(0) => break,
                Ok(n) => {
                    outcome.bytes += n as u64;
                    raw.extend_from_slice(&self.read_buf[..n]);
                }
                Err(e) => {
                    outcome.error = Some(e);
                    return Err((raw, None));
                }
            }
        }
        match circleci_step_text(&raw) {
            Ok(step) => Ok(step),
            // serde's message can quote the input (a secret among it): say only what kind
            // of error and where.
            Err(e) => {
                let why = crate::terminal::json_error(&e);
                Err((raw, Some(why)))
            }
        }
    }
}
