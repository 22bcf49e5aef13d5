//! Printing helpers shared by the subcommands.

use serde::Serialize;

/// An error and its causes as one line: `what went wrong: because ...`.
pub fn one_line(err: &anyhow::Error) -> String {
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

pub fn print_json(value: &impl Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// A time for humans: `12:34:56` today, else the date too; `never` for none.
pub fn when(time: Option<&str>) -> String {
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
