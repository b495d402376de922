//! Connection slots: a cap on open connections and a cap per client address, so that one
//! address cannot take every slot. Plain bookkeeping with guards that give the slot back
//! when the connection ends; the accept loop refuses a connection past either cap.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Which cap refused a connection (the metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// `server.max_connections` are open.
    Server,
    /// This address has `server.max_connections_per_client` open.
    Client,
}

impl Refused {
    pub fn label(self) -> &'static str {
        match self {
            Self::Server => "server",
            Self::Client => "client",
        }
    }
}

pub struct Slots {
    total: Arc<Semaphore>,
    /// 0: no per-client cap (behind a proxy every client has the proxy's address).
    per_client: usize,
    clients: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One open connection's slot; dropping it gives the slot back.
pub struct Slot {
    _total: OwnedSemaphorePermit,
    _client: Option<ClientSlot>,
}

struct ClientSlot {
    ip: IpAddr,
    clients: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(open) = clients.get_mut(&self.ip) {
            *open -= 1;
            if *open == 0 {
                clients.remove(&self.ip);
            }
        }
    }
}

impl Slots {
    pub fn new(total: usize, per_client: usize) -> Self {
        Self {
            total: Arc::new(Semaphore::new(total)),
            per_client,
            clients: Arc::default(),
        }
    }

    /// A slot for a new connection from `ip`, unless a cap is reached.
    pub fn try_take(&self, ip: IpAddr) -> Result<Slot, Refused> {
        let client = if self.per_client == 0 {
            None
        } else {
            let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
            let open = clients.entry(ip).or_insert(0);
            if *open >= self.per_client {
                return Err(Refused::Client);
            }
            *open += 1;
            Some(ClientSlot {
                ip,
                clients: self.clients.clone(),
            })
        };
        // On refusal here, `client` drops and gives its count back.
        let total = self
            .total
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refused::Server)?;
        Ok(Slot {
            _total: total,
            _client: client,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[test]
    fn one_address_cannot_take_every_slot() {
        let slots = Slots::new(3, 2);
        let a1 = slots.try_take(ip(1)).expect("first");
        let _a2 = slots.try_take(ip(1)).expect("second");
        assert_eq!(slots.try_take(ip(1)).err(), Some(Refused::Client));
        let _b = slots.try_take(ip(2)).expect("another address");
        assert_eq!(slots.try_take(ip(3)).err(), Some(Refused::Server));
        drop(a1);
        let _a3 = slots.try_take(ip(1)).expect("a slot came back");
    }

    #[test]
    fn refusals_hold_nothing_and_closed_addresses_are_forgotten() {
        let slots = Slots::new(1, 5);
        let held = slots.try_take(ip(1)).expect("first");
        assert_eq!(slots.try_take(ip(2)).err(), Some(Refused::Server));
        drop(held);
        assert!(slots.clients.lock().expect("lock").is_empty());
        let _again = slots.try_take(ip(2)).expect("free again");
    }

    #[test]
    fn zero_turns_the_per_client_cap_off() {
        let slots = Slots::new(4, 0);
        let held: Vec<_> = (0..4)
            .map(|_| slots.try_take(ip(1)).expect("slot"))
            .collect();
        assert_eq!(slots.try_take(ip(1)).err(), Some(Refused::Server));
        drop(held);
    }
}
