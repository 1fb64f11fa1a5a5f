use super::*;

/// A SCRAM client, as the tests' counterpart.
fn client_final(
    mechanism: Mechanism,
    password: &str,
    client_first_bare: &str,
    server_first: &str,
) -> (String, Vec<u8>) {
    let fields: std::collections::HashMap<&str, &str> =
        server_first.split(',').filter_map(|a| a.split_once('=')).collect();
    let salt = B64.decode(fields["s"]).unwrap();
    let iterations: u32 = fields["i"].parse().unwrap();
    let salted = mechanism.salted_password(password.as_bytes(), &salt, iterations);
    let client_key = mechanism.hmac(&salted, b"Client Key");
    let stored_key = mechanism.hash(&client_key);
    let without_proof = format!("c=biws,r={}", fields["r"]);
    let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
    let signature = mechanism.hmac(&stored_key, auth_message.as_bytes());
    let proof: Vec<u8> = client_key.iter().zip(&signature).map(|(a, b)| a ^ b).collect();
    let server_key = mechanism.hmac(&salted, b"Server Key");
    let expected = mechanism.hmac(&server_key, auth_message.as_bytes());
    (format!("{without_proof},p={}", B64.encode(proof)), expected)
}

#[test]
fn rfc_7677_test_vector() {
    // RFC 7677 section 3: user "user", password "pencil".
    let m = Mechanism::Sha256;
    let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
    let credential = ScramCredential::from_salted(m, &m.salted_password(b"pencil", &salt, 4096), salt, 4096);
    let server_first = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    let (final_message, server_signature) = client_final(m, "pencil", "n=user,r=rOprNGfwEbeRWgbNEkqO", server_first);
    assert_eq!(
        final_message,
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
    );
    assert_eq!(
        B64.encode(server_signature),
        "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
    );
    assert!(credential.verifies(m, "pencil"));
    assert!(!credential.verifies(m, "pencil!"));
}

fn exchange(
    mechanism: Mechanism,
    stored: Option<&ScramCredential>,
    user: &str,
    password: &str,
) -> Result<Step, ScramError> {
    let mut server = ScramServer::new(mechanism);
    let lookup = |u: &str| (u == "alice").then(|| stored.cloned()).flatten();
    let decoy = |_: &str| vec![7u8; 32];
    let bare = format!("n={user},r=fyko+d2lbbFgONRv9qkxdawL");
    let Step::Continue(first) = server.step(format!("n,,{bare}").as_bytes(), lookup, decoy)? else {
        panic!("no challenge");
    };
    let first = String::from_utf8(first).unwrap();
    assert!(first.starts_with("r=fyko+d2lbbFgONRv9qkxdawL"), "{first}");
    let (last, expected) = client_final(mechanism, password, &bare, &first);
    let step = server.step(last.as_bytes(), lookup, decoy)?;
    if let Step::Done { last, .. } = &step {
        assert_eq!(*last, format!("v={}", B64.encode(expected)).into_bytes());
    }
    Ok(step)
}

#[test]
fn a_final_message_without_the_channel_binding_header_is_refused() {
    let m = Mechanism::Sha256;
    let stored = ScramCredential::from_password(m, "pw", MIN_ITERATIONS);
    let mut server = ScramServer::new(m);
    let lookup = |_: &str| Some(stored.clone());
    let decoy = |_: &str| vec![7u8; 32];
    let bare = "n=alice,r=abc";
    let Ok(Step::Continue(first)) = server.step(format!("n,,{bare}").as_bytes(), lookup, decoy) else {
        panic!("no challenge");
    };
    let (good, _) = client_final(m, "pw", bare, std::str::from_utf8(&first).unwrap());
    let without_c = good.replacen("c=biws,", "", 1);
    assert_eq!(
        server.step(without_c.as_bytes(), lookup, decoy),
        Err(ScramError::BadCredentials)
    );
}

#[test]
fn both_mechanisms_authenticate_the_right_password_only() {
    for m in [Mechanism::Sha256, Mechanism::Sha512] {
        let stored = ScramCredential::from_password(m, "s3cret", MIN_ITERATIONS);
        assert!(
            matches!(exchange(m, Some(&stored), "alice", "s3cret"), Ok(Step::Done { user, .. }) if user == "alice")
        );
        assert_eq!(
            exchange(m, Some(&stored), "alice", "wrong"),
            Err(ScramError::BadCredentials)
        );
        // An unknown user gets a challenge like anyone else and fails at the proof.
        assert_eq!(
            exchange(m, Some(&stored), "bob", "s3cret"),
            Err(ScramError::BadCredentials)
        );
    }
}

#[test]
fn malformed_messages_and_extensions_are_refused() {
    let lookup = |_: &str| None;
    let decoy = |_: &str| vec![1u8; 16];
    for bad in [
        &b"garbage"[..],
        b"p=tls-unique,,n=a,r=x",
        b"n,,r=x",
        b"n,,n=a",
        b"n,,n=a=ZZ,r=x",
        &[0xff, 0xfe],
    ] {
        assert!(
            ScramServer::new(Mechanism::Sha256).step(bad, lookup, decoy).is_err(),
            "{bad:?}"
        );
    }
    let token = ScramServer::new(Mechanism::Sha256).step(b"n,,n=a,r=x,tokenauth=true", lookup, decoy);
    assert_eq!(token, Err(ScramError::UnsupportedExtension));
    let mut server = ScramServer::new(Mechanism::Sha256);
    server.step(b"n,,n=a,r=x", lookup, decoy).unwrap();
    assert!(
        server.step(b"c=biws,r=other,p=AAAA", lookup, decoy).is_err(),
        "a nonce not ours"
    );
    let another_user = ScramServer::new(Mechanism::Sha256).step(b"n,a=bob,n=alice,r=x", lookup, decoy);
    assert_eq!(
        another_user,
        Err(ScramError::BadCredentials),
        "an authorization id other than the user"
    );
    assert_eq!(unescape_user("a=2Cb=3Dc").unwrap(), "a,b=c");
}
