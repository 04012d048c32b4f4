//! Tests of the parent module.
use super::*;
use chrono::{Datelike, Timelike, Weekday};

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

fn berlin() -> Tz {
    chrono_tz::Europe::Berlin
}

fn next_n(expr: &str, tz: Tz, from: DateTime<Utc>, n: usize) -> Vec<DateTime<Tz>> {
    parse_cron(expr, tz)
        .unwrap_or_else(|e| panic!("{expr}: {e}"))
        .upcoming(from, n)
        .into_iter()
        .map(|t| t.with_timezone(&tz))
        .collect()
}

#[test]
fn monday_is_one() {
    // 2025-01-01 is a Wednesday.
    let times = next_n("0 6 * * 1", berlin(), utc(2025, 1, 1, 0, 0), 4);
    assert_eq!(times.len(), 4);
    for t in &times {
        assert_eq!(t.weekday(), Weekday::Mon, "{t}");
        assert_eq!((t.hour(), t.minute(), t.second()), (6, 0, 0), "{t}");
    }
    // 06:00 in Berlin in winter is 05:00 UTC.
    assert_eq!(times[0].with_timezone(&Utc), utc(2025, 1, 6, 5, 0));
    assert_eq!(times[1].with_timezone(&Utc), utc(2025, 1, 13, 5, 0));
}

#[test]
fn sunday_is_zero_seven_and_sun() {
    for expr in ["0 6 * * 0", "0 6 * * 7", "0 6 * * SUN", "0 6 * * sun"] {
        let times = next_n(expr, Tz::UTC, utc(2025, 1, 1, 0, 0), 3);
        assert_eq!(
            times[0].with_timezone(&Utc),
            utc(2025, 1, 5, 6, 0),
            "{expr}"
        );
        for t in &times {
            assert_eq!(t.weekday(), Weekday::Sun, "{expr}: {t}");
        }
    }
    assert!(parse_cron("0 6 * * 7", Tz::UTC)
        .unwrap()
        .kubernetes_note()
        .is_some());
    assert!(parse_cron("0 6 * * 0", Tz::UTC)
        .unwrap()
        .kubernetes_note()
        .is_none());
}

#[test]
fn weekday_numbers_map_to_names() {
    let s = parse_cron("0 6 * * 1", Tz::UTC).unwrap();
    assert_eq!(s.translated(), vec!["0 0 6 * * MON"]);
    let s = parse_cron("0 6 * * 5-7", Tz::UTC).unwrap();
    assert_eq!(s.translated(), vec!["0 0 6 * * SUN,FRI,SAT"]);
    // `*` and `N/step` end at Saturday, as in robfig/cron: 7 is only an alias.
    let s = parse_cron("0 6 * * */2", Tz::UTC).unwrap();
    assert_eq!(s.translated(), vec!["0 0 6 * * SUN,TUE,THU,SAT"]);
    let s = parse_cron("0 6 * * 1/2", Tz::UTC).unwrap();
    assert_eq!(s.translated(), vec!["0 0 6 * * MON,WED,FRI"]);
    let s = parse_cron("0 6 * * *", Tz::UTC).unwrap();
    assert_eq!(s.translated(), vec!["0 0 6 * * *"]);
    assert!(s.kubernetes_note().is_none());
}

#[test]
fn every_fifteen_minutes() {
    let times = next_n("*/15 * * * *", Tz::UTC, utc(2025, 3, 1, 10, 7), 5);
    let mins: Vec<(u32, u32)> = times.iter().map(|t| (t.hour(), t.minute())).collect();
    assert_eq!(mins, vec![(10, 15), (10, 30), (10, 45), (11, 0), (11, 15)]);
    // `N/step` is `N-max/step`.
    let times = next_n("5/20 * * * *", Tz::UTC, utc(2025, 3, 1, 10, 7), 3);
    let mins: Vec<u32> = times.iter().map(|t| t.minute()).collect();
    assert_eq!(mins, vec![25, 45, 5]);
}

#[test]
fn weekdays_at_two() {
    // 2025-01-03 is a Friday.
    let times = next_n("0 2 * * MON-FRI", berlin(), utc(2025, 1, 3, 12, 0), 6);
    let days: Vec<Weekday> = times.iter().map(|t| t.weekday()).collect();
    use Weekday::*;
    assert_eq!(days, vec![Mon, Tue, Wed, Thu, Fri, Mon]);
    assert!(times.iter().all(|t| t.hour() == 2 && t.minute() == 0));
    // Same set written as numbers, as a list, lower case.
    for alt in ["0 2 * * 1-5", "0 2 * * 1,2,3,4,5", "0 2 * * mon-fri"] {
        assert_eq!(
            next_n(alt, berlin(), utc(2025, 1, 3, 12, 0), 6),
            times,
            "{alt}"
        );
    }
}

#[test]
fn names_for_months_and_lists() {
    let times = next_n("30 9,17 1 JAN,jul *", Tz::UTC, utc(2025, 2, 1, 0, 0), 3);
    let got: Vec<(u32, u32, u32, u32)> = times
        .iter()
        .map(|t| (t.month(), t.day(), t.hour(), t.minute()))
        .collect();
    assert_eq!(got, vec![(7, 1, 9, 30), (7, 1, 17, 30), (1, 1, 9, 30)]);
}

#[test]
fn restricted_day_of_month_and_week_are_ored() {
    // 1st of the month OR any Monday (robfig/cron, Vixie cron).
    let s = parse_cron("0 0 1 * MON", Tz::UTC).unwrap();
    assert_eq!(s.translated().len(), 2);
    // From Wed 2025-01-01 00:30: Mondays 6, 13, 20, 27 Jan, then Sat 1 Feb.
    let days: Vec<u32> = s
        .upcoming(utc(2025, 1, 1, 0, 30), 5)
        .iter()
        .map(|t| t.day())
        .collect();
    assert_eq!(days, vec![6, 13, 20, 27, 1]);
    // With a star in either day field, they are ANDed (the star matches all).
    let s = parse_cron("0 0 * * MON", Tz::UTC).unwrap();
    assert_eq!(s.translated().len(), 1);
    let s = parse_cron("0 0 */1 * MON", Tz::UTC).unwrap();
    assert_eq!(s.translated().len(), 1);
}

#[test]
fn descriptors() {
    let from = utc(2025, 5, 14, 10, 30);
    let cases = [
        ("@hourly", utc(2025, 5, 14, 11, 0)),
        ("@daily", utc(2025, 5, 15, 0, 0)),
        ("@midnight", utc(2025, 5, 15, 0, 0)),
        ("@weekly", utc(2025, 5, 18, 0, 0)),
        ("@monthly", utc(2025, 6, 1, 0, 0)),
        ("@yearly", utc(2026, 1, 1, 0, 0)),
        ("@annually", utc(2026, 1, 1, 0, 0)),
    ];
    for (expr, want) in cases {
        let s = parse_cron(expr, Tz::UTC).unwrap();
        assert_eq!(s.next_after(from), Some(want), "{expr}");
    }
}

#[test]
fn timezone_shifts_fire_time() {
    let s = parse_cron("0 2 * * *", chrono_tz::Asia::Tokyo).unwrap();
    // 02:00 JST = 17:00 UTC the previous day.
    assert_eq!(
        s.next_after(utc(2025, 6, 1, 0, 0)),
        Some(utc(2025, 6, 1, 17, 0))
    );
}

#[test]
fn dst_in_berlin_does_not_panic_and_behaves() {
    // Spring: 2025-03-30 02:00 -> 03:00 CEST. Autumn: 2025-10-26 03:00 -> 02:00 CET.
    for expr in [
        "30 2 * * *",
        "0 * * * *",
        "*/15 * * * *",
        "0 3 * * *",
        "0 2 * * SUN",
    ] {
        let s = parse_cron(expr, berlin()).unwrap();
        for from in [utc(2025, 3, 29, 0, 0), utc(2025, 10, 25, 0, 0)] {
            let times = s.upcoming(from, 200);
            assert_eq!(times.len(), 200, "{expr}");
            assert!(times.windows(2).all(|w| w[0] < w[1]), "{expr}");
        }
    }
    // 02:30 does not exist on 2025-03-30: no run that day.
    let s = parse_cron("30 2 * * *", berlin()).unwrap();
    let spring: Vec<_> = s.upcoming(utc(2025, 3, 29, 12, 0), 2);
    assert_eq!(
        spring,
        vec![utc(2025, 3, 31, 0, 30), utc(2025, 4, 1, 0, 30)]
    );
    // 02:30 happens twice on 2025-10-26: one run, at the first (CEST) one.
    let autumn: Vec<_> = s.upcoming(utc(2025, 10, 25, 12, 0), 2);
    assert_eq!(
        autumn,
        vec![utc(2025, 10, 26, 0, 30), utc(2025, 10, 27, 1, 30)]
    );
    // 03:00 on the spring day exists (CEST, 01:00 UTC).
    let s = parse_cron("0 3 * * *", berlin()).unwrap();
    assert_eq!(
        s.next_after(utc(2025, 3, 29, 12, 0)),
        Some(utc(2025, 3, 30, 1, 0))
    );
}

#[test]
fn latest_at_or_before_includes_the_instant() {
    let s = parse_cron("0 6 * * *", Tz::UTC).unwrap();
    let six = utc(2025, 1, 2, 6, 0);
    assert_eq!(s.latest_at_or_before(six), Some(six));
    assert_eq!(
        s.latest_at_or_before(six - TimeDelta::seconds(1)),
        Some(utc(2025, 1, 1, 6, 0))
    );
    assert_eq!(
        s.latest_at_or_before(six + TimeDelta::milliseconds(1500)),
        Some(six)
    );
    let or = parse_cron("0 0 1 * MON", Tz::UTC).unwrap();
    // Sat 2025-02-01 is the 1st; Mon 2025-02-03 a Monday.
    assert_eq!(
        or.latest_at_or_before(utc(2025, 2, 2, 12, 0)),
        Some(utc(2025, 2, 1, 0, 0))
    );
    assert_eq!(
        or.latest_at_or_before(utc(2025, 2, 4, 0, 0)),
        Some(utc(2025, 2, 3, 0, 0))
    );
}

fn err(expr: &str) -> String {
    match parse_cron(expr, Tz::UTC) {
        Ok(s) => panic!("{expr:?} parsed as {:?}", s.translated()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn invalid_expressions_name_field_and_value() {
    let e = err("0 0 6 * * 1");
    assert!(e.contains("found 6") && e.contains("seconds"), "{e}");
    let e = err("61 * * * *");
    assert!(
        e.contains("minute") && e.contains("61") && e.contains("0-59"),
        "{e}"
    );
    let e = err("* * * * 8");
    assert!(e.contains("day-of-week") && e.contains('8'), "{e}");
    let e = err("* 24 * * *");
    assert!(e.contains("hour") && e.contains("24"), "{e}");
    let e = err("* * 0 * *");
    assert!(e.contains("day-of-month"), "{e}");
    let e = err("* * * 13 *");
    assert!(e.contains("month") && e.contains("13"), "{e}");
    let e = err("* * * FOO *");
    assert!(
        e.contains("month") && e.contains("FOO") && e.contains("JAN"),
        "{e}"
    );
    let e = err("* * * * MONDAY");
    assert!(e.contains("day-of-week") && e.contains("MONDAY"), "{e}");
    let e = err("*/0 * * * *");
    assert!(e.contains("minute") && e.contains("step"), "{e}");
    let e = err("5-1 * * * *");
    assert!(e.contains("after its end"), "{e}");
    let e = err("1,,2 * * * *");
    assert!(e.contains("empty"), "{e}");
    let e = err("* * * *");
    assert!(e.contains("found 4"), "{e}");
    assert!(err("").contains("empty"));
    assert!(err("   ").contains("empty"));
    assert!(err("-5 * * * *").contains("minute"));
    assert!(err("1-2-3 * * * *").contains("minute"));
    assert!(err("* * L * *").contains("day-of-month"));
    assert!(err("* * * * 1#2").contains("day-of-week"));
    assert!(err("@DAILY").contains("unknown descriptor"));
    assert!(err("@reboot").contains("unknown descriptor"));
    assert!(err("@every 1h").contains("not supported"));
    assert!(err("TZ=UTC 0 2 * * *").contains("timezone"));
    assert!(err("0 0 31 2 *").contains("never fires"));
    assert!(err("0 0 30 FEB *").contains("never fires"));
}

#[test]
fn leap_day_is_not_never() {
    let s = parse_cron("0 0 29 2 *", Tz::UTC).unwrap();
    assert_eq!(
        s.next_after(utc(2025, 1, 1, 0, 0)),
        Some(utc(2028, 2, 29, 0, 0))
    );
}
