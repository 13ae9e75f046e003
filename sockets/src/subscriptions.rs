//! Counted topic prefixes: what a publisher filters on for each subscriber, and what a subscriber
//! remembers to send again on every new connection.

use std::collections::BTreeMap;

use bytes::Bytes;

/// A multiset of topic prefixes. Subscribing twice needs two cancels (spec 29).
#[derive(Debug, Default, Clone)]
pub(crate) struct Subscriptions {
    topics: BTreeMap<Bytes, u32>,
    /// The longest topic held: no prefix longer than this can match.
    longest: usize,
    /// Whether the empty topic is held (everything matches), known without a lookup: the lookup
    /// of an empty key cost a quarter of a subscriber's time per message.
    everything: bool,
}

impl Subscriptions {
    /// Adds one subscription to `topic`; true if it was not subscribed before.
    pub(crate) fn add(&mut self, topic: Bytes) -> bool {
        self.longest = self.longest.max(topic.len());
        self.everything |= topic.is_empty();
        let count = self.topics.entry(topic).or_insert(0);
        *count = count.saturating_add(1);
        *count == 1
    }

    /// Removes one subscription to `topic`: `None` if there was none, `Some(true)` if that was the
    /// last one.
    pub(crate) fn remove(&mut self, topic: &[u8]) -> Option<bool> {
        let count = self.topics.get_mut(topic)?;
        *count -= 1;
        if *count > 0 {
            return Some(false);
        }
        self.topics.remove(topic);
        self.everything &= !topic.is_empty();
        Some(true)
    }

    /// Whether some subscription is a prefix of `data` (the empty topic matches everything).
    pub(crate) fn matches(&self, data: &[u8]) -> bool {
        if self.everything {
            return true;
        }
        (1..=data.len().min(self.longest))
            .any(|n| data.get(..n).is_some_and(|p| self.topics.contains_key(p)))
    }

    /// Every topic with its count.
    pub(crate) fn counts(&self) -> impl Iterator<Item = (&Bytes, u32)> {
        self.topics.iter().map(|(t, &c)| (t, c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_match_and_counts_are_kept() {
        let mut s = Subscriptions::default();
        assert!(!s.matches(b"abc"));
        assert!(s.add(Bytes::from_static(b"ab")));
        assert!(!s.add(Bytes::from_static(b"ab")));
        assert!(s.matches(b"abc") && s.matches(b"ab") && !s.matches(b"a") && !s.matches(b"xab"));
        assert_eq!(s.remove(b"ab"), Some(false), "still subscribed once");
        assert!(s.matches(b"abc"));
        assert_eq!(s.remove(b"ab"), Some(true));
        assert!(!s.matches(b"abc"));
        assert_eq!(
            s.remove(b"ab"),
            None,
            "cancelling what is not subscribed is ignored"
        );
        s.add(Bytes::new());
        assert!(s.matches(b"") && s.matches(b"anything"));
        assert_eq!(s.counts().collect::<Vec<_>>(), vec![(&Bytes::new(), 1)]);
        assert_eq!(s.remove(b""), Some(true));
        assert!(
            !s.matches(b"") && !s.matches(b"anything"),
            "the empty topic cancelled"
        );
    }
}
