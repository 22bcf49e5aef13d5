//! Line framing with a size cap, so one client cannot make the daemon buffer without bound.

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line {
    /// A complete line, without its newline.
    Complete(Vec<u8>),
    /// The line was longer than the cap; its bytes were discarded up to the next newline.
    TooLong,
    /// End of stream.
    Eof,
}

/// Reads one `\n`-terminated line of at most `max` bytes. A final line without a newline
/// counts as complete.
pub(crate) async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> std::io::Result<Line> {
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(if too_long {
                Line::TooLong
            } else if line.is_empty() {
                Line::Eof
            } else {
                Line::Complete(line)
            });
        }
        let (chunk, found) = match memchr(available) {
            Some(pos) => (&available[..pos], Some(pos)),
            None => (available, None),
        };
        if !too_long {
            if line.len() + chunk.len() > max {
                too_long = true;
                line = Vec::new();
            } else {
                line.extend_from_slice(chunk);
            }
        }
        let consumed = found.map_or(available.len(), |pos| pos + 1);
        reader.consume(consumed);
        if found.is_some() {
            return Ok(if too_long {
                Line::TooLong
            } else {
                Line::Complete(line)
            });
        }
    }
}

fn memchr(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], max: usize) -> Vec<Line> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut reader = tokio::io::BufReader::with_capacity(4, input);
            let mut out = Vec::new();
            loop {
                let line = read_line(&mut reader, max).await.unwrap();
                let eof = line == Line::Eof;
                out.push(line);
                if eof {
                    return out;
                }
            }
        })
    }

    #[test]
    fn splits_and_caps() {
        assert_eq!(
            lines(b"ab\n0123456789\ncd", 5),
            vec![
                Line::Complete(b"ab".to_vec()),
                Line::TooLong,
                Line::Complete(b"cd".to_vec()),
                Line::Eof
            ]
        );
    }
}
