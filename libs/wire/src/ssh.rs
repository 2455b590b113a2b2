//! The SSH endpoint's internal calls: redeeming a one-time code at the api
//! (`POST /internal/v1/ssh/authorize`) and the cell's session protocol
//! (`/internal/v1/instances/:instance_guid/exec` and `.../connect`, upgraded connections).

use serde::{Deserialize, Serialize};

/// The client id the token issuer hands one-time SSH codes to (`links.app_ssh.meta`).
pub const OAUTH_CLIENT: &str = "ssh-proxy";

/// How long a code may wait to be redeemed, in seconds.
pub const CODE_TTL_SECS: i64 = 120;

/// The SSH endpoint asks the api: may the holder of `code` enter instance `index` of
/// `process_guid`?
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authorize {
    pub code: String,
    pub process_guid: String,
    pub index: u32,
}

/// The api's yes: the instance, where it runs, and who is entering it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authorized {
    pub app_guid: String,
    pub app_name: String,
    pub space_guid: String,
    pub process_guid: String,
    pub process_type: String,
    pub index: u32,
    pub instance_guid: String,
    pub cell_id: String,
    pub user_guid: String,
    pub user_name: String,
}

/// The api's no (403 or 404), said so that the person at the SSH client knows what to do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refused {
    pub error: String,
}

/// What a session asks the cell to run (`POST .../exec`, JSON body, then the connection is
/// upgraded to the frames of [`Frame`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecRequest {
    /// Empty: an interactive login shell.
    #[serde(default)]
    pub command: String,
    /// A terminal was asked for: its type and size.
    #[serde(default)]
    pub tty: Option<Tty>,
    /// Extra variables the client sent (`env` requests), on top of the app's environment.
    #[serde(default)]
    pub env: Vec<(String, String)>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tty {
    #[serde(default)]
    pub term: String,
    pub cols: u16,
    pub rows: u16,
}

/// The upgrade protocol name of both cell endpoints (`Upgrade: paas-ssh`).
pub const UPGRADE: &str = "paas-ssh";

/// One frame of an exec session: a kind byte, a 4-byte big-endian length, the payload.
/// Client → cell: `Stdin`, `StdinEof`, `Resize` (cols, rows as two big-endian u16).
/// Cell → client: `Stdout`, `Stderr`, `Exit` (the status as a big-endian i32; signals as 128+n).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Frame {
    Stdin = 0,
    Stdout = 1,
    Stderr = 2,
    StdinEof = 3,
    Resize = 4,
    Exit = 5,
}

impl Frame {
    pub fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            0 => Self::Stdin,
            1 => Self::Stdout,
            2 => Self::Stderr,
            3 => Self::StdinEof,
            4 => Self::Resize,
            5 => Self::Exit,
            _ => return None,
        })
    }

    /// The frame's header for a payload of `len` bytes.
    pub fn header(self, len: usize) -> [u8; 5] {
        let n = u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes();
        [self as u8, n[0], n[1], n[2], n[3]]
    }
}

/// Largest payload a frame may carry.
pub const MAX_FRAME: usize = 1 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_kinds_round_trip_and_headers_carry_the_length() {
        for f in [
            Frame::Stdin,
            Frame::Stdout,
            Frame::Stderr,
            Frame::StdinEof,
            Frame::Resize,
            Frame::Exit,
        ] {
            assert_eq!(Frame::from_byte(f as u8), Some(f));
        }
        assert_eq!(Frame::from_byte(9), None);
        assert_eq!(Frame::Stdout.header(258), [1, 0, 0, 1, 2]);
    }
}
