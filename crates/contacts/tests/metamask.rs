//! MetaMask's eth-phishing-detect 1.2.0 (../shared/data/eth-phishing-detect-1.2.0) through the
//! verify code, as real third-party data: its blocklist as known scams, its allowlist and
//! fuzzy-match targets as official domains, its labelled cases, and its popular-domain lists
//! (Alexa top sites, popular dapps) as a false-positive check.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

use portcullis_contacts::{
    Direction, EntryKind, KnownScam, OfficialEntry, Registry, ScamSource, Verdict, normalise_entry,
};
use serde_json::Value;

const DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/data/eth-phishing-detect-1.2.0"
);

fn json(file: &str) -> Value {
    let text = std::fs::read_to_string(format!("{DIR}/{file}")).expect("the shared MetaMask data");
    serde_json::from_str(&text).unwrap()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

fn domains(list: &[String]) -> Vec<OfficialEntry> {
    list.iter()
        .enumerate()
        .filter_map(|(i, d)| {
            let value = normalise_entry(EntryKind::Domain, d, None).ok()?;
            Some(OfficialEntry {
                id: format!("mm{i}"),
                kind: EntryKind::Domain,
                value,
                channel: "web".into(),
                direction: Direction::Both,
                note: String::new(),
            })
        })
        .collect()
}

fn scams(list: &[String]) -> Vec<KnownScam> {
    list.iter()
        .filter_map(|d| {
            let n = portcullis_contacts::normalise(d, None).ok()?;
            Some(KnownScam {
                kind: n.kind.as_str().into(),
                value: n.normalized,
                source: ScamSource::ConfirmedFraud,
            })
        })
        .collect()
}

struct Lists {
    allow: Vec<String>,
    block: Vec<String>,
    fuzzy: Vec<String>,
}

fn lists() -> Lists {
    let config = json("config.json");
    Lists {
        allow: strings(&config["whitelist"]),
        block: strings(&config["blacklist"]),
        fuzzy: strings(&config["fuzzylist"]),
    }
}

/// The labelled cases of MetaMask's own test suite (index.js).
const FUZZY_CASES: [&str; 5] = [
    "metmask.io",
    "myetherwallet.cx",
    "myetherwallet.aaa",
    "myetherwallet.za",
    "myetherwallet.z",
];
const BLOCK_CASES: [&str; 4] = [
    "metamask.com",
    "wallet-ethereum.net",
    "etherclassicwallet.com",
    "wallet-ethereum.net.",
];
const ALLOW_CASES: [&str; 9] = [
    "ledgerwallet.com",
    "metamask.io",
    "etherscan.io",
    "ethereum.org",
    "www.metamask.io",
    "faucet.metamask.io",
    "zero.metamask.io",
    "zero-faucet.metamask.io",
    "www.myetherwallet.com",
];
const NOT_PHISHING: [&str; 32] = [
    "example.com",
    "etherid.org",
    "ether.cards",
    "easyeth.com",
    "etherdomain.com",
    "ethnews.com",
    "cryptocompare.com",
    "kraken.com",
    "myetherwallet.groovehq.com",
    "dether.io",
    "ethermine.org",
    "slaask.com",
    "ethereumdev.io",
    "ethereumdev.kr",
    "etherplan.com",
    "etherplay.io",
    "ethtrade.org",
    "ethereumpool.co",
    "estream.to",
    "ethereum.os.tc",
    "theethereum.wiki",
    "taas.fund",
    "tether.to",
    "ether.direct",
    "themem.io",
    "metajack.im",
    "mestatalsl.biz",
    "thregg.com",
    "steem.io",
    "ethereum1.cz",
    "metalab.co",
    "originprotocol.com",
];
const PHISHING: [&str; 53] = [
    "etherdelta-glthub.com",
    "omise-go.com",
    "omise-go.net",
    "numerai.tech",
    "decentraiand.org",
    "myetherwallet.com.ethpromonodes.com",
    "blockcrein.info",
    "blockchealn.info",
    "bllookchain.info",
    "blockcbhain.info",
    "tokenswap.org",
    "ethtrade.io",
    "myetherwallèt.com",
    "myetherwallet.cm",
    "myethervvallet.com",
    "metherwallet.com",
    "mtetherwallet.com",
    "my-etherwallet.com",
    "my-etherwallet.in",
    "myeherwallet.com",
    "myetcwallet.com",
    "myetehrwallet.com",
    "myeterwallet.com",
    "myethe.rwallet.com",
    "myethereallet.com",
    "myetherieumwallet.com",
    "myetherswallet.com",
    "myetherw.allet.com",
    "myetherwal.let.com",
    "myetherwalet.com",
    "myetherwaliet.com",
    "myetherwall.et.com",
    "myetherwaller.com",
    "myetherwallett.com",
    "myetherwaillet.com",
    "myetherwalllet.com",
    "myetherweb.com.de",
    "myethetwallet.com",
    "myethewallet.com",
    "myÄ—therwallet.com",
    "myelherwallel.com",
    "mvetherwallet.com",
    "myethewallet.net",
    "myetherwillet.com",
    "myetherwallel.com",
    "myeltherwallet.com",
    "myelherwallet.com",
    "wwwmyetherwallet.com",
    "myethermwallet.com",
    "myeth4rwallet.com",
    "myethterwallet.com",
    "origirprotocol.com",
    "etherdelta-glthub.com",
];

fn verdict(registry: &Registry, value: &str) -> Option<Verdict> {
    registry.verify(value, None).ok().map(|a| a.verdict)
}

#[test]
fn fuzzy_matches_are_lookalikes_naming_the_entry_they_imitate() {
    let lists = lists();
    let registry = Registry::compile(domains(&lists.fuzzy), &[]);
    for case in FUZZY_CASES {
        let answer = registry.verify(case, None).unwrap();
        assert_eq!(answer.verdict, Verdict::Lookalike, "{case}");
        let imitated = answer.official_match.unwrap().value;
        assert!(
            ["metamask.io", "myetherwallet.com"].contains(&imitated.as_str()),
            "{case} imitates {imitated}"
        );
    }
    // Without the blocklist, every labelled phishing case aimed at a fuzzy-list name is found
    // by lookalike detection alone.
    let aimed: Vec<&str> = PHISHING
        .iter()
        .copied()
        .filter(|d| {
            d.starts_with("my")
                || d.starts_with("orig")
                || d.starts_with("mt")
                || d.starts_with("mv")
                || d.starts_with("www")
                || d.starts_with("meth")
        })
        .collect();
    let missed: Vec<&str> = aimed
        .iter()
        .copied()
        .filter(|d| verdict(&registry, d) != Some(Verdict::Lookalike))
        .collect();
    // Beyond reach of any rule here: more than two edits from the name, with no part of it
    // whole (`myetcwallet`, `myetherieumwallet`, `myetherweb`). The blocklist has them.
    let beyond = [
        "myetcwallet.com",
        "myetherieumwallet.com",
        "myetherweb.com.de",
    ];
    assert!(
        missed.iter().all(|d| beyond.contains(d)),
        "missed {missed:?} of {}",
        aimed.len()
    );
    assert!(
        aimed.len() - missed.len() >= 38,
        "{} of {}",
        aimed.len() - missed.len(),
        aimed.len()
    );
}

#[test]
fn the_blocklist_is_known_scams_and_the_allowlist_wins_over_it() {
    let lists = lists();
    // A fuzzy-list name that is also blocklisted (`maskmeta.org`) is a target MetaMask
    // watches, not one it vouches for: only the allowlist is official here.
    let officials: Vec<String> = (lists.allow.iter())
        .chain(lists.fuzzy.iter().filter(|d| !lists.block.contains(d)))
        .cloned()
        .collect();
    let registry = Registry::compile(domains(&officials), &scams(&lists.block));
    let allowed: std::collections::HashSet<&str> = lists.allow.iter().map(String::as_str).collect();
    let mut hits = 0;
    let mut overlap = 0;
    for domain in &lists.block {
        match verdict(&registry, domain) {
            Some(Verdict::KnownScam) => hits += 1,
            // MetaMask's allowlist covers subdomains too, as official domains do here.
            Some(Verdict::Official) if allowlisted(&allowed, domain) => overlap += 1,
            other => panic!("{domain}: {other:?} {:?}", registry.verify(domain, None)),
        }
    }
    assert!(hits > 13_000, "{hits}");
    eprintln!("blocklist: {hits} known scams, {overlap} also allowlisted (official wins)");
    for case in BLOCK_CASES {
        assert_eq!(verdict(&registry, case), Some(Verdict::KnownScam), "{case}");
    }
    for case in ALLOW_CASES {
        assert_eq!(verdict(&registry, case), Some(Verdict::Official), "{case}");
    }
    // Every labelled phishing case is caught, by the blocklist or as a lookalike.
    for case in PHISHING {
        let found = verdict(&registry, case);
        assert!(
            matches!(found, Some(Verdict::KnownScam | Verdict::Lookalike)),
            "{case}: {found:?}"
        );
    }
}

fn allowlisted(allowed: &std::collections::HashSet<&str>, domain: &str) -> bool {
    let mut rest = domain.trim_end_matches('.');
    loop {
        if allowed.contains(rest) {
            return true;
        }
        match rest.split_once('.') {
            Some((_, parent)) => rest = parent,
            None => return false,
        }
    }
}

/// The false-positive rate: of the popular legitimate domains (Alexa top sites, popular
/// dapps, and MetaMask's "not phishing" cases) that are not themselves official, how many are
/// called lookalikes. With the fuzzy list as the registry (15 names, the size of an exchange's
/// own list) the two flagged are by design: an official name on someone else's host
/// (`metamask.github.io`, `myetherwallet.groovehq.com`) is not the exchange's. With the whole
/// allowlist (1,153 names, many of them common words) names meet more often.
#[test]
fn popular_domains_are_rarely_called_lookalikes() {
    let lists = lists();
    let everything: Vec<String> = lists.allow.iter().chain(&lists.fuzzy).cloned().collect();
    for (name, officials, bound) in [
        ("fuzzy list", lists.fuzzy.clone(), 0.02),
        ("allowlist and fuzzy list", everything, 0.10),
    ] {
        let registry = Registry::compile(domains(&officials), &[]);
        let popular: Vec<String> = strings(&json("alexa.json"))
            .into_iter()
            .chain(strings(&json("dapps.json")))
            .chain(NOT_PHISHING.iter().map(|s| (*s).to_owned()))
            .collect();
        let mut checked = 0;
        let mut flagged = Vec::new();
        for domain in &popular {
            let Ok(answer) = registry.verify(domain, None) else {
                continue;
            };
            if answer.verdict == Verdict::Official {
                continue;
            }
            checked += 1;
            if answer.verdict != Verdict::NotOfficial {
                flagged.push(format!(
                    "{domain} ~ {} ({:?})",
                    answer
                        .official_match
                        .as_ref()
                        .map_or("", |e| e.value.as_str()),
                    answer.lookalike
                ));
            }
        }
        let rate = flagged.len() as f64 / checked as f64;
        eprintln!(
            "{name}: {} of {checked} popular domains flagged ({:.1}%): {flagged:?}",
            flagged.len(),
            rate * 100.0
        );
        assert!(checked > 100, "{name}: {checked}");
        assert!(
            rate <= bound,
            "{name}: false-positive rate {:.1}% above {:.0}%: {flagged:?}",
            rate * 100.0,
            bound * 100.0
        );
    }
}
