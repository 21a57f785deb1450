/// Numbered migrations. A migration, once released, is never edited: add the next one.
enum Schema {
    static let migrations: [String] = [
        // 1: the serving loop
        """
        CREATE TABLE secrets(name TEXT PRIMARY KEY, value BLOB NOT NULL);
        CREATE TABLE catalog_revision(id INTEGER PRIMARY KEY CHECK (id = 1), value INTEGER NOT NULL);
        INSERT INTO catalog_revision(id, value) VALUES (1, 0);
        CREATE TABLE advertisers(
            id INTEGER PRIMARY KEY, name TEXT NOT NULL, key_hash TEXT NOT NULL UNIQUE, created_at INTEGER NOT NULL);
        CREATE TABLE campaigns(
            id INTEGER PRIMARY KEY, advertiser_id INTEGER NOT NULL REFERENCES advertisers(id), name TEXT NOT NULL,
            objective TEXT NOT NULL, bid_micros INTEGER NOT NULL, daily_budget_micros INTEGER NOT NULL,
            total_budget_micros INTEGER NOT NULL, start_at INTEGER, end_at INTEGER, targeting TEXT NOT NULL,
            cap_impressions INTEGER, cap_hours INTEGER, status TEXT NOT NULL, created_at INTEGER NOT NULL,
            revision INTEGER NOT NULL DEFAULT 0);
        CREATE INDEX campaigns_by_advertiser ON campaigns(advertiser_id);
        CREATE TABLE ads(
            id INTEGER PRIMARY KEY, campaign_id INTEGER NOT NULL REFERENCES campaigns(id), format TEXT NOT NULL,
            media_urls TEXT NOT NULL, caption TEXT NOT NULL, company TEXT NOT NULL, product TEXT NOT NULL,
            description TEXT NOT NULL, embedding BLOB, status TEXT NOT NULL, created_at INTEGER NOT NULL,
            revision INTEGER NOT NULL DEFAULT 0);
        CREATE INDEX ads_by_campaign ON ads(campaign_id);
        CREATE TABLE users(
            id TEXT PRIMARY KEY, age INTEGER, gender TEXT, country TEXT, language TEXT, interests TEXT NOT NULL);
        CREATE TABLE activities(
            id INTEGER PRIMARY KEY, user_id TEXT NOT NULL, type TEXT NOT NULL, topics TEXT NOT NULL, text TEXT,
            ad_id INTEGER, seconds REAL, at INTEGER NOT NULL);
        CREATE INDEX activities_by_user ON activities(user_id, at);
        CREATE TABLE events(
            token TEXT NOT NULL, type TEXT NOT NULL, user_id TEXT NOT NULL, ad_id INTEGER NOT NULL,
            campaign_id INTEGER NOT NULL, decision_id TEXT NOT NULL, price_micros INTEGER NOT NULL,
            charged_micros INTEGER NOT NULL, value_micros INTEGER, at INTEGER NOT NULL,
            PRIMARY KEY(token, type)) WITHOUT ROWID;
        CREATE INDEX events_by_type_time ON events(type, at);
        CREATE TABLE ad_daily(
            ad_id INTEGER NOT NULL, day INTEGER NOT NULL, impressions INTEGER NOT NULL DEFAULT 0,
            clicks INTEGER NOT NULL DEFAULT 0, conversions INTEGER NOT NULL DEFAULT 0, hides INTEGER NOT NULL DEFAULT 0,
            spend_micros INTEGER NOT NULL DEFAULT 0, PRIMARY KEY(ad_id, day)) WITHOUT ROWID;
        CREATE TABLE campaign_daily(
            campaign_id INTEGER NOT NULL, day INTEGER NOT NULL, impressions INTEGER NOT NULL DEFAULT 0,
            clicks INTEGER NOT NULL DEFAULT 0, conversions INTEGER NOT NULL DEFAULT 0, hides INTEGER NOT NULL DEFAULT 0,
            spend_micros INTEGER NOT NULL DEFAULT 0, PRIMARY KEY(campaign_id, day)) WITHOUT ROWID;
        """,
        // 2: an event's key is its impression's placement key, and the column says so
        """
        ALTER TABLE events RENAME COLUMN token TO placement_key;
        """,
        // 3: hardening — invalid clicks, a user's clicks by time, pause time and conversion value
        // bound per campaign, several revocable keys per advertiser (`advertisers.key_hash` stays
        // as the first key's hash; only `advertiser_keys` authenticates), rotated secrets.
        """
        ALTER TABLE events ADD COLUMN invalid_reason TEXT;
        CREATE INDEX events_by_user ON events(user_id, type, at);
        ALTER TABLE ad_daily ADD COLUMN invalid_clicks INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE campaign_daily ADD COLUMN invalid_clicks INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE campaigns ADD COLUMN paused_at INTEGER;
        ALTER TABLE campaigns ADD COLUMN max_conversion_value_micros INTEGER NOT NULL DEFAULT 10000000000;
        CREATE TABLE advertiser_keys(
            id INTEGER PRIMARY KEY, advertiser_id INTEGER NOT NULL REFERENCES advertisers(id), key_hash TEXT NOT NULL UNIQUE,
            created_at INTEGER NOT NULL, revoked_at INTEGER);
        CREATE INDEX advertiser_keys_by_advertiser ON advertiser_keys(advertiser_id);
        INSERT INTO advertiser_keys(advertiser_id, key_hash, created_at) SELECT id, key_hash, created_at FROM advertisers;
        ALTER TABLE secrets ADD COLUMN valid_until INTEGER;
        """,
        // 4: ads' content vectors are computed off the request path; a vector of another size
        // than the text space (384 floats, 1,536 bytes) is dropped and computed again.
        """
        ALTER TABLE ads ADD COLUMN embedding_status TEXT NOT NULL DEFAULT 'pending';
        ALTER TABLE ads ADD COLUMN embedding_error TEXT;
        UPDATE ads SET embedding = NULL WHERE embedding IS NOT NULL AND length(embedding) != 1536;
        UPDATE ads SET embedding_status = 'ready' WHERE embedding IS NOT NULL;
        CREATE INDEX ads_pending_embedding ON ads(id) WHERE embedding_status = 'pending';
        """,
        // 5: users' activity vectors, and how far the updater has read the activity log
        """
        ALTER TABLE users ADD COLUMN activity_vector BLOB;
        ALTER TABLE users ADD COLUMN activity_vector_at INTEGER;
        CREATE TABLE cursors(name TEXT PRIMARY KEY, value INTEGER NOT NULL);
        """,
        // 6: ads' image vectors
        """
        ALTER TABLE ads ADD COLUMN image_embedding BLOB;
        """,
        // 7: users' recent topics, with the activity vector
        """
        ALTER TABLE users ADD COLUMN recent_topics TEXT;
        """,
        // 8: a user's opt-out of personalized ads
        """
        ALTER TABLE users ADD COLUMN personalization INTEGER NOT NULL DEFAULT 1;
        """,
        // 9: several frequency caps per campaign (per hours or lifetime, per campaign or per ad),
        // as JSON; NULL in rows written before, whose one cap is in cap_impressions and cap_hours
        """
        ALTER TABLE campaigns ADD COLUMN frequency_caps TEXT;
        """,
        // 10: serving nodes read catalog changes by revision; pacing reports read a campaign's
        // charges by hour; a campaign's pacing mode
        """
        CREATE INDEX campaigns_by_revision ON campaigns(revision);
        CREATE INDEX ads_by_revision ON ads(revision);
        CREATE INDEX events_by_campaign_time ON events(campaign_id, at);
        ALTER TABLE campaigns ADD COLUMN pacing TEXT NOT NULL DEFAULT 'standard';
        """,
    ]
}
