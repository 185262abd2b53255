//! The discovery driver against an in-memory board: matching, pairing lookups, secret
//! changes and hourly rotation, with the clock and the network driver replaced.

use super::board::{Board, StaticDiscovery};
use super::*;

const HOME: [u8; 32] = [1; 32];
const ELSEWHERE: [u8; 32] = [2; 32];
// An hour boundary, so tests know where the next one is.
const BASE: u64 = 1_795_773_600;

thread_local! {
    static START: std::cell::Cell<Option<tokio::time::Instant>> =
        const { std::cell::Cell::new(None) };
}

/// Starts the test clock afresh; each test calls it first, in case the test harness
/// runs tests one after another on one thread.
fn reset_clock() {
    START.with(|s| s.set(None));
}

/// Unix seconds that move with tokio's (pausable) clock. Each test has its own start:
/// `#[tokio::test]` runs the test and every task it spawns on the test's thread, and one
/// test advancing its clock by an hour must not move another's.
fn test_clock() -> u64 {
    let start = START.with(|s| {
        let start = s.get().unwrap_or_else(tokio::time::Instant::now);
        s.set(Some(start));
        start
    });
    BASE + tokio::time::Instant::now().duration_since(start).as_secs()
}

struct FakeKeys {
    secret: Mutex<Option<[u8; 32]>>,
    invite: Mutex<Option<u8>>,
    changes: watch::Sender<u64>,
}

impl FakeKeys {
    fn new(secret: [u8; 32]) -> Arc<FakeKeys> {
        Arc::new(FakeKeys {
            secret: Mutex::new(Some(secret)),
            invite: Mutex::new(None),
            changes: watch::channel(0).0,
        })
    }

    fn set_secret(&self, secret: [u8; 32]) {
        *self.secret.lock().unwrap() = Some(secret);
        self.changes.send_modify(|n| *n += 1);
    }

    fn set_invite(&self, number: Option<u8>) {
        *self.invite.lock().unwrap() = number;
        self.changes.send_modify(|n| *n += 1);
    }
}

impl Keys for FakeKeys {
    fn household_secret(&self) -> Option<Zeroizing<[u8; 32]>> {
        self.secret.lock().unwrap().map(Zeroizing::new)
    }

    fn open_invite_number(&self) -> Option<u8> {
        *self.invite.lock().unwrap()
    }
    fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }
}

#[derive(Default)]
struct Recorder {
    offers: Mutex<Vec<(String, Vec<SocketAddr>)>>,
    forgotten: Mutex<Vec<String>>,
}

impl PeerSink for Recorder {
    fn offer(&self, label: &str, addrs: Vec<SocketAddr>) {
        self.offers.lock().unwrap().push((label.to_string(), addrs));
    }
    fn forget(&self, label: &str) {
        self.forgotten.lock().unwrap().push(label.to_string());
    }
}

impl Recorder {
    fn offered_ports(&self) -> BTreeSet<u16> {
        self.offers
            .lock()
            .unwrap()
            .iter()
            .flat_map(|(_, a)| a.iter().map(SocketAddr::port))
            .collect()
    }
}

struct Device {
    keys: Arc<FakeKeys>,
    sink: Arc<Recorder>,
    driver: Arc<Discoverer>,
}

fn device(board: &Board, secret: [u8; 32], port: u16) -> Device {
    let keys = FakeKeys::new(secret);
    let sink = Arc::new(Recorder::default());
    let backend = Arc::new(StaticDiscovery::new(
        board.clone(),
        IpAddr::from([127, 0, 0, 1]),
    ));
    let driver = Discoverer::start(
        Mode::Static,
        backend,
        port,
        keys.clone(),
        sink.clone(),
        test_clock,
    )
    .unwrap();
    Device { keys, sink, driver }
}

/// Lets the drivers and the board watchers run until nothing is left to do.
async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

fn board_labels(board: &Board) -> BTreeSet<String> {
    board.entries().into_keys().collect()
}

#[tokio::test(start_paused = true)]
async fn housemates_find_each_other_and_not_themselves() {
    reset_clock();
    let board = Board::memory();
    let a = device(&board, HOME, 1001);
    let b = device(&board, HOME, 1002);
    settle().await;
    assert_eq!(a.sink.offered_ports(), BTreeSet::from([1002]));
    assert_eq!(b.sink.offered_ports(), BTreeSet::from([1001]));
    a.driver.shutdown().await;
    b.driver.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn another_household_is_ignored() {
    reset_clock();
    let board = Board::memory();
    let a = device(&board, HOME, 1001);
    let stranger = device(&board, ELSEWHERE, 1002);
    settle().await;
    assert!(a.sink.offered_ports().is_empty());
    assert!(stranger.sink.offered_ports().is_empty());
}

#[tokio::test(start_paused = true)]
async fn the_board_holds_only_labels_and_goodbyes_clear_it() {
    reset_clock();
    let board = Board::memory();
    let a = device(&board, HOME, 1001);
    settle().await;
    let labels = board_labels(&board);
    assert_eq!(labels.len(), 1);
    let label = labels.iter().next().unwrap();
    assert!(token::is_household(
        label,
        &HOME,
        token::hour_of(test_clock())
    ));
    a.driver.shutdown().await;
    settle().await;
    assert!(
        board_labels(&board).is_empty(),
        "shutdown withdraws the label"
    );
}

#[tokio::test(start_paused = true)]
async fn a_new_epoch_is_announced_alone_and_labels_of_the_old_one_are_not_answered() {
    reset_clock();
    const NEXT: [u8; 32] = [3; 32];
    let board = Board::memory();
    let a = device(&board, HOME, 1001);
    settle().await;
    // The household moves on while b (say, offline) and a removed device still hold HOME.
    // Only the current epoch's labels are answered, whatever older ones a device keeps.
    a.keys.set_secret(NEXT);
    settle().await;
    let hour = token::hour_of(test_clock());
    let labels = board_labels(&board);
    assert_eq!(labels.len(), 1, "only the new epoch's label is announced");
    let label = labels.iter().next().unwrap();
    assert!(token::is_household(label, &NEXT, hour));
    assert!(!token::is_household(label, &HOME, hour));
    // A device on the old epoch (a removed one, or one that was away) is not answered:
    // a removed device could announce there to lure a into dialling it. Nor does it
    // recognise a.
    let b = device(&board, HOME, 1002);
    settle().await;
    assert!(a.sink.offered_ports().is_empty());
    assert!(b.sink.offered_ports().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_pairing_lookup_finds_the_inviter_by_number_only() {
    reset_clock();
    let board = Board::memory();
    let inviter = device(&board, HOME, 1001);
    let joiner = device(&board, ELSEWHERE, 1002);
    settle().await;
    let mut wrong = joiner.driver.find_inviter(5);
    let mut right = joiner.driver.find_inviter(4);
    inviter.keys.set_invite(Some(4));
    settle().await;
    let found = right.try_recv().unwrap();
    assert_eq!(found, vec![SocketAddr::from(([127, 0, 0, 1], 1001))]);
    assert!(wrong.try_recv().is_err());
    // The invite closing withdraws the pairing label, and the household label stays.
    inviter.keys.set_invite(None);
    settle().await;
    assert_eq!(board_labels(&board).len(), 2);
    // The joiner never offered the inviter as a household device.
    assert!(joiner.sink.offered_ports().is_empty());
}

#[tokio::test(start_paused = true)]
async fn after_joining_the_new_secret_finds_the_household() {
    reset_clock();
    let board = Board::memory();
    let inviter = device(&board, HOME, 1001);
    let joiner = device(&board, ELSEWHERE, 1002);
    settle().await;
    assert!(joiner.sink.offered_ports().is_empty());
    joiner.keys.set_secret(HOME);
    settle().await;
    assert_eq!(joiner.sink.offered_ports(), BTreeSet::from([1001]));
    assert_eq!(inviter.sink.offered_ports(), BTreeSet::from([1002]));
    // The joiner's old label was withdrawn: one label per device on the board.
    assert_eq!(board_labels(&board).len(), 2);
}

#[tokio::test(start_paused = true)]
async fn labels_rotate_when_the_hour_turns_and_still_match() {
    reset_clock();
    let board = Board::memory();
    let a = device(&board, HOME, 1001);
    settle().await;
    let first = board_labels(&board);
    let hour = token::hour_of(test_clock());
    tokio::time::advance(Duration::from_secs(token::secs_to_next_hour(test_clock()))).await;
    settle().await;
    assert_eq!(token::hour_of(test_clock()), hour + 1);
    let second = board_labels(&board);
    assert_eq!(second.len(), 1);
    assert!(first.is_disjoint(&second), "a new hour brings a new label");
    let label = second.iter().next().unwrap();
    assert!(token::is_household(label, &HOME, hour + 1));
    assert!(!token::is_household(label, &HOME, hour + 3));
    // A housemate arriving now finds the rotated label.
    let b = device(&board, HOME, 1002);
    settle().await;
    assert_eq!(b.sink.offered_ports(), BTreeSet::from([1001]));
    drop(a);
}

#[tokio::test(start_paused = true)]
async fn addresses_merge_as_they_arrive_and_withdrawal_is_forwarded() {
    reset_clock();
    let board = Board::memory();
    let me = device(&board, HOME, 1001);
    settle().await;
    // A housemate's label, announced first with one address and then with two.
    let label = token::household_label(&HOME, token::hour_of(test_clock()), &[9, 9, 9, 9]);
    let other = StaticDiscovery::new(board.clone(), IpAddr::from([127, 0, 0, 2]));
    let service = token::household_service(&HOME, token::hour_of(test_clock()));
    let labels = Announcements::from([(label.clone(), service)]);
    other.announce(&labels, 2000).unwrap();
    settle().await;
    other.announce(&Announcements::new(), 2000).unwrap();
    let wider = StaticDiscovery::new(board.clone(), IpAddr::from([127, 0, 0, 3]));
    wider.announce(&labels, 2000).unwrap();
    settle().await;
    let offers = me.sink.offers.lock().unwrap().clone();
    let addrs: Vec<Vec<SocketAddr>> = offers.iter().map(|(_, a)| a.clone()).collect();
    assert_eq!(
        addrs,
        vec![
            vec![SocketAddr::from(([127, 0, 0, 2], 2000))],
            vec![SocketAddr::from(([127, 0, 0, 3], 2000))],
        ],
        "each offer brings only the addresses not offered before"
    );
    wider.announce(&Announcements::new(), 2000).unwrap();
    settle().await;
    assert_eq!(*me.sink.forgotten.lock().unwrap(), vec![label]);
}

#[test]
fn order_puts_ipv4_first_and_link_local_last() {
    let ll: SocketAddr = "[fe80::1%2]:7".parse().unwrap();
    let global: SocketAddr = "[2001:db8::1]:7".parse().unwrap();
    let v4: SocketAddr = "198.51.100.1:7".parse().unwrap();
    assert_eq!(order(vec![ll, global, v4, v4]), vec![v4, global, ll]);
}

#[test]
fn only_addresses_our_socket_can_reach_are_dialled() {
    let any4: SocketAddr = "0.0.0.0:1".parse().unwrap();
    let lo4: SocketAddr = "127.0.0.1:1".parse().unwrap();
    let any6: SocketAddr = "[::]:1".parse().unwrap();
    let v4: SocketAddr = "198.51.100.1:7".parse().unwrap();
    let v6: SocketAddr = "[fe80::1%2]:7".parse().unwrap();
    assert!(dialable(any4, &v4));
    assert!(!dialable(any4, &v6));
    assert!(!dialable(lo4, &v4));
    assert!(dialable(lo4, &"127.0.0.1:9".parse().unwrap()));
    assert!(dialable(any6, &v4));
    assert!(dialable(any6, &v6));
}

#[test]
fn modes_parse_with_the_spellings_people_use() {
    assert_eq!(Mode::parse("mdns").unwrap(), Mode::Mdns);
    assert_eq!(Mode::parse("OFF").unwrap(), Mode::Off);
    assert_eq!(Mode::parse("false").unwrap(), Mode::Off);
    assert_eq!(Mode::parse("static").unwrap(), Mode::Static);
    let err = Mode::parse("bonjour").unwrap_err().to_string();
    assert!(err.contains("mdns, static or off"), "{err}");
}

/// A backend whose sightings the test sends by hand.
#[derive(Default)]
struct Manual {
    announced: Mutex<Vec<BTreeSet<String>>>,
    /// Each announcement's service types, in order.
    announced_services: Mutex<Vec<BTreeSet<String>>>,
    services: Mutex<Vec<BTreeSet<String>>>,
    sender: Mutex<Option<mpsc::UnboundedSender<Seen>>>,
    requeries: Mutex<u32>,
}

impl Discovery for Manual {
    fn announce(&self, labels: &Announcements, _port: u16) -> Result<(), DiscoveryError> {
        self.announced
            .lock()
            .unwrap()
            .push(labels.keys().cloned().collect());
        self.announced_services
            .lock()
            .unwrap()
            .push(labels.values().cloned().collect());
        Ok(())
    }
    fn set_services(&self, services: &BTreeSet<String>) {
        self.services.lock().unwrap().push(services.clone());
    }
    fn browse(&self) -> Result<mpsc::UnboundedReceiver<Seen>, DiscoveryError> {
        let (tx, rx) = mpsc::unbounded_channel();
        *self.sender.lock().unwrap() = Some(tx);
        Ok(rx)
    }
    fn requery(&self) {
        *self.requeries.lock().unwrap() += 1;
    }
    fn shutdown(&self) -> Stopping {
        Box::pin(async {})
    }
}

#[tokio::test(start_paused = true)]
async fn a_network_change_brings_a_fresh_label_and_junk_is_ignored() {
    reset_clock();
    let backend = Arc::new(Manual::default());
    let sink = Arc::new(Recorder::default());
    let driver = Discoverer::start(
        Mode::Mdns,
        backend.clone(),
        7447,
        FakeKeys::new(HOME),
        sink.clone(),
        test_clock,
    )
    .unwrap();
    settle().await;
    let send = |seen: Seen| {
        backend
            .sender
            .lock()
            .unwrap()
            .as_ref()
            .unwrap()
            .send(seen)
            .unwrap();
    };
    // Our own label heard back, names that are not labels, and another household's
    // label: none is offered.
    let own = backend.announced.lock().unwrap()[0]
        .iter()
        .next()
        .unwrap()
        .clone();
    let addr = SocketAddr::from(([198, 51, 100, 7], 7447));
    let foreign = token::household_label(&ELSEWHERE, token::hour_of(test_clock()), &[5; 4]);
    for label in [
        own.clone(),
        "Ada's laptop".into(),
        format!("{own} (2)"),
        foreign,
    ] {
        send(Seen::Found {
            label,
            addrs: vec![addr],
        });
    }
    settle().await;
    assert!(sink.offered_ports().is_empty());
    send(Seen::NetworkChanged);
    settle().await;
    let announced = backend.announced.lock().unwrap().clone();
    assert_eq!(announced.len(), 2);
    assert!(announced[0].is_disjoint(&announced[1]));
    assert!(token::is_household(
        announced[1].iter().next().unwrap(),
        &HOME,
        token::hour_of(test_clock())
    ));
    // The hour turning brings new labels, and one more look around later in the hour
    // (not at the turn, when peers' goodbyes arrive).
    assert_eq!(*backend.requeries.lock().unwrap(), 0);
    tokio::time::advance(Duration::from_secs(token::secs_to_next_hour(test_clock()))).await;
    settle().await;
    assert_eq!(backend.announced.lock().unwrap().len(), 3);
    assert_eq!(*backend.requeries.lock().unwrap(), 0);
    tokio::time::advance(Duration::from_secs(3000)).await;
    settle().await;
    assert_eq!(*backend.requeries.lock().unwrap(), 1);
    driver.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn service_types_follow_the_hour_the_household_and_pairing_lookups() {
    reset_clock();
    let backend = Arc::new(Manual::default());
    let keys = FakeKeys::new(HOME);
    let driver = Discoverer::start(
        Mode::Mdns,
        backend.clone(),
        7447,
        keys.clone(),
        Arc::new(Recorder::default()),
        test_clock,
    )
    .unwrap();
    settle().await;
    let hour = token::hour_of(test_clock());
    let household = BTreeSet::from(token::household_services(&HOME, hour));
    assert_eq!(backend.services.lock().unwrap().last(), Some(&household));
    assert_eq!(
        backend.announced_services.lock().unwrap().last(),
        Some(&BTreeSet::from([token::household_service(&HOME, hour)]))
    );

    // An open invite announces under the pairing type of its number; a joiner's lookup
    // browses that number's types too.
    keys.set_invite(Some(42));
    let lookup = driver.find_inviter(42);
    settle().await;
    assert_eq!(
        backend.announced_services.lock().unwrap().last(),
        Some(&BTreeSet::from([
            token::household_service(&HOME, hour),
            token::pairing_service(42, hour)
        ]))
    );
    let mut with_lookup = household.clone();
    with_lookup.extend(token::pairing_services(42, hour));
    assert_eq!(backend.services.lock().unwrap().last(), Some(&with_lookup));

    // The hour turns: everything moves on, the hour before is still browsed, the lookup
    // ended so its types go.
    drop(lookup);
    tokio::time::advance(Duration::from_secs(token::secs_to_next_hour(test_clock()))).await;
    settle().await;
    let next = BTreeSet::from(token::household_services(&HOME, hour + 1));
    assert!(next.contains(&token::household_service(&HOME, hour)));
    assert_eq!(backend.services.lock().unwrap().last(), Some(&next));
    for types in backend.services.lock().unwrap().iter() {
        assert!(types.iter().all(|t| !t.contains("hearth")), "{types:?}");
    }

    // Another household secret: other types.
    keys.set_secret(ELSEWHERE);
    settle().await;
    assert_eq!(
        backend.services.lock().unwrap().last(),
        Some(&BTreeSet::from(token::household_services(
            &ELSEWHERE,
            hour + 1
        )))
    );
    driver.shutdown().await;
}
