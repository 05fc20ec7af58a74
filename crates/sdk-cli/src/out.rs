//! Writing to stdout and stderr without panicking when they are closed.

use std::io::Write as _;

use crate::error::CliError;

/// Writes `text` and a newline to stdout (unless it already ends in one) and flushes.
///
/// # Errors
/// [`CliError::broken_pipe`] when stdout is closed, so the command stops quietly;
/// any other write error (a full disk) is a failure that says so.
pub(crate) fn line(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    let result = if text.ends_with('\n') {
        out.write_all(text.as_bytes())
    } else {
        out.write_all(text.as_bytes())
            .and_then(|()| out.write_all(b"\n"))
    };
    result.and_then(|()| out.flush()).map_err(|e| {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            CliError::broken_pipe()
        } else {
            CliError::new(format!("cannot write to stdout: {e}"))
                .hint("check where the output goes (a full disk, a closed file)")
        }
    })
}

/// One JSON value on one line.
pub(crate) fn json(value: &serde_json::Value) -> Result<(), CliError> {
    line(&value.to_string())
}

/// A status line on stderr (readiness, progress); a closed stderr is ignored.
pub(crate) fn status(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{text}");
    let _ = err.flush();
}

/// Rows as columns, each as wide as its widest cell, the last one unpadded.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let render = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut line = String::new();
        for (i, cell) in cells.iter().enumerate() {
            line.push_str(cell);
            if i < last {
                let width = widths.get(i).copied().unwrap_or(0);
                let pad = width.saturating_sub(cell.chars().count());
                line.push_str(&" ".repeat(pad + 2));
            }
        }
        line.trim_end().to_owned()
    };
    let mut out = render(header.to_vec());
    for row in rows {
        out.push('\n');
        out.push_str(&render(row.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_line_up() {
        let t = table(
            &["A", "BB", "C"],
            &[
                vec!["xxx".into(), "y".into(), "z".into()],
                vec!["1".into(), "22".into(), "3".into()],
            ],
        );
        assert_eq!(t, "A    BB  C\nxxx  y   z\n1    22  3");
    }
}
