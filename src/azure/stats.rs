//! Counters of one collection, per table: what the benchmark prints.
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;

/// One table's (or endpoint's) counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TableStats {
    /// HTTP requests sent, retries included.
    pub requests: u64,
    /// Pages read successfully.
    pub pages: u64,
    pub rows: u64,
    /// Reply body bytes received.
    pub bytes: u64,
    pub throttled_429: u64,
    pub retries: u64,
    /// Sum of `totalRecords` over the query batches.
    pub total_records: u64,
}

impl TableStats {
    fn add(&mut self, o: &TableStats) {
        self.requests += o.requests;
        self.pages += o.pages;
        self.rows += o.rows;
        self.bytes += o.bytes;
        self.throttled_429 += o.throttled_429;
        self.retries += o.retries;
        self.total_records += o.total_records;
    }
}

/// Counters of a whole collection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CollectStats {
    /// `subscriptions`, `clusters`, `registries`, `role-assignments`, `arm/subscriptions`, `graph`.
    pub tables: BTreeMap<String, TableStats>,
    /// Subscriptions in scope.
    pub subscriptions: usize,
    /// Query batches (table × subscription chunk).
    pub batches: usize,
    pub gaps: usize,
    /// Time spent waiting for the quota window to reset.
    pub throttle_wait_ms: u64,
    pub elapsed_ms: u64,
}

impl CollectStats {
    pub fn totals(&self) -> TableStats {
        let mut t = TableStats::default();
        for s in self.tables.values() {
            t.add(s);
        }
        t
    }

    /// A small table for humans (the benchmark prints it).
    pub fn render_table(&self) -> String {
        let mut out = format!(
            "{:<20} {:>9} {:>7} {:>10} {:>13} {:>5} {:>7}\n",
            "table", "requests", "pages", "rows", "bytes", "429s", "retries"
        );
        let mut line = |name: &str, t: &TableStats| {
            out.push_str(&format!(
                "{:<20} {:>9} {:>7} {:>10} {:>13} {:>5} {:>7}\n",
                name, t.requests, t.pages, t.rows, t.bytes, t.throttled_429, t.retries
            ));
        };
        for (name, t) in &self.tables {
            line(name, t);
        }
        line("total", &self.totals());
        out
    }
}

/// Shared, lock-protected counters.
#[derive(Debug, Clone, Default)]
pub struct StatsHandle(Arc<Mutex<CollectStats>>);

impl StatsHandle {
    pub fn update(&self, table: &str, f: impl FnOnce(&mut TableStats)) {
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f(g.tables.entry(table.to_string()).or_default());
    }

    pub fn with(&self, f: impl FnOnce(&mut CollectStats)) {
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g);
    }

    pub fn snapshot(&self) -> CollectStats {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_add_up() {
        let h = StatsHandle::default();
        h.update("clusters", |t| {
            t.requests += 3;
            t.pages += 2;
            t.throttled_429 += 1;
        });
        h.update("role-assignments", |t| {
            t.requests += 4;
            t.pages += 4;
            t.bytes += 10;
        });
        let s = h.snapshot();
        let t = s.totals();
        assert_eq!(
            (t.requests, t.pages, t.bytes, t.throttled_429),
            (7, 6, 10, 1)
        );
        let table = s.render_table();
        assert!(
            table.contains("clusters") && table.lines().last().unwrap().starts_with("total"),
            "{table}"
        );
    }
}
