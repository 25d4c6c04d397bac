//! Wall-clock timing of repeated runs, summarised as median and minimum.

use std::time::{Duration, Instant};

use anyhow::Result;

/// Runs `f` once and returns its result with the time it took. Only `f` is timed: whatever it
/// returns is dropped by the caller, outside the measurement.
#[allow(clippy::disallowed_methods, reason = "a benchmark measures wall time")]
pub(crate) fn time<T>(f: impl FnOnce() -> Result<T>) -> Result<(T, Duration)> {
    let start = Instant::now();
    let value = f()?;
    let elapsed = start.elapsed();
    Ok((value, elapsed))
}

/// The durations of repeated runs of one measurement.
#[derive(Debug, Clone, Default)]
pub(crate) struct Samples(Vec<Duration>);

impl Samples {
    pub(crate) fn push(&mut self, sample: Duration) {
        self.0.push(sample);
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// The median; the mean of the two middle samples for an even count. Zero when empty.
    pub(crate) fn median(&self) -> Duration {
        let mut sorted = self.0.clone();
        sorted.sort_unstable();
        match sorted.len() {
            0 => Duration::ZERO,
            n if n % 2 == 1 => sorted[n / 2],
            n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2,
        }
    }

    pub(crate) fn min(&self) -> Duration {
        self.0.iter().copied().min().unwrap_or_default()
    }
}

/// Runs `run` `runs` times and collects the durations it reports. Each run times its own
/// region (usually through [`time`]), so set-up and checks around it stay unmeasured.
pub(crate) fn repeat(runs: usize, mut run: impl FnMut() -> Result<Duration>) -> Result<Samples> {
    let mut samples = Samples::default();
    for _ in 0..runs {
        samples.push(run()?);
    }
    Ok(samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(millis: &[u64]) -> Samples {
        Samples(millis.iter().copied().map(Duration::from_millis).collect())
    }

    #[test]
    fn median_and_min() {
        assert_eq!(samples(&[5, 1, 3]).median(), Duration::from_millis(3));
        assert_eq!(samples(&[4, 1, 3, 2]).median(), Duration::from_micros(2500));
        assert_eq!(samples(&[4, 1, 3, 2]).min(), Duration::from_millis(1));
        assert_eq!(samples(&[]).median(), Duration::ZERO);
    }
}
