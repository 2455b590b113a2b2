//! Byte quantities as manifests write them: a number and a unit (`B, K, KB, M, MB, G, GB, T,
//! TB`, any case; `K` = `KB` = 1024 bytes), as CC's `ByteConverter` reads them.

const KIB: f64 = 1024.0;

/// Why a size could not be read; the message completes "Memory ..." etc.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    #[error("is not a number")]
    NotNumeric,
    #[error("must use a supported unit: B, K, KB, M, MB, G, GB, T, or TB")]
    InvalidUnit,
}

/// Parses `"256M"`, `"1.5G"`, `"512 kb"` into bytes (fractions rounded down). A unit is
/// required; negative values are not numbers here.
pub fn parse_size_bytes(text: &str) -> Result<u64, SizeError> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    if number.is_empty()
        || number.starts_with('.')
        || number.ends_with('.')
        || number.matches('.').count() > 1
    {
        return Err(SizeError::NotNumeric);
    }
    let value: f64 = number.parse().map_err(|_| SizeError::NotNumeric)?;
    let power = match unit.trim().to_ascii_uppercase().as_str() {
        "B" => 0,
        "K" | "KB" => 1,
        "M" | "MB" => 2,
        "G" | "GB" => 3,
        "T" | "TB" => 4,
        _ => return Err(SizeError::InvalidUnit),
    };
    let bytes = value * KIB.powi(power);
    if !bytes.is_finite() || bytes > u64::MAX as f64 {
        return Err(SizeError::NotNumeric);
    }
    Ok(bytes as u64)
}

/// Parses a size into whole mebibytes (rounded down, so `"512K"` is 0).
pub fn parse_size_mb(text: &str) -> Result<u64, SizeError> {
    Ok(parse_size_bytes(text)? / (1024 * 1024))
}

/// Parses `log-rate-limit-per-second` into bytes per second: `-1` is unlimited (returned as
/// -1), a bare `0` is allowed, anything else needs a unit.
pub fn parse_log_rate(text: &str) -> Result<i64, SizeError> {
    let text = text.trim();
    match text {
        "-1" => return Ok(-1),
        "0" => return Ok(0),
        _ => {}
    }
    if text.starts_with('-') {
        return Err(SizeError::NotNumeric);
    }
    i64::try_from(parse_size_bytes(text)?).map_err(|_| SizeError::NotNumeric)
}

/// Formats mebibytes the way CC's manifest presenter does: `1G` when a whole number of
/// gibibytes, else `256M`.
pub fn format_mb(mb: u64) -> String {
    if mb != 0 && mb % 1024 == 0 {
        format!("{}G", mb / 1024)
    } else {
        format!("{mb}M")
    }
}

/// Formats a log rate in bytes/s: `-1` unlimited, else the largest exact unit (`16K`, `1M`).
pub fn format_log_rate(bps: i64) -> String {
    if bps < 0 {
        return "-1".to_string();
    }
    let units = [("T", 1i64 << 40), ("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)];
    for (unit, size) in units {
        if bps != 0 && bps % size == 0 {
            return format!("{}{unit}", bps / size);
        }
    }
    format!("{bps}B")
}
