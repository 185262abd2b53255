#![allow(clippy::unwrap_used)]

use automerge::transaction::Transactable;

use super::*;

fn key_pair() -> Ed25519KeyPair {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&crate::test_rng()).unwrap();
    Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()
}

fn key_of(pair: &Ed25519KeyPair) -> [u8; 32] {
    pair.public_key().as_ref().try_into().unwrap()
}

fn id_of(pair: &Ed25519KeyPair) -> [u8; 32] {
    *DeviceId::from_public_key(&key_of(pair)).as_bytes()
}

fn actor(pair: &Ed25519KeyPair, nonce: u8) -> ActorId {
    actor_for(&DeviceId::from_public_key(&key_of(pair)), [nonce; 8])
}

fn writer(pair: &Ed25519KeyPair, nonce: u8) -> Automerge {
    Automerge::new().with_actor(actor(pair, nonce))
}

fn write(doc: &mut Automerge, key: &str) -> Change {
    let mut tx = doc.transaction();
    tx.put(automerge::ROOT, key, 1).unwrap();
    tx.commit();
    doc.get_last_local_change().unwrap()
}

fn book_with(proofs: &[HeadProof], doc: &Automerge) -> ProofBook {
    let mut book = ProofBook::default();
    for p in proofs {
        book.offer("household", p.clone(), doc).unwrap();
    }
    book
}

#[test]
fn a_proof_round_trips_and_any_tampering_breaks_it() {
    let pair = key_pair();
    let proof = HeadProof::sign(&pair, "household", ChangeHash([7; 32]), 3);
    let bytes = proof.encode();
    assert_eq!(bytes.len(), PROOF_LEN);
    let back = HeadProof::decode(&bytes).unwrap();
    assert_eq!(back, proof);
    back.verify("household").unwrap();
    assert_eq!(back.verify("private-x"), Err(ProofError::BadSignature));
    for at in [1, 40, 50, 100] {
        let mut bad = bytes.clone();
        bad[at] ^= 1;
        assert_eq!(
            HeadProof::decode(&bad).unwrap().verify("household"),
            Err(ProofError::BadSignature)
        );
    }
    assert!(HeadProof::decode(&bytes[1..]).is_err());
    let mut wrong_version = bytes;
    wrong_version[0] = 9;
    assert!(HeadProof::decode(&wrong_version).is_err());
}

#[test]
fn one_proof_covers_every_earlier_change_of_its_device_even_under_older_actor_ids() {
    let ana = key_pair();
    let mut first_run = writer(&ana, 1);
    let a1 = write(&mut first_run, "a1");
    let a2 = write(&mut first_run, "a2");
    // Restarted: a new nonce, the same key, building on what it wrote before.
    let mut second_run = first_run.fork().with_actor(actor(&ana, 2));
    let a3 = write(&mut second_run, "a3");
    let proof = HeadProof::sign(&ana, "household", a3.hash(), 1);
    let receiver = Automerge::new();
    let batch = vec![a3.clone(), a1.clone(), a2.clone()];
    let proven = prove(&batch, &book_with(&[proof], &receiver), |k| {
        *k == id_of(&ana)
    });
    assert!(
        proven.verdicts.iter().all(|v| *v == Ok(id_of(&ana))),
        "{proven:?}"
    );
    // Without the proof nothing is proven.
    let proven = prove(&batch, &ProofBook::default(), |k| *k == id_of(&ana));
    assert!(proven.verdicts.iter().all(|v| v.is_err()));
}

#[test]
fn a_relay_passes_proofs_on_but_cannot_make_them_for_another_device() {
    let ana = key_pair();
    let bo = key_pair();
    let mut ana_doc = writer(&ana, 1);
    let a1 = write(&mut ana_doc, "a1");
    let ana_proof = HeadProof::sign(&ana, "household", a1.hash(), 1);
    // Bo's device writes a change claiming Ana's key, and signs it with its own.
    let mut forged_doc = ana_doc.fork().with_actor(actor(&ana, 9));
    let forged = write(&mut forged_doc, "forged");
    let bo_proof = HeadProof::sign(&bo, "household", forged.hash(), 1);
    let receiver = Automerge::new();
    let trusted = |k: &[u8; 32]| *k == id_of(&ana) || *k == id_of(&bo);
    let book = book_with(&[ana_proof, bo_proof], &receiver);
    let proven = prove(&[a1.clone(), forged.clone()], &book, trusted);
    assert_eq!(proven.verdicts[0], Ok(id_of(&ana)));
    assert_eq!(proven.verdicts[1], Err(Held::Unproven));
}

#[test]
fn a_fork_under_a_proven_actor_is_not_covered_by_the_real_head() {
    let ana = key_pair();
    let mut base = writer(&ana, 1);
    let a1 = write(&mut base, "a1");
    let mut honest = base.fork().with_actor(actor(&ana, 1));
    let a2 = write(&mut honest, "a2");
    // Someone else's copy writes "seq 2" of the same actor: a fork, not in a2's history.
    let mut fork = base.fork().with_actor(actor(&ana, 1));
    let a2_fork = write(&mut fork, "other");
    let proof = HeadProof::sign(&ana, "household", a2.hash(), 1);
    let receiver = Automerge::new();
    let book = book_with(&[proof], &receiver);
    let proven = prove(&[a1, a2, a2_fork], &book, |_| true);
    assert!(proven.verdicts[0].is_ok() && proven.verdicts[1].is_ok());
    assert_eq!(proven.verdicts[2], Err(Held::Unproven));
}

#[test]
fn unsigned_untrusted_and_dependent_changes_are_held() {
    let ana = key_pair();
    let stranger = key_pair();
    let mut legacy = Automerge::new().with_actor(ActorId::from([5u8; 16].as_slice()));
    let old = write(&mut legacy, "old");
    let mut theirs = writer(&stranger, 1);
    let s1 = write(&mut theirs, "s1");
    let stranger_proof = HeadProof::sign(&stranger, "household", s1.hash(), 1);
    // Ana builds on the stranger's change; her proof covers it, but not for them.
    let mut ana_doc = theirs.fork().with_actor(actor(&ana, 1));
    let a1 = write(&mut ana_doc, "a1");
    let ana_proof = HeadProof::sign(&ana, "household", a1.hash(), 1);
    let receiver = Automerge::new();
    let book = book_with(&[stranger_proof, ana_proof], &receiver);
    let proven = prove(&[old, s1, a1], &book, |k| *k == id_of(&ana));
    assert_eq!(proven.verdicts[0], Err(Held::NotSigned));
    assert_eq!(proven.verdicts[1], Err(Held::UnknownDevice));
    assert_eq!(proven.verdicts[2], Err(Held::DependsOnHeld));
}

#[test]
fn the_book_keeps_the_newest_settled_proof_and_waits_for_heads_that_have_not_arrived() {
    let ana = key_pair();
    let mut doc = writer(&ana, 1);
    let a1 = write(&mut doc, "a1");
    let mut book = ProofBook::default();
    let empty = Automerge::new();
    let p1 = HeadProof::sign(&ana, "household", a1.hash(), 1);
    book.offer("household", p1.clone(), &empty).unwrap();
    assert!(
        book.of(&key_of(&ana)).is_none(),
        "pending until its head arrives"
    );
    book.settle(&doc);
    assert_eq!(book.of(&key_of(&ana)), Some(&p1));
    assert_eq!(book.take_changed(), vec![p1.clone()]);
    assert!(book.take_changed().is_empty());
    // An older proof never replaces a newer one.
    let p0 = HeadProof::sign(&ana, "household", a1.hash(), 0);
    book.offer("household", p0, &doc).unwrap();
    assert_eq!(book.of(&key_of(&ana)), Some(&p1));
    // A forged one is refused outright.
    let mut forged = p1.encode();
    forged[100] ^= 1;
    assert!(book
        .offer("household", HeadProof::decode(&forged).unwrap(), &doc)
        .is_err());
}

#[test]
fn signing_the_latest_change_happens_once_per_change() {
    let ana = key_pair();
    let mut doc = writer(&ana, 1);
    let mut book = ProofBook::default();
    assert!(
        !book.sign_latest(&ana, "household", &doc),
        "nothing written yet"
    );
    let a1 = write(&mut doc, "a1");
    assert!(book.sign_latest(&ana, "household", &doc));
    assert!(!book.sign_latest(&ana, "household", &doc));
    assert_eq!(book.of(&key_of(&ana)).unwrap().head, a1.hash());
    let first = book.of(&key_of(&ana)).unwrap().counter;
    write(&mut doc, "a2");
    assert!(book.sign_latest(&ana, "household", &doc));
    assert!(book.of(&key_of(&ana)).unwrap().counter > first);
}

#[test]
fn changes_come_out_of_change_chunks_and_whole_document_chunks() {
    let ana = key_pair();
    let mut doc = writer(&ana, 1);
    let mut a1 = write(&mut doc, "a1");
    let receiver = Automerge::new();
    let from_change = changes_in(&[a1.bytes().as_ref()], &receiver).unwrap();
    assert_eq!(from_change.len(), 1);
    write(&mut doc, "a2");
    let whole = doc.save();
    let from_doc = changes_in(&[whole.as_slice()], &receiver).unwrap();
    assert_eq!(from_doc.len(), 2);
    assert!(changes_in(&[b"not automerge".as_slice()], &receiver).is_err());
    // What `save_after` writes: several change chunks in a row.
    let mut later = doc.fork();
    let base = later.get_heads();
    write(&mut later, "a3");
    write(&mut later, "a4");
    let run = later.save_after(&base);
    assert_eq!(changes_in(&[run.as_slice()], &doc).unwrap().len(), 2);
}

#[test]
fn a_forked_device_history_keeps_a_signed_head_per_branch() {
    let ana = key_pair();
    let mut base = writer(&ana, 1);
    write(&mut base, "a1");
    // A store restored from an older copy writes on beside the lost one.
    let mut lost = base.fork().with_actor(actor(&ana, 2));
    let lost_head = write(&mut lost, "lost");
    let mut restored = base.fork().with_actor(actor(&ana, 3));
    for n in 0..6 {
        write(&mut restored, &format!("r{n}"));
    }
    let mut both = restored.fork();
    both.merge(&mut lost.fork()).unwrap();
    let mut book = ProofBook::default();
    book.offer(
        "household",
        HeadProof::sign(&ana, "household", lost_head.hash(), 1),
        &both,
    )
    .unwrap();
    // Many later heads of the restored branch, one actor: they replace each other.
    for (n, change) in restored.get_changes(&[]).iter().enumerate() {
        let proof = HeadProof::sign(&ana, "household", change.hash(), 10 + n as u64);
        book.offer("household", proof, &both).unwrap();
    }
    let heads: Vec<ChangeHash> = book.settled().map(|p| p.head).collect();
    assert!(
        heads.contains(&lost_head.hash()),
        "the lost branch's head was dropped"
    );
    assert!(heads.len() <= KEPT_PER_DEVICE);
    let proven = prove(&[lost_head], &book, |_| true);
    assert!(proven.verdicts[0].is_ok());
}
