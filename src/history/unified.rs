//! Unified diffs of one file between two points in history, as `git diff` prints them.

use similar::TextDiff;

/// Lines of context around each change.
const CONTEXT: usize = 3;

/// The diff of `path` from `old` to `new` (None: the file is absent on that side). Empty when
/// the two are the same.
pub(crate) fn file_diff(path: &str, old: Option<&[u8]>, new: Option<&[u8]>) -> String {
    if old == new {
        return String::new();
    }
    let (from, to) = (
        old.map_or("/dev/null".to_owned(), |_| format!("a/{path}")),
        new.map_or("/dev/null".to_owned(), |_| format!("b/{path}")),
    );
    let mut out = format!("diff a/{path} b/{path}\n");
    match (text(old), text(new)) {
        (Some(old_text), Some(new_text)) => {
            let diff = TextDiff::from_lines(old_text, new_text);
            let body = diff
                .unified_diff()
                .context_radius(CONTEXT)
                .header(&from, &to)
                .to_string();
            out.push_str(&body);
            if !body.ends_with('\n') {
                out.push('\n');
            }
        }
        _ => out.push_str(&format!("Binary files {from} and {to} differ\n")),
    }
    out
}

/// The text of one side ("" when absent); None when it is binary.
fn text(content: Option<&[u8]>) -> Option<&str> {
    let bytes = content.unwrap_or_default();
    if bytes.contains(&0) {
        return None;
    }
    std::str::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_in_the_middle_shows_with_context() {
        let diff = file_diff("a.md", Some(b"1\n2\n3\n"), Some(b"1\ntwo\n3\n"));
        assert_eq!(
            diff,
            "diff a/a.md b/a.md\n--- a/a.md\n+++ b/a.md\n@@ -1,3 +1,3 @@\n 1\n-2\n+two\n 3\n"
        );
    }

    #[test]
    fn added_deleted_binary_and_same() {
        assert!(
            file_diff("n.md", None, Some(b"new\n"))
                .contains("--- /dev/null\n+++ b/n.md\n@@ -0,0 +1 @@\n+new\n")
        );
        assert!(file_diff("o.md", Some(b"old\n"), None).contains("--- a/o.md\n+++ /dev/null\n"));
        assert!(
            file_diff("b.bin", Some(b"\0\x01"), Some(b"\0\x02"))
                .contains("Binary files a/b.bin and b/b.bin differ")
        );
        assert_eq!(file_diff("s.md", Some(b"x\n"), Some(b"x\n")), "");
    }
}
