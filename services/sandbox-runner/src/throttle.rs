//! Who may run now: a token bucket per person (so one person's ten uploads cannot starve the
//! others) and a global limit on runs at once, with a line whose place is told to the person.

use std::{
    num::NonZeroU32,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use governor::{
    DefaultKeyedRateLimiter, Quota, RateLimiter,
    clock::{Clock, DefaultClock},
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

#[derive(Debug)]
pub struct Throttle {
    per_user: DefaultKeyedRateLimiter<String>,
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
}

impl Throttle {
    pub fn new(burst: u32, per_minute: u32, concurrency: usize) -> Throttle {
        let one = NonZeroU32::MIN;
        let quota = Quota::per_minute(NonZeroU32::new(per_minute).unwrap_or(one))
            .allow_burst(NonZeroU32::new(burst).unwrap_or(one));
        Throttle {
            per_user: RateLimiter::keyed(quota),
            slots: Arc::new(Semaphore::new(concurrency.max(1))),
            waiting: AtomicUsize::new(0),
        }
    }

    /// Takes one of `user`'s tokens, or says how long until they have one.
    pub fn admit(&self, user: &str) -> Result<(), Duration> {
        self.per_user
            .check_key(&user.to_owned())
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// A free slot now, if there is one.
    pub fn try_slot(&self) -> Option<OwnedSemaphorePermit> {
        self.slots.clone().try_acquire_owned().ok()
    }

    /// Waits for a free slot. `queued` hears the place in line (1 = next) when there is a wait.
    pub async fn slot(&self, queued: impl FnOnce(usize)) -> OwnedSemaphorePermit {
        if let Some(permit) = self.try_slot() {
            return permit;
        }
        let place = self.waiting.fetch_add(1, Ordering::SeqCst) + 1;
        queued(place);
        let permit = self.slots.clone().acquire_owned().await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        // The semaphore is never closed.
        permit.unwrap_or_else(|_| unreachable!("the run semaphore is never closed"))
    }

    /// Runs waiting for a slot.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_person_cannot_use_up_everyones_runs() {
        let throttle = Throttle::new(3, 3, 2);
        let admitted = (0..10).filter(|_| throttle.admit("U1").is_ok()).count();
        assert_eq!(admitted, 3, "a burst of three");
        let wait = throttle.admit("U1").unwrap_err();
        assert!(
            wait > Duration::from_secs(5) && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        assert!(throttle.admit("U2").is_ok(), "others still run");
    }

    #[tokio::test]
    async fn the_line_tells_each_its_place() {
        let throttle = Arc::new(Throttle::new(10, 10, 1));
        let first = throttle.slot(|_| panic!("no wait for the first")).await;
        let (told, heard) = tokio::sync::oneshot::channel();
        let waiter = tokio::spawn({
            let throttle = throttle.clone();
            async move {
                let _permit = throttle.slot(|place| told.send(place).unwrap()).await;
            }
        });
        assert_eq!(heard.await.unwrap(), 1);
        assert_eq!(throttle.waiting(), 1);
        drop(first);
        waiter.await.unwrap();
        assert_eq!(throttle.waiting(), 0);
    }
}
