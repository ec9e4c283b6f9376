//! Memory per resting order and per open position, measured with a counting allocator.
//! Resting orders: `OrderPlaced` + `BalanceLocked` applied to an engine (order state, book
//! entry, the account's lock entry). Positions: `PositionOpened` applied for accounts that
//! already exist (position state and its three indexes). Prints bytes per item.

use perpetua_core::account::events::BalanceLocked;
use perpetua_core::event::{Event, EventEnvelope, Metadata, StreamId};
use perpetua_core::ids::{EventId, OrderId, PositionId, UserId};
use perpetua_core::order::events::OrderPlaced;
use perpetua_core::position::events::PositionOpened;
use perpetua_core::time::Timestamp;
use perpetua_core::types::{MarginMode, OrderType, Side, StpMode, TimeInForce};
use perpetua_core::workload::Setup;
use perpetua_core::{Decimal, Exchange};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

struct Counting;
static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE_BYTES.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const N: u64 = 100_000;

fn envelope(exchange: &Exchange, event: Event) -> EventEnvelope {
    let stream: StreamId = event.stream();
    let position = exchange.last_position() + 1;
    EventEnvelope {
        position,
        event_id: EventId::derive(position),
        stream,
        version: exchange.stream_version(&stream) + 1,
        schema_version: event.schema_version(),
        timestamp: Timestamp(0),
        event,
        metadata: Metadata::default().into(),
        prev_hash: Default::default(),
        hash: Default::default(),
    }
}

fn main() {
    let setup = Setup::new(1_000, 0, 1);
    let mut exchange = setup.exchange.clone();
    let symbol = "BTCUSDT".parse().expect("symbol");
    let before = LIVE_BYTES.load(Ordering::Relaxed);
    for n in 0..N {
        let account_id = setup.accounts[(n % 1_000) as usize];
        let order_id = OrderId::derive(n);
        let placed = OrderPlaced {
            order_id,
            user_id: UserId::derive(n % 1_000 + 1),
            account_id,
            symbol,
            side: if n % 2 == 0 { Side::Buy } else { Side::Sell },
            order_type: OrderType::Limit,
            price: Some(Decimal::new(if n % 2 == 0 { 400_000 } else { 600_000 } + (n % 5_000) as i64, 1)),
            quantity: Decimal::new(1, 3),
            leverage: 10,
            margin_mode: MarginMode::Cross,
            time_in_force: TimeInForce::Gtc,
            is_reduce_only: false,
            is_post_only: false,
            stp_mode: StpMode::ExpireTaker,
            client_order_id: None,
        };
        let e = envelope(&exchange, Event::OrderPlaced(placed));
        exchange.apply(&e);
        let locked = BalanceLocked { account_id, order_id, amount: Decimal::new(5, 0) };
        let e = envelope(&exchange, Event::BalanceLocked(locked));
        exchange.apply(&e);
    }
    let per_order = (LIVE_BYTES.load(Ordering::Relaxed) - before) as f64 / N as f64;
    println!("resting orders: {N} in {} price levels, {per_order:.0} bytes per resting order", 10_000);

    let accounts = Setup::new(N as usize, 0, 2);
    let mut exchange = accounts.exchange.clone();
    let before = LIVE_BYTES.load(Ordering::Relaxed);
    for (n, account_id) in accounts.accounts.iter().enumerate() {
        let opened = PositionOpened {
            position_id: PositionId::derive(n as u64),
            account_id: *account_id,
            symbol,
            side: if n % 2 == 0 { Side::Buy } else { Side::Sell },
            size: Decimal::new(1, 3),
            entry_price: Decimal::from(50_000),
            margin: Decimal::from(5),
            leverage: 10,
            margin_mode: MarginMode::Cross,
            order_id: None,
            trade_id: None,
        };
        let e = envelope(&exchange, Event::PositionOpened(opened));
        exchange.apply(&e);
    }
    let per_position = (LIVE_BYTES.load(Ordering::Relaxed) - before) as f64 / N as f64;
    println!("open positions: {N}, {per_position:.0} bytes per open position");
}
