//! Shutdown, passed in as a value (mini-redis style): each task holds a `Shutdown` and checks
//! it between steps, never inside one, so a step in flight finishes or is recorded.

use tokio::sync::watch;

#[derive(Debug, Clone)]
pub struct Shutdown {
    receiver: watch::Receiver<bool>,
}

#[derive(Debug)]
pub struct ShutdownTrigger {
    sender: watch::Sender<bool>,
}

pub fn channel() -> (ShutdownTrigger, Shutdown) {
    let (sender, receiver) = watch::channel(false);
    (ShutdownTrigger { sender }, Shutdown { receiver })
}

impl ShutdownTrigger {
    pub fn trigger(&self) {
        // Nobody listening means every task has already ended: nothing to tell.
        let _ = self.sender.send(true);
    }
}

impl Shutdown {
    pub fn is_triggered(&self) -> bool {
        *self.receiver.borrow()
    }

    /// Completes once shutdown is triggered (or the trigger is dropped).
    pub async fn wait(&mut self) {
        let _ = self.receiver.wait_for(|triggered| *triggered).await;
    }
}
