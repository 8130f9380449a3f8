//! Readers that let the extraction engine tell a cut archive from a broken destination:
//! [`EofWatch`] remembers whether the stream below the tar reader ever ended, and
//! [`Contents`] is what a sink reads an entry's data through (it fails when the data stops
//! short, and keeps the stream's own error for the engine).

use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

/// A reader that remembers whether its inner reader ever reported end of stream (in a flag
/// shared with the engine, which cannot reach the reader while the tar reader holds it).
pub(crate) struct EofWatch<R> {
    pub(crate) inner: R,
    pub(crate) eof: Rc<Cell<bool>>,
}

impl<R: Read> Read for EofWatch<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.eof.set(true);
        }
        Ok(n)
    }
}

/// An entry's data as a sink reads it: exactly `left` bytes, or an error.
pub(crate) struct Contents<'a> {
    pub(crate) inner: &'a mut dyn Read,
    pub(crate) left: u64,
    /// The stream's own error (or the early end), kept for the engine's report.
    pub(crate) failed: Option<io::Error>,
}

impl Read for Contents<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = usize::try_from(self.left).map_or(buf.len(), |left| left.min(buf.len()));
        match self.inner.read(&mut buf[..want]) {
            Ok(0) => {
                let cut = io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "the archive ends {} bytes before this entry does",
                        self.left
                    ),
                );
                let shown = io::Error::new(cut.kind(), cut.to_string());
                self.failed = Some(cut);
                Err(shown)
            }
            Ok(n) => {
                self.left -= n as u64;
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                let shown = io::Error::new(e.kind(), e.to_string());
                self.failed = Some(e);
                Err(shown)
            }
        }
    }
}
