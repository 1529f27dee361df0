//! The grammers session data of an account on PostgreSQL (the [`AccountStore`] methods the
//! DB-backed grammers session calls): the home DC, the auth keys per DC, the peer cache, and the
//! update state reached (common and per channel).
//!
//! [`AccountStore`]: switchboard_domain::AccountStore

use crate::PgStore;
use crate::error::ResultExt;
use crate::rows::Cols;
use crate::sql::{begin, begin_relaxed, begin_with};
use std::collections::HashMap;
use switchboard_domain::rows::{one_row, read_dc_key, read_peer, read_update_state};
use switchboard_domain::{AccountId, CachedPeer, DcKey, StoreResult, UpdateState};

/// [`AccountStore::account_home_dc`](switchboard_domain::AccountStore::account_home_dc).
pub(crate) async fn account_home_dc(store: &PgStore, id: AccountId) -> StoreResult<Option<i32>> {
    sqlx::query_scalar("SELECT home_dc FROM accounts WHERE id = $1")
        .bind(id.0)
        .fetch_one(&store.pool)
        .await
        .store_err("account_home_dc")
}

/// [`AccountStore::set_account_home_dc`](switchboard_domain::AccountStore::set_account_home_dc).
pub(crate) async fn set_account_home_dc(
    store: &PgStore,
    id: AccountId,
    dc_id: i32,
) -> StoreResult<()> {
    let done = sqlx::query("UPDATE accounts SET home_dc = $1 WHERE id = $2")
        .bind(dc_id)
        .bind(id.0)
        .execute(&store.pool)
        .await
        .store_err("set_account_home_dc")?;
    one_row(done.rows_affected())
}

/// [`AccountStore::list_dc_keys`](switchboard_domain::AccountStore::list_dc_keys).
pub(crate) async fn list_dc_keys(store: &PgStore, id: AccountId) -> StoreResult<Vec<DcKey>> {
    const OP: &str = "list_dc_keys";
    let rows = sqlx::query(
        "SELECT dc_id, ipv4, ipv6, auth_key_sealed FROM account_dc_keys \
         WHERE account_id = $1 ORDER BY dc_id",
    )
    .bind(id.0)
    .fetch_all(&store.pool)
    .await
    .store_err(OP)?;
    rows.iter().map(|r| read_dc_key(OP, &Cols(r))).collect()
}

/// [`AccountStore::upsert_dc_key`](switchboard_domain::AccountStore::upsert_dc_key).
pub(crate) async fn upsert_dc_key(store: &PgStore, id: AccountId, key: &DcKey) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO account_dc_keys (account_id, dc_id, ipv4, ipv6, auth_key_sealed) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (account_id, dc_id) DO UPDATE SET ipv4 = excluded.ipv4, \
             ipv6 = excluded.ipv6, auth_key_sealed = excluded.auth_key_sealed",
    )
    .bind(id.0)
    .bind(key.dc_id)
    .bind(&key.ipv4)
    .bind(&key.ipv6)
    .bind(key.auth_key_sealed.as_deref())
    .execute(&store.pool)
    .await
    .store_err("upsert_dc_key")?;
    Ok(())
}

/// [`AccountStore::get_cached_peer`](switchboard_domain::AccountStore::get_cached_peer).
pub(crate) async fn get_cached_peer(
    store: &PgStore,
    id: AccountId,
    peer_id: i64,
) -> StoreResult<Option<CachedPeer>> {
    const OP: &str = "get_cached_peer";
    let row = sqlx::query(
        "SELECT peer_id, access_hash, subtype FROM account_peers \
         WHERE account_id = $1 AND peer_id = $2",
    )
    .bind(id.0)
    .bind(peer_id)
    .fetch_optional(&store.pool)
    .await
    .store_err(OP)?;
    row.map(|r| read_peer(OP, &Cols(&r))).transpose()
}

/// [`AccountStore::get_self_peer`](switchboard_domain::AccountStore::get_self_peer).
pub(crate) async fn get_self_peer(
    store: &PgStore,
    id: AccountId,
) -> StoreResult<Option<CachedPeer>> {
    const OP: &str = "get_self_peer";
    let row = sqlx::query(
        "SELECT peer_id, access_hash, subtype FROM account_peers \
         WHERE account_id = $1 AND (subtype & 1) <> 0 ORDER BY peer_id LIMIT 1",
    )
    .bind(id.0)
    .fetch_optional(&store.pool)
    .await
    .store_err(OP)?;
    row.map(|r| read_peer(OP, &Cols(&r))).transpose()
}

/// [`AccountStore::upsert_cached_peers`](switchboard_domain::AccountStore::upsert_cached_peers).
pub(crate) async fn upsert_cached_peers(
    store: &PgStore,
    id: AccountId,
    peers: &[CachedPeer],
) -> StoreResult<()> {
    const OP: &str = "upsert_cached_peers";
    if peers.is_empty() {
        return Ok(());
    }
    // The last occurrence of a peer wins, as if the rows were written one by one (and
    // PostgreSQL refuses to update one row twice in a statement).
    let mut latest: HashMap<i64, &CachedPeer> = HashMap::with_capacity(peers.len());
    for peer in peers {
        latest.insert(peer.peer_id, peer);
    }
    let mut unique: Vec<&CachedPeer> = latest.into_values().collect();
    unique.sort_by_key(|p| p.peer_id);
    // One statement: atomic on its own.
    sqlx::query(
        "INSERT INTO account_peers (account_id, peer_id, access_hash, subtype) \
         SELECT $1, * FROM UNNEST($2::bigint[], $3::bigint[], $4::integer[]) \
         ON CONFLICT (account_id, peer_id) DO UPDATE SET \
             access_hash = excluded.access_hash, subtype = excluded.subtype",
    )
    .bind(id.0)
    .bind(unique.iter().map(|p| p.peer_id).collect::<Vec<_>>())
    .bind(unique.iter().map(|p| p.access_hash).collect::<Vec<_>>())
    .bind(unique.iter().map(|p| p.subtype).collect::<Vec<_>>())
    .execute(&store.pool)
    .await
    .store_err(OP)?;
    Ok(())
}

/// [`AccountStore::get_update_state`](switchboard_domain::AccountStore::get_update_state).
pub(crate) async fn get_update_state(
    store: &PgStore,
    id: AccountId,
) -> StoreResult<Option<(UpdateState, Vec<(i64, i32)>)>> {
    const OP: &str = "get_update_state";
    // One snapshot for the common state and the channels.
    let mut tx = begin_with(
        &store.pool,
        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        OP,
    )
    .await?;
    let common =
        sqlx::query("SELECT pts, qts, date, seq FROM account_update_states WHERE account_id = $1")
            .bind(id.0)
            .fetch_optional(&mut *tx)
            .await
            .store_err(OP)?;
    let channels: Vec<(i64, i32)> = sqlx::query_as(
        "SELECT channel_id, pts FROM account_channel_states WHERE account_id = $1 \
         ORDER BY channel_id",
    )
    .bind(id.0)
    .fetch_all(&mut *tx)
    .await
    .store_err(OP)?;
    tx.commit().await.store_err(OP)?;
    let state = match common {
        Some(r) => read_update_state(OP, &Cols(&r))?,
        // Only channels saved so far: the common state is still at its start.
        None if !channels.is_empty() => UpdateState::default(),
        None => return Ok(None),
    };
    Ok(Some((state, channels)))
}

/// [`AccountStore::set_update_state`](switchboard_domain::AccountStore::set_update_state).
pub(crate) async fn set_update_state(
    store: &PgStore,
    id: AccountId,
    state: &UpdateState,
    channels: &[(i64, i32)],
) -> StoreResult<()> {
    const OP: &str = "set_update_state";
    let mut latest: HashMap<i64, i32> = HashMap::with_capacity(channels.len());
    latest.extend(channels.iter().copied());
    let mut unique: Vec<(i64, i32)> = latest.into_iter().collect();
    unique.sort_unstable();

    let mut tx = begin(&store.pool, OP).await?;
    sqlx::query(
        "INSERT INTO account_update_states (account_id, pts, qts, date, seq) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (account_id) DO UPDATE SET pts = excluded.pts, qts = excluded.qts, \
             date = excluded.date, seq = excluded.seq",
    )
    .bind(id.0)
    .bind(state.pts)
    .bind(state.qts)
    .bind(state.date)
    .bind(state.seq)
    .execute(&mut *tx)
    .await
    .store_err(OP)?;
    sqlx::query("DELETE FROM account_channel_states WHERE account_id = $1")
        .bind(id.0)
        .execute(&mut *tx)
        .await
        .store_err(OP)?;
    if !unique.is_empty() {
        sqlx::query(
            "INSERT INTO account_channel_states (account_id, channel_id, pts) \
             SELECT $1, * FROM UNNEST($2::bigint[], $3::integer[])",
        )
        .bind(id.0)
        .bind(unique.iter().map(|c| c.0).collect::<Vec<_>>())
        .bind(unique.iter().map(|c| c.1).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await
        .store_err(OP)?;
    }
    tx.commit().await.store_err(OP)
}

/// [`AccountStore::set_update_primary`](switchboard_domain::AccountStore::set_update_primary).
pub(crate) async fn set_update_primary(
    store: &PgStore,
    id: AccountId,
    pts: i32,
    date: i32,
    seq: i32,
) -> StoreResult<()> {
    let mut tx = begin_relaxed(&store.pool, "set_update_primary").await?;
    sqlx::query(
        "INSERT INTO account_update_states (account_id, pts, qts, date, seq) \
         VALUES ($1, $2, 0, $3, $4) \
         ON CONFLICT (account_id) DO UPDATE SET pts = excluded.pts, date = excluded.date, \
             seq = excluded.seq",
    )
    .bind(id.0)
    .bind(pts)
    .bind(date)
    .bind(seq)
    .execute(&mut *tx)
    .await
    .store_err("set_update_primary")?;
    tx.commit().await.store_err("set_update_primary")
}

/// [`AccountStore::set_update_qts`](switchboard_domain::AccountStore::set_update_qts).
pub(crate) async fn set_update_qts(store: &PgStore, id: AccountId, qts: i32) -> StoreResult<()> {
    let mut tx = begin_relaxed(&store.pool, "set_update_qts").await?;
    sqlx::query(
        "INSERT INTO account_update_states (account_id, pts, qts, date, seq) \
         VALUES ($1, 0, $2, 0, 0) \
         ON CONFLICT (account_id) DO UPDATE SET qts = excluded.qts",
    )
    .bind(id.0)
    .bind(qts)
    .execute(&mut *tx)
    .await
    .store_err("set_update_qts")?;
    tx.commit().await.store_err("set_update_qts")
}

/// [`AccountStore::set_channel_pts`](switchboard_domain::AccountStore::set_channel_pts).
pub(crate) async fn set_channel_pts(
    store: &PgStore,
    id: AccountId,
    channel_id: i64,
    pts: i32,
) -> StoreResult<()> {
    let mut tx = begin_relaxed(&store.pool, "set_channel_pts").await?;
    sqlx::query(
        "INSERT INTO account_channel_states (account_id, channel_id, pts) VALUES ($1, $2, $3) \
         ON CONFLICT (account_id, channel_id) DO UPDATE SET pts = excluded.pts",
    )
    .bind(id.0)
    .bind(channel_id)
    .bind(pts)
    .execute(&mut *tx)
    .await
    .store_err("set_channel_pts")?;
    tx.commit().await.store_err("set_channel_pts")
}

/// [`AccountStore::wipe_account_session`](switchboard_domain::AccountStore::wipe_account_session).
pub(crate) async fn wipe_account_session(store: &PgStore, id: AccountId) -> StoreResult<()> {
    const OP: &str = "wipe_account_session";
    let mut tx = begin(&store.pool, OP).await?;
    let done = sqlx::query("UPDATE accounts SET home_dc = NULL WHERE id = $1")
        .bind(id.0)
        .execute(&mut *tx)
        .await
        .store_err(OP)?;
    one_row(done.rows_affected())?;
    for table in [
        "account_dc_keys",
        "account_peers",
        "account_update_states",
        "account_channel_states",
    ] {
        sqlx::query(&format!("DELETE FROM {table} WHERE account_id = $1"))
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .store_err(OP)?;
    }
    tx.commit().await.store_err(OP)
}
