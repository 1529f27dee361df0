//! 64-bit SimHash (Charikar) of a post's normalised words, for copy-paste reposts: two posts
//! whose fingerprints differ in at most [`NEAR_DUPLICATE_DISTANCE`] bits are the same post.
//!
//! Features are word 3-shingles of the normalised text (single words for posts of fewer than
//! three words), so case, ё/е, punctuation, emoji, spacing and invisible characters do not
//! change the fingerprint, and a prefix such as `Repost:` changes only a few features. Each
//! feature is hashed with FNV-1a followed by the MurmurHash3 finaliser — a fixed function, so
//! fingerprints stored in the database stay valid across releases.

use crate::normalize::tokens;

/// The Hamming distance at or under which two fingerprints are the same post (Manku et al.,
/// WWW 2007, used k = 3 for 64-bit fingerprints).
pub const NEAR_DUPLICATE_DISTANCE: u32 = 3;

/// The 64-bit SimHash of `text` (0 for a text without words).
pub fn simhash64(text: &str) -> u64 {
    let words = tokens(text);
    let tokens: Vec<&str> = words.iter().map(String::as_str).collect();
    let mut weights = [0i32; 64];
    let mut add = |hash: u64| {
        for (bit, w) in weights.iter_mut().enumerate() {
            if hash >> bit & 1 == 1 {
                *w += 1;
            } else {
                *w -= 1;
            }
        }
    };
    if tokens.len() < 3 {
        for t in &tokens {
            add(feature_hash(&[t]));
        }
    } else {
        for shingle in tokens.windows(3) {
            add(feature_hash(shingle));
        }
    }
    if tokens.is_empty() {
        return 0;
    }
    weights
        .iter()
        .enumerate()
        .filter(|(_, w)| **w > 0)
        .fold(0u64, |acc, (bit, _)| acc | 1 << bit)
}

/// The number of differing bits.
pub fn hamming(a: u64, b: u64) -> u32 {
    (a ^ b).count_ones()
}

/// Whether two fingerprints are within [`NEAR_DUPLICATE_DISTANCE`].
pub fn is_near_duplicate(a: u64, b: u64) -> bool {
    hamming(a, b) <= NEAR_DUPLICATE_DISTANCE
}

fn feature_hash(words: &[&str]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = OFFSET;
    for (i, w) in words.iter().enumerate() {
        if i > 0 {
            h ^= u64::from(b' ');
            h = h.wrapping_mul(PRIME);
        }
        for &b in w.as_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(PRIME);
        }
    }
    // MurmurHash3's fmix64: FNV's low bits alone mix poorly for short strings.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A typical vacancy post (about 110 words).
    const POST: &str = "Ищем Rust-разработчика в команду платёжного сервиса. Удалённо, полный день, \
        зарплата от 300 000 рублей. Требования: опыт с tokio и PostgreSQL от двух лет, умение \
        писать тесты, английский на уровне чтения документации. Будет плюсом: опыт с Kafka, \
        gRPC, Kubernetes, понимание того, как устроены платёжные системы и банковские протоколы. \
        Чем предстоит заниматься: развивать сервис проведения платежей, писать новые интеграции \
        с банками, участвовать в ревью кода и проектировании, дежурить по графику раз в месяц. \
        Мы предлагаем: официальное оформление, ДМС со стоматологией, компенсацию обучения и \
        конференций, новый ноутбук на выбор, гибкое начало дня. Команда из восьми человек, \
        релизы каждую неделю, код-ревью обязательно. Процесс отбора: созвон с HR, техническое \
        интервью, знакомство с командой. Пишите @hr_rustacean, присылайте резюме и ссылку на \
        GitHub.";

    #[test]
    fn formatting_does_not_change_the_fingerprint() {
        let copy = POST.to_uppercase().replace(' ', "  ").replace('ё', "е") + " 🔥🔥";
        assert_eq!(simhash64(POST), simhash64(&copy));
        let hidden = POST.replace("Rust", "Ru\u{200B}st");
        assert_eq!(simhash64(POST), simhash64(&hidden));
    }

    #[test]
    fn a_repost_with_a_prefix_or_a_changed_word_is_near() {
        let prefixed = format!("Репост: {POST}");
        let d = hamming(simhash64(POST), simhash64(&prefixed));
        assert!(d <= NEAR_DUPLICATE_DISTANCE, "distance {d}");
        let edited = POST.replace("восьми", "девяти");
        let d = hamming(simhash64(POST), simhash64(&edited));
        assert!(d <= NEAR_DUPLICATE_DISTANCE, "distance {d}");
        assert!(is_near_duplicate(simhash64(POST), simhash64(&edited)));
    }

    #[test]
    fn different_posts_are_far() {
        let other = "Продаю велосипед Stels, почти новый, 21 скорость, самовывоз с Таганской. \
            Цена 15 000 рублей, торг уместен. Пишите в личные сообщения, отвечу вечером.";
        let d = hamming(simhash64(POST), simhash64(other));
        assert!(d > 10, "distance {d}");
        let similar_topic = "Ищем Go-разработчика в команду биллинга. Офис в Москве, полный день, \
            зарплата по итогам собеседования. Требования: опыт с Kubernetes и Kafka от трёх лет.";
        let d = hamming(simhash64(POST), simhash64(similar_topic));
        assert!(d > NEAR_DUPLICATE_DISTANCE, "distance {d}");
    }

    #[test]
    fn empty_and_short_texts() {
        assert_eq!(simhash64(""), 0);
        assert_eq!(simhash64("!!! 🔥"), 0);
        assert_ne!(simhash64("вакансия"), simhash64("резюме"));
        assert_eq!(hamming(0, u64::MAX), 64);
    }
}
