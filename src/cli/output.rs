//! Printing helpers shared by the subcommands.

use serde::Serialize;

/// An error and its causes as one line: `what went wrong: because ...`.
pub(crate) fn one_line(err: &anyhow::Error) -> String {
    let mut line = err.to_string();
    for cause in err.chain().skip(1) {
        let cause = cause.to_string();
        if !line.contains(&cause) {
            line.push_str(": ");
            line.push_str(&cause);
        }
    }
    line.replace('\n', " ")
}

pub(crate) fn print_json(value: &impl Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// A time for humans: `12:34:56` today, else the date too; `never` for none.
pub(crate) fn when(time: Option<&str>) -> String {
    let Some(time) = time else {
        return "never".to_owned();
    };
    match chrono::DateTime::parse_from_rfc3339(time) {
        Ok(t) => {
            let local = t.with_timezone(&chrono::Local);
            if local.date_naive() == chrono::Local::now().date_naive() {
                local.format("%H:%M:%S").to_string()
            } else {
                local.format("%Y-%m-%d %H:%M:%S").to_string()
            }
        }
        Err(_) => time.to_owned(),
    }
}

/// Prints `text` through a pager (`$PAGER`, else `less -FRX`) when stdout is a terminal, as
/// `git log` does; straight to stdout otherwise, or when the pager cannot start.
pub(crate) fn paged(text: &str) -> anyhow::Result<()> {
    use std::io::{IsTerminal as _, Write as _};
    if std::io::stdout().is_terminal() {
        let pager = std::env::var("PAGER").unwrap_or_else(|_| "less -FRX".to_owned());
        let mut words = pager.split_whitespace();
        if let Some(program) = words.next()
            && let Ok(mut child) = std::process::Command::new(program)
                .args(words)
                .stdin(std::process::Stdio::piped())
                .spawn()
        {
            if let Some(mut stdin) = child.stdin.take() {
                // The user may quit the pager before reading everything.
                let _ = stdin.write_all(text.as_bytes());
            }
            child.wait()?;
            return Ok(());
        }
    }
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()) {
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// A size for humans: `812 B`, `4.2 KiB`, `13.0 MiB`, `1.1 GiB`.
pub(crate) fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_for_humans() {
        assert_eq!(super::size(812), "812 B");
        assert_eq!(super::size(4300), "4.2 KiB");
        assert_eq!(super::size(13 * 1024 * 1024), "13.0 MiB");
        assert_eq!(super::size(1200 * 1024 * 1024), "1.2 GiB");
    }
}
