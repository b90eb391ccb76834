//! Store errors and how backend errors are classified.

use std::io;

use tokio_postgres::error::SqlState;

/// Why a store call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database cannot be reached or did not answer in time (connection refused or
    /// closed, pool wait/create timeout, statement timeout, server shutting down, lock
    /// contention, serialization failure, disk full…). Transient: back off, do **not** ack,
    /// retry later.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The database refused a change to protected data (append-only trigger, permission
    /// denied, constraint violation, corrupt file). Not transient.
    #[error("store integrity: {0}")]
    Integrity(String),
    /// The schema could not be brought up to date, or an applied migration differs from
    /// the embedded one.
    #[error("store migration: {0}")]
    Migration(String),
    /// Anything else (bad configuration, invalid input, a bug).
    #[error("store error: {0}")]
    Other(String),
}

impl StoreError {
    /// True for errors worth retrying later ([`StoreError::Unavailable`]).
    #[must_use]
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// How a SQLSTATE is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    Transient,
    Integrity,
    Other,
}

/// Classifies a PostgreSQL SQLSTATE.
pub(crate) fn classify_sqlstate(code: &SqlState) -> Class {
    let c = code.code();
    if c.starts_with("08") // connection exception
        || c.starts_with("53") // insufficient resources: too many connections, disk full, out of memory
        || c.starts_with("57P") // admin/crash shutdown, cannot connect now, database dropped
        || c.starts_with("58") // system error (I/O)
        || *code == SqlState::QUERY_CANCELED // 57014: statement_timeout
        || *code == SqlState::T_R_SERIALIZATION_FAILURE
        || *code == SqlState::T_R_DEADLOCK_DETECTED
        || *code == SqlState::LOCK_NOT_AVAILABLE
        || *code == SqlState::IDLE_IN_TRANSACTION_SESSION_TIMEOUT
        || *code == SqlState::READ_ONLY_SQL_TRANSACTION
    // failover: connected to a standby
    {
        Class::Transient
    } else if c.starts_with("23") // integrity constraint violation (the append-only trigger raises 23001)
        || *code == SqlState::INSUFFICIENT_PRIVILEGE // 42501: the app role tried what it may not
        || c.starts_with("XX")
    // internal error, data corrupted
    {
        Class::Integrity
    } else {
        Class::Other
    }
}

/// Classifies an error from `tokio-postgres`.
pub(crate) fn from_pg(context: &str, e: &tokio_postgres::Error) -> StoreError {
    if let Some(db) = e.as_db_error() {
        let msg = format!(
            "{context}: {} {}: {}",
            db.severity(),
            db.code().code(),
            db.message()
        );
        return match classify_sqlstate(db.code()) {
            Class::Transient => StoreError::Unavailable(msg),
            Class::Integrity => StoreError::Integrity(msg),
            Class::Other => StoreError::Other(msg),
        };
    }
    let msg = format!("{context}: {}", chain(e));
    if e.is_closed() || e.to_string() == "timeout waiting for server" {
        return StoreError::Unavailable(msg);
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<io::Error>() {
            return match io.kind() {
                io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput => StoreError::Other(msg),
                _ => StoreError::Unavailable(msg),
            };
        }
        source = s.source();
    }
    StoreError::Other(msg)
}

/// Classifies an error from getting a pooled connection.
pub(crate) fn from_pool(e: &deadpool_postgres::PoolError) -> StoreError {
    use deadpool_postgres::{HookError, PoolError};
    match e {
        PoolError::Timeout(t) => {
            StoreError::Unavailable(format!("PostgreSQL pool: {t:?} timeout: {e}"))
        }
        PoolError::Backend(e) => from_pg("PostgreSQL connect", e),
        PoolError::Closed => StoreError::Unavailable("PostgreSQL pool closed".into()),
        PoolError::PostCreateHook(HookError::Backend(e)) => {
            from_pg("PostgreSQL session set-up (statement_timeout, SET ROLE)", e)
        }
        PoolError::PostCreateHook(HookError::Message(m)) => {
            StoreError::Other(format!("PostgreSQL session set-up: {m}"))
        }
        PoolError::NoRuntimeSpecified => StoreError::Other(format!("PostgreSQL pool: {e}")),
    }
}

/// Classifies an error from SQLite.
pub(crate) fn from_sqlite(context: &str, e: &rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode;
    let msg = format!("{context}: {e}");
    match e.sqlite_error_code() {
        Some(
            ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::DiskFull
            | ErrorCode::SystemIoFailure
            | ErrorCode::OutOfMemory
            | ErrorCode::CannotOpen
            | ErrorCode::OperationInterrupted,
        ) => StoreError::Unavailable(msg),
        Some(
            ErrorCode::ConstraintViolation
            | ErrorCode::DatabaseCorrupt
            | ErrorCode::NotADatabase
            | ErrorCode::ReadOnly
            | ErrorCode::PermissionDenied
            | ErrorCode::AuthorizationForStatementDenied,
        ) => StoreError::Integrity(msg),
        _ => StoreError::Other(msg),
    }
}

/// The error and its sources, `: `-separated.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates() {
        for code in [
            SqlState::QUERY_CANCELED,
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
            SqlState::CONNECTION_EXCEPTION,
            SqlState::CONNECTION_FAILURE,
            SqlState::SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION,
            SqlState::TOO_MANY_CONNECTIONS,
            SqlState::DISK_FULL,
            SqlState::T_R_SERIALIZATION_FAILURE,
            SqlState::T_R_DEADLOCK_DETECTED,
            SqlState::LOCK_NOT_AVAILABLE,
        ] {
            assert_eq!(classify_sqlstate(&code), Class::Transient, "{code:?}");
        }
        for code in [
            SqlState::RESTRICT_VIOLATION,
            SqlState::UNIQUE_VIOLATION,
            SqlState::INSUFFICIENT_PRIVILEGE,
            SqlState::DATA_CORRUPTED,
        ] {
            assert_eq!(classify_sqlstate(&code), Class::Integrity, "{code:?}");
        }
        for code in [
            SqlState::SYNTAX_ERROR,
            SqlState::UNDEFINED_TABLE,
            SqlState::INVALID_PASSWORD,
            SqlState::UNDEFINED_OBJECT,
        ] {
            assert_eq!(classify_sqlstate(&code), Class::Other, "{code:?}");
        }
    }

    #[test]
    fn transient_flag() {
        assert!(StoreError::Unavailable("x".into()).is_transient());
        assert!(!StoreError::Integrity("x".into()).is_transient());
        assert!(!StoreError::Migration("x".into()).is_transient());
        assert!(!StoreError::Other("x".into()).is_transient());
    }

    #[test]
    fn sqlite_codes() {
        let busy = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        );
        assert!(from_sqlite("t", &busy).is_transient());
        let trigger = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT_TRIGGER),
            Some("append-only".into()),
        );
        assert!(matches!(
            from_sqlite("t", &trigger),
            StoreError::Integrity(_)
        ));
    }
}
