//! The one retry policy of the registry client: every registry operation (a manifest, a
//! token, a `HEAD`, a blob download, an upload session, a manifest push) runs through
//! [`Retrier::run`], which tries it again when it failed in a transient way
//! ([`RegistryError::is_transient`]: `429`, `500`/`502`/`503`/`504`, a dropped connection or a
//! body cut short), at most [`RetryPolicy::attempts`] times in all.
//!
//! Between attempts it waits what the registry's `Retry-After` says (seconds or an HTTP date;
//! a wait longer than [`RetryPolicy::max_retry_after`] is not waited for: the error stands), or
//! else an exponential backoff with jitter: attempt `n` waits between half and all of
//! `base × 2^(n-1)`, at most [`RetryPolicy::max_backoff`]. Each wait is announced as a
//! [`RetryNotice`] (registry, repository, object, status, wait) to the client's observer, which
//! the builder shows as a progress notice.
//!
//! Time is a [`Clock`], so that tests run the policy without sleeping.

use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;

use super::error::{At, RegistryError};

/// How often and how long to retry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included (1 = never retry).
    pub attempts: u32,
    /// The backoff before the second attempt; it doubles for each further one.
    pub base: Duration,
    /// The longest backoff.
    pub max_backoff: Duration,
    /// The longest `Retry-After` rbuild waits for; a registry asking for more fails the
    /// operation at once.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            attempts: 5,
            base: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

/// When the registry asked to be tried again (`Retry-After`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryAfter {
    /// After this many seconds.
    Seconds(u64),
    /// At this Unix time.
    At(i64),
}

impl RetryAfter {
    /// A `Retry-After` header value: delay-seconds or an HTTP date; `None` if neither.
    pub fn parse(value: &str) -> Option<RetryAfter> {
        let value = value.trim();
        if let Ok(secs) = value.parse::<u64>() {
            return Some(RetryAfter::Seconds(secs));
        }
        crate::time::parse_http_date(value).map(RetryAfter::At)
    }

    /// How long to wait from `now` (Unix seconds); a date in the past means no wait.
    pub fn wait(self, now: u64) -> Duration {
        match self {
            RetryAfter::Seconds(s) => Duration::from_secs(s),
            RetryAfter::At(t) => {
                let now = i64::try_from(now).unwrap_or(i64::MAX);
                Duration::from_secs(u64::try_from(t.saturating_sub(now)).unwrap_or(0))
            }
        }
    }
}

/// The time source of the retries: the wall clock in rbuild, a fake in tests.
pub trait Clock: Send + Sync {
    /// The current Unix time in seconds (for `Retry-After` dates).
    fn now_unix(&self) -> u64;
    /// Waits `d`.
    fn sleep(&self, d: Duration);
}

/// The real clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_unix(&self) -> u64 {
        crate::time::now_unix()
    }

    fn sleep(&self, d: Duration) {
        std::thread::sleep(d);
    }
}

/// Why an operation is retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryCause {
    /// The registry (or its token server) answered this status.
    Status(StatusCode),
    /// The connection dropped, or a body was cut short.
    Dropped,
}

impl std::fmt::Display for RetryCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RetryCause::Status(s) => write!(f, "{s}"),
            RetryCause::Dropped => write!(f, "connection dropped"),
        }
    }
}

/// One retry, announced before its wait: `127.0.0.1:5000/app: manifest latest: 503 Service
/// Unavailable; retrying in 1.0s (attempt 2 of 5)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryNotice {
    pub at: At,
    pub cause: RetryCause,
    pub wait: Duration,
    /// The attempt about to be made (2 for the first retry).
    pub attempt: u32,
    pub attempts: u32,
}

impl std::fmt::Display for RetryNotice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {}; retrying in {:.1}s (attempt {} of {})",
            self.at,
            self.cause,
            self.wait.as_secs_f64(),
            self.attempt,
            self.attempts
        )
    }
}

/// Who hears of retries.
pub type RetryObserver = Arc<dyn Fn(&RetryNotice) + Send + Sync>;

/// The policy, its clock and its observer.
#[derive(Clone)]
pub struct Retrier {
    policy: RetryPolicy,
    clock: Arc<dyn Clock>,
    observer: Option<RetryObserver>,
}

impl std::fmt::Debug for Retrier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Retrier")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Default for Retrier {
    fn default() -> Retrier {
        Retrier::new(RetryPolicy::default(), Arc::new(SystemClock))
    }
}

impl Retrier {
    pub fn new(policy: RetryPolicy, clock: Arc<dyn Clock>) -> Retrier {
        Retrier {
            policy,
            clock,
            observer: None,
        }
    }

    /// Tells `observer` of every retry.
    pub fn with_observer(mut self, observer: RetryObserver) -> Retrier {
        self.observer = Some(observer);
        self
    }

    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// Runs `op` (given the attempt number, from 1) until it succeeds, fails for good, or has
    /// been tried [`RetryPolicy::attempts`] times. `at` names the operation in notices. An
    /// error after retries is [`RegistryError::GaveUp`] with the last error.
    pub fn run<T>(
        &self,
        at: &At,
        mut op: impl FnMut(u32) -> Result<T, RegistryError>,
    ) -> Result<T, RegistryError> {
        let mut attempt = 1;
        loop {
            let err = match op(attempt) {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let Some(cause) = err.retry_cause() else {
                return Err(err);
            };
            if attempt >= self.policy.attempts {
                return Err(give_up(err, attempt));
            }
            let wait = match err.retry_after() {
                Some(after) => {
                    let wait = after.wait(self.clock.now_unix());
                    if wait > self.policy.max_retry_after {
                        return Err(give_up(err, attempt));
                    }
                    wait
                }
                None => self.backoff(attempt),
            };
            attempt += 1;
            if let Some(observer) = &self.observer {
                observer(&RetryNotice {
                    at: at.clone(),
                    cause,
                    wait,
                    attempt,
                    attempts: self.policy.attempts,
                });
            }
            self.clock.sleep(wait);
        }
    }

    /// The wait after failed attempt `attempt`: between half and all of `base × 2^(attempt-1)`,
    /// at most `max_backoff`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let full = self
            .policy
            .base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
            .min(self.policy.max_backoff);
        let half = full / 2;
        let random = std::collections::hash_map::RandomState::new().hash_one(attempt);
        let span = u64::try_from(half.as_millis()).unwrap_or(u64::MAX).max(1);
        half + Duration::from_millis(random % span)
    }
}

fn give_up(err: RegistryError, attempts: u32) -> RegistryError {
    if attempts <= 1 {
        return err;
    }
    RegistryError::GaveUp {
        attempts,
        last: Box::new(err),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::registry::error::Object;
    use crate::registry::error_body::ErrorBody;

    /// A clock that only records the waits.
    #[derive(Default)]
    struct FakeClock {
        slept: Mutex<Vec<Duration>>,
    }

    impl Clock for FakeClock {
        fn now_unix(&self) -> u64 {
            1_700_000_000
        }
        fn sleep(&self, d: Duration) {
            self.slept.lock().unwrap().push(d);
        }
    }

    fn at() -> At {
        At {
            registry: "r.example".into(),
            repository: "app".into(),
            object: Object::Manifest("latest".into()),
        }
    }

    fn status(code: u16, retry_after: Option<RetryAfter>) -> RegistryError {
        RegistryError::Status {
            at: Box::new(at()),
            status: StatusCode::from_u16(code).unwrap(),
            body: ErrorBody {
                retry_after,
                ..ErrorBody::default()
            },
        }
    }

    fn retrier(clock: &Arc<FakeClock>) -> (Retrier, Arc<Mutex<Vec<String>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let r = Retrier::new(RetryPolicy::default(), clock.clone()).with_observer(Arc::new(
            move |n: &RetryNotice| sink.lock().unwrap().push(n.to_string()),
        ));
        (r, seen)
    }

    /// Runs an operation that fails with `errors` in turn, then succeeds.
    fn run(errors: Vec<RegistryError>) -> (Result<u32, RegistryError>, Vec<Duration>, Vec<String>) {
        let clock = Arc::new(FakeClock::default());
        let (r, seen) = retrier(&clock);
        let mut errors = errors.into_iter();
        let result = r.run(&at(), |attempt| match errors.next() {
            Some(e) => Err(e),
            None => Ok(attempt),
        });
        let slept = clock.slept.lock().unwrap().clone();
        let seen = seen.lock().unwrap().clone();
        (result, slept, seen)
    }

    #[test]
    fn retry_after_in_seconds_and_as_a_date_is_honoured() {
        let (result, slept, seen) = run(vec![
            status(429, Some(RetryAfter::Seconds(1))),
            status(503, RetryAfter::parse("Tue, 14 Nov 2023 22:13:23 GMT")),
        ]);
        assert_eq!(result.unwrap(), 3);
        assert_eq!(slept, [Duration::from_secs(1), Duration::from_secs(3)]);
        assert_eq!(
            seen[0],
            "r.example/app: manifest latest: 429 Too Many Requests; retrying in 1.0s (attempt 2 of 5)"
        );
    }

    #[test]
    fn backoff_grows_with_jitter_and_stops_after_the_attempts() {
        let (result, slept, seen) = run((0..9).map(|_| status(503, None)).collect());
        let err = result.unwrap_err();
        assert!(
            matches!(err, RegistryError::GaveUp { attempts: 5, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("503 Service Unavailable"), "{err}");
        assert_eq!(slept.len(), 4);
        assert_eq!(seen.len(), 4);
        for (i, wait) in slept.iter().enumerate() {
            let full = Duration::from_millis(500 << i);
            assert!(*wait >= full / 2 && *wait <= full, "wait {i}: {wait:?}");
        }
    }

    #[test]
    fn only_transient_failures_are_retried() {
        for code in [500, 502, 503, 504, 429] {
            assert_eq!(run(vec![status(code, None)]).0.unwrap(), 2, "{code}");
        }
        for code in [400, 401, 403, 404, 501] {
            let (result, slept, _) = run(vec![status(code, None)]);
            assert!(result.is_err(), "{code}");
            assert!(slept.is_empty(), "{code}");
        }
        let cut = RegistryError::BodyRead {
            at: Box::new(at()),
            source: std::io::ErrorKind::UnexpectedEof.into(),
        };
        assert_eq!(run(vec![cut]).0.unwrap(), 2);
    }

    #[test]
    fn a_retry_after_beyond_the_limit_fails_at_once() {
        let (result, slept, _) = run(vec![status(429, Some(RetryAfter::Seconds(3600)))]);
        assert!(result.is_err());
        assert!(slept.is_empty());
    }

    #[test]
    fn parses_retry_after_values() {
        assert_eq!(RetryAfter::parse(" 120 "), Some(RetryAfter::Seconds(120)));
        assert_eq!(
            RetryAfter::parse("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(RetryAfter::At(784_111_777))
        );
        assert_eq!(RetryAfter::parse("soon"), None);
        assert_eq!(RetryAfter::At(5).wait(10), Duration::ZERO);
    }
}
