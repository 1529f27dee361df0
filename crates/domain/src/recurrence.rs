//! When a scheduled post runs: its [`Schedule`] (once at a local time, a cron expression, or a
//! preset) read in its IANA time zone, compiled once into a [`Recurrence`] that answers "the
//! next run after this instant". Time zones and their DST rules come from `jiff` (with its own
//! copy of the tz database, so every installation computes the same instants); cron expressions
//! are parsed and evaluated by `croner`. Nothing here performs I/O.
//!
//! Local times that do not exist or exist twice (DST transitions) are resolved the same way for
//! every kind of schedule:
//! - a time in a **gap** (clocks jump forward, e.g. 02:30 on the last Sunday of March in
//!   Europe/Berlin) runs at the first valid time after the gap on that day: for a once post
//!   and a fixed time of day, shifted by the gap's length (02:30 → 03:30); a cron `*` or step
//!   over the gap skips the times that do not exist;
//! - a time in an **overlap** (clocks go back, 02:30 happens twice in October) runs once, at
//!   its first (earlier, summer-time) occurrence; a cron `*` or step in the hour runs through
//!   both passes.

use crate::time::Timestamp;
use croner::Cron;
use croner::parser::{CronParser, Seconds};
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use std::fmt;

/// How often a post runs (create and update alike); always read in the post's time zone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Schedule {
    /// One run at a local date and time, `YYYY-MM-DDTHH:MM` (seconds allowed).
    Once {
        /// The local date and time.
        at: String,
    },
    /// A five-field cron expression (minute hour day-of-month month day-of-week), or a
    /// nickname such as `@daily`.
    Cron {
        /// The expression.
        expression: String,
    },
    /// Every day at a local time `HH:MM`.
    Daily {
        /// The time of day.
        time: String,
    },
    /// Monday to Friday at a local time `HH:MM`.
    Weekdays {
        /// The time of day.
        time: String,
    },
    /// Once a week, on a day (1 = Monday … 7 = Sunday), at a local time `HH:MM`.
    Weekly {
        /// ISO day of the week.
        weekday: u8,
        /// The time of day.
        time: String,
    },
}

impl Schedule {
    /// True for a schedule with a single run.
    pub fn is_once(&self) -> bool {
        matches!(self, Schedule::Once { .. })
    }

    /// The cron expression a preset stands for (`None` for once and cron schedules).
    pub fn preset_cron(&self) -> Option<String> {
        let hm = |time: &str| parse_time_of_day(time).ok();
        match self {
            Schedule::Daily { time } => hm(time).map(|(h, m)| format!("{m} {h} * * *")),
            Schedule::Weekdays { time } => hm(time).map(|(h, m)| format!("{m} {h} * * 1-5")),
            Schedule::Weekly { weekday, time } => {
                hm(time).map(|(h, m)| format!("{m} {h} * * {}", weekday % 7))
            }
            Schedule::Once { .. } | Schedule::Cron { .. } => None,
        }
    }
}

/// Why a schedule is refused: which part, where in it (a 0-based character position) and why.
/// The API answers `schedule_invalid` with `position` and `expected` (the reason).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleInvalid {
    /// 0-based character position in the part (the cron expression, the time, the zone name).
    pub position: usize,
    /// The reason, a stable word: `time_zone`, `local_time`, `time_of_day`, `weekday`,
    /// `five_fields`, `minute`, `hour`, `day_of_month`, `month`, `day_of_week`, `cron`,
    /// `never`.
    pub reason: &'static str,
    /// A sentence in English for logs and the message.
    pub detail: String,
}

impl ScheduleInvalid {
    fn new(position: usize, reason: &'static str, detail: impl Into<String>) -> Self {
        Self {
            position,
            reason,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for ScheduleInvalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at {}): {}", self.reason, self.position, self.detail)
    }
}

impl std::error::Error for ScheduleInvalid {}

/// An IANA time zone by name (`Europe/Moscow`, `America/New_York`, `UTC`). Abbreviations and
/// fixed offsets are refused: they carry no DST rules.
pub fn parse_zone(name: &str) -> Result<TimeZone, ScheduleInvalid> {
    let bad = || ScheduleInvalid::new(0, "time_zone", format!("unknown time zone {name:?}"));
    if name.is_empty() || name.len() > 64 || name.trim() != name {
        return Err(bad());
    }
    let zone = TimeZone::get(name).map_err(|_| bad())?;
    if zone.iana_name().is_none() {
        return Err(bad());
    }
    Ok(zone)
}

/// `HH:MM` (24-hour) as `(hour, minute)`.
pub fn parse_time_of_day(time: &str) -> Result<(u8, u8), ScheduleInvalid> {
    let bad = |at: usize| ScheduleInvalid::new(at, "time_of_day", "expected HH:MM, 00:00–23:59");
    let (h, m) = time.split_once(':').ok_or_else(|| bad(0))?;
    let digits = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(h) {
        return Err(bad(0));
    }
    if !digits(m) {
        return Err(bad(3));
    }
    let (h, m): (u8, u8) = (
        h.parse().map_err(|_| bad(0))?,
        m.parse().map_err(|_| bad(3))?,
    );
    if h > 23 {
        return Err(bad(0));
    }
    if m > 59 {
        return Err(bad(3));
    }
    Ok((h, m))
}

/// A schedule ready to answer "when next": parsed and checked once.
#[derive(Clone, Debug)]
pub struct Recurrence {
    zone: TimeZone,
    rule: Rule,
}

#[derive(Clone, Debug)]
enum Rule {
    Once(Timestamp),
    Cron(Box<Cron>),
}

/// The names of the five cron fields, in order.
const CRON_FIELDS: [&str; 5] = ["minute", "hour", "day_of_month", "month", "day_of_week"];

impl Recurrence {
    /// Compiles a schedule in the named zone. A recurring schedule that never runs (`0 0 31 2 *`)
    /// is refused with `never`, checked from `now`.
    pub fn new(
        schedule: &Schedule,
        zone_name: &str,
        now: Timestamp,
    ) -> Result<Self, ScheduleInvalid> {
        let zone = parse_zone(zone_name)?;
        let rule = match schedule {
            Schedule::Once { at } => Rule::Once(local_instant(at, &zone)?),
            Schedule::Cron { expression } => Rule::Cron(Box::new(parse_cron(expression)?)),
            Schedule::Daily { time } | Schedule::Weekdays { time } => {
                parse_time_of_day(time)?;
                Rule::Cron(Box::new(parse_cron(
                    &schedule.preset_cron().unwrap_or_default(),
                )?))
            }
            Schedule::Weekly { weekday, time } => {
                if !(1..=7).contains(weekday) {
                    return Err(ScheduleInvalid::new(
                        0,
                        "weekday",
                        "expected 1 (Monday) to 7",
                    ));
                }
                parse_time_of_day(time)?;
                Rule::Cron(Box::new(parse_cron(
                    &schedule.preset_cron().unwrap_or_default(),
                )?))
            }
        };
        let compiled = Recurrence { zone, rule };
        if matches!(compiled.rule, Rule::Cron(_)) && compiled.next_after(now).is_none() {
            return Err(ScheduleInvalid::new(
                0,
                "never",
                "the expression matches no time in the next years",
            ));
        }
        Ok(compiled)
    }

    /// True for a schedule with a single run.
    pub fn is_once(&self) -> bool {
        matches!(self.rule, Rule::Once(_))
    }

    /// The first run strictly after `after`; `None` when there is none (a once post whose time
    /// has passed, or a cron expression that matches nothing within croner's search range).
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        match &self.rule {
            Rule::Once(at) => (*at > after).then_some(*at),
            Rule::Cron(cron) => {
                let start = jiff::Timestamp::from_millisecond(after.0)
                    .ok()?
                    .to_zoned(self.zone.clone());
                let next = cron.find_next_occurrence(&start, false).ok()?;
                Some(Timestamp(next.timestamp().as_millisecond()))
            }
        }
    }

    /// Up to `n` runs strictly after `after`, in order.
    pub fn upcoming(&self, after: Timestamp, n: usize) -> Vec<Timestamp> {
        let mut out = Vec::with_capacity(n.min(64));
        let mut at = after;
        while out.len() < n {
            match self.next_after(at) {
                Some(next) => {
                    out.push(next);
                    at = next;
                }
                None => break,
            }
        }
        out
    }

    /// The instant of a once schedule.
    pub fn once_at(&self) -> Option<Timestamp> {
        match self.rule {
            Rule::Once(at) => Some(at),
            Rule::Cron(_) => None,
        }
    }
}

/// A local date and time in `zone` as an instant: a time in a gap is moved forward by the
/// gap's length, a time in an overlap is its earlier occurrence (jiff's `compatible` choice,
/// the one RFC 5545 and Temporal make).
pub fn local_instant(at: &str, zone: &TimeZone) -> Result<Timestamp, ScheduleInvalid> {
    let dt: DateTime = at.parse().map_err(|e: jiff::Error| {
        ScheduleInvalid::new(0, "local_time", format!("expected YYYY-MM-DDTHH:MM ({e})"))
    })?;
    let zoned = zone
        .to_ambiguous_zoned(dt)
        .compatible()
        .map_err(|e| ScheduleInvalid::new(0, "local_time", format!("no such local time ({e})")))?;
    Ok(Timestamp(zoned.timestamp().as_millisecond()))
}

fn parser() -> CronParser {
    CronParser::builder().seconds(Seconds::Disallowed).build()
}

/// Parses a five-field expression (or a nickname); a refusal names the first field that is
/// wrong and its character position.
fn parse_cron(expression: &str) -> Result<Cron, ScheduleInvalid> {
    let trimmed = expression.trim();
    if trimmed.is_empty() || trimmed.len() > 200 {
        return Err(ScheduleInvalid::new(
            0,
            "cron",
            "expected a cron expression",
        ));
    }
    if trimmed.starts_with('@') {
        return parser()
            .parse(trimmed)
            .map_err(|e| ScheduleInvalid::new(0, "cron", e.to_string()));
    }
    let fields = fields_with_offsets(expression);
    if fields.len() != 5 {
        let at = fields.get(5).map_or(expression.len(), |f| f.0);
        return Err(ScheduleInvalid::new(
            at,
            "five_fields",
            format!("expected 5 fields, found {}", fields.len()),
        ));
    }
    for (i, (offset, field)) in fields.iter().enumerate() {
        let mut probe = ["*"; 5];
        probe[i] = field;
        if let Err(e) = parser().parse(&probe.join(" ")) {
            return Err(ScheduleInvalid::new(*offset, CRON_FIELDS[i], e.to_string()));
        }
    }
    let joined: Vec<&str> = fields.iter().map(|f| f.1).collect();
    parser()
        .parse(&joined.join(" "))
        .map_err(|e| ScheduleInvalid::new(0, "cron", e.to_string()))
}

/// The whitespace-separated words of `s` with their character positions.
fn fields_with_offsets(s: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start: Option<(usize, usize)> = None;
    for (chars, (bytes, c)) in s.char_indices().enumerate() {
        match (c.is_whitespace(), start) {
            (true, Some((cs, bs))) => {
                out.push((cs, &s[bs..bytes]));
                start = None;
            }
            (false, None) => start = Some((chars, bytes)),
            _ => {}
        }
    }
    if let Some((cs, bs)) = start {
        out.push((cs, &s[bs..]));
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The instant of an RFC 3339 time with offset.
    fn at(s: &str) -> Timestamp {
        Timestamp(s.parse::<jiff::Timestamp>().unwrap().as_millisecond())
    }

    fn local(t: Timestamp, zone: &str) -> String {
        jiff::Timestamp::from_millisecond(t.0)
            .unwrap()
            .to_zoned(TimeZone::get(zone).unwrap())
            .strftime("%Y-%m-%d %H:%M %:z")
            .to_string()
    }

    fn rec(s: Schedule, zone: &str) -> Recurrence {
        Recurrence::new(&s, zone, at("2026-01-01T00:00:00Z")).unwrap()
    }

    fn daily(time: &str) -> Schedule {
        Schedule::Daily { time: time.into() }
    }

    fn cron(e: &str) -> Schedule {
        Schedule::Cron {
            expression: e.into(),
        }
    }

    fn invalid(s: Schedule, zone: &str) -> (usize, &'static str) {
        let e = Recurrence::new(&s, zone, at("2026-01-01T00:00:00Z")).unwrap_err();
        (e.position, e.reason)
    }

    #[test]
    fn moscow_has_no_dst_so_a_daily_time_is_always_three_hours_ahead_of_utc() {
        let r = rec(daily("09:00"), "Europe/Moscow");
        let runs = r.upcoming(at("2026-03-25T00:00:00Z"), 10);
        assert_eq!(runs.len(), 10);
        for (i, t) in runs.iter().enumerate() {
            assert_eq!(t.0 % 86_400_000, 6 * 3_600_000, "run {i} at 06:00 UTC");
        }
        // Across the dates Berlin changes its clocks.
        let october = r.upcoming(at("2026-10-24T00:00:00Z"), 3);
        assert_eq!(
            local(october[1], "Europe/Moscow"),
            "2026-10-25 09:00 +03:00"
        );
    }

    #[test]
    fn a_daily_time_keeps_its_wall_clock_across_berlins_transitions() {
        let r = rec(daily("09:00"), "Europe/Berlin");
        let runs = r.upcoming(at("2026-03-28T00:00:00Z"), 3);
        assert_eq!(runs[0], at("2026-03-28T08:00:00Z"), "winter, +01:00");
        assert_eq!(runs[1], at("2026-03-29T07:00:00Z"), "summer, +02:00");
        let runs = r.upcoming(at("2026-10-24T12:00:00Z"), 2);
        assert_eq!(runs[0], at("2026-10-25T08:00:00Z"), "back to +01:00");
        assert_eq!(runs[1].0 - runs[0].0, 86_400_000);
    }

    #[test]
    fn a_time_in_the_spring_gap_runs_right_after_it_that_day() {
        // Berlin: 2026-03-29 02:00 → 03:00. New York: 2026-03-08 02:00 → 03:00.
        let r = rec(daily("02:30"), "Europe/Berlin");
        let runs = r.upcoming(at("2026-03-28T12:00:00Z"), 2);
        assert_eq!(local(runs[0], "Europe/Berlin"), "2026-03-29 03:00 +02:00");
        assert_eq!(local(runs[1], "Europe/Berlin"), "2026-03-30 02:30 +02:00");
        let r = rec(daily("02:30"), "America/New_York");
        let runs = r.upcoming(at("2026-03-07T12:00:00Z"), 2);
        assert_eq!(
            local(runs[0], "America/New_York"),
            "2026-03-08 03:00 -04:00"
        );
        assert_eq!(
            local(runs[1], "America/New_York"),
            "2026-03-09 02:30 -04:00"
        );
        // A once post at a time that does not exist moves forward by the gap.
        let once = rec(
            Schedule::Once {
                at: "2026-03-29T02:30".into(),
            },
            "Europe/Berlin",
        );
        assert_eq!(once.once_at(), Some(at("2026-03-29T01:30:00Z")));
        assert_eq!(
            local(once.once_at().unwrap(), "Europe/Berlin"),
            "2026-03-29 03:30 +02:00"
        );
    }

    #[test]
    fn a_time_in_the_autumn_overlap_runs_once_at_its_first_occurrence() {
        // Berlin: 2026-10-25 03:00 → 02:00; New York: 2026-11-01 02:00 → 01:00.
        let r = rec(daily("02:30"), "Europe/Berlin");
        let runs = r.upcoming(at("2026-10-24T12:00:00Z"), 2);
        assert_eq!(local(runs[0], "Europe/Berlin"), "2026-10-25 02:30 +02:00");
        assert_eq!(local(runs[1], "Europe/Berlin"), "2026-10-26 02:30 +01:00");
        let r = rec(daily("01:30"), "America/New_York");
        let runs = r.upcoming(at("2026-10-31T12:00:00Z"), 2);
        assert_eq!(
            local(runs[0], "America/New_York"),
            "2026-11-01 01:30 -04:00"
        );
        assert_eq!(
            local(runs[1], "America/New_York"),
            "2026-11-02 01:30 -05:00"
        );
        let once = rec(
            Schedule::Once {
                at: "2026-11-01T01:30".into(),
            },
            "America/New_York",
        );
        assert_eq!(once.once_at(), Some(at("2026-11-01T05:30:00Z")));
    }

    #[test]
    fn an_interval_cron_skips_the_gap_and_runs_through_both_passes_of_the_overlap() {
        let r = rec(cron("*/30 * * * *"), "Europe/Berlin");
        // 01:00, 01:30, (02:00 and 02:30 do not exist), 03:00.
        let runs = r.upcoming(Timestamp(at("2026-03-29T00:00:00Z").0 - 1), 4);
        let shown: Vec<String> = runs.iter().map(|t| local(*t, "Europe/Berlin")).collect();
        assert_eq!(
            shown,
            [
                "2026-03-29 01:00 +01:00",
                "2026-03-29 01:30 +01:00",
                "2026-03-29 03:00 +02:00",
                "2026-03-29 03:30 +02:00"
            ]
        );
        // 02:00 and 02:30 twice in October: every 30 minutes of real time.
        let runs = r.upcoming(Timestamp(at("2026-10-25T00:00:00Z").0 - 1), 4);
        for pair in runs.windows(2) {
            assert_eq!(pair[1].0 - pair[0].0, 30 * 60_000);
        }
    }

    #[test]
    fn presets_are_their_cron_expressions() {
        let monday_noon = at("2026-12-07T09:00:00Z"); // Monday 12:00 in Moscow.
        let weekdays = rec(
            Schedule::Weekdays {
                time: "12:00".into(),
            },
            "Europe/Moscow",
        );
        let runs = weekdays.upcoming(Timestamp(monday_noon.0 - 1), 6);
        let days: Vec<String> = runs
            .iter()
            .map(|t| local(*t, "Europe/Moscow")[..10].to_string())
            .collect();
        assert_eq!(
            days,
            [
                "2026-12-07",
                "2026-12-08",
                "2026-12-09",
                "2026-12-10",
                "2026-12-11",
                "2026-12-14"
            ]
        );
        let sunday = rec(
            Schedule::Weekly {
                weekday: 7,
                time: "18:15".into(),
            },
            "Europe/Moscow",
        );
        let runs = sunday.upcoming(monday_noon, 2);
        assert_eq!(local(runs[0], "Europe/Moscow"), "2026-12-13 18:15 +03:00");
        assert_eq!(runs[1].0 - runs[0].0, 7 * 86_400_000);
    }

    #[test]
    fn once_runs_only_while_its_time_is_ahead() {
        let r = rec(
            Schedule::Once {
                at: "2026-12-06T10:00".into(),
            },
            "Europe/Moscow",
        );
        let t = at("2026-12-06T07:00:00Z");
        assert_eq!(r.next_after(Timestamp(t.0 - 1)), Some(t));
        assert_eq!(r.next_after(t), None);
        assert_eq!(r.upcoming(Timestamp(t.0 - 1), 5), vec![t]);
    }

    #[test]
    fn bad_zones_times_and_expressions_name_where_and_why() {
        for zone in ["", "Mars/Olympus", "MSK", " Europe/Moscow", "+03:00"] {
            assert_eq!(invalid(daily("09:00"), zone), (0, "time_zone"), "{zone:?}");
        }
        assert_eq!(invalid(daily("9:00"), "UTC"), (0, "time_of_day"));
        assert_eq!(invalid(daily("24:00"), "UTC"), (0, "time_of_day"));
        assert_eq!(invalid(daily("10:60"), "UTC"), (3, "time_of_day"));
        assert_eq!(
            invalid(
                Schedule::Weekly {
                    weekday: 0,
                    time: "10:00".into()
                },
                "UTC"
            ),
            (0, "weekday")
        );
        assert_eq!(
            invalid(
                Schedule::Once {
                    at: "tomorrow".into()
                },
                "UTC"
            ),
            (0, "local_time")
        );
        assert_eq!(invalid(cron("0 9 * *"), "UTC"), (7, "five_fields"));
        assert_eq!(invalid(cron("0 9 * * * *"), "UTC"), (10, "five_fields"));
        assert_eq!(invalid(cron("61 9 * * *"), "UTC"), (0, "minute"));
        assert_eq!(invalid(cron("0  25 * * *"), "UTC"), (3, "hour"));
        assert_eq!(invalid(cron("0 9 32 * *"), "UTC"), (4, "day_of_month"));
        assert_eq!(invalid(cron("0 9 * 13 *"), "UTC"), (6, "month"));
        assert_eq!(invalid(cron("0 9 * * funday"), "UTC"), (8, "day_of_week"));
        assert_eq!(invalid(cron("0 0 31 2 *"), "UTC"), (0, "never"));
        assert_eq!(invalid(cron(""), "UTC"), (0, "cron"));
        assert!(Recurrence::new(&cron("@daily"), "UTC", Timestamp(0)).is_ok());
        assert!(Recurrence::new(&cron("0 9 * * MON-FRI"), "UTC", Timestamp(0)).is_ok());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Every run of a daily time is after the start, in order, on consecutive local days,
        /// and at the wall-clock time asked for unless that time fell into a gap.
        #[test]
        fn daily_runs_are_ordered_one_per_local_day(
            start in 1_700_000_000_000i64..1_900_000_000_000i64,
            hour in 0u8..24,
            minute in 0u8..60,
            zone in prop::sample::select(vec![
                "Europe/Berlin", "America/New_York", "Europe/Moscow", "Australia/Lord_Howe",
                "Asia/Kolkata", "UTC",
            ]),
        ) {
            let time = format!("{hour:02}:{minute:02}");
            let r = Recurrence::new(&daily(&time), zone, Timestamp(start)).unwrap();
            let runs = r.upcoming(Timestamp(start), 8);
            prop_assert_eq!(runs.len(), 8);
            let tz = TimeZone::get(zone).unwrap();
            let mut prev_day: Option<jiff::civil::Date> = None;
            let mut prev = Timestamp(start);
            for t in runs {
                prop_assert!(t > prev);
                let z = jiff::Timestamp::from_millisecond(t.0).unwrap().to_zoned(tz.clone());
                if let Some(d) = prev_day {
                    prop_assert_eq!(d.tomorrow().unwrap(), z.date());
                }
                let wanted = z.date().at(hour as i8, minute as i8, 0, 0);
                let exists = tz.to_ambiguous_zoned(wanted).unambiguous().is_ok()
                    || matches!(tz.to_ambiguous_zoned(wanted).offset(),
                        jiff::tz::AmbiguousOffset::Fold { .. });
                if exists {
                    prop_assert_eq!((z.hour() as u8, z.minute() as u8), (hour, minute));
                }
                prev_day = Some(z.date());
                prev = t;
            }
        }

        /// A cron expression's next run is never at or before the start, and `upcoming` is
        /// `next_after` applied again and again.
        #[test]
        fn next_runs_move_forward(
            start in 1_700_000_000_000i64..1_900_000_000_000i64,
            minute in prop::sample::select(vec!["*/15", "0", "5,35", "59"]),
            hour in prop::sample::select(vec!["*", "2", "1-3", "*/6"]),
            zone in prop::sample::select(vec!["Europe/Berlin", "America/New_York"]),
        ) {
            let expr = format!("{minute} {hour} * * *");
            let r = Recurrence::new(&cron(&expr), zone, Timestamp(start)).unwrap();
            let runs = r.upcoming(Timestamp(start), 12);
            prop_assert_eq!(runs.len(), 12);
            let mut prev = Timestamp(start);
            for t in runs {
                prop_assert!(t > prev);
                prop_assert_eq!(r.next_after(prev), Some(t));
                prev = t;
            }
        }
    }
}
