//! The durable record of every top-up: an *intent* row is committed before the call that moves
//! money, then moved through `intent → acked | rejected | unknown → settled`.
//!
//! Why SQLite in WAL mode with `synchronous = FULL`: a committed row survives a power cut, the
//! OOM killer and a double ^C, and a restart reads back exactly what was promised. Caps, the
//! cooldown and "in flight" are computed from these rows, so a restart cannot reset them.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Mutex;

use rusqlite::{params, Connection};

use crate::money::{parse_decimal, Usdt};
use crate::time::Timestamp;
use crate::venue::TransferKey;

#[derive(Debug, thiserror::Error)]
#[error("journal {path}: {message}")]
pub struct JournalError {
    pub path: String,
    pub message: String,
}

/// Where a rescue stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RescueStage {
    /// Committed before the transfer call; the call may or may not have been made.
    Intent,
    /// The venue accepted it; not yet seen settled.
    Acked,
    /// The venue refused it, reported it failed, or proved it absent: nothing moved.
    Rejected,
    /// The call's answer never came: it may have moved money.
    Unknown,
    /// The venue says it settled.
    Settled,
    /// The venue did not show it for `unknown_outcome_grace` after it had had time to: it no
    /// longer blocks new rescues, but it may still have moved money, so it keeps counting
    /// against the caps and the reserve for its full 24 h and is still looked up, so a late
    /// record settles it.
    Lapsed,
}

impl RescueStage {
    pub fn as_str(self) -> &'static str {
        match self {
            RescueStage::Intent => "intent",
            RescueStage::Acked => "acked",
            RescueStage::Rejected => "rejected",
            RescueStage::Unknown => "unknown",
            RescueStage::Settled => "settled",
            RescueStage::Lapsed => "lapsed",
        }
    }

    /// Still waiting for the venue to say what happened.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            RescueStage::Intent | RescueStage::Acked | RescueStage::Unknown
        )
    }

    /// Counted against the caps: everything that may have moved money.
    pub fn may_have_moved(self) -> bool {
        self != RescueStage::Rejected
    }

    /// Still asked about at the venue: open, or lapsed (a late record may yet settle it).
    pub fn is_looked_up(self) -> bool {
        self.is_open() || self == RescueStage::Lapsed
    }
}

impl fmt::Display for RescueStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RescueStage {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "intent" => RescueStage::Intent,
            "acked" => RescueStage::Acked,
            "rejected" => RescueStage::Rejected,
            "unknown" => RescueStage::Unknown,
            "settled" => RescueStage::Settled,
            "lapsed" => RescueStage::Lapsed,
            other => return Err(format!("unknown rescue state `{other}`")),
        })
    }
}

/// One row: a top-up and what was known when it was decided.
#[derive(Debug, Clone, PartialEq)]
pub struct RescueRecord {
    pub key: TransferKey,
    pub account: String,
    pub venue: String,
    pub asset: String,
    pub amount: Usdt,
    pub created_at: Timestamp,
    /// Why: the metric, its value and the levels, in words.
    pub reason: String,
    /// Margin-ratio buffer (1 − M/E) when decided, and once the money landed.
    pub buffer_before: String,
    pub buffer_after: Option<String>,
    /// Futures wallet balance when sent; it must rise by the amount.
    pub wallet_before: Usdt,
    pub state: RescueStage,
    /// The venue's id (Binance `tranId`, …) once known.
    pub venue_id: Option<String>,
    /// The venue's words when it refused, or why an unknown outcome was released.
    pub detail: Option<String>,
    pub verified: bool,
    pub updated_at: Timestamp,
    /// The first lookup, made once the venue had had time to show the transfer, that did not
    /// find it settled: the grace before it lapses is measured from here, never from the
    /// decision, so a venue whose records lag is given the whole grace after it could answer.
    pub unseen_since: Option<Timestamp>,
    /// Whose money this is: the venue account's own identity (`binance:<uid>`, …), not the
    /// config's name for it, so renaming an account keeps its 24 h spend.
    pub venue_account: String,
    /// The reserve wallet drawn on; accounts that share one share its `keep_at_least`.
    pub reserve_wallet: String,
}

/// The rows' shape since schema version 2 (`PRAGMA user_version`). Version 1, the first
/// release's, had no `lapsed` state and no `unseen_since`, `venue_account` or `reserve_wallet`;
/// `migrate` rebuilds such a table in place, keeping every row.
const TABLE: &str = "
CREATE TABLE IF NOT EXISTS rescues (
    key            TEXT PRIMARY KEY,
    account        TEXT NOT NULL,
    venue          TEXT NOT NULL,
    asset          TEXT NOT NULL,
    amount         TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    reason         TEXT NOT NULL,
    buffer_before  TEXT NOT NULL,
    buffer_after   TEXT,
    wallet_before  TEXT NOT NULL,
    state          TEXT NOT NULL
                   CHECK (state IN ('intent', 'acked', 'rejected', 'unknown', 'settled', 'lapsed')),
    venue_id       TEXT,
    detail         TEXT,
    verified       INTEGER NOT NULL DEFAULT 0,
    updated_at     INTEGER NOT NULL,
    unseen_since   INTEGER,
    venue_account  TEXT NOT NULL DEFAULT '',
    reserve_wallet TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS rescues_by_venue_account ON rescues (venue_account, created_at);
CREATE INDEX IF NOT EXISTS rescues_by_reserve ON rescues (reserve_wallet, created_at);
";

const SCHEMA_VERSION: i64 = 2;

/// A row of the account in `Scope` (?1 its identity, ?2 its name): by identity, or by name
/// for rows written before identities were kept.
const OWN: &str = "((venue_account = ?1 AND ?1 <> '') OR (venue_account = '' AND account = ?2))";

/// The first release's columns, in order: what a version-1 table holds.
const V1_COLUMNS: &str = "key, account, venue, asset, amount, created_at, reason, buffer_before,
    buffer_after, wallet_before, state, venue_id, detail, verified, updated_at";

const COLUMNS: &str = "key, account, venue, asset, amount, created_at, reason, buffer_before,
    buffer_after, wallet_before, state, venue_id, detail, verified, updated_at, unseen_since,
    venue_account, reserve_wallet";

pub struct Journal {
    path: String,
    connection: Mutex<Connection>,
    /// Held for the journal's lifetime: a second daemon on the same file would compute caps
    /// without seeing this one's rescues, so it is refused instead.
    _lock: Option<std::fs::File>,
}

/// Which rows an account runner reads back: its own (by the venue account's identity, or by
/// the config name for rows written before identities were kept), and every row drawn on the
/// same reserve wallet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope<'a> {
    pub name: &'a str,
    pub venue_account: &'a str,
    pub reserve_wallet: &'a str,
}

impl Journal {
    /// Opens (creating if needed) the journal at `path` for writing: WAL, synchronous writes,
    /// and an exclusive lock on `<path>.lock` that a second process cannot take.
    pub fn open(path: &Path) -> Result<Journal, JournalError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| error(path, e))?;
        }
        let lock = lock_exclusively(path)?;
        let mut journal = Self::open_unlocked(path)?;
        journal._lock = Some(lock);
        Ok(journal)
    }

    /// Opens the journal to read it while a daemon may be writing it (`history`): no lock.
    pub fn open_for_reading(path: &Path) -> Result<Journal, JournalError> {
        Self::open_unlocked(path)
    }

    fn open_unlocked(path: &Path) -> Result<Journal, JournalError> {
        let connection = Connection::open(path).map_err(|e| error(path, e))?;
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| error(path, e))?;
        connection
            .pragma_update(None, "synchronous", "FULL")
            .map_err(|e| error(path, e))?;
        connection
            .busy_timeout(std::time::Duration::from_secs(5))
            .map_err(|e| error(path, e))?;
        Self::with_schema(path.display().to_string(), connection)
    }

    /// A journal that lives as long as the process: for simulated accounts, whose rehearsal
    /// starts afresh every run.
    pub fn in_memory() -> Journal {
        let connection = Connection::open_in_memory().expect("in-memory SQLite");
        Self::with_schema(":memory:".into(), connection).expect("schema on a fresh database")
    }

    fn with_schema(path: String, mut connection: Connection) -> Result<Journal, JournalError> {
        migrate(&mut connection).map_err(|e| error(Path::new(&path), e))?;
        Ok(Journal {
            path,
            connection: Mutex::new(connection),
            _lock: None,
        })
    }

    fn connection(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written (each statement is
        // atomic), so a poisoned lock is still safe to use.
        self.connection
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Commits a new row. Returns only once it is durable.
    pub fn insert(&self, record: &RescueRecord) -> Result<(), JournalError> {
        let connection = self.connection();
        connection
            .execute(
                &format!(
                    "INSERT INTO rescues ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9,
                        ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)"
                ),
                params![
                    record.key.compact(),
                    record.account,
                    record.venue,
                    record.asset,
                    record.amount.to_string(),
                    record.created_at.as_millis(),
                    record.reason,
                    record.buffer_before,
                    record.buffer_after,
                    record.wallet_before.to_string(),
                    record.state.as_str(),
                    record.venue_id,
                    record.detail,
                    record.verified,
                    record.updated_at.as_millis(),
                    record.unseen_since.map(|t| t.as_millis()),
                    record.venue_account,
                    record.reserve_wallet,
                ],
            )
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// Moves a row to a new state, keeping what was known before unless told otherwise.
    pub fn update(&self, change: &StateChange<'_>) -> Result<(), JournalError> {
        let connection = self.connection();
        let changed = connection
            .execute(
                "UPDATE rescues SET state = ?2,
                    venue_id = COALESCE(?3, venue_id),
                    detail = COALESCE(?4, detail),
                    buffer_after = COALESCE(?5, buffer_after),
                    verified = MAX(verified, ?6),
                    updated_at = ?7,
                    unseen_since = COALESCE(?8, unseen_since)
                 WHERE key = ?1",
                params![
                    change.key.compact(),
                    change.state.as_str(),
                    change.venue_id,
                    change.detail,
                    change.buffer_after,
                    change.verified,
                    change.at.as_millis(),
                    change.unseen_since.map(|t| t.as_millis()),
                ],
            )
            .map_err(|e| self.error(e))?;
        if changed != 1 {
            return Err(JournalError {
                path: self.path.clone(),
                message: format!("no rescue with key {}", change.key),
            });
        }
        Ok(())
    }

    /// The rows that still matter to an account: its own and its reserve wallet's created
    /// after `since`, and its own that are not yet resolved (open or lapsed), however old.
    pub fn load(
        &self,
        scope: &Scope<'_>,
        since: Timestamp,
    ) -> Result<Vec<RescueRecord>, JournalError> {
        self.select(
            &format!(
                "WHERE ({OWN} OR (reserve_wallet = ?3 AND ?3 <> ''))
                   AND (created_at > ?4 OR ({OWN} AND state IN ('intent', 'acked', 'unknown')))"
            ),
            params![
                scope.venue_account,
                scope.name,
                scope.reserve_wallet,
                since.as_millis()
            ],
        )
    }

    /// Every row, oldest first: for `history`.
    pub fn all(&self) -> Result<Vec<RescueRecord>, JournalError> {
        self.select("", params![])
    }

    /// Every row created after `since`, whoever's: for the portfolio-wide day cap.
    pub fn created_after(&self, since: Timestamp) -> Result<Vec<RescueRecord>, JournalError> {
        self.select("WHERE created_at > ?1", params![since.as_millis()])
    }

    /// The account's `limit` latest rows (by config name), newest first: for the status
    /// page and `status`, which must not read weeks of rows every refresh.
    pub fn recent(&self, account: &str, limit: usize) -> Result<Vec<RescueRecord>, JournalError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut rows = self.select(
            "WHERE rowid IN (SELECT rowid FROM rescues WHERE account = ?1
                             ORDER BY created_at DESC, rowid DESC LIMIT ?2)",
            params![account, limit],
        )?;
        rows.reverse();
        Ok(rows)
    }

    fn select(
        &self,
        filter: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<RescueRecord>, JournalError> {
        let connection = self.connection();
        let sql = format!("SELECT {COLUMNS} FROM rescues {filter} ORDER BY created_at, rowid");
        let mut statement = connection.prepare(&sql).map_err(|e| self.error(e))?;
        let rows = statement
            .query_map(params, read_row)
            .map_err(|e| self.error(e))?;
        let mut records = Vec::new();
        for row in rows {
            let raw = row.map_err(|e| self.error(e))?;
            records.push(raw.build().map_err(|message| JournalError {
                path: self.path.clone(),
                message,
            })?);
        }
        Ok(records)
    }

    fn error(&self, e: impl fmt::Display) -> JournalError {
        JournalError {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }
}

/// Takes `<journal>.lock` exclusively (released by the kernel when the process dies, so a
/// SIGKILL leaves no stale lock), and writes this process's id into it for the message a
/// second process gets.
fn lock_exclusively(path: &Path) -> Result<std::fs::File, JournalError> {
    use std::io::{Seek, Write};
    let lock_path = {
        let mut name = path.as_os_str().to_owned();
        name.push(".lock");
        PathBuf::from(name)
    };
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(|e| error(&lock_path, e))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let holder = std::fs::read_to_string(&lock_path).unwrap_or_default();
            return Err(JournalError {
                path: path.display().to_string(),
                message: format!(
                    "another marginguard process (pid {}) holds this journal; two daemons on one journal would not see each other's rescues",
                    holder.trim()
                ),
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(error(&lock_path, e)),
    }
    let _ = file.set_len(0);
    let _ = file.rewind();
    let _ = write!(file, "{}", std::process::id());
    Ok(file)
}

/// Brings a journal of any earlier version to `SCHEMA_VERSION` in one transaction.
fn migrate(connection: &mut Connection) -> rusqlite::Result<()> {
    let version: i64 = connection.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if version >= SCHEMA_VERSION {
        return Ok(());
    }
    let transaction = connection.transaction()?;
    let has_table: bool = transaction.query_row(
        "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'rescues'",
        [],
        |row| row.get(0),
    )?;
    if has_table {
        // SQLite cannot change a CHECK constraint in place: rebuild, keeping every row.
        transaction.execute_batch(&format!(
            "ALTER TABLE rescues RENAME TO rescues_v1;
             DROP INDEX IF EXISTS rescues_by_account;
             {TABLE}
             INSERT INTO rescues ({V1_COLUMNS}) SELECT {V1_COLUMNS} FROM rescues_v1;
             DROP TABLE rescues_v1;"
        ))?;
    } else {
        transaction.execute_batch(TABLE)?;
    }
    transaction.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    transaction.commit()
}

/// A state transition and whatever became known with it.
#[derive(Debug, Clone)]
pub struct StateChange<'a> {
    pub key: TransferKey,
    pub state: RescueStage,
    pub venue_id: Option<&'a str>,
    pub detail: Option<&'a str>,
    pub buffer_after: Option<&'a str>,
    pub verified: bool,
    pub at: Timestamp,
    /// Set once: when a lookup first failed to find it settled after the venue had had time.
    pub unseen_since: Option<Timestamp>,
}

impl<'a> StateChange<'a> {
    pub fn to(key: TransferKey, state: RescueStage, at: Timestamp) -> Self {
        Self {
            key,
            state,
            venue_id: None,
            detail: None,
            buffer_after: None,
            verified: false,
            at,
            unseen_since: None,
        }
    }
}

/// The dry-run journal sits beside the live one and never mixes with it:
/// `state/journal.sqlite` → `state/journal.dry-run.sqlite`.
pub fn dry_run_path(live: &Path) -> PathBuf {
    let stem = live
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "journal".into());
    let name = match live.extension() {
        Some(ext) => format!("{stem}.dry-run.{}", ext.to_string_lossy()),
        None => format!("{stem}.dry-run"),
    };
    live.with_file_name(name)
}

struct RawRow {
    key: String,
    account: String,
    venue: String,
    asset: String,
    amount: String,
    created_at: i64,
    reason: String,
    buffer_before: String,
    buffer_after: Option<String>,
    wallet_before: String,
    state: String,
    venue_id: Option<String>,
    detail: Option<String>,
    verified: bool,
    updated_at: i64,
    unseen_since: Option<i64>,
    venue_account: String,
    reserve_wallet: String,
}

fn read_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawRow> {
    Ok(RawRow {
        key: row.get(0)?,
        account: row.get(1)?,
        venue: row.get(2)?,
        asset: row.get(3)?,
        amount: row.get(4)?,
        created_at: row.get(5)?,
        reason: row.get(6)?,
        buffer_before: row.get(7)?,
        buffer_after: row.get(8)?,
        wallet_before: row.get(9)?,
        state: row.get(10)?,
        venue_id: row.get(11)?,
        detail: row.get(12)?,
        verified: row.get(13)?,
        updated_at: row.get(14)?,
        unseen_since: row.get(15)?,
        venue_account: row.get(16)?,
        reserve_wallet: row.get(17)?,
    })
}

impl RawRow {
    fn build(self) -> Result<RescueRecord, String> {
        let key = u128::from_str_radix(&self.key, 16)
            .map(TransferKey)
            .map_err(|_| format!("row key `{}` is not 32 hex characters", self.key))?;
        let money = |field: &str, raw: &str| {
            parse_decimal(raw)
                .map(Usdt)
                .map_err(|e| format!("row {}: {field}: {e}", self.key))
        };
        Ok(RescueRecord {
            amount: money("amount", &self.amount)?,
            wallet_before: money("wallet_before", &self.wallet_before)?,
            state: self.state.parse()?,
            key,
            account: self.account,
            venue: self.venue,
            asset: self.asset,
            created_at: Timestamp(self.created_at),
            reason: self.reason,
            buffer_before: self.buffer_before,
            buffer_after: self.buffer_after,
            venue_id: self.venue_id,
            detail: self.detail,
            verified: self.verified,
            updated_at: Timestamp(self.updated_at),
            unseen_since: self.unseen_since.map(Timestamp),
            venue_account: self.venue_account,
            reserve_wallet: self.reserve_wallet,
        })
    }
}

fn error(path: &Path, e: impl fmt::Display) -> JournalError {
    JournalError {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn record(key: u128, account: &str, at: i64, state: RescueStage) -> RescueRecord {
        RescueRecord {
            key: TransferKey(key),
            account: account.into(),
            venue: "sim".into(),
            asset: "USDT".into(),
            amount: Usdt(dec!(123.45)),
            created_at: Timestamp(at),
            reason: "liquidation_distance 7.62% < 8.00%".into(),
            buffer_before: "94.41%".into(),
            buffer_after: None,
            wallet_before: Usdt(dec!(10000)),
            state,
            venue_id: None,
            detail: None,
            verified: false,
            updated_at: Timestamp(at),
            unseen_since: None,
            venue_account: String::new(),
            reserve_wallet: String::new(),
        }
    }

    fn by_name(name: &str) -> Scope<'_> {
        Scope {
            name,
            venue_account: "",
            reserve_wallet: "",
        }
    }

    fn temp_path(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("mg-journal-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir.join("journal.sqlite")
    }

    #[test]
    fn rows_survive_reopening_and_keep_exact_amounts() {
        let path = temp_path("reopen");
        {
            let journal = Journal::open(&path).unwrap();
            journal
                .insert(&record(1, "a", 1_000, RescueStage::Intent))
                .unwrap();
            let mut change = StateChange::to(TransferKey(1), RescueStage::Acked, Timestamp(1_500));
            change.venue_id = Some("42");
            journal.update(&change).unwrap();
        }
        let journal = Journal::open(&path).unwrap();
        let rows = journal.load(&by_name("a"), Timestamp(0)).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].amount, Usdt(dec!(123.45)));
        assert_eq!(rows[0].state, RescueStage::Acked);
        assert_eq!(rows[0].venue_id.as_deref(), Some("42"));
    }

    #[test]
    fn load_keeps_recent_and_unresolved_rows_only() {
        let journal = Journal::in_memory();
        journal
            .insert(&record(1, "a", 10, RescueStage::Settled))
            .unwrap();
        journal
            .insert(&record(2, "a", 20, RescueStage::Unknown))
            .unwrap();
        journal
            .insert(&record(3, "a", 500, RescueStage::Settled))
            .unwrap();
        journal
            .insert(&record(4, "b", 600, RescueStage::Settled))
            .unwrap();
        let keys: Vec<u128> = journal
            .load(&by_name("a"), Timestamp(100))
            .unwrap()
            .iter()
            .map(|r| r.key.0)
            .collect();
        assert_eq!(keys, vec![2, 3]);
    }

    #[test]
    fn a_key_is_recorded_once() {
        let journal = Journal::in_memory();
        journal
            .insert(&record(7, "a", 1, RescueStage::Intent))
            .unwrap();
        assert!(journal
            .insert(&record(7, "a", 2, RescueStage::Intent))
            .is_err());
    }

    #[test]
    fn updating_a_missing_row_is_an_error() {
        let journal = Journal::in_memory();
        let change = StateChange::to(TransferKey(9), RescueStage::Settled, Timestamp(1));
        assert!(journal.update(&change).is_err());
    }

    #[test]
    fn dry_run_journal_is_a_different_file() {
        assert_eq!(
            dry_run_path(Path::new("state/journal.sqlite")),
            PathBuf::from("state/journal.dry-run.sqlite")
        );
        assert_eq!(
            dry_run_path(Path::new("journal")),
            PathBuf::from("journal.dry-run")
        );
    }

    /// Issue 10.5: two daemons on one journal did not see each other's rescues.
    #[test]
    fn a_second_writer_on_one_journal_is_refused() {
        let path = temp_path("lock");
        let first = Journal::open(&path).unwrap();
        let second = Journal::open(&path)
            .err()
            .expect("a second writer must be refused");
        assert!(
            second.message.contains("another marginguard process"),
            "{second}"
        );
        assert!(
            Journal::open_for_reading(&path).is_ok(),
            "history may still read it"
        );
        drop(first);
        assert!(
            Journal::open(&path).is_ok(),
            "the lock goes with its holder"
        );
    }

    /// A journal written by the first release (no `lapsed` state, no identity columns) is
    /// rebuilt in place with every row kept.
    #[test]
    fn a_first_release_journal_is_migrated_keeping_its_rows() {
        let path = temp_path("migrate");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        {
            let old = Connection::open(&path).unwrap();
            old.execute_batch(
                "CREATE TABLE rescues (
                    key TEXT PRIMARY KEY, account TEXT NOT NULL, venue TEXT NOT NULL,
                    asset TEXT NOT NULL, amount TEXT NOT NULL, created_at INTEGER NOT NULL,
                    reason TEXT NOT NULL, buffer_before TEXT NOT NULL, buffer_after TEXT,
                    wallet_before TEXT NOT NULL,
                    state TEXT NOT NULL CHECK (state IN ('intent', 'acked', 'rejected', 'unknown', 'settled')),
                    venue_id TEXT, detail TEXT, verified INTEGER NOT NULL DEFAULT 0,
                    updated_at INTEGER NOT NULL);
                 CREATE INDEX rescues_by_account ON rescues (account, created_at);
                 INSERT INTO rescues VALUES ('0000000000000000000000000000000a', 'a', 'binance',
                    'USDT', '250.5', 10, 'why', '94%', NULL, '100', 'unknown', NULL, NULL, 0, 10);",
            )
            .unwrap();
        }
        let journal = Journal::open(&path).unwrap();
        let rows = journal.load(&by_name("a"), Timestamp(0)).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].amount, Usdt(dec!(250.5)));
        assert_eq!(rows[0].state, RescueStage::Unknown);
        assert_eq!(rows[0].venue_account, "");
        let mut change = StateChange::to(TransferKey(10), RescueStage::Lapsed, Timestamp(20));
        change.unseen_since = Some(Timestamp(15));
        journal.update(&change).expect("the new state is allowed");
        let rows = journal.all().unwrap();
        assert_eq!(rows[0].unseen_since, Some(Timestamp(15)));
    }
}
