//! Output: aligned tables, colour only on a terminal, `--json` for scripts, confirmations.

use std::io::IsTerminal as _;

pub fn tty() -> bool {
    std::io::stdout().is_terminal()
}

fn paint(code: &str, s: &str) -> String {
    if tty() && std::env::var_os("NO_COLOR").is_none() {
        format!("\x1b[{code}m{s}\x1b[0m")
    } else {
        s.to_owned()
    }
}

pub fn bold(s: &str) -> String {
    paint("1", s)
}

pub fn ok(s: &str) -> String {
    paint("32;1", s)
}

pub fn bad(s: &str) -> String {
    paint("31;1", s)
}

/// Columns aligned on the widest cell; the header in bold.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let cols = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate().take(cols) {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>, style: fn(&str) -> String| {
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate() {
            let pad = widths[i].saturating_sub(c.chars().count());
            if i + 1 == cells.len() {
                out.push_str(&style(c));
            } else {
                out.push_str(&style(c));
                out.push_str(&" ".repeat(pad + 3));
            }
        }
        out.trim_end().to_owned()
    };
    let mut out = vec![line(header.iter().map(|h| (*h).to_owned()).collect(), bold)];
    for r in rows {
        out.push(line(r.clone(), |s| s.to_owned()));
    }
    out.join("\n")
}

/// Key/value lines with the keys aligned.
pub fn pairs(items: &[(&str, String)]) -> String {
    let w = items.iter().map(|(k, _)| k.len() + 1).max().unwrap_or(0);
    items
        .iter()
        .map(|(k, v)| format!("{:<w$}   {v}", format!("{k}:")))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Ask a yes/no question on the terminal; only `y`, `Y` and `yes` are a yes.
pub fn confirm(question: &str) -> Result<bool, crate::error::CliError> {
    use std::io::Write as _;
    print!("{question} [yN]: ");
    let _ = std::io::stdout().flush();
    let mut s = String::new();
    std::io::stdin().read_line(&mut s).map_err(|e| crate::error::CliError::Other(e.to_string()))?;
    Ok(matches!(s.trim(), "y" | "Y" | "yes"))
}

pub fn print_json(v: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// Bytes as CF shows them (`12.3M`, `1G`).
pub fn bytes(n: u64) -> String {
    const UNITS: [(&str, f64); 4] =
        [("T", 1_099_511_627_776.0), ("G", 1_073_741_824.0), ("M", 1_048_576.0), ("K", 1024.0)];
    for (u, size) in UNITS {
        if n as f64 >= size {
            let v = n as f64 / size;
            return if v.fract() == 0.0 { format!("{v:.0}{u}") } else { format!("{v:.1}{u}") };
        }
    }
    format!("{n}B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_on_the_widest_cell() {
        let t = table(
            &["name", "state"],
            &[vec!["a".into(), "started".into()], vec!["longer".into(), "stopped".into()]],
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "name     state");
        assert_eq!(lines[1], "a        started");
        assert_eq!(lines[2], "longer   stopped");
    }

    #[test]
    fn sizes_read_like_cf() {
        assert_eq!(bytes(1024 * 1024 * 256), "256M");
        assert_eq!(bytes(1536), "1.5K");
        assert_eq!(bytes(1 << 30), "1G");
        assert_eq!(bytes(12), "12B");
    }
}
