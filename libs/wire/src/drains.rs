//! Syslog drains: what the api tells the logs service about apps bound to user-provided
//! service instances with a `syslog_drain_url` (`GET /internal/v1/syslog_drains`).

use serde::{Deserialize, Serialize};

/// One binding of an app to a drain URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SyslogDrain {
    pub binding_guid: String,
    pub app_guid: String,
    /// `syslog://host:port`, `syslog-tls://host:port` or `https://…`, with the CF query
    /// options (`drain-data`, `include-log-types`, `exclude-log-types`).
    pub url: String,
    /// `<org>.<space>.<app>`, each part sanitized, for the HOSTNAME field.
    pub hostname: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyslogDrains {
    pub drains: Vec<SyslogDrain>,
}
